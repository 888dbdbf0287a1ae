"""Checks of assignment 04, the LSTM: step and sequence, forward and backward (the trusted side).

The learner writes the twins of :func:`rnncourse.numpy.lstm_step_forward`,
:func:`~rnncourse.numpy.lstm_forward`, :func:`~rnncourse.numpy.lstm_step_backward`
and :func:`~rnncourse.numpy.lstm_backward`, gates stacked ``i, f, g, o``; how
they are called, and the caches' layout: :mod:`rnncourse.checks.calls.lstm`.
The backward checks get the reference's cache. The
sequence functions leave out the reference's optional extras: the learner's
``lstm_forward(x, h0, Wx, Wh, b)`` starts from a zero cell (the reference's
default ``c0=None``) and ``lstm_backward(dh, cache)`` returns
``dx, dh0, dWx, dWh, db`` (no ``dc_last``, no ``return_state``).

Visible forward cases switch on one term or one gate at a time (only the
input, only the recurrence, only the bias, the forget gate saturated open or
closed, a cell written once and carried through time); backward cases
separate the two upstream gradients ``dnext_h`` and ``dnext_c`` and the two
paths back in time (through ``h`` and through ``c``). The hidden cases take
their truth from ``torch.nn.LSTM`` / ``torch.nn.LSTMCell`` in float64 when
PyTorch is installed (imported only then, inside the reference), and from
:mod:`rnncourse.numpy` otherwise.
"""

import numpy as np

from rnncourse.numpy import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward, sigmoid

from ._core import Case, Mistake, changed_outputs, nonzero_bias
from ._recurrent import (
    AFFINE_SEQUENCE_HINTS,
    AFFINE_STEP_HINTS,
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
)
from .calls.lstm import SEQUENCE_CACHE, STEP_CACHE


GATES = "ifgo"


# --- inputs ---------------------------------------------------------------------------


def _params(rng, D, H, dtype=np.float64, *, b=None):
    """Random weights and a non-zero bias; ``b`` replaces the bias (drawn all the same)."""
    p = {
        "Wx": (0.6 * rng.standard_normal((D, 4 * H))).astype(dtype),
        "Wh": (0.6 * rng.standard_normal((H, 4 * H))).astype(dtype),
        "b": nonzero_bias(rng, 4 * H, dtype),
    }
    if b is not None:
        p["b"] = np.asarray(b, dtype)
    return p


def _bias(H, dtype=np.float64, **blocks):
    """A (4H,) bias, zero except the gate blocks given (``f=10.0``; a value or an (H,) array)."""
    b = np.zeros(4 * H)
    for gate, value in blocks.items():
        k = GATES.index(gate)
        b[k * H : (k + 1) * H] = value
    return b.astype(dtype)


def _step_inputs(rng, N, D, H, dtype=np.float64, *, x=True, prev_h=True, prev_c=True, b=None):
    """Inputs of one step; a term switched off is zero (its weights stay random); ``b`` replaces the bias."""
    p = _params(rng, D, H, dtype, b=b)
    xs = rng.standard_normal((N, D)) if x else np.zeros((N, D))
    hs = rng.uniform(-1, 1, (N, H)) if prev_h else np.zeros((N, H))
    cs = rng.uniform(-2, 2, (N, H)) if prev_c else np.zeros((N, H))
    return {"x": xs.astype(dtype), "prev_h": hs.astype(dtype), "prev_c": cs.astype(dtype), **p}


def _seq_inputs(rng, N, T, D, H, dtype=np.float64, *, x=True, b=None, Wh=True, x_steps=None):
    p = _params(rng, D, H, dtype, b=b)
    if not Wh:
        p["Wh"] = np.zeros_like(p["Wh"])
    xs = rng.standard_normal((N, T, D)) if x else np.zeros((N, T, D))
    if x_steps is not None:
        keep = np.zeros(T, bool)
        keep[x_steps] = True
        xs[:, ~keep] = 0
    return {"x": xs.astype(dtype), "h0": rng.uniform(-1, 1, (N, H)).astype(dtype), **p}


# --- the LSTM written out, with the mistakes a learner makes --------------------------


