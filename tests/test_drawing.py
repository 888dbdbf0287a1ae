"""rnncourse.drawing: the shapes every diagram of the book is drawn from, and its size rule."""

import io
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Circle, FancyBboxPatch  # noqa: E402
from PIL import Image  # noqa: E402

from rnncourse import drawing  # noqa: E402
from rnncourse.drawing import COLORS, box, op, wire  # noqa: E402

# Every diagram of chapters 1 to 5, with the arguments the chapters use.
DIAGRAMS = {
    "delayed_recall": {"k": 8, "d": 10},
    "task_shapes": {},
    "recurrent_and_recursive": {},
    "folded_rnn": {},
    "unrolled_rnn": {"steps": 4},
    "stacked_rnn": {"layers": 2, "steps": 3},
    "bidirectional_rnn": {"steps": 4},
    "bptt_backward": {"steps": 4},
    "truncated_bptt_windows": {"T": 12, "k": 4},
    "lstm_cell_1": {"stage": 1},
    "lstm_cell_2": {"stage": 2},
    "lstm_cell_3": {"stage": 3},
    "lstm_cell_4": {"stage": 4},
    "gru_cell": {},
    "gru_reset_conventions": {},
    "colour_key": {},
}


def make(name):
    function = getattr(drawing, name.rstrip("_1234") if name.startswith("lstm_cell") else name)
    return function(**DIAGRAMS[name])


def test_box_op_and_wire_draw_their_shapes_and_labels():
    fig, ax = plt.subplots()
    box(ax, (1.0, 2.0), "$h_t$", COLORS["state"], w=0.8, h=0.4)
    op(ax, (3.0, 2.0), "$+$")
    wire(ax, [(1.4, 2.0), (2.0, 2.0), (2.8, 2.0)])
    (rounded,) = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    (circle,) = [p for p in ax.patches if isinstance(p, Circle)]
    # the box is centred on its point, the circle too
    assert rounded.get_x() + rounded.get_width() / 2 == 1.0
    assert rounded.get_y() + rounded.get_height() / 2 == 2.0
    assert tuple(circle.center) == (3.0, 2.0)
    assert sorted(t.get_text() for t in ax.texts if t.get_text()) == ["$+$", "$h_t$"]  # the arrow head is an empty annotation
    # the wire stops before its last point, where the arrow head starts
    (line,) = ax.lines
    assert list(line.get_xdata()) == [1.4, 2.0]
    (head,) = [t for t in ax.texts if isinstance(t, matplotlib.text.Annotation)]
    assert head.xy == (2.8, 2.0)
    plt.close(fig)


def test_a_wire_without_arrow_runs_through_every_point():
    fig, ax = plt.subplots()
    wire(ax, [(0, 0), (1, 0), (1, 1)], arrow=False)
    (line,) = ax.lines
    assert list(line.get_xdata()) == [0, 1, 1]
    assert not ax.texts
    plt.close(fig)


def test_a_colour_may_be_named_by_its_meaning():
    fig, ax = drawing.diagram((0, 2), (0, 1), width=3)
    box(ax, (1, 0.5), "x", "input")
    (rounded,) = ax.patches
    assert matplotlib.colors.to_hex(rounded.get_facecolor()) == COLORS["input"]


# --- the size rule -------------------------------------------------------------------------


def test_phone_px_follows_the_rule():
    # a figure narrower than the phone's column is not scaled: 12 pt is 16 CSS px
    assert drawing.phone_px(12, 3.0) == pytest.approx(16.0)
    # a wider one is scaled to the column: twice the column's width, half the size
    width = 2 * drawing.PHONE_COLUMN_PX / drawing.PX_PER_INCH
    assert drawing.phone_px(12, width) == pytest.approx(8.0)


@pytest.mark.parametrize("width", [1.0, 3.0, 3.7, 4.0, 5.0, 6.0, drawing.MAX_WIDTH])
def test_the_rules_font_size_is_readable_on_a_phone_at_any_width(width):
    size = drawing.fontsize(width)
    assert drawing.phone_px(size, width) >= drawing.PHONE_TEXT_PX - 1e-9 >= drawing.MIN_TEXT_PX
    assert size >= drawing.MIN_FONTSIZE


