"""Checks of assignment 05, the GRU: step and sequence, forward and backward (the trusted side).

The learner writes the twins of :func:`rnncourse.numpy.gru_step_forward`,
:func:`~rnncourse.numpy.gru_forward`, :func:`~rnncourse.numpy.gru_step_backward`
and :func:`~rnncourse.numpy.gru_backward` (how they are called, and the
caches' layout: :mod:`rnncourse.checks.calls.gru`; the backward checks get
the reference's cache) in PyTorch's convention only (the
reference's default ``reset_after=True``, which the learner's functions do
not take): gates stacked ``r, z, n``, the reset gate applied *after* the
hidden matrix product, ``n = tanh(x Wxn + bxn + r * (h Whn + bhn))``, and
``h' = (1 - z) * n + z * h``.

Visible forward cases switch on one term at a time (only the input, only the
recurrence, only the biases) and saturate the update gate so that the state
must be kept; the known mistakes are the other conventions of the literature
(the opposite weighting of the update gate, the reset gate before the
product as in Cho et al. 2014) and their slips (``b_hn`` outside the reset
gate's product, ``r`` and ``z`` swapped). The hidden cases take their truth
from ``torch.nn.GRU`` / ``torch.nn.GRUCell`` in float64 when PyTorch is
installed (imported only then, inside the reference), and from
:mod:`rnncourse.numpy` otherwise.
"""

import numpy as np

from rnncourse.numpy import gru_backward, gru_forward, gru_step_backward, gru_step_forward, sigmoid

from ._core import Case, Mistake, changed_outputs, nonzero_bias
from ._recurrent import (
    DWH_OF_THE_WRONG_STATE,
    LOOP_RUNS_FORWARDS,
    OFF_BY_ONE_IN_TIME,
    hidden_cases,
    previous_states,
    recurrent_check,
    sequence_backward_inputs,
    shifted_states,
    step_backward_inputs,
    transposed_gate_blocks,
    with_dnext,
)
from .calls.gru import SEQUENCE_CACHE, STEP_CACHE


GATES = "rzn"


# --- inputs ---------------------------------------------------------------------------


def _params(rng, D, H, dtype=np.float64, *, biases=True, update_bias=None):
    """Random weights and non-zero biases; ``biases=False``: both biases zero (drawn all the same).

    ``update_bias``: the z block of ``bx`` set to this value and that of ``bh`` to 0.
    """
    p = {
        "Wx": (0.6 * rng.standard_normal((D, 3 * H))).astype(dtype),
        "Wh": (0.6 * rng.standard_normal((H, 3 * H))).astype(dtype),
        "bx": nonzero_bias(rng, 3 * H, dtype),
        "bh": nonzero_bias(rng, 3 * H, dtype),
    }
    if not biases:
        p["bx"], p["bh"] = np.zeros(3 * H, dtype), np.zeros(3 * H, dtype)
    if update_bias is not None:
        p["bx"][H : 2 * H], p["bh"][H : 2 * H] = update_bias, 0
    return p


def _step_inputs(rng, N, D, H, dtype=np.float64, *, x=True, prev_h=True, biases=True, update_bias=None):
    """Inputs of one step; a term switched off is zero (its weights stay random); biases: see :func:`_params`."""
    p = _params(rng, D, H, dtype, biases=biases, update_bias=update_bias)
    xs = rng.standard_normal((N, D)) if x else np.zeros((N, D))
    hs = rng.uniform(-1, 1, (N, H)) if prev_h else np.zeros((N, H))
    return {"x": xs.astype(dtype), "prev_h": hs.astype(dtype), **p}


def _seq_inputs(rng, N, T, D, H, dtype=np.float64, *, x=True, biases=True, update_bias=None):
    p = _params(rng, D, H, dtype, biases=biases, update_bias=update_bias)
    xs = rng.standard_normal((N, T, D)) if x else np.zeros((N, T, D))
    return {"x": xs.astype(dtype), "h0": rng.uniform(-1, 1, (N, H)).astype(dtype), **p}


# --- the GRU written out, with the mistakes a learner makes ---------------------------


