"""The book's diagrams, drawn with matplotlib from a few shapes, readable on a phone by construction.

A diagram is a figure made by :func:`diagram`: one ``Axes`` that fills it,
in data coordinates with the same scale on both axes (a circle stays round)
and no axis drawn. On it a chapter places

- :func:`box`: a rounded box with a label (a state, an input, a layer, a gate);
- :func:`op`: a small circle with an operator in it (``+``, ``×``, ``1 -``);
- :func:`wire`: a polyline through points, with an arrow head at the last one;
- :func:`label`: a line of text; :func:`bracket`: a bracket over a span, with a label;
- :func:`region`: a shaded rounded rectangle behind a group of shapes;

and shows it with :func:`show`. The colours name what a box holds, the same
in every chapter (:data:`COLORS`). Every diagram of the book is drawn from
these, so that a change of style is made here once. The diagrams of part one
(chapters 1 to 5) are the functions of the second half of this module, one
per figure; a chapter shows one with ``show(unrolled_rnn())``.

**The size rule.** The site shows a diagram at its size in CSS units, :data:`PX_PER_INCH` = 96
CSS px per inch, so that text of ``s`` points is ``s * 96 / 72`` CSS px,
like printed text (a 12 pt label is 16 px, the size of the body text). A
narrower screen scales the image down to its text column: on a phone 390 px
wide that column is :data:`PHONE_COLUMN_PX` wide. Text of ``s`` points in a
figure ``w`` inches wide is then, on the phone,
``s * 96 / 72 * min(1, PHONE_COLUMN_PX / (96 * w))`` CSS px.

:func:`fontsize` is the size that keeps this at :data:`PHONE_TEXT_PX` (11
px: a subscript, drawn at 70 %, is then 8 px), and never below
:data:`MIN_FONTSIZE` on a wide screen. Every shape here uses it unless told
otherwise, so a diagram's text follows its width: twice as wide, twice the
point size, the same on the phone. What a diagram can hold across is fixed
instead: about ``72 * w / s``, some 33 characters of text. :func:`show`
measures every text of the figure and refuses one below :data:`MIN_TEXT_PX`
= 10 CSS px on the phone, so no diagram reaches the book unreadable; the
PNG it writes records its width and smallest text (PNG text chunk
``rnncourse:diagram``), which the browser test reads to measure the text as
a phone shows it.
"""

import io
import json
import math

import numpy as np

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from matplotlib.text import Text
from matplotlib.textpath import TextToPath

from .validation import check_choice

__all__ = [
    "COLORS",
    "PX_PER_INCH",
    "PHONE_COLUMN_PX",
    "PHONE_TEXT_PX",
    "MIN_TEXT_PX",
    "MIN_FONTSIZE",
    "MAX_WIDTH",
    "PNG_KEY",
    "fontsize",
    "phone_px",
    "diagram",
    "em",
    "box",
    "op",
    "wire",
    "label",
    "bracket",
    "region",
    "text_sizes",
    "check_text_size",
    "png_bytes",
    "show",
    # the diagrams of part one
    "delayed_recall",
    "task_shapes",
    "recurrent_and_recursive",
    "folded_rnn",
    "unrolled_rnn",
    "stacked_rnn",
    "bidirectional_rnn",
    "bptt_backward",
    "truncated_bptt_windows",
    "lstm_cell",
    "gru_cell",
    "gru_reset_conventions",
    "colour_key",
]

#: What each colour means, in every diagram of the book.
COLORS = {
    "input": "#fff2cc",  # x_t, tokens
    "state": "#cfe2f3",  # h_t, c_t
    "gate": "#f4cccc",  # sigmoid gates
    "candidate": "#d9ead3",  # tanh candidates, outputs
    "loss": "#ead1dc",  # losses
    "path": "#1f4e79",  # the path a diagram is about (the cell path, the recurrence)
    "gradient": "#b45f06",  # gradients flowing backwards
    "reverse": "#741b47",  # the backward direction of a bidirectional RNN
    "muted": "0.72",  # the parts of a diagram already explained
}

#: CSS px per inch of figure: the site shows a diagram at its printed size.
PX_PER_INCH = 96
#: Width of the text column, in CSS px, when the page is 390 px wide (a phone);
#: measured by tests/browser/test_site.py, which fails if the site gets narrower.
PHONE_COLUMN_PX = 350
#: The size :func:`fontsize` gives text on a phone, in CSS px.
PHONE_TEXT_PX = 11
#: No text of a diagram may be smaller than this on a phone, in CSS px.
MIN_TEXT_PX = 10
#: The smallest font size :func:`fontsize` gives, in points, for narrow figures (13.3 CSS px).
MIN_FONTSIZE = 10
#: The widest a diagram may be, in inches (672 CSS px, the text column of a wide screen).
MAX_WIDTH = 7.0
#: The PNG text chunk in which :func:`png_bytes` records a diagram's width and smallest text.
PNG_KEY = "rnncourse:diagram"


def phone_px(size, width):
    """CSS px on a 390 px phone of text of ``size`` points in a figure ``width`` inches wide."""
    shown = min(1.0, PHONE_COLUMN_PX / (PX_PER_INCH * width))
    return size * PX_PER_INCH / 72 * shown


def fontsize(width):
    """The font size, in points, for text in a figure ``width`` inches wide (see the size rule above)."""
    if not width > 0:
        raise ValueError(f"width is {width!r} inches; expected a positive width")
    return max(MIN_FONTSIZE, PHONE_TEXT_PX / phone_px(1.0, width))


def diagram(xlim, ylim, width=5.5):
    """A new figure ``width`` inches wide, one hidden axes showing ``xlim`` x ``ylim`` at equal scales.

    The height follows from the limits: ``width * (y1 - y0) / (x1 - x0)``.
    Returns ``(fig, ax)``; draw on ``ax``, then :func:`show` the figure. The
    figure is not one of pyplot's: nothing shows it but :func:`show`.
    """
    (x0, x1), (y0, y1) = xlim, ylim
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"xlim {xlim} and ylim {ylim} must each go from low to high")
    if not 0 < width <= MAX_WIDTH:
        raise ValueError(f"width is {width!r} inches; expected a diagram at most MAX_WIDTH = {MAX_WIDTH} wide")
    fig = Figure(figsize=(width, width * (y1 - y0) / (x1 - x0)))
    FigureCanvasAgg(fig)  # drawn by Agg, whatever pyplot's backend: text sizes and extents can be measured
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _fontsize(ax, size):
    """The font size of text on ``ax``: ``size`` if given, else the rule's size for the figure's width."""
    return fontsize(ax.figure.get_figwidth()) if size is None else size


def em(ax, size=None):
    """The height of one line of text on ``ax``, in data units: for sizing boxes around labels."""
    width_in = ax.figure.get_figwidth()
    x0, x1 = ax.get_xlim()
    return _fontsize(ax, size) / 72 * (x1 - x0) / width_in


def _color(color):
    return COLORS.get(color, color)


def box(ax, xy, label, color, w=0.7, h=0.45, fontsize=None, edge="0.25", lw=1.0, text_color="black"):
    """A rounded box of width ``w`` and height ``h`` centred at ``xy``, with ``label`` in it.

    ``color`` is a key of :data:`COLORS` or any matplotlib colour.
    """
    ax.add_patch(
        FancyBboxPatch(
            (xy[0] - w / 2, xy[1] - h / 2), w, h, boxstyle="round,pad=0.03",
            fc=_color(color), ec=_color(edge), lw=lw, zorder=3,
        )
    )
    ax.text(*xy, label, ha="center", va="center", fontsize=_fontsize(ax, fontsize), color=_color(text_color),
            zorder=4)


def op(ax, xy, label, fontsize=None, radius=0.2, edge="0.25"):
    """An operator: a white circle centred at ``xy`` with ``label`` (``"$+$"``, ``r"$\\times$"``) in it."""
    ax.add_patch(Circle(xy, radius, fc="white", ec=_color(edge), lw=1, zorder=3))
    ax.text(*xy, label, ha="center", va="center", fontsize=_fontsize(ax, fontsize), color=_color(edge), zorder=4)


def wire(ax, points, color="0.2", lw=1.3, arrow=True, ls="-"):
    """A polyline through ``points``, with an arrow head at the last one unless ``arrow`` is False."""
    color = _color(color)
    xs, ys = zip(*points)
    ax.plot(xs[:-1] if arrow else xs, ys[:-1] if arrow else ys, color=color, lw=lw, ls=ls, zorder=1)
    if arrow:
        ax.annotate(
            "",
            points[-1],
            points[-2],
            zorder=2,
            arrowprops=dict(arrowstyle="-|>", color=color, lw=lw, ls=ls, shrinkA=0, shrinkB=0,
                            mutation_scale=4 + 6 * lw),
        )


def label(ax, xy, text, color="black", fontsize=None, ha="center", va="center", **kwargs):
    """A line (or lines) of ``text`` at ``xy``, in the rule's size unless ``fontsize`` is given."""
    return ax.text(*xy, text, ha=ha, va=va, color=_color(color), fontsize=_fontsize(ax, fontsize), zorder=4,
                   **kwargs)


def bracket(ax, x0, x1, y, text=None, color="0.3", depth=0.12, below=False, fontsize=None):
    """A square bracket from ``x0`` to ``x1`` at height ``y``, its ends pointing down (up if ``below``),
    with ``text`` centred beyond it."""
    sign = 1 if below else -1
    color = _color(color)
    ax.plot([x0, x0, x1, x1], [y + sign * depth, y, y, y + sign * depth], color=color, lw=1.2, zorder=2)
    if text:
        label(ax, ((x0 + x1) / 2, y - sign * 0.1), text, color=color, fontsize=fontsize,
              va="top" if below else "bottom")