def test_a_diagram_wider_than_the_column_is_refused():
    with pytest.raises(ValueError, match="at most MAX_WIDTH"):
        drawing.diagram((0, 1), (0, 1), width=drawing.MAX_WIDTH + 0.5)


def test_shapes_use_the_rules_size_for_the_figure_they_are_on():
    for width in (2.5, 6.0):
        fig, ax = drawing.diagram((0, 10), (0, 4), width=width)
        box(ax, (2, 2), "$h_t$", "state")
        op(ax, (5, 2), "$+$")
        drawing.label(ax, (8, 2), "text")
        assert {size for _, size in drawing.text_sizes(fig)} == {drawing.fontsize(width)}


def test_text_below_the_rule_is_refused_before_anything_is_shown():
    fig, ax = drawing.diagram((0, 10), (0, 4), width=6.0)
    box(ax, (2, 2), "$h_t$", "state", fontsize=8)          # 8 pt in 6 inches: 6.5 px on a phone
    with pytest.raises(ValueError, match=r"too small to read on a phone.*'\$h_t\$' at 8 pt"):
        drawing.check_text_size(fig)
    with pytest.raises(ValueError, match="too small"):
        drawing.png_bytes(fig)


def test_the_png_records_its_css_width_and_smallest_text():
    fig, ax = drawing.diagram((0, 10), (0, 4), width=5.0)
    box(ax, (2, 2), "$h_t$", "state")
    drawing.label(ax, (7, 2), "big", fontsize=20)
    image = Image.open(io.BytesIO(drawing.png_bytes(fig)))
    record = json.loads(image.text[drawing.PNG_KEY])
    assert record["width_px"] == 480
    assert record["min_text_px"] == pytest.approx(drawing.fontsize(5.0) * 96 / 72, abs=0.01)
    assert image.width == 2 * 480  # two device pixels per CSS px


@pytest.mark.parametrize("name", sorted(DIAGRAMS))
def test_every_diagram_of_part_one_is_readable_on_a_phone(name):
    fig = make(name)
    assert fig.get_figwidth() <= drawing.MAX_WIDTH
    assert drawing.check_text_size(fig) >= drawing.MIN_TEXT_PX
    texts = [text for text, _ in drawing.text_sizes(fig)]
    assert texts, f"{name} has no text"
    record = json.loads(Image.open(io.BytesIO(drawing.png_bytes(fig))).text[drawing.PNG_KEY])
    shown = record["min_text_px"] * min(1, drawing.PHONE_COLUMN_PX / record["width_px"])
    assert shown >= drawing.MIN_TEXT_PX


def test_every_diagram_stays_inside_its_figure():
    """No label is cut at the figure's edge: every text's box lies within the canvas."""
    for name in sorted(DIAGRAMS):
        fig = make(name)
        renderer = fig.canvas.get_renderer()
        width, height = fig.canvas.get_width_height()
        for artist in fig.findobj(matplotlib.text.Text):
            if not artist.get_text().strip():
                continue
            bbox = artist.get_window_extent(renderer)
            assert bbox.x0 >= -1 and bbox.y0 >= -1 and bbox.x1 <= width + 1 and bbox.y1 <= height + 1, (
                f"{name}: the text {artist.get_text()!r} runs off the figure ({bbox}, canvas {width} x {height})")


def test_lstm_cell_builds_up_one_gate_at_a_time():
    names = {stage: {t for t, _ in drawing.text_sizes(drawing.lstm_cell(stage=stage))} for stage in (1, 2, 3, 4)}
    assert "$g_t$" in names[1] and not {"$i_t$", "$o_t$", "$f_t$"} & names[1]
    assert names[2] - names[1] >= {"$i_t$"}
    assert names[3] - names[2] >= {"$o_t$"}
    assert names[4] - names[3] >= {"$f_t$"}
    with pytest.raises(ValueError, match="stage"):
        drawing.lstm_cell(stage=5)


def test_show_displays_the_png_at_its_css_width(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig, ax = drawing.diagram((0, 4), (0, 2), width=4.0)
    box(ax, (2, 1), "$x_t$", "input")
    drawing.show(fig)
    (image,) = shown
    assert image.width == 384
    assert json.loads(Image.open(io.BytesIO(image.data)).text[drawing.PNG_KEY])["width_px"] == 384