def _blocks(a, H, order=GATES):
    """The gate pre-activations ``{gate: (N, H)}`` of an (N, 4H) array whose blocks are stacked in ``order``."""
    return {gate: a[:, k * H : (k + 1) * H] for k, gate in enumerate(order)}


def _gates(x, prev_h, Wx, Wh, b, *, order=GATES, g_activation=np.tanh, Wh_blocks_transposed=False):
    """``(i, f, g, o)`` of one step; ``order`` is the order the learner reads the blocks in."""
    H = Wh.shape[0]
    if Wh_blocks_transposed:
        Wh = transposed_gate_blocks(Wh)
    a = _blocks(x @ Wx + prev_h @ Wh + b, H, order)
    return sigmoid(a["i"]), sigmoid(a["f"]), g_activation(a["g"]), sigmoid(a["o"])


def _cell(i, f, g, o, prev_c, *, cell="right", output="right"):
    """``(next_h, next_c)`` from the gates, with one of the mistakes a learner makes in the two update lines."""
    next_c = {
        "right": f * prev_c + i * g,
        "i_f_swapped": i * prev_c + f * g,
        "forget_everything": f * (prev_c + i * g),
    }[cell]
    next_h = {
        "right": o * np.tanh(next_c),
        "no_tanh": o * next_c,
        "previous_cell": o * np.tanh(prev_c),
    }[output]
    return next_h, next_c


def _step(i, *, cell="right", output="right", no_bias=False, **gate_options):
    """``{"next_h", "next_c"}`` of one step, with one of the mistakes of :func:`_gates` and :func:`_cell`."""
    b = np.zeros_like(i["b"]) if no_bias else i["b"]
    gates = _gates(i["x"], i["prev_h"], i["Wx"], i["Wh"], b, **gate_options)
    next_h, next_c = _cell(*gates, i["prev_c"], cell=cell, output=output)
    return {"next_h": next_h, "next_c": next_c}


def _sequence(x, h0, Wx, Wh, b, *, carry_h=True, carry_c=True, c0_from_h0=False, order=GATES):
    """States ``h (N, T, H)``, cells ``c (N, T, H)`` and gates of the LSTM over a sequence, with a mistake."""
    N, T, _ = x.shape
    H = h0.shape[1]
    c0 = h0 if c0_from_h0 else np.zeros((N, H))
    h, c, gates = np.zeros((N, T, H)), np.zeros((N, T, H)), []
    prev_h, prev_c = h0, c0
    for t in range(T):
        g_t = _gates(x[:, t], prev_h if carry_h else h0, Wx, Wh, b, order=order)
        h[:, t], c[:, t] = _cell(*g_t, prev_c if carry_c else c0)
        gates.append(g_t)
        prev_h, prev_c = h[:, t], c[:, t]
    return h, c, gates


def _cell_backward(i, f, g, o, prev_c, next_c, dnext_h, dnext_c, *, through_h=True, with_dnext_c=True,
                   tanh_slope_of_c=False, forget_in_dprev_c=True, order=GATES):  # fmt: skip
    """``(da (N, 4H), dprev_c)`` of one step, with one of the mistakes a learner makes."""
    tanh_c = np.tanh(next_c)
    slope = 1 - next_c**2 if tanh_slope_of_c else 1 - tanh_c**2
    dc = (dnext_c if with_dnext_c else 0) + (dnext_h * o * slope if through_h else 0)
    da = {
        "i": dc * g * i * (1 - i),
        "f": dc * prev_c * f * (1 - f),
        "g": dc * i * (1 - g**2),
        "o": dnext_h * tanh_c * o * (1 - o),
    }
    return np.concatenate([da[gate] for gate in order], axis=1), (dc * f if forget_in_dprev_c else dc)


def _step_grads(i, **mistake):
    """The six gradients of one step, with one of the mistakes of :func:`_cell_backward`."""
    gates = _gates(i["x"], i["prev_h"], i["Wx"], i["Wh"], i["b"])
    _, next_c = _cell(*gates, i["prev_c"])
    da, dprev_c = _cell_backward(*gates, i["prev_c"], next_c, i["dnext_h"], i["dnext_c"], **mistake)
    return {
        "dx": da @ i["Wx"].T,
        "dprev_h": da @ i["Wh"].T,
        "dprev_c": dprev_c,
        "dWx": i["x"].T @ da,
        "dWh": i["prev_h"].T @ da,
        "db": da.sum(axis=0),
    }