def _step(x, prev_h, Wx, Wh, bx, bh, *, weighting="torch", reset="after", bhn="inside", order=GATES,
          Wh_blocks_transposed=False):  # fmt: skip
    """``next_h`` of one step and what its backward needs, with one of the mistakes a learner makes.

    weighting="swapped": h' = z * n + (1 - z) * h; reset="before": Cho et al.'s
    n = tanh(x Wxn + bxn + (r * h) Whn + bhn); bhn="outside": b_hn added
    outside the reset gate's product, "dropped": not added at all;
    order="zrn": the first two blocks read the other way round.
    """
    H = prev_h.shape[1]
    if Wh_blocks_transposed:
        Wh = transposed_gate_blocks(Wh)
    ax, ah = x @ Wx + bx, prev_h @ Wh + bh
    ax_r, ax_z, ax_n = np.split(ax, 3, axis=1)
    ah_r, ah_z, ah_n = np.split(ah, 3, axis=1)
    if order == "zrn":
        ax_r, ax_z, ah_r, ah_z = ax_z, ax_r, ah_z, ah_r
    r, z = sigmoid(ax_r + ah_r), sigmoid(ax_z + ah_z)
    b_hn = bh[2 * H :]
    if reset == "before":
        n = np.tanh(ax_n + (r * prev_h) @ Wh[:, 2 * H :] + b_hn)
    elif bhn == "outside":
        n = np.tanh(ax_n + b_hn + r * (ah_n - b_hn))
    elif bhn == "dropped":
        n = np.tanh(ax_n + r * (ah_n - b_hn))
    else:
        n = np.tanh(ax_n + r * ah_n)
    next_h = z * n + (1 - z) * prev_h if weighting == "swapped" else (1 - z) * n + z * prev_h
    return next_h, (r, z, n, ah_n)


def _step_h(i, **mistake):
    return {"next_h": _step(i["x"], i["prev_h"], i["Wx"], i["Wh"], i["bx"], i["bh"], **mistake)[0]}


def _cell_backward(x, prev_h, Wx, Wh, bx, bh, dnext_h, *, direct=True, r_on_hidden_n=True, dz_sign=1.0,
                   bhn_in_dr=True, dbh_is_dbx=False, dWh_from_next_h=False):  # fmt: skip
    """The six gradients of one step, with one of the mistakes a learner makes.

    direct=False: dprev_h misses dnext_h * z; r_on_hidden_n=False: the hidden
    side's n block gets da_n instead of da_n * r; dz_sign=-1: dz with
    (n - prev_h); bhn_in_dr=False: da_r uses prev_h Whn without b_hn;
    dbh_is_dbx: dbh copied from dbx; dWh_from_next_h: dWh multiplies the
    state after the step instead of prev_h.
    """
    H = prev_h.shape[1]
    next_h, (r, z, n, ah_n) = _step(x, prev_h, Wx, Wh, bx, bh)
    da_n = dnext_h * (1 - z) * (1 - n**2)
    da_z = dz_sign * dnext_h * (prev_h - n) * z * (1 - z)
    da_r = da_n * (ah_n if bhn_in_dr else ah_n - bh[2 * H :]) * r * (1 - r)
    dax = np.concatenate([da_r, da_z, da_n], axis=1)
    dah = np.concatenate([da_r, da_z, da_n * r if r_on_hidden_n else da_n], axis=1)
    return {
        "dx": dax @ Wx.T,
        "dprev_h": dah @ Wh.T + (dnext_h * z if direct else 0),
        "dWx": x.T @ dax,
        "dWh": (next_h if dWh_from_next_h else prev_h).T @ dah,
        "dbx": dax.sum(axis=0),
        "dbh": dax.sum(axis=0) if dbh_is_dbx else dah.sum(axis=0),
    }


def _step_grads(i, **mistake):
    return _cell_backward(i["x"], i["prev_h"], i["Wx"], i["Wh"], i["bx"], i["bh"], i["dnext_h"], **mistake)


def _sequence(x, h0, Wx, Wh, bx, bh, *, carry=True, **mistake):
    """The states ``h (N, T, H)`` over a sequence, with a mistake of :func:`_step` or no carried state."""
    h, prev_h = np.zeros(x.shape[:2] + h0.shape[1:]), h0
    for t in range(x.shape[1]):
        h[:, t] = _step(x[:, t], prev_h if carry else h0, Wx, Wh, bx, bh, **mistake)[0]
        prev_h = h[:, t]
    return h