def region(ax, x0, y0, x1, y1, color="#f3f3f3", edge="0.7", pad=0.05):
    """A shaded rounded rectangle from ``(x0, y0)`` to ``(x1, y1)``, behind everything else."""
    ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle=f"round,pad={pad}",
                                fc=_color(color), ec=_color(edge), lw=1, zorder=0))


def _state_path(ax, y, x_prev, x_times, x_plus, x_next):
    """The thick state path of ``h_t = a_t * h_{t-1} + b_t`` at height ``y``: the box ``h_{t-1}`` at
    ``x_prev``, a product at ``x_times``, a sum at ``x_plus`` and the box ``h_t`` at ``x_next``, joined edge
    to edge (the GRU, minGRU, LRU and selective SSM diagrams)."""
    box(ax, (x_prev, y), "$h_{t-1}$", "state")
    op(ax, (x_times, y), r"$\times$")
    op(ax, (x_plus, y), "$+$")
    box(ax, (x_next, y), "$h_t$", "state")
    wire(ax, [(x_prev + 0.35, y), (x_times - 0.2, y)], "path", 2.2)
    wire(ax, [(x_times + 0.2, y), (x_plus - 0.2, y)], "path", 2.2)
    wire(ax, [(x_plus + 0.2, y), (x_next - 0.35, y)], "path", 2.2)


# --- measuring and showing -----------------------------------------------------------------


def text_sizes(fig):
    """``[(text, points), ...]`` for every visible, non-empty text of ``fig`` (titles and labels too)."""
    found = []
    for artist in fig.findobj(Text):
        if artist.get_visible() and artist.get_text().strip():
            found.append((artist.get_text(), artist.get_fontsize()))
    return found


def check_text_size(fig):
    """The smallest text of ``fig`` in CSS px on a 390 px phone; ValueError if any is below MIN_TEXT_PX."""
    width = fig.get_figwidth()
    if width > MAX_WIDTH:
        raise ValueError(f"the figure is {width:g} inches wide; a diagram is at most MAX_WIDTH = {MAX_WIDTH}")
    sizes = text_sizes(fig)
    small = [(text, size) for text, size in sizes if phone_px(size, width) < MIN_TEXT_PX - 1e-9]
    if small:
        listed = "; ".join(f"{text!r} at {size:g} pt ({phone_px(size, width):.1f} px)" for text, size in small[:5])
        raise ValueError(
            f"text too small to read on a phone in a figure {width:g} inches wide: {listed}. "
            f"Text must be at least {MIN_TEXT_PX} CSS px at a 390 px page, "
            f"{MIN_TEXT_PX / phone_px(1.0, width):.1f} pt at this width: leave fontsize to the rule "
            "(drawing.fontsize) or make the figure narrower"
        )
    return min((phone_px(size, width) for _, size in sizes), default=math.inf)


def png_bytes(fig, scale=2):
    """``fig`` as PNG bytes at ``scale`` device pixels per CSS px (2: sharp on a phone's screen).

    The PNG records, in its text chunk :data:`PNG_KEY`, JSON with the
    diagram's width in CSS px (``width_px``) and its smallest text in CSS px
    at that width (``min_text_px``). Checks the text sizes first
    (:func:`check_text_size`).
    """
    check_text_size(fig)
    width = fig.get_figwidth()
    smallest = min((size for _, size in text_sizes(fig)), default=None)
    record = {
        "width_px": round(width * PX_PER_INCH),
        "min_text_px": None if smallest is None else round(smallest * PX_PER_INCH / 72, 2),
    }
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PX_PER_INCH * scale, facecolor="white",
                metadata={PNG_KEY: json.dumps(record)})
    return buffer.getvalue()


def show(fig):
    """Display ``fig`` in the notebook at its size in CSS px (see the size rule), sharp on phones.

    Raises ValueError, before showing anything, if a text of the figure is
    too small to read on a phone.
    """
    from IPython.display import Image, display

    data = png_bytes(fig)
    display(Image(data=data, width=round(fig.get_figwidth() * PX_PER_INCH)))


# --- the diagrams of part one ----------------------------------------------------------------
#
# One function per figure of chapters 1 to 5. Each returns a new figure; a chapter shows it with
# show(...). Coordinates are in each diagram's own units, chosen so that its labels fit at the
# rule's font size (about 33 characters across the whole width).


def delayed_recall(k=8, d=10, shown=13):
    """Chapter 1: a window of the last ``k`` bits, and the bit ``d`` steps back that it must recall."""
    bits = "1011001110100"[-shown:]
    fig, ax = diagram((-0.8, shown * 0.5 + 0.25), (-1.25, 1.3), width=5.2)
    now = shown - 1
    for j, bit in enumerate(bits):
        inside = j > now - k
        box(ax, (j * 0.5, 0), bit, "input" if inside else "white", w=0.4, h=0.45,
            edge="0.25" if inside else "0.6", text_color="black" if inside else "0.45")
    bracket(ax, (now - k + 1) * 0.5 - 0.22, now * 0.5 + 0.22, 0.42, f"the MLP's window: the last k = {k} bits")
    j = now - d
    ax.add_patch(Circle((j * 0.5, 0), 0.3, fc="none", ec=COLORS["gradient"], lw=2, zorder=5))
    label(ax, (j * 0.5, -0.45), f"the bit to recall,\nd = {d} steps back", color="gradient", va="top")
    label(ax, (now * 0.5, -0.45), "now", va="top")
    label(ax, (-0.45, 0), "…", ha="center")
    return fig


def _step(ax, x, y, below, middle, above, *, dx=1.15):
    """One time step of a task shape, drawn upwards from ``y``: input box, cell, output box (None: none)."""
    def word_box(xy, text, color):
        box(ax, xy, text, color, w=max(0.9, 0.2 + 0.16 * len(text)), h=0.45)

    box(ax, (x, y + 1.0), middle, "state", w=0.7, h=0.45)
    if below is not None:
        word_box((x, y), below, "input")
        wire(ax, [(x, y + 0.24), (x, y + 0.76)])
    if above is not None:
        word_box((x, y + 2.0), above, "candidate")
        wire(ax, [(x, y + 1.24), (x, y + 1.76)])


def _task(ax, x0, y0, inputs, outputs, title, recurrent=True, dx=1.15):
    for t, (below, above) in enumerate(zip(inputs, outputs)):
        _step(ax, x0 + t * dx, y0, below, "", above)
        if recurrent and t + 1 < len(inputs):
            wire(ax, [(x0 + t * dx + 0.36, y0 + 1.0), (x0 + (t + 1) * dx - 0.36, y0 + 1.0)], "path", 1.6)
    label(ax, (x0 + (len(inputs) - 1) * dx / 2, y0 + 2.4), title, va="bottom", linespacing=1.15)


def task_shapes():
    """Chapter 1: the shapes of sequence tasks, unrolled in time: inputs below, outputs above,
    the hidden state passed to the right."""
    fig, ax = diagram((-0.8, 6.65), (-0.35, 10.35), width=5.2)
    _task(ax, 0.0, 7.2, ["image"], ["cat"], "one-to-one:\nclassify", recurrent=False)
    _task(ax, 2.2, 7.2, ["image", None, None, None], ["a", "dog", "runs", "<end>"], "one-to-many:\ncaption an image")
    _task(ax, 0.0, 3.6, ["great", "movie", "!"], [None, None, "positive"], "many-to-one:\nsentiment")
    _task(ax, 3.8, 3.6, ["the", "cat", "sat"], ["DET", "NOUN", "VERB"], "many-to-many,\naligned: tagging")
    _task(ax, 0.0, 0.0, ["I", "like", "tea", None, None, None], [None, None, None, "j'aime", "le", "thé"],
          "many-to-many, unaligned: translation\n(an encoder reads, then a decoder writes)")
    return fig


def recurrent_and_recursive():
    """Chapter 1: one cell along a chain (recurrent) against one cell over a parse tree (recursive)."""
    fig, ax = diagram((-0.55, 8.55), (-0.45, 3.55), width=5.6)
    words = ["the", "cat", "sat", "down"]
    for t, word in enumerate(words):
        box(ax, (t, 0), word, "input", w=0.8, h=0.45)
        box(ax, (t, 1.2), f"$h_{t + 1}$", "state", w=0.7, h=0.45)
        wire(ax, [(t, 0.24), (t, 0.96)])
        if t:
            wire(ax, [(t - 0.64, 1.2), (t - 0.36, 1.2)], "path", 1.6)
    label(ax, (1.5, 2.2), "recurrent: one cell\nalong time", va="bottom")
    label(ax, (1.5, 1.7), "$h_t = f(x_t, h_{t-1})$", va="bottom")
    x0 = 5.0
    leaves = {word: (x0 + t, 0) for t, word in enumerate(words)}
    parents = {"the cat": (x0 + 0.5, 1.2), "sat down": (x0 + 2.5, 1.2), "all": (x0 + 1.5, 2.3)}
    for word, xy in leaves.items():
        box(ax, xy, word, "input", w=0.8, h=0.45)
    for xy in parents.values():
        box(ax, xy, "$f$", "candidate", w=0.6, h=0.45)
    edges = [("the", "the cat"), ("cat", "the cat"), ("sat", "sat down"), ("down", "sat down"),
             ("the cat", "all"), ("sat down", "all")]
    for child, parent in edges:
        (x1, y1), (x2, y2) = {**leaves, **parents}[child], parents[parent]
        wire(ax, [(x1 + 0.25 * (x2 - x1), y1 + 0.24), (x2 - 0.25 * (x2 - x1), y2 - 0.24)])
    label(ax, (x0 + 1.5, 2.65), "recursive: one cell\nover a parse tree", va="bottom")
    ax.plot([4.25, 4.25], [-0.4, 3.4], color="0.8", lw=1)
    return fig