def _bptt(i, *, carry_h=True, carry_c=True, carry_c_without_forget=False, forwards=False, dWh_state="previous",
          forget_sees_current_cell=False):  # fmt: skip
    """Backpropagation through time with one deliberate mistake, to recognise it in a learner's gradients.

    carry_h / carry_c = False: no gradient of h / of c from step t+1;
    carry_c_without_forget: dc_{t-1} = dc_t, without the forget gate;
    forwards: the loop runs t = 0..T-1; dWh_state="current": dWh multiplies
    h_t instead of h_{t-1}; forget_sees_current_cell: da_f multiplies c_t
    instead of c_{t-1} (off by one in time).
    """
    x, h0, Wx, Wh, dh = i["x"], i["h0"], i["Wx"], i["Wh"], i["dh"]
    N, T, _ = x.shape
    H = h0.shape[1]
    h, c, gates = _sequence(x, h0, Wx, Wh, i["b"])
    prev_h = previous_states(h0, h)
    prev_c = previous_states(np.zeros((N, H)), c)
    dx, dWx, dWh, db = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H)
    dh_carry, dc_carry = np.zeros((N, H)), np.zeros((N, H))
    for t in range(T) if forwards else reversed(range(T)):
        old_c = c[:, t] if forget_sees_current_cell else prev_c[:, t]
        da, dc_prev = _cell_backward(*gates[t], old_c, c[:, t], dh[:, t] + (dh_carry if carry_h else 0),
                                     dc_carry if carry_c else np.zeros((N, H)),
                                     forget_in_dprev_c=not carry_c_without_forget)  # fmt: skip
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += (prev_h[:, t] if dWh_state == "previous" else h[:, t]).T @ da
        db += da.sum(axis=0)
        dh_carry, dc_carry = da @ Wh.T, dc_prev
    return {"dx": dx, "dh0": dh_carry, "dWx": dWx, "dWh": dWh, "db": db}




# --- lstm_step_forward ----------------------------------------------------------------