def _bptt(i, *, carry=True, forwards=False, dWh_state="previous", direct=True):
    """Backpropagation through time with one deliberate mistake, to recognise it in a learner's gradients.

    carry=False: no gradient from step t+1; forwards: the loop runs
    t = 0..T-1; dWh_state="current": dWh multiplies h_t instead of h_{t-1};
    direct=False: the carried gradient misses the direct path dh_t * z_t.
    """
    x, h0, Wx, Wh, bx, bh, dh = i["x"], i["h0"], i["Wx"], i["Wh"], i["bx"], i["bh"], i["dh"]
    T = x.shape[1]
    h = _sequence(x, h0, Wx, Wh, bx, bh)
    prev = previous_states(h0, h)
    grads = {"dx": np.zeros_like(x), "dWx": np.zeros_like(Wx), "dWh": np.zeros_like(Wh),
             "dbx": np.zeros_like(bx), "dbh": np.zeros_like(bh)}  # fmt: skip
    carried = np.zeros_like(h0)
    for t in range(T) if forwards else reversed(range(T)):
        g = _cell_backward(x[:, t], prev[:, t], Wx, Wh, bx, bh, dh[:, t] + (carried if carry else 0),
                           direct=direct, dWh_from_next_h=dWh_state == "current")  # fmt: skip
        grads["dx"][:, t] = g["dx"]
        for k in ("dWx", "dWh", "dbx", "dbh"):
            grads[k] += g[k]
        carried = g["dprev_h"]
    return {**grads, "dh0": carried}




# --- gru_step_forward -----------------------------------------------------------------


GRU_STEP_FORWARD = recurrent_check(
    gru_step_forward, torch_kind="GRU",
    visible=(
        Case(
            "input_only",
            "only the input term (prev_h = 0, bx = bh = 0)",
            "Check the input side x Wx, (N, D) @ (D, 3H), split into the blocks r, z, n, and the last line: "
            "with prev_h = 0, next_h = (1 - z) * n.",
            lambda rng: _step_inputs(rng, 2, 3, 4, prev_h=False, biases=False),
        ),
        Case(
            "recurrence_only",
            "only the recurrent term (x = 0, bx = bh = 0)",
            "Check the hidden side prev_h Wh, (N, H) @ (H, 3H), and where r acts: n = tanh(r * (prev_h Whn)) here, "
            "the reset gate multiplies the product.",
            lambda rng: _step_inputs(rng, 2, 3, 4, x=False, biases=False),
        ),
        Case(
            "bias_only",
            "only the biases are non-zero (x = 0, prev_h = 0)",
            "Check the biases: here n = tanh(bxn + r * bhn), b_hn inside the reset gate's product, "
            "and next_h = (1 - z) * n.",
            lambda rng: _step_inputs(rng, 2, 3, 4, x=False, prev_h=False),
        ),
        Case(
            "keep_state",
            "update gate saturated (z block of bx = 10, so z = 1)",
            "With z = 1 the state is kept: next_h = (1 - z) * n + z * prev_h must be prev_h.",
            lambda rng: _step_inputs(rng, 2, 3, 4, update_bias=10.0),
        ),
        Case(
            "all_terms",
            "all the terms together",
            "Each term alone is right; check how they combine: r and z from x Wx + bx + prev_h Wh + bh, "
            "n = tanh(x Wxn + bxn + r * (prev_h Whn + bhn)), next_h = (1 - z) * n + z * prev_h.",
            lambda rng: _step_inputs(rng, 2, 3, 4),
        ),
    ),
    hidden=lambda rng: hidden_cases(rng, _step_inputs, from_torch=True, N=(1, 5), D=(1, 6), H=(1, 6)),
    mistakes=(
        Mistake(
            "The update gate weighs the other way round: in PyTorch's convention next_h = (1 - z) * n + z * prev_h "
            "(z = 1 keeps the old state), not z * n + (1 - z) * prev_h.",
            changed_outputs(_step_h, weighting="swapped"),
        ),
        Mistake(
            "b_hn is added outside the reset gate's product: n = tanh(x Wxn + bxn + r * (prev_h Whn + bhn)); "
            "bx and bh cannot be added together for the n block.",
            changed_outputs(_step_h, bhn="outside"),
        ),
        Mistake(
            "The reset gate is applied before the product, (r * prev_h) Whn, as in Cho et al. (2014). "
            "PyTorch applies it after: r * (prev_h Whn + bhn).",
            changed_outputs(_step_h, reset="before"),
        ),
        Mistake(
            "r and z are swapped: the blocks are stacked r, z, n, so the reset gate comes from the first H columns "
            "and the update gate from the next H.",
            changed_outputs(_step_h, order="zrn"),
        ),
        Mistake(
            "b_hn is missing: n = tanh(x Wxn + bxn + r * (prev_h Whn + bhn)).",
            changed_outputs(_step_h, bhn="dropped"),
        ),
        Mistake(
            "Each gate's block of Wh is used transposed: with row vectors the hidden side is prev_h @ Wh, "
            "Wh as it is (H, 3H).",
            changed_outputs(_step_h, Wh_blocks_transposed=True),
        ),
    ),
)