def folded_rnn():
    """Chapter 2: the RNN folded, one cell and a loop through a one-step delay."""
    fig, ax = diagram((-1.3, 2.2), (-0.45, 2.85), width=2.6)
    box(ax, (0, 0), "$x_t$", "input")
    box(ax, (0, 1.2), "$h_t$", "state")
    box(ax, (0, 2.4), "$s_t$", "candidate")
    wire(ax, [(0, 0.24), (0, 0.96)])
    wire(ax, [(0, 1.44), (0, 2.16)])
    label(ax, (-0.2, 0.6), "$W_x$", ha="right")
    label(ax, (-0.2, 1.8), r"$W_{\mathrm{out}}$", ha="right")
    wire(ax, [(0.36, 1.3), (0.85, 1.3), (0.85, 1.75), (1.35, 1.75), (1.35, 0.65), (0.85, 0.65), (0.85, 1.1),
              (0.37, 1.1)], "path", 1.6)
    label(ax, (1.5, 1.2), "$W_h$", color="path", ha="left")
    label(ax, (1.12, 0.35), "delay", color="path", va="top")
    return fig


def unrolled_rnn(steps=4):
    """Chapter 2: the RNN unrolled over ``steps`` steps: the same W_x, W_h, W_out at every step,
    a loss L_t on each output."""
    dx = 1.45
    fig, ax = diagram((-0.55, dx * steps + 1.0), (-0.45, 3.85), width=5.2)
    box(ax, (0, 1.2), "$h_0$", "state", w=0.62)
    for t in range(1, steps + 1):
        x = dx * t
        box(ax, (x, 0), f"$x_{t}$", "input", w=0.62)
        box(ax, (x, 1.2), f"$h_{t}$", "state", w=0.62)
        box(ax, (x, 2.4), f"$s_{t}$", "candidate", w=0.62)
        box(ax, (x, 3.45), f"$L_{t}$", "loss", w=0.62, h=0.42)
        wire(ax, [(x, 0.24), (x, 0.96)])
        wire(ax, [(x, 1.44), (x, 2.16)])
        wire(ax, [(x, 2.64), (x, 3.22)])
        wire(ax, [(x - dx + 0.33, 1.2), (x - 0.33, 1.2)], "path", 1.6)
        label(ax, ((x - dx / 2), 1.38), "$W_h$", color="path", va="bottom")
        if t == 1:
            label(ax, (x - 0.12, 0.6), "$W_x$", ha="right")
            label(ax, (x - 0.12, 1.8), r"$W_{\mathrm{out}}$", ha="right")
    label(ax, (dx * steps + 0.62, 1.2), r"$\cdots$")
    return fig


def stacked_rnn(layers=2, steps=3):
    """Chapter 2: a stacked (deep) RNN: each layer reads the states of the layer below."""
    dx, dy = 1.6, 1.2
    fig, ax = diagram((-1.75, dx * steps + 0.8), (-0.45, dy * layers + 1.45), width=4.6)
    for layer in range(1, layers + 1):
        y = dy * layer
        box(ax, (0, y), f"$h^{{({layer})}}_0$", "state", w=0.72, h=0.5)
        label(ax, (-0.5, y), f"layer {layer}", ha="right")
    label(ax, (-0.5, 0), "input", ha="right")
    for t in range(1, steps + 1):
        x = dx * t
        box(ax, (x, 0), f"$x_{t}$", "input", w=0.72, h=0.5)
        for layer in range(1, layers + 1):
            y = dy * layer
            box(ax, (x, y), f"$h^{{({layer})}}_{t}$", "state", w=0.72, h=0.5)
            wire(ax, [(x, y - dy + 0.27), (x, y - 0.27)])
            wire(ax, [(x - dx + 0.38, y), (x - 0.38, y)], "path", 1.6)
        wire(ax, [(x, dy * layers + 0.27), (x, dy * layers + 0.75)])
    label(ax, (dx * 2, dy * layers + 0.95), "outputs: the top layer's states", va="bottom")
    return fig


def bidirectional_rnn(steps=4):
    """Chapter 2: a bidirectional RNN: a forward and a backward RNN, their states concatenated."""
    dx = 1.35
    fig, ax = diagram((-1.95, dx * steps + 0.25), (-0.4, 3.75), width=5.0)
    fwd, bwd = r"\overrightarrow{h}", r"\overleftarrow{h}"
    label(ax, (-0.2, 0), "input", ha="right")
    label(ax, (-0.2, 1.1), "forward", ha="right", color="path")
    label(ax, (-0.2, 2.1), "backward", ha="right", color="reverse")
    label(ax, (-0.2, 3.25), "output", ha="right")
    for t in range(1, steps + 1):
        x = dx * t - 0.55
        xf, xb = x - 0.25, x + 0.25
        box(ax, (x, 0), f"$x_{t}$", "input", w=0.95)
        box(ax, (xf, 1.1), f"${fwd}_{t}$", "state", w=0.44, h=0.5)
        box(ax, (xb, 2.1), f"${bwd}_{t}$", "state", w=0.44, h=0.5)
        box(ax, (x, 3.25), f"$[{fwd}_{t}, {bwd}_{t}]$", "candidate", w=1.15, h=0.55)
        wire(ax, [(xf, 0.24), (xf, 0.83)])
        wire(ax, [(xb, 0.24), (xb, 1.83)])
        wire(ax, [(xf, 1.37), (xf, 2.95)])
        wire(ax, [(xb, 2.37), (xb, 2.95)])
        if t < steps:
            wire(ax, [(xf + 0.24, 1.1), (xf + dx - 0.24, 1.1)], "path", 1.6)
            wire(ax, [(xb + dx - 0.24, 2.1), (xb + 0.24, 2.1)], "reverse", 1.6)
    return fig


def bptt_backward(steps=4):
    """Chapter 3: backpropagation through time on the unrolled graph. The forward graph in grey; the
    gradient (orange) enters at every loss and flows back along the chain through W_h^T; every step
    adds its share to the gradient of the shared W_h."""
    dx = 1.5
    fig, ax = diagram((-0.6, dx * steps + 0.9), (-1.55, 2.0), width=5.4)
    grey = "muted"
    y_h, y_l = 0.0, 1.5
    box(ax, (0, y_h), "$h_0$", "state", w=0.62, edge=grey)
    for t in range(1, steps + 1):
        x = dx * t
        box(ax, (x, y_h), f"$h_{t}$", "state", w=0.62)
        box(ax, (x, y_l), f"$L_{t}$", "loss", w=0.62, h=0.42)
        wire(ax, [(x - 0.1, y_h + 0.24), (x - 0.1, y_l - 0.22)], grey)
        wire(ax, [(x - dx + 0.33, y_h + 0.08), (x - 0.33, y_h + 0.08)], grey)
        # backwards: the local gradient g_t down from the loss, and the chain from step t + 1
        wire(ax, [(x + 0.1, y_l - 0.22), (x + 0.1, y_h + 0.24)], "gradient", 1.8)
        label(ax, (x + 0.17, (y_h + y_l) / 2), f"$g_{t}$", color="gradient", ha="left")
        wire(ax, [(x - 0.33, y_h - 0.1), (x - dx + 0.33, y_h - 0.1)], "gradient", 1.8)
        label(ax, (x - dx / 2, y_h - 0.2), r"$W_h^\top$", color="gradient", va="top")
        wire(ax, [(x, y_h - 0.25), (x, -0.88)], "gradient", 1.0, ls="--")
        label(ax, (x + 0.08, -0.6), f"$da_{t}$", color="gradient", ha="left")
    box(ax, (dx * steps / 2, -1.18), r"$\partial L / \partial W_h = \sum_t\, h_{t-1}^\top\, da_t$", "white",
        w=dx * steps + 0.6, h=0.55, edge="gradient", text_color="gradient")
    return fig