LSTM_STEP_FORWARD = recurrent_check(
    lstm_step_forward, torch_kind="LSTM",
    visible=(
        Case(
            "input_only",
            "only the input term (prev_h = 0, prev_c = 0, b = 0)",
            "Check the input term x Wx, (N, D) @ (D, 4H), and how its columns split into the gates: "
            "i, f, g, o, H columns each, in that order.",
            lambda rng: _step_inputs(rng, 2, 3, 4, prev_h=False, prev_c=False, b=np.zeros(16)),
        ),
        Case(
            "recurrence_only",
            "only the recurrent term (x = 0, prev_c = 0, b = 0)",
            "Check the recurrent term prev_h Wh: prev_h is (N, H) and Wh is (H, 4H), in that order.",
            lambda rng: _step_inputs(rng, 2, 3, 4, x=False, prev_c=False, b=np.zeros(16)),
        ),
        Case(
            "bias_only",
            "only the bias is non-zero (x = 0, prev_h = 0, prev_c = 0)",
            "Check the bias term: here a = b in every row, so next_c = sigmoid(b_i) * tanh(b_g) "
            "and next_h = sigmoid(b_o) * tanh(next_c).",
            lambda rng: _step_inputs(rng, 2, 3, 4, x=False, prev_h=False, prev_c=False),
        ),
        Case(
            "forget_open",
            "forget gate saturated open (b_f = 10, f = 1), nothing written (x = 0, prev_h = 0, other biases 0)",
            "With f = 1 and g = tanh(0) = 0, next_c must be prev_c: the forget gate multiplies the old cell, "
            "next_c = f * prev_c + i * g, and next_h = o * tanh(next_c).",
            lambda rng: _step_inputs(rng, 2, 3, 4, x=False, prev_h=False, b=_bias(4, f=10.0)),
        ),
        Case(
            "forget_closed",
            "forget gate saturated closed (b_f = -10, f = 0), input gate open (b_i = 10, i = 1), x = 0, prev_h = 0",
            "With f = 0 and i = 1 the old cell is dropped and the candidate written: next_c must be g = tanh(b_g).",
            lambda rng: _step_inputs(
                rng, 2, 3, 4, x=False, prev_h=False, b=_bias(4, i=10.0, f=-10.0, g=rng.uniform(-1.5, 1.5, 4))
            ),
        ),
        Case(
            "all_terms",
            "all the terms together",
            "Each term alone is right; check how they combine: a = x Wx + prev_h Wh + b, then the gates, "
            "next_c = f * prev_c + i * g, next_h = o * tanh(next_c).",
            lambda rng: _step_inputs(rng, 2, 3, 4),
        ),
    ),
    hidden=lambda rng: hidden_cases(rng, _step_inputs, from_torch=True, N=(1, 5), D=(1, 6), H=(1, 6)),
    mistakes=(
        Mistake(
            "The gates are read in the order i, f, o, g. This course, like PyTorch, stacks them i, f, g, o: "
            "a[:, 2H:3H] is the candidate g (tanh), a[:, 3H:] the output gate o (sigmoid).",
            changed_outputs(_step, order="ifog"),
        ),
        Mistake(
            "next_h and next_c are swapped: return next_h, next_c, cache, in that order.",
            lambda i: {"next_h": _step(i)["next_c"], "next_c": _step(i)["next_h"]},
        ),
        Mistake(
            # Before the mistakes that change next_h alone: with b = 0 and prev_c = 0, a learner
            # without the bias gives next_h = 0, which is also what o * tanh(prev_c) gives.
            "The bias is missing: a = x Wx + prev_h Wh + b, with b (4H,) added to every row.",
            changed_outputs(_step, no_bias=True),
        ),
        Mistake(
            "The input and forget gates are swapped in the cell update: next_c = f * prev_c + i * g "
            "(f keeps the old cell, i writes the candidate).",
            changed_outputs(_step, cell="i_f_swapped"),
        ),
        Mistake(
            "The forget gate is applied to the input gate's product too: next_c = f * prev_c + i * g, "
            "not f * (prev_c + i * g).",
            changed_outputs(_step, cell="forget_everything"),
        ),
        Mistake(
            "next_h = o * next_c: the tanh is missing, next_h = o * tanh(next_c).",
            changed_outputs(_step, output="no_tanh"),
        ),
        Mistake(
            "next_h uses the tanh of the previous cell: it is o * tanh(next_c), with the cell just computed.",
            changed_outputs(_step, output="previous_cell"),
        ),
        Mistake(
            "The candidate g goes through a sigmoid; it is g = tanh(a_g) (i, f and o are sigmoids).",
            changed_outputs(_step, g_activation=sigmoid),
        ),
        Mistake(
            "Each gate's block of Wh is used transposed: with row vectors the recurrent term is prev_h @ Wh, "
            "Wh as it is (H, 4H).",
            changed_outputs(_step, Wh_blocks_transposed=True),
        ),
    ),
)


# --- lstm_forward ---------------------------------------------------------------------


def _sequence_h(i, **mistake):
    return {"h": _sequence(i["x"], i["h0"], i["Wx"], i["Wh"], i["b"], **mistake)[0]}


