"""Checks of assignment 02, the RNN: step and sequence, forward and backward (the trusted side).

The learner writes the twins of :func:`rnncourse.numpy.rnn_step_forward`,
:func:`~rnncourse.numpy.rnn_forward`, :func:`~rnncourse.numpy.rnn_step_backward`
and :func:`~rnncourse.numpy.rnn_backward` (tanh only); how they are called,
and the caches' layout: :mod:`rnncourse.checks.calls.rnn`. Visible forward
cases switch on one term at a time (only the input, only the recurrence, only
the bias); the backward checks get the reference's cache and compare each
gradient separately, naming the wrong one.
"""

import numpy as np

from rnncourse.numpy import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward, sigmoid

from ._core import Case, Mistake, nonzero_bias, random_cases
from ._recurrent import (
    AFFINE_SEQUENCE_HINTS,
    AFFINE_STEP_HINTS,
    DWH_OF_THE_WRONG_STATE,
    LOOP_RUNS_FORWARDS,
    OFF_BY_ONE_IN_TIME,
    previous_states,
    recurrent_check,
    sequence_backward_inputs,
    shifted_states,
    step_backward_inputs,
)
from .calls.rnn import SEQUENCE_CACHE, STEP_CACHE


def _params(rng, D, H, dtype=np.float64):
    return {
        "Wx": (0.7 * rng.standard_normal((D, H))).astype(dtype),
        "Wh": (0.7 * rng.standard_normal((H, H))).astype(dtype),
        "b": nonzero_bias(rng, H, dtype),
    }


def _step_inputs(rng, N, D, H, dtype=np.float64, *, x=True, prev_h=True, b=True, scale=1.0):
    """Inputs of one step; a term switched off is zero (its weights stay random)."""
    p = _params(rng, D, H, dtype)
    if not b:
        p["b"] = np.zeros(H, dtype)
    xs = scale * rng.standard_normal((N, D)) if x else np.zeros((N, D))
    hs = rng.uniform(-1, 1, (N, H)) if prev_h else np.zeros((N, H))
    return {"x": xs.astype(dtype), "prev_h": hs.astype(dtype), **p}


def _seq_inputs(rng, N, T, D, H, dtype=np.float64, *, x=True, b=True):
    p = _params(rng, D, H, dtype)
    if not b:
        p["b"] = np.zeros(H, dtype)
    xs = rng.standard_normal((N, T, D)) if x else np.zeros((N, T, D))
    return {"x": xs.astype(dtype), "h0": rng.uniform(-1, 1, (N, H)).astype(dtype), **p}


# --- rnn_step_forward -----------------------------------------------------------------


def _step(i, Wh=None, Wx=None):
    Wh = i["Wh"] if Wh is None else Wh
    Wx = i["Wx"] if Wx is None else Wx
    return i["x"] @ Wx + i["prev_h"] @ Wh + i["b"]