# --- gru_forward ----------------------------------------------------------------------


def _sequence_h(i, **mistake):
    return {"h": _sequence(i["x"], i["h0"], i["Wx"], i["Wh"], i["bx"], i["bh"], **mistake)}


GRU_FORWARD = recurrent_check(
    gru_forward, torch_kind="GRU",
    visible=(
        Case(
            "one_step",
            "one time step (T = 1)",
            "With T = 1, h[:, 0] is one step of the GRU from h0: gru_step_forward(x[:, 0], h0, Wx, Wh, bx, bh).",
            lambda rng: _seq_inputs(rng, 2, 1, 3, 4),
        ),
        Case(
            "state_only",
            "only the initial state is non-zero (x = 0, bx = bh = 0), T = 4",
            "Each step must start from the state the previous step produced, the first from h0.",
            lambda rng: _seq_inputs(rng, 2, 4, 3, 4, x=False, biases=False),
        ),
        Case(
            "all_terms",
            "N=2, T=4, D=3, H=4",
            "Check the loop over time: h[:, t] = the step applied to x[:, t] and h[:, t-1], with h[:, -1] = h0 at t = 0.",
            lambda rng: _seq_inputs(rng, 2, 4, 3, 4),
        ),
    ),
    hidden=lambda rng: hidden_cases(rng, _seq_inputs, from_torch=True, N=(1, 4), T=(1, 7), D=(1, 5), H=(1, 6)),
    mistakes=(
        Mistake(
            "Every step started from h0: pass the state each step produces on to the next step.",
            changed_outputs(_sequence_h, carry=False),
        ),
        Mistake(
            OFF_BY_ONE_IN_TIME,
            lambda i: shifted_states(_sequence_h(i)["h"], i["h0"]),
        ),
        Mistake(
            "The update gate weighs the other way round: next_h = (1 - z) * n + z * prev_h.",
            changed_outputs(_sequence_h, weighting="swapped"),
        ),
        Mistake(
            "The reset gate is applied before the product, as in Cho et al. (2014); PyTorch's is "
            "r * (h Whn + bhn).",
            changed_outputs(_sequence_h, reset="before"),
        ),
    ),
)


# --- gru_step_backward ----------------------------------------------------------------


_step_backward_inputs = step_backward_inputs(_step_inputs)


GRU_STEP_BACKWARD = recurrent_check(
    gru_step_forward, gru_step_backward, cache=STEP_CACHE, torch_kind="GRU",
    visible=(
        Case(
            "keep_state",
            "update gate almost 1 (z block of bx = 4): most of dnext_h goes straight to dprev_h",
            "next_h = (1 - z) * n + z * prev_h uses prev_h directly: dprev_h = dnext_h * z + (the products with Wh).",
            lambda rng: _step_backward_inputs(rng, 2, 3, 4, update_bias=4.0),
        ),
        Case(
            "small",
            "N=2, D=3, H=4",
            "",
            lambda rng: _step_backward_inputs(rng, 2, 3, 4),
        ),
        Case(
            "larger_inputs",
            "N=3, D=2, H=4, larger inputs",
            "",
            lambda rng: with_dnext({**_step_inputs(rng, 3, 2, 4), "x": 3 * rng.standard_normal((3, 2))}, rng),
        ),
    ),
    hidden=lambda rng: hidden_cases(rng, _step_backward_inputs, from_torch=True, N=(1, 5), D=(1, 6), H=(1, 6)),
    output_hints={
        "*": "Every gradient is wrong: check the gate gradients da_n = dnext_h * (1 - z) * (1 - n**2), "
        "da_z = dnext_h * (prev_h - n) * z * (1 - z) and da_r first.",
        "dx": "dx = [da_r, da_z, da_n] Wx^T.",
        "dprev_h": "dprev_h = dnext_h * z + [da_r, da_z, da_n * r] Wh^T.",
        "dWx": "dWx = x^T [da_r, da_z, da_n].",
        "dWh": "dWh = prev_h^T [da_r, da_z, da_n * r]: on the hidden side the n block is multiplied by r.",
        "dbx": "dbx sums [da_r, da_z, da_n] over the batch.",
        "dbh": "dbh sums [da_r, da_z, da_n * r] over the batch: b_hn sits inside the reset gate's product.",
    },
    mistakes=(
        Mistake(
            "dprev_h misses the direct path: next_h = (1 - z) * n + z * prev_h uses prev_h itself, so "
            "dprev_h = dnext_h * z + [da_r, da_z, da_n * r] Wh^T.",
            changed_outputs(_step_grads, direct=False),
        ),
        Mistake(
            "On the hidden side the n block is multiplied by r: its gradient is da_n * r, in dWh, dbh and dprev_h.",
            changed_outputs(_step_grads, r_on_hidden_n=False),
        ),
        Mistake(
            "da_z has the wrong sign: next_h = (1 - z) * n + z * prev_h, so d next_h / dz = prev_h - n.",
            changed_outputs(_step_grads, dz_sign=-1.0),
        ),
        Mistake(
            "da_r misses b_hn: n = tanh(... + r * (prev_h Whn + bhn)), so da_r = da_n * (prev_h Whn + bhn) * r * (1 - r).",
            changed_outputs(_step_grads, bhn_in_dr=False),
        ),
        Mistake(
            "dbh is not dbx: on the hidden side the n block's gradient is da_n * r, so dbh = sum of [da_r, da_z, da_n * r].",
            changed_outputs(_step_grads, dbh_is_dbx=True),
        ),
    ),
)