LSTM_FORWARD = recurrent_check(
    lstm_forward, torch_kind="LSTM",
    visible=(
        Case(
            "one_step",
            "one time step (T = 1)",
            "With T = 1, h[:, 0] is one step of the LSTM from h0 and a zero cell: "
            "lstm_step_forward(x[:, 0], h0, 0, Wx, Wh, b).",
            lambda rng: _seq_inputs(rng, 2, 1, 3, 4),
        ),
        Case(
            "state_only",
            "only the initial state is non-zero (x = 0, b = 0), T = 4",
            "Each step must start from the h and the c the previous step produced; the first from h0 and c = 0.",
            lambda rng: _seq_inputs(rng, 2, 4, 3, 4, x=False, b=np.zeros(16)),
        ),
        Case(
            "cell_carried",
            "an input at t = 0 only, Wh = 0, forget gate open (b_f = 10), b_i = b_g = 0: "
            "the cell written at t = 0 must last, T = 5",
            "Wh = 0 here, so only the cell state links the steps: pass next_c of each step on to the next one.",
            lambda rng: _seq_inputs(rng, 2, 5, 3, 4, Wh=False, x_steps=[0], b=_bias(4, f=10.0, o=nonzero_bias(rng, 4))),
        ),
        Case(
            "all_terms",
            "N=2, T=4, D=3, H=4",
            "Check the loop over time: each step gets x[:, t] and the previous step's h and c; "
            "h[:, t] is the state after step t.",
            lambda rng: _seq_inputs(rng, 2, 4, 3, 4),
        ),
    ),
    hidden=lambda rng: hidden_cases(rng, _seq_inputs, from_torch=True, N=(1, 4), T=(1, 7), D=(1, 5), H=(1, 6)),
    mistakes=(
        Mistake(
            "The cell state is not carried: every step started from c = 0. Pass the next_c each step "
            "produces on to the next step, as you do with next_h.",
            changed_outputs(_sequence_h, carry_c=False),
        ),
        Mistake(
            "Every step started from h0: pass the next_h each step produces on to the next step.",
            changed_outputs(_sequence_h, carry_h=False),
        ),
        Mistake(
            "The cell started from h0; it starts from zeros, c = np.zeros_like(h0).",
            changed_outputs(_sequence_h, c0_from_h0=True),
        ),
        Mistake(
            OFF_BY_ONE_IN_TIME,
            lambda i: shifted_states(_sequence_h(i)["h"], i["h0"]),
        ),
        Mistake(
            "The gates are read in the order i, f, o, g; they are stacked i, f, g, o.",
            changed_outputs(_sequence_h, order="ifog"),
        ),
    ),
)


# --- lstm_step_backward ---------------------------------------------------------------


_step_backward_inputs = step_backward_inputs(_step_inputs, names=("dnext_h", "dnext_c"))


LSTM_STEP_BACKWARD = recurrent_check(
    lstm_step_forward, lstm_step_backward, cache=STEP_CACHE, torch_kind="LSTM",
    visible=(
        Case(
            "dnext_h_only",
            "a gradient on next_h only (dnext_c = 0), N=2, D=3, H=4",
            "next_c reaches the loss through next_h = o * tanh(next_c): dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2).",
            lambda rng: _step_backward_inputs(rng, 2, 3, 4, zero=("dnext_c",)),
        ),
        Case(
            "dnext_c_only",
            "a gradient on next_c only (dnext_h = 0), N=2, D=3, H=4",
            "With dnext_h = 0 only dnext_c flows back: dc = dnext_c, and da_o = 0.",
            lambda rng: _step_backward_inputs(rng, 2, 3, 4, zero=("dnext_h",)),
        ),
        Case(
            "both",
            "gradients on next_h and next_c, N=3, D=2, H=4",
            "",
            lambda rng: _step_backward_inputs(rng, 3, 2, 4),
        ),
    ),
    hidden=lambda rng: hidden_cases(rng, _step_backward_inputs, from_torch=True, N=(1, 5), D=(1, 6), H=(1, 6)),
    output_hints={
        "*": "Every gradient is wrong: check dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2) and "
        "da = [da_i, da_f, da_g, da_o], the (N, 4H) gradient of the pre-activations, first.",
        **AFFINE_STEP_HINTS,
        "dprev_c": "next_c = f * prev_c + i * g, so dprev_c = dc * f.",
    },
    mistakes=(
        Mistake(
            "dnext_c is left out: the cell gets gradient from the next step (dnext_c) and through next_h, "
            "dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2).",
            changed_outputs(_step_grads, with_dnext_c=False),
        ),
        Mistake(
            "The path from next_c through next_h is missing: next_h = o * tanh(next_c), so "
            "dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2).",
            changed_outputs(_step_grads, through_h=False),
        ),
        Mistake(
            "The tanh slope is taken at next_c itself: the derivative of tanh(c) is 1 - tanh(c)**2, not 1 - c**2.",
            changed_outputs(_step_grads, tanh_slope_of_c=True),
        ),
        Mistake(
            "da is stacked i, f, o, g; stack it like the gates, i, f, g, o, so that it lines up with Wx, Wh and b.",
            changed_outputs(_step_grads, order="ifog"),
        ),
        Mistake(
            "dprev_c misses the forget gate: next_c = f * prev_c + i * g, so dprev_c = dc * f.",
            changed_outputs(_step_grads, forget_in_dprev_c=False),
        ),
    ),
)


