"""The book's diagrams, drawn with matplotlib from a few shapes.

A diagram is an ``Axes`` in data coordinates with the axis hidden, on which a
chapter places

- :func:`box`: a rounded box with a label (a state, an input, a layer, a gate);
- :func:`op`: a small circle with an operator in it (``+``, ``×``, ``1 -``);
- :func:`wire`: a polyline through points, with an arrow head at the last one.

The colours name what a box holds, the same in every chapter
(:data:`COLORS`). Every diagram of the book is drawn from these, so that a
change of style is made here once.
"""

from matplotlib.patches import Circle, FancyBboxPatch

__all__ = ["COLORS", "box", "op", "wire"]

#: What each colour means, in every diagram of the book.
COLORS = {
    "input": "#fff2cc",  # x_t, tokens
    "state": "#cfe2f3",  # h_t, c_t
    "gate": "#f4cccc",  # sigmoid gates
    "candidate": "#d9ead3",  # tanh candidates, outputs
    "path": "#1f4e79",  # the path a diagram is about (the cell path, the recurrence)
}


def box(ax, xy, label, color, w=0.7, h=0.45, fontsize=11):
    """A rounded box of width ``w`` and height ``h`` centred at ``xy``, with ``label`` in it."""
    ax.add_patch(
        FancyBboxPatch(
            (xy[0] - w / 2, xy[1] - h / 2), w, h, boxstyle="round,pad=0.03", fc=color, ec="0.25", lw=1, zorder=3
        )
    )
    ax.text(*xy, label, ha="center", va="center", fontsize=fontsize, zorder=4)


def op(ax, xy, label, fontsize=12, radius=0.2):
    """An operator: a white circle centred at ``xy`` with ``label`` (``"$+$"``, ``r"$\\times$"``) in it."""
    ax.add_patch(Circle(xy, radius, fc="white", ec="0.25", lw=1, zorder=3))
    ax.text(*xy, label, ha="center", va="center", fontsize=fontsize, zorder=4)


def wire(ax, points, color="0.2", lw=1.3, arrow=True):
    """A polyline through ``points``, with an arrow head at the last one unless ``arrow`` is False."""
    xs, ys = zip(*points)
    ax.plot(xs[:-1] if arrow else xs, ys[:-1] if arrow else ys, color=color, lw=lw, zorder=1)
    if arrow:
        ax.annotate(
            "",
            points[-1],
            points[-2],
            zorder=2,
            arrowprops=dict(arrowstyle="-|>", color=color, lw=lw, shrinkA=0, shrinkB=0),
        )