RNN_STEP_FORWARD = recurrent_check(
    rnn_step_forward,
    visible=(
        Case(
            "input_only",
            "only the input term (prev_h = 0, b = 0)",
            "Check the input term x Wx: x is (N, D) and Wx is (D, H).",
            lambda rng: _step_inputs(rng, 2, 3, 4, prev_h=False, b=False),
        ),
        Case(
            "recurrence_only",
            "only the recurrent term (x = 0, b = 0)",
            "Check the recurrent term prev_h Wh: prev_h is (N, H) and Wh is (H, H), in that order.",
            lambda rng: _step_inputs(rng, 2, 3, 4, x=False, b=False),
        ),
        Case(
            "bias_only",
            "only the bias is non-zero (x = 0, prev_h = 0)",
            "Check the bias term: with x = 0 and prev_h = 0, next_h must be tanh(b) in every row.",
            lambda rng: _step_inputs(rng, 2, 3, 4, x=False, prev_h=False),
        ),
        Case(
            "all_terms",
            "all three terms together",
            "Each term alone is right; check how they combine: next_h = tanh(x Wx + prev_h Wh + b).",
            lambda rng: _step_inputs(rng, 2, 3, 4),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _step_inputs, N=(1, 5), D=(1, 6), H=(1, 6)),
    mistakes=(
        Mistake(
            "Wh is used transposed: with row vectors the recurrent term is prev_h @ Wh.",
            lambda i: {"next_h": np.tanh(_step(i, Wh=i["Wh"].T))},
        ),
        Mistake(
            "Wx is used transposed: with row vectors the input term is x @ Wx.",
            lambda i: {"next_h": np.tanh(_step(i, Wx=i["Wx"].T))},
            applies=lambda i: i["Wx"].shape[0] == i["Wx"].shape[1],
        ),
        Mistake(
            "The bias is added after the tanh; it belongs inside: tanh(x Wx + prev_h Wh + b).",
            lambda i: {"next_h": np.tanh(i["x"] @ i["Wx"] + i["prev_h"] @ i["Wh"]) + i["b"]},
        ),
        Mistake(
            "next_h is the pre-activation: apply tanh to it.",
            lambda i: {"next_h": _step(i)},
        ),
        Mistake(
            "tanh is applied to each term separately; apply it once, to the sum x Wx + prev_h Wh + b.",
            lambda i: {"next_h": np.tanh(i["x"] @ i["Wx"]) + np.tanh(i["prev_h"] @ i["Wh"]) + np.tanh(i["b"])},
        ),
        Mistake(
            "That is the sigmoid; the plain RNN uses tanh.",
            lambda i: {"next_h": sigmoid(_step(i))},
        ),
    ),
)


# --- rnn_forward ----------------------------------------------------------------------


def _no_carry(i):
    """Every step started from h0 instead of the previous step's state."""
    a = i["x"] @ i["Wx"] + (i["h0"] @ i["Wh"])[:, None, :] + i["b"]
    return {"h": np.tanh(a)}


def _states(i):
    return rnn_forward(i["x"], i["h0"], i["Wx"], i["Wh"], i["b"])[0]


RNN_FORWARD = recurrent_check(
    rnn_forward,
    visible=(
        Case(
            "one_step",
            "one time step (T = 1)",
            "With T = 1, h[:, 0] is one step of the RNN from h0: h[:, 0] = tanh(x[:, 0] Wx + h0 Wh + b).",
            lambda rng: _seq_inputs(rng, 2, 1, 3, 5),
        ),
        Case(
            "state_only",
            "only the initial state is non-zero (x = 0, b = 0), T = 4",
            "Each step must start from the state the previous step produced, the first from h0.",
            lambda rng: _seq_inputs(rng, 2, 4, 3, 5, x=False, b=False),
        ),
        Case(
            "all_terms",
            "N=2, T=4, D=3, H=5",
            "Check the loop over time: h[:, t] = tanh(x[:, t] Wx + h[:, t-1] Wh + b), with h[:, -1] = h0 at t = 0.",
            lambda rng: _seq_inputs(rng, 2, 4, 3, 5),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _seq_inputs, N=(1, 4), T=(1, 7), D=(1, 5), H=(1, 6)),
    mistakes=(
        Mistake(
            "Every step started from h0: pass the state each step produces on to the next step.",
            _no_carry,
        ),
        Mistake(
            OFF_BY_ONE_IN_TIME,
            lambda i: shifted_states(_states(i), i["h0"]),
        ),
        Mistake(
            "Wh is used transposed: with row vectors the recurrent term is h_{t-1} @ Wh.",
            lambda i: {"h": rnn_forward(i["x"], i["h0"], i["Wx"], i["Wh"].T, i["b"])[0]},
        ),
    ),
)


# --- rnn_step_backward ----------------------------------------------------------------


def _step_grads_from_da(i, da, Wh_back=None):
    """The step's five gradients for a given gradient ``da`` of the pre-activation."""
    Wh_back = i["Wh"].T if Wh_back is None else Wh_back
    return {
        "dx": da @ i["Wx"].T,
        "dprev_h": da @ Wh_back,
        "dWx": i["x"].T @ da,
        "dWh": i["prev_h"].T @ da,
        "db": da.sum(axis=0),
    }


def _step_da(i):
    next_h = np.tanh(_step(i))
    return i["dnext_h"] * (1 - next_h**2)


_step_backward_inputs = step_backward_inputs(_step_inputs)


RNN_STEP_BACKWARD = recurrent_check(
    rnn_step_forward, rnn_step_backward, cache=STEP_CACHE,
    visible=(
        Case("small", "N=2, D=3, H=4", "", lambda rng: _step_backward_inputs(rng, 2, 3, 4)),
        Case(
            "saturated",
            "N=3, D=2, H=4, large inputs (tanh saturated)",
            "",
            lambda rng: _step_backward_inputs(rng, 3, 2, 4, scale=4.0),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _step_backward_inputs, N=(1, 5), D=(1, 6), H=(1, 6)),
    output_hints={
        "*": "Every gradient is wrong: check da, the gradient of the pre-activation a = x Wx + prev_h Wh + b, first.",
        **AFFINE_STEP_HINTS,
    },
    mistakes=(
        Mistake(
            "The gradients skip the tanh: da = dnext_h * (1 - next_h**2), then the products.",
            lambda i: _step_grads_from_da(i, i["dnext_h"]),
        ),
        Mistake(
            "1 - tanh(next_h)**2 applies tanh twice: next_h is already tanh(a), so tanh'(a) = 1 - next_h**2.",
            lambda i: _step_grads_from_da(i, i["dnext_h"] * (1 - np.tanh(np.tanh(_step(i))) ** 2)),
        ),
        Mistake(
            "tanh'(a) is 1 - tanh(a)**2 = 1 - next_h**2, not 1 - a**2.",
            lambda i: _step_grads_from_da(i, i["dnext_h"] * (1 - _step(i) ** 2)),
        ),
        Mistake(
            "dprev_h goes back through Wh transposed: dprev_h = da @ Wh.T.",
            lambda i: {"dprev_h": _step_da(i) @ i["Wh"]},
        ),
        Mistake(
            "dWh is transposed: dWh = prev_h^T da, an (H, N) @ (N, H) product.",
            lambda i: {"dWh": _step_da(i).T @ i["prev_h"]},
        ),
        Mistake(
            "db is the sum of da over the batch, not its mean.",
            lambda i: {"db": _step_da(i).mean(axis=0)},
        ),
    ),
)


# --- rnn_backward ---------------------------------------------------------------------


def _bptt_variant(i, *, carry=True, carry_after_derivative=False, dWh_state="previous", forwards=False):
    """BPTT with one deliberate mistake, to recognise it in a learner's gradients.

    carry=False: no gradient from step t+1; carry_after_derivative: the
    carried gradient skips the tanh derivative; dWh_state="current": dWh
    multiplies h_t instead of h_{t-1}; forwards: the loop runs t = 0..T-1.
    """
    x, h0, Wx, Wh, dh = i["x"], i["h0"], i["Wx"], i["Wh"], i["dh"]
    h = _states(i)
    T = x.shape[1]
    prev = previous_states(h0, h)
    dx, dWx, dWh = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh)
    db, carried = np.zeros_like(i["b"]), np.zeros_like(h0)
    for t in range(T) if forwards else reversed(range(T)):
        incoming = dh[:, t] + (carried if carry and not carry_after_derivative else 0)
        da = incoming * (1 - h[:, t] ** 2)
        if carry and carry_after_derivative:
            da = da + carried
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += (prev[:, t] if dWh_state == "previous" else h[:, t]).T @ da
        db += da.sum(axis=0)
        carried = da @ Wh.T
    return {"dx": dx, "dh0": carried, "dWx": dWx, "dWh": dWh, "db": db}


_backward_inputs = sequence_backward_inputs(_seq_inputs)


RNN_BACKWARD = recurrent_check(
    rnn_forward, rnn_backward, cache=SEQUENCE_CACHE,
    visible=(
        Case(
            "one_step",
            "one time step (T = 1)",
            "With T = 1 this is one step backward, as in rnn_step_backward with dnext_h = dh[:, 0].",
            lambda rng: _backward_inputs(rng, 2, 1, 3, 5),
        ),
        Case(
            "last_loss_only",
            "a loss on the last state only (dh[:, t] = 0 for t < T-1), T = 4",
            "The gradient of the last state must flow back through every step, down to dh0.",
            lambda rng: _backward_inputs(rng, 2, 4, 3, 5, only=[3]),
        ),
        Case(
            "every_step",
            "a loss at every step, N=2, T=4, D=3, H=5",
            "h_t gets gradient from the loss at t (dh[:, t]) and from step t+1: add both before the tanh derivative.",
            lambda rng: _backward_inputs(rng, 2, 4, 3, 5),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _backward_inputs, N=(1, 4), T=(2, 7), D=(1, 5), H=(1, 6)),
    output_hints={
        "*": "Every gradient is wrong: check da_t = (dh[:, t] + the gradient from step t+1) * (1 - h_t**2) first.",
        **AFFINE_SEQUENCE_HINTS,
        "dh0": "dh0 is the gradient step 0 sends back: da_0 Wh^T.",
    },
    mistakes=(
        Mistake(
            "The gradient from step t+1 is not carried back: at step t use dh[:, t] plus the "
            "dprev_h that step t+1 returned.",
            lambda i: _bptt_variant(i, carry=False),
        ),
        Mistake(
            "The carried gradient skips the tanh derivative: da_t = (dh[:, t] + dprev_h) * (1 - h_t**2).",
            lambda i: _bptt_variant(i, carry_after_derivative=True),
        ),
        Mistake(
            LOOP_RUNS_FORWARDS,
            lambda i: _bptt_variant(i, forwards=True),
        ),
        Mistake(
            DWH_OF_THE_WRONG_STATE,
            lambda i: {"dWh": _bptt_variant(i, dWh_state="current")["dWh"]},
        ),
    ),
)


CHECKS = (RNN_STEP_FORWARD, RNN_FORWARD, RNN_STEP_BACKWARD, RNN_BACKWARD)