def truncated_bptt_windows(T=12, k=4, every_step=(6, 7, 8)):
    """Chapter 3: truncated BPTT over ``T`` steps. Top: BPTT(k, k), chunks of ``k`` steps, the state
    carried across chunk boundaries and the gradient cut there. Bottom: BPTT(1, k), an update at every
    step, each looking ``k`` steps back (those at the steps ``every_step`` drawn)."""
    dx = 0.5
    fig, ax = diagram((-0.05, dx * T + 0.75), (-3.85, 1.25), width=5.6)

    def states(y, numbers):
        for t in range(1, T + 1):
            ax.add_patch(Circle((dx * t, y), 0.13, fc=COLORS["state"], ec="0.25", lw=1, zorder=3))
            if t > 1:
                wire(ax, [(dx * (t - 1) + 0.13, y), (dx * t - 0.13, y)], "path", 1.2)
        if numbers:
            label(ax, (dx * 1, y + 0.2), "1", va="bottom", color="0.35")
            label(ax, (dx * T, y + 0.2), f"{T}", va="bottom", color="0.35")

    y = 0.3
    label(ax, (dx * (T + 1) / 2, y + 0.45), f"BPTT(k, k), k = {k}: one update per chunk", va="bottom")
    for start in range(0, T, k):
        region(ax, dx * (start + 1) - 0.2, y - 0.3, dx * (start + k) + 0.2, y + 0.3, color="#fce5cd",
               edge="gradient", pad=0.02)
        wire(ax, [(dx * (start + k), y - 0.55), (dx * (start + 1), y - 0.55)], "gradient", 1.6)
        if start:
            ax.plot([dx * (start + 0.5)] * 2, [y - 0.75, y - 0.35], color=COLORS["gradient"], lw=2.6, zorder=5)
    states(y, numbers=False)
    label(ax, (dx * (k + 0.5), y - 0.85), "state carried on, gradient cut", color="gradient", va="top")
    y = -2.0
    label(ax, (dx * (T + 1) / 2, y + 0.5), "BPTT(1, k): an update at every step", va="bottom")
    states(y, numbers=True)
    for row, t_end in enumerate(every_step):
        yy = y - 0.45 - 0.38 * row
        wire(ax, [(dx * t_end, yy), (dx * (t_end - k + 1) - 0.1, yy)], "gradient", 1.6)
        label(ax, (dx * t_end + 0.12, yy), f"step {t_end}", color="gradient", ha="left")
    label(ax, (dx * (T + 1) / 2, y - 0.35 - 0.38 * len(every_step)), f"each looking k = {k} steps back",
          color="gradient", va="top")
    return fig


# The LSTM cell, built up in four stages, one gate at a time, in the order of history: 1 the cell path
# and the candidate (a memory that only accumulates), 2 the input gate, 3 the output gate (with 2, the
# cell of 1997), 4 the forget gate (Gers et al. 2000): today's cell. Parts added at a stage are drawn
# in the path colour.
_LSTM_STAGES = {
    1: "1. the cell path: $c_t = c_{t-1} + g_t$",
    2: r"2. the input gate: $c_t = c_{t-1} + i_t \odot g_t$",
    3: r"3. the output gate: $h_t = o_t \odot \tanh(c_t)$",
    4: r"4. the forget gate: $c_t = f_t \odot c_{t-1} + \ldots$",
}


def lstm_cell(stage=4):
    """Chapter 4: one LSTM step, built up gate by gate. ``stage`` 1: the additive cell path and the
    candidate g_t; 2: + the input gate i_t; 3: + the output gate o_t (the cell of 1997); 4: + the
    forget gate f_t (the whole cell of today)."""
    if stage not in _LSTM_STAGES:
        raise ValueError(f"stage is {stage!r}; expected 1, 2, 3 or 4")
    fig, ax = diagram((-0.95, 7.95), (-1.45, 4.75), width=5.6)
    Y_C, Y_G, Y_BUS = 3.2, 1.1, 0.2
    x_f, x_i, x_g, x_o, x_add, x_h = 1.25, 2.25, 3.3, 4.55, 2.8, 5.75
    G_I, G_O, G_F = 2, 3, 4  # the stage at which each gate arrives

    def edge(s):
        return "path" if s == stage else "0.25"

    def lw(s):
        return 2.2 if s == stage else 1.0

    region(ax, 0.4, -0.45, 6.6, 3.95)
    box(ax, (-0.38, Y_C), "$c_{t-1}$", "state")
    box(ax, (7.38, Y_C), "$c_t$", "state")
    if stage >= G_F:
        op(ax, (x_f, Y_C), r"$\times$", edge=edge(G_F))
        wire(ax, [(-0.03, Y_C), (x_f - 0.2, Y_C)], "path", 2.2)
        wire(ax, [(x_f + 0.2, Y_C), (x_add - 0.2, Y_C)], "path", 2.2)
    else:
        wire(ax, [(-0.03, Y_C), (x_add - 0.2, Y_C)], "path", 2.2)
    op(ax, (x_add, Y_C), "$+$", edge=edge(1))
    wire(ax, [(x_add + 0.2, Y_C), (7.03, Y_C)], "path", 2.2)
    label(ax, (4.3, Y_C + 0.28), r"cell path: $\odot f_t$ and $+$" if stage >= G_F else "cell path: only $+$",
          color="path", va="bottom")
    blocks = [(x_g, r"$\tanh$", "candidate", "$g_t$", 1), (x_i, r"$\sigma$", "gate", "$i_t$", G_I),
              (x_o, r"$\sigma$", "gate", "$o_t$", G_O), (x_f, r"$\sigma$", "gate", "$f_t$", G_F)]
    for x, text, color, name, s in blocks:
        if s > stage:
            continue
        box(ax, (x, Y_G), text, color, w=0.8, edge=edge(s), lw=lw(s))
        wire(ax, [(x, Y_BUS), (x, Y_G - 0.23)])
        label(ax, (x + 0.08, Y_G + 0.5), name, ha="left", color=edge(s))
    if stage >= G_F:
        wire(ax, [(x_f, Y_G + 0.23), (x_f, Y_C - 0.2)], edge(G_F), lw(G_F) + 0.3)
    if stage >= G_I:
        op(ax, (x_add, 2.15), r"$\times$", edge=edge(G_I))
        wire(ax, [(x_i, Y_G + 0.23), (x_i, 2.15), (x_add - 0.2, 2.15)], edge(G_I), lw(G_I) + 0.3)
        wire(ax, [(x_g, Y_G + 0.23), (x_g, 2.15), (x_add + 0.2, 2.15)])
        wire(ax, [(x_add, 2.35), (x_add, Y_C - 0.2)])
    else:
        wire(ax, [(x_g, Y_G + 0.23), (x_g, 2.15), (x_add, 2.15), (x_add, Y_C - 0.2)])
    box(ax, (x_h, 2.3), r"$\tanh$", "candidate", w=0.8)
    wire(ax, [(x_h, Y_C), (x_h, 2.53)])
    if stage >= G_O:
        op(ax, (x_h, Y_G), r"$\times$", edge=edge(G_O))
        wire(ax, [(x_h, 2.07), (x_h, Y_G + 0.2)])
        wire(ax, [(x_o + 0.4, Y_G), (x_h - 0.2, Y_G)], edge(G_O), lw(G_O) + 0.3)
        wire(ax, [(x_h + 0.2, Y_G), (7.03, Y_G)])
    else:
        wire(ax, [(x_h, 2.07), (x_h, Y_G), (7.03, Y_G)])
    bus_end = max(x for x, *_, s in blocks if s <= stage)
    box(ax, (7.38, Y_G), "$h_t$", "state")
    box(ax, (-0.38, Y_BUS), "$h_{t-1}$", "state")
    box(ax, (0.95, -1.0), "$x_t$", "input")
    wire(ax, [(-0.03, Y_BUS), (bus_end, Y_BUS)], arrow=False)
    wire(ax, [(0.95, -0.77), (0.95, Y_BUS)], arrow=False)
    label(ax, (4.1, -0.75), "each block: $x_t W_x + h_{t-1} W_h + b$", va="center")
    label(ax, (3.5, 4.7), _LSTM_STAGES[stage], va="top")
    return fig


def gru_cell():
    """Chapter 5: one GRU step in PyTorch's convention (the reset gate acts after the product)."""
    fig, ax = diagram((-1.25, 7.45), (-1.45, 4.35), width=5.6)
    Y_H, Y_BUS = 3.2, 0.0
    x_z, x_r, x_n = 1.5, 2.6, 3.8
    region(ax, 0.1, -0.45, 6.0, 3.95)
    _state_path(ax, Y_H, -0.65, x_z, x_n, 6.85)
    label(ax, (2.7, Y_H + 0.3), r"state path: $\odot z_t$ and $+$", color="path", va="bottom")
    box(ax, (x_z, 1.1), r"$\sigma$", "gate", w=0.66)
    label(ax, (x_z - 0.4, 1.1), "$z_t$", ha="right")
    box(ax, (x_r, 0.75), r"$\sigma$", "gate", w=0.66)
    label(ax, (x_r, 1.05), "$r_t$", va="bottom")
    op(ax, (x_n, 0.75), r"$\times$")
    box(ax, (x_n, 1.7), r"$\tanh$", "candidate", w=0.8)
    label(ax, (x_n + 0.45, 1.98), "$n_t$", ha="left")
    wire(ax, [(x_r + 0.33, 0.75), (x_n - 0.2, 0.75)])
    wire(ax, [(x_n, Y_BUS), (x_n, 0.55)])
    label(ax, (x_n + 0.1, 0.3), "$h_{t-1} W_{hn}$", ha="left")
    wire(ax, [(5.35, Y_BUS), (5.35, 1.7), (x_n + 0.4, 1.7)])
    label(ax, (5.45, 1.2), "$x_t W_{xn}$", ha="left")
    wire(ax, [(x_n, 0.95), (x_n, 1.47)])
    wire(ax, [(x_z, Y_BUS), (x_z, 0.87)])
    wire(ax, [(x_r, Y_BUS), (x_r, 0.52)])
    wire(ax, [(x_z, 1.33), (x_z, Y_H - 0.2)])
    op(ax, (2.6, 2.45), "$1-$", radius=0.3)
    wire(ax, [(x_z, 2.45), (2.3, 2.45)])
    op(ax, (x_n, 2.45), r"$\times$")
    wire(ax, [(2.9, 2.45), (x_n - 0.2, 2.45)])
    wire(ax, [(x_n, 1.93), (x_n, 2.25)])
    wire(ax, [(x_n, 2.65), (x_n, Y_H - 0.2)])
    wire(ax, [(0.45, Y_H), (0.45, Y_BUS), (5.35, Y_BUS)], arrow=False)
    box(ax, (0.95, -1.0), "$x_t$", "input")
    wire(ax, [(0.95, -0.77), (0.95, Y_BUS)], arrow=False)
    label(ax, (3.6, -0.95), "(biases left out)", va="center", color="0.35")
    return fig