# --- lstm_backward --------------------------------------------------------------------


_backward_inputs = sequence_backward_inputs(_seq_inputs)


LSTM_BACKWARD = recurrent_check(
    lstm_forward, lstm_backward, cache=SEQUENCE_CACHE, torch_kind="LSTM",
    visible=(
        Case(
            "one_step",
            "one time step (T = 1)",
            "With T = 1 this is one step backward, as in lstm_step_backward with dnext_h = dh[:, 0] and dnext_c = 0.",
            lambda rng: _backward_inputs(rng, 2, 1, 3, 4),
        ),
        Case(
            "cell_path_only",
            "Wh = 0, a loss at every step, T = 4: the later losses reach a step only through the cell state",
            "With Wh = 0 nothing comes back through h: the gradient of the later losses reaches step t only "
            "as the dprev_c of step t+1, which is step t's dnext_c.",
            lambda rng: _backward_inputs(rng, 2, 4, 3, 4, Wh=False, b=_bias(4, f=2.0, o=nonzero_bias(rng, 4))),
        ),
        Case(
            "last_loss_only",
            "a loss on the last state only (dh[:, t] = 0 for t < T-1), T = 4",
            "The gradient of the last state must flow back through every step, through h and through c, down to dh0.",
            lambda rng: _backward_inputs(rng, 2, 4, 3, 4, only=[3]),
        ),
        Case(
            "every_step",
            "a loss at every step, N=2, T=4, D=3, H=4",
            "h_t gets gradient from the loss at t (dh[:, t]) and from step t+1; c_t only from step t+1.",
            lambda rng: _backward_inputs(rng, 2, 4, 3, 4),
        ),
    ),
    hidden=lambda rng: hidden_cases(rng, _backward_inputs, from_torch=True, N=(1, 4), T=(2, 7), D=(1, 5), H=(1, 6)),
    output_hints={
        "*": "Every gradient is wrong: at step t, use dnext_h = dh[:, t] + the dprev_h of step t+1 and "
        "dnext_c = the dprev_c of step t+1 (zeros at the last step).",
        **AFFINE_SEQUENCE_HINTS,
        "dh0": "dh0 is the dprev_h that step 0 sends back.",
    },
    mistakes=(
        Mistake(
            "The gradient of the cell state is not carried back: step t gets dnext_c = the dprev_c that "
            "step t+1 returned (zeros only at the last step).",
            changed_outputs(_bptt, carry_c=False),
        ),
        Mistake(
            "The gradient from step t+1 is not carried back through h: at step t use dh[:, t] plus the "
            "dprev_h that step t+1 returned.",
            changed_outputs(_bptt, carry_h=False),
        ),
        Mistake(
            "The cell gradient is carried back without the forget gate: c_t = f_t * c_{t-1} + ..., "
            "so step t-1 gets dc_t * f_t.",
            changed_outputs(_bptt, carry_c_without_forget=True),
        ),
        Mistake(
            LOOP_RUNS_FORWARDS,
            changed_outputs(_bptt, forwards=True),
        ),
        Mistake(
            "Off by one in time: the forget gate at step t multiplies c_{t-1} (zeros at t = 0), "
            "so da_f uses the cell from before step t, not c_t.",
            changed_outputs(_bptt, forget_sees_current_cell=True),
        ),
        Mistake(
            DWH_OF_THE_WRONG_STATE,
            changed_outputs(_bptt, dWh_state="current"),
        ),
    ),
)


CHECKS = (LSTM_STEP_FORWARD, LSTM_FORWARD, LSTM_STEP_BACKWARD, LSTM_BACKWARD)
