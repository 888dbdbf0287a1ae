"""The diagrams of chapters 6 and 7 (rnncourse.drawing): what they show is what the data says, and the
text stays readable on a phone."""

import itertools
import math

import matplotlib
import matplotlib.colors

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

from rnncourse import drawing  # noqa: E402


@pytest.fixture
def ax():
    """The Axes of a new diagram, as a chapter draws on it (the function sets its limits and size)."""
    return drawing.diagram((0, 1), (0, 1))[1]


def _texts(ax):
    return [t.get_text() for t in ax.texts if t.get_text()]


# --- measuring labels ------------------------------------------------------------------------------


def test_label_width_measures_the_text():
    assert drawing.label_width("hundred") > 3 * drawing.label_width("and") / 2
    assert drawing.label_width("ab", 26) == pytest.approx(2 * drawing.label_width("ab", 13))


# --- encoder-decoder ---------------------------------------------------------------------------------


def test_encoder_decoder_draws_both_models_with_the_given_weights(ax):
    source, target = ["one", "hundred", "and", "six"], list("106")
    drawing.encoder_decoder(ax, source, target, weights=[0.05, 0.1, 0.15, 0.7], step=3)
    texts = _texts(ax)
    for token in source:
        assert texts.count(token) == 2, f"{token} once in each panel"
    assert texts.count("$h_4$") == 2 and texts.count("$s_4$") == 2  # T = 3 digits + EOS
    assert "$c_3$" in texts and "$c$" in texts
    assert [t for t in texts if t.startswith("0.")] == ["0.05", "0.10", "0.15", "0.70"]
    # line width grows with the weight: the 0.7 line is the widest of the four lines to the sum
    widths = sorted(line.get_linewidth() for line in ax.lines if line.get_color() == drawing.COLORS["path"])
    assert widths[-1] == pytest.approx(0.5 + 7 * 0.7)


def test_every_label_fits_its_box(ax):
    drawing.encoder_decoder(ax, ["one", "hundred", "and", "six"], list("106"), step=2)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, FancyBboxPatch)]
    for text in ax.texts:
        if not text.get_text():
            continue
        extent = text.get_window_extent(renderer)
        centre = ((extent.x0 + extent.x1) / 2, (extent.y0 + extent.y1) / 2)
        inside = [b for b in boxes if b.contains(*centre)]
        if inside:  # a box's label: it must not stick out of its box
            b = min(inside, key=lambda b: b.width)
            assert extent.x0 >= b.x0 - 1 and extent.x1 <= b.x1 + 1, f"{text.get_text()!r} is wider than its box"


# --- beam search -------------------------------------------------------------------------------------


