"""rnncourse.drawing: the shapes every diagram of the book is drawn from."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, FancyBboxPatch  # noqa: E402

from rnncourse.drawing import COLORS, box, op, wire  # noqa: E402


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