# --- gru_backward ---------------------------------------------------------------------


_backward_inputs = sequence_backward_inputs(_seq_inputs)


GRU_BACKWARD = recurrent_check(
    gru_forward, gru_backward, cache=SEQUENCE_CACHE, torch_kind="GRU",
    visible=(
        Case(
            "one_step",
            "one time step (T = 1)",
            "With T = 1 this is one step backward, as in gru_step_backward with dnext_h = dh[:, 0].",
            lambda rng: _backward_inputs(rng, 2, 1, 3, 4),
        ),
        Case(
            "last_loss_only",
            "a loss on the last state only (dh[:, t] = 0 for t < T-1), T = 4",
            "The gradient of the last state must flow back through every step, down to dh0.",
            lambda rng: _backward_inputs(rng, 2, 4, 3, 4, only=[3]),
        ),
        Case(
            "every_step",
            "a loss at every step, N=2, T=4, D=3, H=4",
            "h_t gets gradient from the loss at t (dh[:, t]) and from step t+1: add both, then go through the step.",
            lambda rng: _backward_inputs(rng, 2, 4, 3, 4),
        ),
    ),
    hidden=lambda rng: hidden_cases(rng, _backward_inputs, from_torch=True, N=(1, 4), T=(2, 7), D=(1, 5), H=(1, 6)),
    output_hints={
        "*": "Every gradient is wrong: at step t use dnext_h = dh[:, t] + the dprev_h that step t+1 returned "
        "(zeros at the last step).",
        "dWh": "Step t multiplies h_{t-1} (h0 at t = 0) by Wh, so dWh sums h_{t-1}^T [da_r, da_z, da_n * r] over time.",
        "dbx": "dbx sums [da_r, da_z, da_n] over the batch and over time.",
        "dbh": "dbh sums [da_r, da_z, da_n * r] over the batch and over time.",
        "dh0": "dh0 is the dprev_h that step 0 sends back.",
    },
    mistakes=(
        Mistake(
            "The gradient from step t+1 is not carried back: at step t use dh[:, t] plus the "
            "dprev_h that step t+1 returned.",
            changed_outputs(_bptt, carry=False),
        ),
        Mistake(
            "The carried gradient misses the direct path: h_t = (1 - z_t) * n_t + z_t * h_{t-1}, so step t "
            "sends back dh_t * z_t besides the products with Wh.",
            changed_outputs(_bptt, direct=False),
        ),
        Mistake(
            LOOP_RUNS_FORWARDS,
            changed_outputs(_bptt, forwards=True),
        ),
        Mistake(
            DWH_OF_THE_WRONG_STATE,
            changed_outputs(_bptt, dWh_state="current"),
        ),
    ),
)


CHECKS = (GRU_STEP_FORWARD, GRU_FORWARD, GRU_STEP_BACKWARD, GRU_BACKWARD)