def test_beam_tree_shows_each_candidate_with_its_status(ax):
    steps = [
        [dict(token="a", score=-0.7, parent=0, status="alive", best=False),
         dict(token="b", score=-0.9, parent=0, status="alive", best=True),
         dict(token="EOS", score=-2.3, parent=0, status="pruned", best=False)],
        [dict(token="EOS", score=-1.0, parent=1, status="finished", best=True),
         dict(token="a", score=-1.6, parent=0, status="alive", best=False)],
    ]
    drawing.beam_search_tree(ax, steps)
    texts = _texts(ax)
    assert texts == ["BOS", "a -0.7", "b -0.9", "EOS -2.3", "EOS -1.0", "a -1.6"]
    fills = [p.get_facecolor() for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert matplotlib.colors.to_hex(fills[4]) == drawing.COLORS["candidate"]  # finished
    assert matplotlib.colors.to_hex(fills[3]) == "#f2f2f2"  # pruned
    # the bold path: BOS -> b -> EOS, two segments in the path colour
    bold = [line for line in ax.lines if line.get_color() == drawing.COLORS["path"]]
    assert len(bold) == 2


# --- CTC ---------------------------------------------------------------------------------------------


def _collapse(path, blank=0):
    return [label for label, _ in itertools.groupby(path) if label != blank]


def _lattice_paths(ax, target, T):
    """Count the complete paths through the arrows the lattice drew, start rows 0-1 to end rows R-2..R-1."""
    R = 2 * len(target) + 1
    xs = sorted({round(c.center[0], 6) for c in ax.patches if isinstance(c, Circle)})
    ys = sorted({round(c.center[1], 6) for c in ax.patches if isinstance(c, Circle)}, reverse=True)
    assert len(xs) == T and len(ys) == R
    edges = {}
    for arrow in (p for p in ax.patches if isinstance(p, FancyArrowPatch)):
        (x0, y0), (x1, y1) = arrow._posA_posB
        a = (xs.index(round(x0, 6)), ys.index(round(y0, 6)))
        b = (xs.index(round(x1, 6)), ys.index(round(y1, 6)))
        edges.setdefault(a, []).append(b)
    count = {(0, r): 1 for r in (0, 1)}
    for t in range(T - 1):
        for (tt, r), n in list(count.items()):
            if tt == t:
                for b in edges.get((t, r), []):
                    count[b] = count.get(b, 0) + n
    return sum(count.get((T - 1, r), 0) for r in (R - 2, R - 1))


@pytest.mark.parametrize("target, T", [([1, 1], 5), ([1, 2], 5), ([2, 1, 1], 7), ([1], 3)])
def test_the_lattice_holds_exactly_the_paths_that_read_as_the_target(ax, target, T):
    """Its arrows, followed from start to end, are the alignments: as many as enumeration finds."""
    drawing.ctc_lattice(ax, target, T)
    symbols = max(target) + 1
    enumerated = sum(_collapse(p) == list(target) for p in itertools.product(range(symbols), repeat=T))
    assert _lattice_paths(ax, target, T) == enumerated


def test_the_lattice_draws_the_given_paths_and_shades_by_alpha(ax):
    log_alpha = np.log(np.full((5, 5), 0.2))
    log_alpha[2, 2] = math.log(5.0)
    drawing.ctc_lattice(ax, [1, 1], 5, paths=[[0, 1, 2, 3, 4]], log_alpha=log_alpha)
    (bold,) = [line for line in ax.lines if line.get_linewidth() == 3]
    assert list(bold.get_ydata()) == pytest.approx([0, -0.42, -0.84, -1.26, -1.68])
    circles = [c for c in ax.patches if isinstance(c, Circle) and c.center[0] == pytest.approx(2 * 0.55)]
    darkest = min(circles, key=lambda c: sum(c.get_facecolor()[:3]))
    assert darkest.center[1] == pytest.approx(-2 * 0.42)


# --- masks, streams, padding ---------------------------------------------------------------------------


def test_mask_grid_shows_dropped_cells_dark(ax):
    keep = np.array([[1, 0, 1], [0, 0, 1]], dtype=bool)
    drawing.mask_grid(ax, keep, title="t")
    image = ax.images[0].get_array()
    assert np.array_equal(np.asarray(image) > 0, ~keep)


def test_stream_chunks_numbers_the_text_in_order(ax):
    drawing.stream_chunks(ax, 3, 4)
    numbers = [int(t) for t in _texts(ax) if t.isdigit()]
    assert numbers == list(range(1, 13))  # row n holds chunks n*4+1 .. n*4+4: a contiguous stretch of text
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == 0  # wires are lines and annotations
    assert len([t for t in ax.texts if not t.get_text()]) == 3 * 3  # one arrow head per chunk boundary


def test_padded_batch_marks_each_last_step(ax):
    drawing.padded_batch(ax, [7, 4, 5])
    bold = [p for p in ax.patches if isinstance(p, FancyBboxPatch) and p.get_linewidth() == 2.5]
    steps = sorted(round((p.get_x() + p.get_width() / 2) / 0.32) for p in bold)
    assert steps == [3, 4, 6]  # lengths 4, 5, 7: their last steps are 3, 4 and 6


# --- all of them on a phone ----------------------------------------------------------------------------


def _beam_steps():
    return [[dict(token=t, score=-1.0 * i, parent=0, status="alive", best=i == 0) for i, t in enumerate("abcd")]
            for _ in range(4)]


DIAGRAMS = {
    "encoder_decoder": lambda ax: drawing.encoder_decoder(ax, ["one", "hundred", "and", "six"], list("106"), step=3),
    "beam_search_tree": lambda ax: drawing.beam_search_tree(ax, _beam_steps()),
    "ctc_lattice": lambda ax: drawing.ctc_lattice(ax, [1, 1], 5),
    "stream_chunks": lambda ax: drawing.stream_chunks(ax, 3, 4),
    "padded_batch": lambda ax: drawing.padded_batch(ax, [7, 4, 5]),
}


@pytest.mark.parametrize("name", list(DIAGRAMS))
def test_every_diagram_is_readable_on_a_phone(ax, name):
    DIAGRAMS[name](ax)
    assert drawing.check_text_size(ax.figure) >= drawing.MIN_TEXT_PX  # what show() checks before showing
    width, height = ax.figure.get_size_inches()
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert (width, height) == pytest.approx((x1 - x0, y1 - y0)), "the figure takes the diagram's size"
    assert drawing.png_bytes(ax.figure).startswith(b"\x89PNG")
