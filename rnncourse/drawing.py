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



# --- chapters 6 and 7: encoder-decoder, beam search, CTC, dropout masks, streams, padding -------------
#
# Each function below draws one diagram, from the data it is given (the chapter computes, the diagram
# shows), on an Axes whose data unit is one inch of the figure: a label's box is as wide as the label
# measures at its font size, and when the Axes is alone in its figure the figure is sized to the
# diagram. At the default font size (13 points) and at most 6 inches wide, the smallest text is still
# 10 CSS pixels when a phone (390 px) shows the figure at its full width (see smallest_text_px).

import numpy as np  # noqa: E402  (this hunk's own imports)
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.textpath import TextToPath  # noqa: E402

__all__ += ["PHONE_COLUMN_PX", "smallest_text_px", "label_width", "encoder_decoder", "beam_search_tree",
            "ctc_lattice", "mask_grid", "stream_chunks", "padded_batch"]

#: Width in CSS pixels of the book's text column in a 390 px wide viewport (the page's padding taken
#: off). A figure wider than this is scaled down to it.
PHONE_COLUMN_PX = 358


def smallest_text_px(fig, column_px=PHONE_COLUMN_PX):
    """The smallest text of ``fig`` in CSS pixels when the page shows it at most ``column_px`` wide.

    The notebooks save a figure at ``fig.dpi`` (matplotlib's default, 100) with
    ``bbox_inches="tight"``, so the image is as wide as what is drawn; the page scales it down to its
    text column when it is wider. A font of ``s`` points is ``s * dpi / 72`` image pixels, times that
    scale.
    """
    fig.canvas.draw()
    width_px = fig.get_tightbbox(fig.canvas.get_renderer()).width * fig.dpi
    scale = min(1.0, column_px / width_px)
    sizes = [t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize"))
             if t.get_text().strip() and t.get_visible()]
    return min(sizes) * fig.dpi / 72 * scale


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
    box(ax, xy, label, COLORS["path"], w=w, h=h, fontsize=fontsize)
    ax.texts[-1].set_color("white")


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