def gru_reset_conventions():
    """Chapter 5: where the reset gate acts in the GRU's candidate n_t. Left, PyTorch and cuDNN: after
    the product, on h_{t-1} W_hn + b_hn. Right, Cho et al. (2014): before it, on h_{t-1}."""
    fig, ax = diagram((-0.45, 7.35), (-0.35, 5.2), width=5.2)
    panels = ((1.75, "reset after (PyTorch)", True, r"$\cdot W_{hn} + b_{hn}$", r"$x_t W_{xn} + b_{xn}$"),
              (5.45, "reset before (Cho et al.)", False, r"$\cdot W_{hn}$", r"$x_t W_{xn} + b_{n}$"))
    for x0, title, after, product, input_term in panels:
        label(ax, (x0, 5.15), title, va="top")
        box(ax, (x0, 0.1), "$h_{t-1}$", "state", w=0.9)
        y = 0.1
        for kind in (("product", "reset") if after else ("reset", "product")):
            wire(ax, [(x0, y + 0.25), (x0, y + 0.75)])
            y += 1.0
            if kind == "product":
                box(ax, (x0, y), product, "white", w=1.9, h=0.5)
            else:
                op(ax, (x0, y), r"$\times$")
                label(ax, (x0 + 0.3, y), "$r_t$", ha="left", color="0.2")
        wire(ax, [(x0, y + 0.25), (x0, 2.9)])
        op(ax, (x0, 3.1), "$+$")
        label(ax, (x0 - 0.3, 3.1), input_term, ha="right")
        wire(ax, [(x0, 3.3), (x0, 3.85)])
        box(ax, (x0, 4.1), r"$\tanh$", "candidate", w=0.9)
        label(ax, (x0 + 0.55, 4.45), "$n_t$", ha="left")
    ax.plot([3.6, 3.6], [-0.3, 5.1], color="0.8", lw=1)
    return fig


def colour_key():
    """The notation page: what each colour of the diagrams stands for."""
    fig, ax = diagram((-0.1, 7.4), (-0.35, 3.15), width=5.4)
    boxes = [("input", "$x_t$", "an input"), ("state", "$h_t$, $c_t$", "a state"), ("gate", r"$\sigma$", "a gate"),
             ("candidate", r"$\tanh$", "a candidate, an output"), ("loss", "$L_t$", "a loss")]
    for k, (color, text, meaning) in enumerate(boxes):
        y = 2.8 - 0.7 * k
        box(ax, (0.5, y), text, color, w=0.95, h=0.46)
        label(ax, (1.1, y), meaning, ha="left")
    lines = [("path", "the recurrence,", "the cell path"), ("gradient", "a gradient,", "flowing back"),
             ("reverse", "an RNN reading", "right to left")]
    for k, (color, first, second) in enumerate(lines):
        y = 2.65 - 1.05 * k
        wire(ax, [(4.05, y), (4.95, y)], color, 2.0)
        label(ax, (5.1, y), f"{first}\n{second}", ha="left", linespacing=1.1)
    return fig


# --- chapters 6 and 7: encoder-decoder, beam search, CTC, dropout masks, streams, padding -------------
#
# Each function below draws one diagram, from the data it is given (the chapter computes, the diagram
# shows), on an Axes whose data unit is one inch of the figure: a label's box is as wide as the label
# measures at its font size, and when the Axes is alone in its figure the figure is sized to the
# diagram. A chapter draws one on the Axes of a new diagram(...) (whose limits and size it replaces) and
# shows the figure with show(...), which checks the size rule. At the default font size (13 points) and
# at most 6.3 inches wide, the smallest text is still 10 CSS px on a 390 px phone (see phone_px).


__all__ += ["label_width", "encoder_decoder", "beam_search_tree", "ctc_lattice", "mask_grid", "stream_chunks",
            "padded_batch"]


def label_width(label, fontsize=13):
    """The width of ``label`` in inches at ``fontsize`` points (``$...$`` is typeset as mathematics)."""
    math = label.count("$") >= 2
    width, _, _ = TextToPath().get_text_width_height_descent(label, FontProperties(size=fontsize), ismath=math)
    return width / 72


def _frame(ax, xlim, ylim):
    """Limits in inches, equal aspect, no axis; a figure holding only this Axes takes the diagram's size."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    if len(ax.figure.axes) == 1:
        ax.figure.set_size_inches(xlim[1] - xlim[0], ylim[1] - ylim[0])
        ax.set_position([0, 0, 1, 1])


def _white_box(ax, xy, label, w, h, fontsize):
    box(ax, xy, label, "path", w=w, h=h, fontsize=fontsize, text_color="white")


def encoder_decoder(ax, source, target, *, weights=None, step=None, fontsize=13):
    """An encoder-decoder unrolled in time: above without attention, below with attention.

    In both, the encoder (left) reads the source tokens into states ``h_1 .. h_S``, and the decoder
    (right) reads the previous output token into its state ``s_t`` and writes the next token.
    Above, one vector ``c = h_S`` feeds every decoder step: the bottleneck. Below, decoder step
    ``step`` gets its own context ``c_t``, the sum of *all* encoder states weighted by
    ``weights`` (the width of each line), computed with the previous decoder state as the query.

    Parameters
    ----------
    ax : the Axes to draw on.
    source : list of S str, the source tokens.
    target : list of str, the output tokens (``EOS`` is added after them, ``BOS`` before the inputs).
    weights : (S,) attention weights of decoder step ``step``, summing to 1; default most weight on
        the source position proportionally aligned with ``step``.
    step : int in [1, T], the decoder step whose context is drawn; default the middle one.
    fontsize : the size of every label.
    """
    S, T = len(source), len(target) + 1
    outputs, inputs = list(target) + ["EOS"], ["BOS"] + list(target)
    step = max(1, T // 2) if step is None else step
    if weights is None:
        aligned = min(S - 1, round((step - 1) * (S - 1) / max(T - 1, 1)))
        weights = [0.7 if j == aligned else 0.3 / max(S - 1, 1) for j in range(S)]
    pad, h, gap = 0.12, 0.34, 0.12
    state_w = max(label_width(f"$h_{S}$", fontsize), label_width(f"$s_{T}$", fontsize)) + pad
    src_w = [max(label_width(t, fontsize) + pad, state_w) for t in source]
    dec_w = [max(label_width(a, fontsize), label_width(b, fontsize)) + pad for a, b in zip(inputs, outputs)]
    dec_w = [max(w, state_w) for w in dec_w]
    xs_src = np.cumsum([0] + [(a + b) / 2 + gap for a, b in zip(src_w, src_w[1:])])
    c_w = label_width(f"$c_{step}$", fontsize) + pad
    # The context c_t sits in the gap before decoder column `step`: that gap is wider.
    dec_gaps = [c_w + 0.16 if t + 1 == step - 1 else gap for t in range(T - 1)]
    x_dec0 = xs_src[-1] + src_w[-1] / 2 + 0.75 + dec_w[0] / 2
    xs_dec = x_dec0 + np.cumsum([0] + [(a + b) / 2 + g for a, b, g in zip(dec_w, dec_w[1:], dec_gaps)])
    path = COLORS["path"]

    def panel(y0, attention):
        y_in, y_state, y_bus, y_out = y0, y0 + 0.8, y0 + 1.25, y0 + 1.7
        for j, (x, token) in enumerate(zip(xs_src, source)):
            box(ax, (x, y_in), token, COLORS["input"], w=src_w[j], h=h, fontsize=fontsize)
            box(ax, (x, y_state), f"$h_{j + 1}$", COLORS["state"], w=state_w, h=h, fontsize=fontsize)
            wire(ax, [(x, y_in + h / 2), (x, y_state - h / 2)])
            if j:
                wire(ax, [(xs_src[j - 1] + state_w / 2, y_state), (x - state_w / 2, y_state)])
        for t, x in enumerate(xs_dec):
            box(ax, (x, y_in), inputs[t], COLORS["input"], w=dec_w[t], h=h, fontsize=fontsize)
            box(ax, (x, y_state), f"$s_{t + 1}$", COLORS["state"], w=state_w, h=h, fontsize=fontsize)
            box(ax, (x, y_out), outputs[t], COLORS["candidate"], w=dec_w[t], h=h, fontsize=fontsize)
            wire(ax, [(x, y_in + h / 2), (x, y_state - h / 2)])
            wire(ax, [(x, y_state + h / 2), (x, y_out - h / 2)])
            if t:
                wire(ax, [(xs_dec[t - 1] + state_w / 2, y_state), (x - state_w / 2, y_state)])
        if not attention:
            xc = (xs_src[-1] + src_w[-1] / 2 + xs_dec[0] - dec_w[0] / 2) / 2
            _white_box(ax, (xc, y_bus), "$c$", 0.3, h, fontsize)
            wire(ax, [(xs_src[-1] + state_w / 2, y_state + 0.05), (xc - 0.15, y_bus - 0.1)], path, 2)
            wire(ax, [(xc + 0.15, y_bus), (xs_dec[-1] - state_w / 2 - 0.05, y_bus)], path, 1.5, arrow=False)
            for x in xs_dec:
                wire(ax, [(x - state_w / 2 - 0.05, y_bus), (x - state_w / 2 + 0.03, y_state + h / 2)], path, 1.5)
            ax.text(xc, y_bus + 0.3, "$c = h_S$", ha="center", fontsize=fontsize, color=path)
            return y_out + h / 2 + 0.1
        y_sum, x_sum = y_out + 0.35, xs_src[-1] / 2
        op(ax, (x_sum, y_sum), r"$\Sigma$", fontsize=fontsize, radius=0.17)
        for j, (x, a) in enumerate(zip(xs_src, weights)):
            wire(ax, [(x, y_state + h / 2), (x_sum + 0.15 * (j - (S - 1) / 2) / max(S, 1), y_sum - 0.17)], path,
                 0.5 + 7 * float(a), arrow=False)
            # the weight under its state, right of the input's wire: away from every line to the sum
            ax.text(x + 0.04, y_state - h / 2 - 0.03, f"{float(a):.2f}", ha="left", va="top", fontsize=fontsize,
                    color=path)
        x_t = xs_dec[step - 1]
        xc = x_t - dec_w[step - 1] / 2 - dec_gaps[step - 2] / 2 if step > 1 else x_t - dec_w[0] / 2 - 0.3
        _white_box(ax, (xc, y_bus), f"$c_{step}$", c_w, h, fontsize)
        wire(ax, [(x_sum + 0.17, y_sum), (xc, y_sum), (xc, y_bus + h / 2)], path, 2)
        wire(ax, [(xc + c_w / 2, y_bus - 0.08), (x_t - state_w / 2 + 0.02, y_state + h / 2)], path, 1.5)
        wire(ax, [(xc + c_w / 2, y_bus + 0.08), (x_t - dec_w[step - 1] / 2 + 0.02, y_out - h / 2)], path, 1.5)
        ax.text(x_sum - 0.25, y_sum, r"weights $\alpha_{%d j}$" % step, ha="right", va="center",
                fontsize=fontsize, color=path)
        if step > 1:
            xq = xs_dec[step - 2] - state_w / 2 - 0.05
            ax.plot([xq, xq, x_sum], [y_state, y_sum + 0.35, y_sum + 0.35], color="0.45", ls="--", lw=1.2, zorder=1)
            wire(ax, [(x_sum, y_sum + 0.35), (x_sum, y_sum + 0.17)], "0.45", 1.2)
            wire(ax, [(xq + 0.06, y_state), (xq + 0.01, y_state)], "0.45", 1.2, arrow=False)
            ax.text(xq - 0.05, y_sum + 0.42, f"query $s_{step - 1}$", ha="right", va="bottom", fontsize=fontsize,
                    color="0.35")
            return y_sum + 0.75
        return y_sum + 0.3

    top_low = panel(0.0, attention=True)
    ax.text(xs_src[-1] / 2, -0.45, "encoder", ha="center", fontsize=fontsize)
    ax.text((xs_dec[0] + xs_dec[-1]) / 2, -0.45, "decoder", ha="center", fontsize=fontsize)
    y_top = top_low + 0.75
    ax.text(xs_src[0] - src_w[0] / 2, y_top - 0.25, "with attention: a context $c_t$ for each step", va="center",
            fontsize=fontsize)
    top = panel(y_top + 0.35, attention=False)
    ax.text(xs_src[0] - src_w[0] / 2, top + 0.2, "without attention: one vector for the whole source",
            va="center", fontsize=fontsize)
    _frame(ax, (xs_src[0] - src_w[0] / 2 - 0.05, xs_dec[-1] + dec_w[-1] / 2 + 0.05), (-0.65, top + 0.45))


def beam_search_tree(ax, steps, token_label=str, *, fontsize=13):
    """The candidates of a beam search, step by step: alive ones blue, finished green, pruned grey.

    Each box shows a candidate's token and its score (the summed log-probability of its hypothesis);
    a line joins it to the hypothesis it extends. The best hypothesis's path is drawn bold.

    Parameters
    ----------
    ax : the Axes to draw on.
    steps : what :func:`rnncourse.torch.seq2seq.beam_search_trace` returns as its steps: one list per
        step of candidate dicts with ``token``, ``score``, ``parent`` (index among the previous
        step's alive candidates), ``status`` (``"alive"``, ``"finished"``, ``"pruned"``) and ``best``.
    token_label : function from a token to the text shown for it.
    fontsize : size of the labels.
    """
    labels = [[f"{token_label(c['token'])} {c['score']:.1f}" for c in candidates] for candidates in steps]
    w = max(label_width(t, fontsize) for row in labels for t in row) + 0.14
    w0 = label_width("BOS", fontsize) + 0.14
    dx, dy, h = w + 0.35, 0.45, 0.34
    rows = max(len(candidates) for candidates in steps)
    x0 = w0 / 2 + 0.35 - dx
    box(ax, (0.0, 0.0), "BOS", COLORS["input"], w=w0, h=h, fontsize=fontsize)
    parents = [(0.0, 0.0)]
    for s, candidates in enumerate(steps):
        alive = []
        for i, c in enumerate(candidates):
            xy = (x0 + (s + 1) * dx + w / 2, -i * dy)
            px, py = parents[c["parent"]]
            if c["best"]:
                color, lw = COLORS["path"], 2.4
            else:
                color, lw = ("0.3", 1.1) if c["status"] != "pruned" else ("0.75", 0.9)
            wire(ax, [(px + (w0 if s == 0 else w) / 2, py), (xy[0] - w / 2 - 0.02, xy[1])], color, lw)
            fill = {"alive": COLORS["state"], "finished": COLORS["candidate"], "pruned": "#f2f2f2"}[c["status"]]
            box(ax, xy, labels[s][i], fill, w=w, h=h, fontsize=fontsize)
            if c["status"] == "pruned":
                ax.texts[-1].set_color("0.5")
            if c["status"] == "alive":
                alive.append(xy)
        parents = alive
    _frame(ax, (-w0 / 2 - 0.05, x0 + len(steps) * dx + w + 0.05), (-(rows - 1) * dy - h / 2 - 0.05, h / 2 + 0.05))


def ctc_lattice(ax, target, n_frames, *, paths=(), log_alpha=None, blank="–", fontsize=13):
    """The CTC lattice of a target over ``n_frames`` frames: states, allowed moves and some paths.

    The rows are the target with a blank before, between and after its labels (``2L + 1`` states);
    the columns are the frames. A path moves right one frame at a time, staying in its row, going
    down one row, or skipping a blank between two *different* labels. It starts in one of the two
    top rows and ends in one of the two bottom rows. States no path can pass through are left out.

    Parameters
    ----------
    ax : the Axes to draw on.
    target : sequence of L labels (str or int).
    n_frames : T.
    paths : sequences of T state indices (rows, from 0) to draw on the lattice, the first one bold.
    log_alpha : (T, 2L + 1) array of the forward variables (natural log), optional: each state is
        shaded by its share of its frame's total, ``exp(log_alpha)`` over their sum.
    blank : the label of the blank rows.
    fontsize : size of the labels.
    """
    labels = [blank]
    for label in target:
        labels += [str(label), blank]
    R, T = len(labels), n_frames
    dx, dy, radius = 0.55, 0.42, 0.1

    def reachable(t, r):
        # from the start (rows 0, 1) in t moves, and to the end (rows) in T-1-t moves
        return r <= 2 * t + 1 and R - 2 - r <= 2 * (T - 1 - t)

    def moves(r):
        out = [r, r + 1]
        if r + 2 < R and labels[r + 2] != blank and labels[r + 2] != labels[r]:
            out.append(r + 2)
        return [m for m in out if m < R]

    for t in range(T - 1):
        for r in range(R):
            if reachable(t, r):
                for m in moves(r):
                    if reachable(t + 1, m):
                        ax.add_patch(FancyArrowPatch((t * dx, -r * dy), ((t + 1) * dx, -m * dy), arrowstyle="-|>",
                                                     mutation_scale=8, color="0.7", lw=0.8, shrinkA=8, shrinkB=8,
                                                     zorder=1))
    for i, path in enumerate(paths):
        ax.plot([t * dx for t in range(T)], [-r * dy for r in path], color=COLORS["path"] if i == 0 else "C1",
                lw=3 if i == 0 else 1.5, alpha=1.0 if i == 0 else 0.6, zorder=2)
    for t in range(T):
        share = None
        if log_alpha is not None:
            col = np.exp(np.asarray(log_alpha[t], dtype=float) - np.max(log_alpha[t]))
            share = col / col.sum()
        for r in range(R):
            if reachable(t, r):
                fc = "white" if share is None else (1 - 0.8 * share[r], 1 - 0.6 * share[r], 1 - 0.3 * share[r])
                ax.add_patch(Circle((t * dx, -r * dy), radius, fc=fc, ec="0.3", lw=1, zorder=3))
        ax.text(t * dx, 0.3, f"{t + 1}", ha="center", fontsize=fontsize)
    for r, label in enumerate(labels):
        ax.text(-0.3, -r * dy, label, ha="right", va="center", fontsize=fontsize)
    ax.text((T - 1) * dx / 2, 0.62, "frame", ha="center", fontsize=fontsize)
    _frame(ax, (-0.65, (T - 1) * dx + 0.25), (-(R - 1) * dy - 0.25, 0.9))


def mask_grid(ax, keep, *, title=None, fontsize=13):
    """A dropout mask as a grid: one row per unit, one column per time step, dropped cells dark.

    Unlike the other diagrams, this one is an image: the caller sizes the figure.

    Parameters
    ----------
    ax : the Axes to draw on.
    keep : (units, steps) array of booleans or 0/1, True/1 where the unit is kept.
    title : optional title above the grid.
    fontsize : size of the labels.
    """
    keep = np.asarray(keep, dtype=float)
    units, steps = keep.shape
    ax.imshow(1 - keep, cmap="Greys", vmin=0, vmax=1.25, aspect="equal", interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, steps, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, units, 1), minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="both", length=0, labelsize=fontsize)
    ax.set_xticks([0, steps - 1], ["1", str(steps)])
    ax.set_yticks([])
    ax.set_xlabel("time step", fontsize=fontsize)
    ax.set_ylabel("unit", fontsize=fontsize)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=fontsize)


def stream_chunks(ax, n_streams, n_chunks, *, fontsize=13):
    """One long text cut into ``n_streams`` rows, each row into ``n_chunks`` chunks; a column is a batch.

    Rows are the parallel streams of :func:`rnncourse.torch.data.batchify_stream`, columns the
    batches of :func:`rnncourse.torch.data.tbptt_chunks`, numbered in the order of the text. The state
    carried from one chunk to the next, with the gradient cut there, is the arrow between them.
    """
    w, h, gap, dy = label_width(str(n_streams * n_chunks), fontsize) + 0.5, 0.34, 0.3, 0.48
    for n in range(n_streams):
        for j in range(n_chunks):
            x = j * (w + gap)
            box(ax, (x, -n * dy), f"{n * n_chunks + j + 1}", COLORS["input"], w=w, h=h, fontsize=fontsize)
            if j:
                wire(ax, [(x - w / 2 - gap + 0.02, -n * dy), (x - w / 2 - 0.02, -n * dy)], COLORS["path"], 1.8)
        ax.text(-w / 2 - 0.1, -n * dy, f"stream {n + 1}", ha="right", va="center", fontsize=fontsize)
    for j in range(n_chunks):
        ax.text(j * (w + gap), 0.3, f"batch {j + 1}", ha="center", fontsize=fontsize)
    label = label_width(f"stream {n_streams}", fontsize)
    ax.text(-w / 2 - 0.1 - label, -(n_streams - 1) * dy - 0.42, "arrows: the state goes on, the gradient stops",
            va="center", fontsize=fontsize, color=COLORS["path"])
    _frame(ax, (-w / 2 - 0.15 - label, (n_chunks - 1) * (w + gap) + w / 2 + 0.05), (-(n_streams - 1) * dy - 0.62, 0.55))


def padded_batch(ax, lengths, *, fontsize=13):
    """A right-padded batch: real steps, padding, each sequence's own last step and the one ``out[:, -1]`` reads.

    Parameters
    ----------
    ax : the Axes to draw on.
    lengths : the length of each sequence; the batch is as long as the longest.
    fontsize : size of the labels.
    """
    T, size, step, dy = max(lengths), 0.26, 0.32, 0.38
    for n, length in enumerate(lengths):
        for t in range(T):
            last = t == length - 1
            ax.add_patch(FancyBboxPatch((t * step - size / 2, -n * dy - size / 2), size, size,
                                        boxstyle="round,pad=0.01", fc=COLORS["input"] if t < length else "#eeeeee",
                                        ec=COLORS["path"] if last else "0.6", lw=2.5 if last else 0.8, zorder=2))
        ax.text(-0.25, -n * dy, f"length {length}", ha="right", va="center", fontsize=fontsize)
    x_last, bottom = (T - 1) * step, -(len(lengths) - 1) * dy
    ax.add_patch(FancyBboxPatch((x_last - 0.19, bottom - 0.19), 0.38, -bottom + 0.38, boxstyle="round,pad=0.01",
                                fc="none", ec="C3", lw=2, ls="--", zorder=3))
    ax.text(x_last, 0.3, "out[:, -1]", ha="center", color="C3", fontsize=fontsize)
    ax.text(-0.25 - label_width("length 00", fontsize), bottom - 0.42, "bold: each sequence's own last step",
            ha="left", va="center", color=COLORS["path"], fontsize=fontsize)
    _frame(ax, (-0.3 - label_width("length 00", fontsize), x_last + 0.25), (bottom - 0.6, 0.5))


# --- the diagrams of part three ---------------------------------------------------------------
#
# Chapters 8 and 9, one function per figure, as for part one.

__all__ += [
    "compose_steps",
    "scan_rounds",
    "backward_recurrence",
    "min_gru_cell",
    "newton_solve",
    "lru_cell",
    "selective_ssm_step",
    "linear_attention_memory",
]


def compose_steps():
    """Chapter 8: two affine steps in a row are one affine step, ``(a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2)``."""
    fig, ax = diagram((-0.6, 7.35), (-1.75, 1.5), width=5.6)
    for x, name in ((0.0, "$h_0$"), (3.2, "$h_1$"), (6.4, "$h_2$")):
        box(ax, (x, 0.6), name, "state", w=0.64)
    for x0, a, b in ((0.0, "a_1", "b_1"), (3.2, "a_2", "b_2")):
        wire(ax, [(x0 + 0.34, 0.6), (x0 + 2.86, 0.6)], "path", 1.6)
        label(ax, (x0 + 1.6, 0.72), rf"$\times {a},\ + {b}$", color="path", va="bottom")
    box(ax, (0.0, -1.05), "$h_0$", "state", w=0.64)
    box(ax, (6.4, -1.05), "$h_2$", "state", w=0.64)
    wire(ax, [(0.34, -1.05), (6.06, -1.05)], "path", 2.2)
    label(ax, (3.2, -0.93), r"$\times a_1 a_2,\ + (a_2 b_1 + b_2)$", color="path", va="bottom")
    label(ax, (3.2, -0.05), "the same map in one step:", color="0.3")
    return fig


def _scan_rounds(T, method):
    """``[(label, [(source, target), ...]), ...]``: the rounds of a scan over positions 1..T (T a power of 2)."""
    rounds = []
    if method == "hillis_steele":
        k = 1
        while k < T:
            rounds.append((f"round: combine\n{k} back", [(t - k, t) for t in range(k + 1, T + 1)]))
            k *= 2
    else:
        d = 1
        while d < T:
            rounds.append(("up", [(t - d, t) for t in range(2 * d, T + 1, 2 * d)]))
            d *= 2
        d = T // 4
        while d >= 1:
            rounds.append(("down", [(t - d, t) for t in range(3 * d, T + 1, 2 * d)]))
            d //= 2
    return rounds


def scan_rounds(T=8, method="hillis_steele"):
    """Chapter 8: the rounds of a scan over T = 8 steps. Each box holds the composition of the steps
    ``i:j``; an arrow combines the box it leaves into the box it enters, all arrows of a row at once.
    ``method`` is ``"hillis_steele"`` or ``"blelloch"`` (its up-sweep and down-sweep)."""
    check_choice("method", method, ("hillis_steele", "blelloch"))
    rounds = _scan_rounds(T, method)
    dx, dy = 0.62, 0.9
    fig, ax = diagram((-1.55, dx * (T - 1) + 0.4), (-dy * len(rounds) - 0.45, 0.75), width=5.0)
    start = {t: t for t in range(1, T + 1)}  # box t holds steps start[t]..t
    for t in range(1, T + 1):
        box(ax, (dx * (t - 1), 0), f"{t}", "input", w=0.52, h=0.42)
    label(ax, (-0.5, 0), "step", ha="right")
    for r, (name, pairs) in enumerate(rounds, 1):
        y = -dy * r
        targets = {target for _, target in pairs}
        new_start = dict(start)
        for source, target in pairs:
            new_start[target] = start[source]
        for t in range(1, T + 1):
            changed = t in targets
            text = f"{new_start[t]}:{t}" if new_start[t] != t else f"{t}"
            box(ax, (dx * (t - 1), y), text, "state" if changed else "white", w=0.56, h=0.42,
                edge="0.25" if changed else "0.75", text_color="black" if changed else "0.6",
                fontsize=fontsize(5.0) * 0.95)
        for source, target in pairs:
            wire(ax, [(dx * (source - 1), y + dy - 0.22), (dx * (target - 1), y + 0.22)], "path", 1.0)
        start = new_start
        label(ax, (-0.5, y), name.split("\n")[0] if method == "blelloch" else f"{r}", ha="right",
              color="path")
    return fig


def backward_recurrence(steps=4):
    """Chapter 8: the gradient of a linear recurrence runs the same recurrence backwards: ``g_t = dh_t +
    a_{t+1} g_{t+1}``, then ``da_t = g_t h_{t-1}``, ``db_t = g_t``."""
    dx = 1.45
    fig, ax = diagram((-0.55, dx * steps + 0.75), (-1.55, 1.25), width=5.4)
    box(ax, (0, 0.6), "$h_0$", "state", w=0.62, edge="muted")
    for t in range(1, steps + 1):
        x = dx * t
        box(ax, (x, 0.6), f"$h_{t}$", "state", w=0.62)
        wire(ax, [(x - dx + 0.33, 0.6), (x - 0.33, 0.6)], "muted")
        label(ax, (x - dx / 2, 0.72), f"$a_{t}$", color="0.45", va="bottom")
        box(ax, (x, -0.8), f"$g_{t}$", "white", w=0.62, edge="gradient", text_color="gradient")
        wire(ax, [(x, 0.36), (x, -0.56)], "gradient", 1.0, ls="--")
        label(ax, (x + 0.06, -0.1), f"$dh_{t}$", color="gradient", ha="left")
        if t < steps:
            wire(ax, [(x + dx - 0.33, -0.8), (x + 0.33, -0.8)], "gradient", 1.8)
            label(ax, (x + dx / 2, -0.92), f"$a_{t + 1}$", color="gradient", va="top")
    label(ax, (dx * 1.5 + 0.2, -1.45), "the same recurrence, right to left", color="gradient", va="bottom")
    return fig


def min_gru_cell():
    """Chapter 8: one minGRU step. The gate and the candidate see only ``x_t``; the state path is
    ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``, linear in ``h``."""
    fig, ax = diagram((-1.25, 6.6), (-1.45, 3.85), width=5.4)
    Y_H, Y_BUS = 2.9, -0.2
    x_z, x_h, x_mix = 1.5, 3.3, 3.3
    region(ax, 0.2, -0.55, 5.2, 3.5)
    _state_path(ax, Y_H, -0.65, x_z, x_mix, 6.0)
    label(ax, (2.4, Y_H + 0.28), "linear in $h$", color="path", va="bottom")
    box(ax, (x_z, 0.6), r"$\sigma$", "gate", w=0.66)
    label(ax, (x_z - 0.42, 0.6), "$z_t$", ha="right")
    box(ax, (x_h + 1.0, 0.6), "$g$", "candidate", w=0.66)
    label(ax, (x_h + 1.42, 0.6), r"$\tilde h_t$", ha="left")
    op(ax, (x_z, 1.75), "$1-$", radius=0.3)
    wire(ax, [(x_z, 0.83), (x_z, 1.45)])
    wire(ax, [(x_z, 2.05), (x_z, Y_H - 0.2)])
    op(ax, (x_mix, 1.75), r"$\times$")
    wire(ax, [(x_z + 0.33, 0.6), (2.5, 0.6), (2.5, 1.75), (x_mix - 0.2, 1.75)])
    wire(ax, [(x_h + 1.0, 0.83), (x_h + 1.0, 1.75), (x_mix + 0.2, 1.75)])
    wire(ax, [(x_mix, 1.95), (x_mix, Y_H - 0.2)])
    wire(ax, [(x_z, Y_BUS), (x_z, 0.37)])
    wire(ax, [(x_h + 1.0, Y_BUS), (x_h + 1.0, 0.37)])
    wire(ax, [(0.7, Y_BUS), (x_h + 1.0, Y_BUS)], arrow=False)
    box(ax, (0.7, -0.95), "$x_t$", "input")
    wire(ax, [(0.7, -0.72), (0.7, Y_BUS)], arrow=False)
    label(ax, (2.5, -0.95), "no $h_{t-1}$ in a gate", color="0.35", ha="left")
    return fig


def newton_solve():
    """Chapter 8: Newton's method for the whole sequence of a tanh RNN: residual, linearise, one scan."""
    fig, ax = diagram((-0.1, 7.1), (-2.35, 1.05), width=5.6)
    box(ax, (0.8, 0.2), "guess\n$h^{(k)}_{1..T}$", "state", w=1.5, h=1.0)
    box(ax, (2.95, 0.2), "residual\n$F_t(h^{(k)})$", "white", w=1.6, h=1.0)
    box(ax, (5.65, 0.2), "one scan:\n$\\delta_t = \\delta_{t-1} J_t - F_t$", "candidate", w=2.5, h=1.0)
    wire(ax, [(1.58, 0.2), (2.12, 0.2)])
    wire(ax, [(3.78, 0.2), (4.37, 0.2)])
    wire(ax, [(5.65, -0.33), (5.65, -1.4), (0.8, -1.4), (0.8, -0.33)], "path", 1.6)
    label(ax, (3.2, -1.28), r"$h^{(k+1)} = h^{(k)} + \delta$", color="path", va="bottom")
    label(ax, (3.5, -2.25), r"$J_t = W_h\, \mathrm{diag}(1 - \tanh^2 a_t)$, at the guess", va="bottom", color="0.3")
    return fig


def lru_cell():
    """Chapter 9: one step of the LRU: a complex diagonal recurrence between a real input and output."""
    fig, ax = diagram((-1.0, 7.0), (-1.4, 2.85), width=5.6)
    Y = 1.6
    _state_path(ax, Y, -0.45, 1.1, 2.6, 4.1)
    label(ax, (1.1, Y + 0.3), r"$\lambda \in \mathbb{C}^H$", color="path", va="bottom")
    label(ax, (2.6, Y + 0.3), "elementwise", color="path", va="bottom")
    box(ax, (0.9, -0.95), "$x_t$", "input")
    box(ax, (2.6, 0.2), r"$\gamma \odot (x_t B)$", "gate", w=1.6)
    wire(ax, [(0.9, -0.72), (0.9, -0.3), (2.6, -0.3), (2.6, -0.03)])
    wire(ax, [(2.6, 0.43), (2.6, Y - 0.2)])
    box(ax, (5.9, Y), r"$\mathrm{Re}(h_t C)$", "candidate", w=1.5)
    wire(ax, [(4.45, Y), (5.15, Y)])
    op(ax, (5.9, 0.2), "$+$")
    wire(ax, [(5.9, Y - 0.23), (5.9, 0.4)])
    wire(ax, [(0.9, -0.3), (0.9, -0.3), (4.6, -0.3), (4.6, 0.2), (5.7, 0.2)])
    label(ax, (4.7, -0.05), "skip", va="top", ha="left", color="0.35")
    box(ax, (5.9, -0.95), "$y_t$", "candidate")
    wire(ax, [(5.9, 0.0), (5.9, -0.72)])
    return fig


def selective_ssm_step():
    """Chapter 9: one step of the selective SSM (S6) for one channel d: the input sets the step
    ``delta_t`` and the vectors ``B_t``, ``C_t``; the state is decayed by ``exp(delta_t A)`` and written."""
    fig, ax = diagram((-1.1, 6.9), (-1.5, 3.05), width=5.6)
    Y = 2.1
    _state_path(ax, Y, -0.5, 1.3, 3.1, 4.5)
    label(ax, (1.3, Y + 0.28), r"$e^{\Delta_t A}$", color="path", va="bottom")
    label(ax, (3.1, Y + 0.28), r"$\Delta_t B_t\, x_t$", color="path", va="bottom")
    box(ax, (1.3, 0.45), r"$\Delta_t$", "gate", w=0.8)
    box(ax, (3.1, 0.45), "$B_t$", "gate", w=0.8)
    box(ax, (5.9, 0.45), "$C_t$", "gate", w=0.8)
    wire(ax, [(1.3, 0.68), (1.3, Y - 0.2)])
    wire(ax, [(3.1, 0.68), (3.1, Y - 0.2)])
    op(ax, (5.9, Y), r"$\cdot$")
    wire(ax, [(4.85, Y), (5.7, Y)])
    wire(ax, [(5.9, 0.68), (5.9, Y - 0.2)])
    label(ax, (5.9, Y + 0.28), "$y_t$", va="bottom")
    wire(ax, [(0.4, -0.3), (5.9, -0.3)], arrow=False)
    for x in (1.3, 3.1, 5.9):
        wire(ax, [(x, -0.3), (x, 0.22)])
    box(ax, (0.4, -1.05), "$x_t$", "input")
    wire(ax, [(0.4, -0.82), (0.4, -0.3)], arrow=False)
    label(ax, (3.6, -1.05), "all three from the input", color="0.35", ha="center")
    return fig


def linear_attention_memory():
    """Chapter 9: linear attention as an RNN: write ``phi(k_t)^T v_t`` into a matrix memory ``S``,
    read it with ``phi(q_t)``."""
    fig, ax = diagram((-0.9, 7.1), (-0.75, 2.95), width=5.6)
    Y = 1.6
    box(ax, (-0.3, Y), "$S_{t-1}$", "state", w=0.9, h=0.9)
    op(ax, (1.8, Y), "$+$")
    box(ax, (3.9, Y), "$S_t$", "state", w=0.9, h=0.9)
    wire(ax, [(0.15, Y), (1.6, Y)], "path", 2.2)
    wire(ax, [(2.0, Y), (3.45, Y)], "path", 2.2)
    label(ax, (0.85, Y + 0.15), "$F \\times E$", color="path", va="bottom")
    box(ax, (1.8, 0.1), r"$\phi(k_t)^\top v_t$", "gate", w=1.5)
    label(ax, (1.8, -0.35), "write: an outer product", va="top", color="0.35")
    wire(ax, [(1.8, 0.33), (1.8, Y - 0.2)])
    op(ax, (5.6, Y), r"$\cdot$")
    wire(ax, [(4.35, Y), (5.4, Y)])
    box(ax, (5.6, 0.1), r"$\phi(q_t)$", "gate", w=1.0)
    wire(ax, [(5.6, 0.33), (5.6, Y - 0.2)])
    label(ax, (5.6, -0.35), "read", va="top", color="0.35")
    box(ax, (5.6, 2.65), r"$\mathrm{out}_t$", "candidate", w=1.0)
    wire(ax, [(5.6, Y + 0.2), (5.6, 2.42)])
    return fig
