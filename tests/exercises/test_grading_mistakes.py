"""Realistic wrong answers: each loses its points, and the visible message names the mistake.

Every function below is a learner's answer with one mistake, written the way
a learner would write it (not taken from rnncourse.checks). For each, the
visible cases must fail (so the notebook's test cell, and its points, fail),
the message must point at the mistake, and the grader's out-of-process mode
must give the same verdict and message as the learner's process.
"""

from pathlib import Path

import numpy as np
import pytest

import rnncourse.numpy as R
from exercisetools import assert_mistake_fails_and_is_named, calling, check_names, in_process



def _tanh_step(x, prev_h, Wx, Wh, b):
    return np.tanh(x @ Wx + prev_h @ Wh + b)


# --- 01: one-hot, embeddings, perplexity ----------------------------------------------


def one_hot_V_from_data(idx, V):
    return np.eye(idx.max() + 1)[idx]


def one_hot_integers(idx, V):
    return np.eye(V, dtype=np.int64)[idx]


def one_hot_flat(idx, V):
    return np.eye(V)[idx.ravel()]


def embedding_forward_time_major(idx, W):
    return W[idx.T], idx


def embedding_forward_no_cache(idx, W):
    return W[idx]


def embedding_backward_assign(dout, cache):
    idx, W = cache
    dW = np.zeros(W.shape)
    dW[idx] += dout
    return dW


def embedding_backward_returns_dout(dout, cache):
    return dout


def embedding_backward_unpacks_shape(dout, cache):
    """Reads the cache as (idx, W.shape), a layout of its own, not the one the notebook states."""
    idx, (V, D) = cache
    dW = np.zeros((V, D))
    np.add.at(dW, idx.ravel(), dout.reshape(-1, D))
    return dW


def _p_true(probs, y):
    N, T, _ = probs.shape
    return probs[np.arange(N)[:, None], np.arange(T), y]


def perplexity_sign(probs, y):
    return np.exp(np.mean(np.log(_p_true(probs, y))))


def perplexity_per_sequence(probs, y):
    return np.exp(-np.mean(np.log(_p_true(probs, y)), axis=1))


def perplexity_mean_of_sequences(probs, y):
    return np.mean(np.exp(-np.mean(np.log(_p_true(probs, y)), axis=1)))


def perplexity_argmax(probs, y):
    return np.exp(-np.mean(np.log(probs.max(axis=-1))))


# --- 02: the RNN ----------------------------------------------------------------------


def step_Wh_transposed(x, prev_h, Wx, Wh, b):
    return np.tanh(x @ Wx + prev_h @ Wh.T + b), None


def step_no_bias(x, prev_h, Wx, Wh, b):
    return np.tanh(x @ Wx + prev_h @ Wh), None


def step_bias_outside(x, prev_h, Wx, Wh, b):
    return np.tanh(x @ Wx + prev_h @ Wh) + b, None


def step_no_tanh(x, prev_h, Wx, Wh, b):
    return x @ Wx + prev_h @ Wh + b, None


def step_tanh_per_term(x, prev_h, Wx, Wh, b):
    return np.tanh(x @ Wx) + np.tanh(prev_h @ Wh) + np.tanh(b), None


def step_forward_ok(x, prev_h, Wx, Wh, b):
    next_h = _tanh_step(x, prev_h, Wx, Wh, b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def forward_no_carry(x, h0, Wx, Wh, b):
    h = np.stack([_tanh_step(x[:, t], h0, Wx, Wh, b) for t in range(x.shape[1])], axis=1)
    return h, None


def forward_off_by_one(x, h0, Wx, Wh, b):
    states = [h0]
    for t in range(x.shape[1]):
        states.append(_tanh_step(x[:, t], states[-1], Wx, Wh, b))
    return np.stack(states[:-1], axis=1), None


def forward_time_major(x, h0, Wx, Wh, b):
    states, h = [], h0
    for t in range(x.shape[1]):
        h = _tanh_step(x[:, t], h, Wx, Wh, b)
        states.append(h)
    return np.stack(states), None


def step_backward_ok(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def step_backward_no_derivative(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def step_backward_dWh_transposed(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, da.T @ prev_h, da.sum(axis=0)


def step_backward_db_mean(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.mean(axis=0)


def step_backward_db_per_row(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da


def step_backward_dprev_h_not_transposed(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def step_backward_tanh_twice(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - np.tanh(next_h) ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def forward_ok(x, h0, Wx, Wh, b):
    """Right, and calls rnn_step_forward by name, as the notebook asks: the learner's step, whatever it is."""
    states, h = [], h0
    for t in range(x.shape[1]):
        h, _ = rnn_step_forward(x[:, t], h, Wx, Wh, b)  # noqa: F821 - bound by calling()
        states.append(h)
    h = np.stack(states, axis=1)
    return h, (x, h0, Wx, Wh, h)


def _bptt(dh, cache, *, carry=True, dWh_uses_current=False, carry_after_derivative=False):
    x, h0, Wx, Wh, h = cache
    N, T, H = dh.shape
    dx = np.zeros((N, T, Wx.shape[0]))
    dWx, dWh, db, dprev = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H), np.zeros((N, H))
    for t in reversed(range(T)):
        prev_h = h0 if t == 0 else h[:, t - 1]
        g = dh[:, t] + (dprev if carry and not carry_after_derivative else 0)
        da = g * (1 - h[:, t] ** 2) + (dprev if carry_after_derivative else 0)
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += (h[:, t] if dWh_uses_current else prev_h).T @ da
        db += da.sum(axis=0)
        dprev = da @ Wh.T
    return dx, dprev, dWx, dWh, db


def backward_no_carry(dh, cache):
    return _bptt(dh, cache, carry=False)


def backward_dWh_off_by_one(dh, cache):
    return _bptt(dh, cache, dWh_uses_current=True)


def backward_carry_skips_derivative(dh, cache):
    return _bptt(dh, cache, carry_after_derivative=True)


def backward_reads_step_caches(dh, cache):
    """Reads the cache as a list of step caches, a layout of its own, not the one the notebook states."""
    N, T, H = dh.shape
    dprev, grads = np.zeros((N, H)), []
    for t in reversed(range(T)):
        grads.append(step_backward_ok(dh[:, t] + dprev, cache[t]))
        dprev = grads[-1][1]
    return grads


def backward_ok(dh, cache):
    """Right, and calls rnn_step_backward by name, as the notebook asks."""
    x, h0, Wx, Wh, h = cache
    N, T, H = dh.shape
    dx, dWx, dWh, db, dprev = np.zeros((N, T, Wx.shape[0])), 0, 0, 0, np.zeros((N, H))
    for t in reversed(range(T)):
        step = (x[:, t], h0 if t == 0 else h[:, t - 1], Wx, Wh, h[:, t])
        dx[:, t], dprev, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev, step)  # noqa: F821 - bound by calling()
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev, dWx, dWh, db


# --- 03: truncated BPTT, clipping, RTRL -----------------------------------------------


def _chunks(x, h0, Wx, Wh, b, loss_grad, k1, *, carry_state=True, global_t=True, skip_short=False, one_dict=False):
    T = x.shape[1]
    updates, h_start = [], h0
    total = {"Wx": np.zeros_like(Wx), "Wh": np.zeros_like(Wh), "b": np.zeros_like(b)}
    stop = T - k1 + 1 if skip_short else T
    for start in range(0, stop, k1):
        h, cache = R.rnn_forward(x[:, start : start + k1], h_start, Wx, Wh, b)
        dh = np.stack([loss_grad(h[:, j], start + j if global_t else j) for j in range(h.shape[1])], axis=1)
        _, _, dWx, dWh, db = R.rnn_backward(dh, cache)
        if one_dict:
            total["Wx"] += dWx
            total["Wh"] += dWh
            total["b"] += db
            updates.append(total)
        else:
            updates.append({"Wx": dWx, "Wh": dWh, "b": db})
        h_start = h[:, -1] if carry_state else h0
    return updates, h[:, -1]


def tbptt_state_reset(x, h0, Wx, Wh, b, loss_grad, k1, k2=None):
    return _chunks(x, h0, Wx, Wh, b, loss_grad, k1, carry_state=False)


def tbptt_local_t(x, h0, Wx, Wh, b, loss_grad, k1, k2=None):
    return _chunks(x, h0, Wx, Wh, b, loss_grad, k1, global_t=False)


def tbptt_skips_short_chunk(x, h0, Wx, Wh, b, loss_grad, k1, k2=None):
    return _chunks(x, h0, Wx, Wh, b, loss_grad, k1, skip_short=True)


def tbptt_one_dict(x, h0, Wx, Wh, b, loss_grad, k1, k2=None):
    return _chunks(x, h0, Wx, Wh, b, loss_grad, k1, one_dict=True)


def _norm(grads):
    return float(np.sqrt(sum(np.sum(g**2) for g in grads.values())))


def clip_per_parameter(grads, max_norm):
    clipped = {k: g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-6)) for k, g in grads.items()}
    return clipped, _norm(grads)


def clip_scales_up(grads, max_norm):
    n = _norm(grads)
    if not np.isfinite(n):
        raise ValueError("not finite")
    return {k: g * max_norm / (n + 1e-6) for k, g in grads.items()}, n


def clip_in_place(grads, max_norm):
    n = _norm(grads)
    if not np.isfinite(n):
        raise ValueError("not finite")
    for g in grads.values():
        g *= min(1.0, max_norm / (n + 1e-6))
    return grads, n


def clip_sum_of_norms(grads, max_norm):
    n = sum(float(np.linalg.norm(g)) for g in grads.values())
    return {k: g * min(1.0, max_norm / (n + 1e-6)) for k, g in grads.items()}, n


def clip_no_raise(grads, max_norm):
    n = _norm(grads)
    with np.errstate(invalid="ignore"):
        return {k: g * min(1.0, max_norm / (n + 1e-6)) for k, g in grads.items()}, n


def _rtrl(x, h0, Wx, Wh, b, loss_grad, *, carry=True, derivative=True, direct_current=False, with_h0=True):
    N, T, D = x.shape
    H = h0.shape[1]
    eye = np.eye(H)
    S = {"Wx": np.zeros((N, H, D, H)), "Wh": np.zeros((N, H, H, H)), "b": np.zeros((N, H, H)), "h0": np.tile(eye, (N, 1, 1))}
    grads = {"Wx": np.zeros((D, H)), "Wh": np.zeros((H, H)), "b": np.zeros(H), "h0": np.zeros((N, H))}
    h_prev = h0
    for t in range(T):
        h = np.tanh(x[:, t] @ Wx + h_prev @ Wh + b)
        d = (1 - h**2) if derivative else np.ones_like(h)
        direct = {"Wx": eye[None, :, None, :] * x[:, t][:, None, :, None],
                  "Wh": eye[None, :, None, :] * (h if direct_current else h_prev)[:, None, :, None],
                  "b": eye[None], "h0": 0}  # fmt: skip
        for k in S:
            back = np.einsum("mk,nm...->nk...", Wh, S[k]) if (carry or k == "h0") else 0
            S[k] = (back + direct[k]) * d.reshape(N, H, *[1] * (S[k].ndim - 2))
        g = loss_grad(h, t)
        for k in ("Wx", "Wh", "b"):
            grads[k] += np.einsum("nk,nk...->...", g, S[k])
        if with_h0:
            grads["h0"] += np.einsum("nk,nki->ni", g, S["h0"])
        h_prev = h
    return grads, h_prev


def rtrl_no_carry(x, h0, Wx, Wh, b, loss_grad):
    return _rtrl(x, h0, Wx, Wh, b, loss_grad, carry=False)


def rtrl_no_derivative(x, h0, Wx, Wh, b, loss_grad):
    return _rtrl(x, h0, Wx, Wh, b, loss_grad, derivative=False)


def rtrl_direct_current(x, h0, Wx, Wh, b, loss_grad):
    return _rtrl(x, h0, Wx, Wh, b, loss_grad, direct_current=True)


def rtrl_forgets_h0(x, h0, Wx, Wh, b, loss_grad):
    return _rtrl(x, h0, Wx, Wh, b, loss_grad, with_h0=False)


def rtrl_ok(x, h0, Wx, Wh, b, loss_grad):
    return _rtrl(x, h0, Wx, Wh, b, loss_grad)


# The right steps a sequence function's test also runs (its declared dependency).
STEP = {"rnn_step_forward": step_forward_ok}
STEP_BACKWARD = {"rnn_step_backward": step_backward_ok}

# (check, {function name: learner's function}, what the visible message must say)
MISTAKES = [
    ("one_hot", {"one_hot": one_hot_V_from_data}, "V is given"),
    ("one_hot", {"one_hot": one_hot_integers}, "expected a floating-point array"),
    ("one_hot", {"one_hot": one_hot_flat}, "out has shape (6, 5); expected (N, T, V) = (2, 3, 5)"),
    ("embedding_forward", {"embedding_forward": embedding_forward_time_major}, "time-major"),
    ("embedding_forward", {"embedding_forward": embedding_forward_no_cache}, "expected 2 values: out, cache"),
    ("embedding_backward", {"embedding_backward": embedding_backward_assign}, "np.add.at"),
    ("embedding_backward", {"embedding_backward": embedding_backward_returns_dout}, "dW has shape (2, 2, 3); expected (V, D) = (6, 3)"),
    ("embedding_backward", {"embedding_backward": embedding_backward_unpacks_shape}, "The cache is (idx, W), in that order"),
    ("perplexity", {"perplexity": perplexity_sign}, "The sign"),
    ("perplexity", {"perplexity": perplexity_per_sequence}, "one number for the whole batch"),
    ("perplexity", {"perplexity": perplexity_mean_of_sequences}, "mean of the per-sequence perplexities"),
    ("perplexity", {"perplexity": perplexity_argmax}, "correct token y[n, t]"),
    ("rnn_step_forward", {"rnn_step_forward": step_Wh_transposed}, "Wh is used transposed"),
    ("rnn_step_forward", {"rnn_step_forward": step_no_bias}, "Check the bias term"),
    ("rnn_step_forward", {"rnn_step_forward": step_bias_outside}, "bias is added after the tanh"),
    ("rnn_step_forward", {"rnn_step_forward": step_no_tanh}, "apply tanh"),
    ("rnn_step_forward", {"rnn_step_forward": step_tanh_per_term}, "apply it once, to the sum"),
    ("rnn_forward", {**STEP, "rnn_forward": forward_no_carry}, "Every step started from h0"),
    ("rnn_forward", {**STEP, "rnn_forward": forward_off_by_one}, "Off by one in time"),
    ("rnn_forward", {**STEP, "rnn_forward": forward_time_major}, "time-major"),
    # rnn_forward right, calling a wrong rnn_step_forward: a declared dependency, named first.
    ("rnn_forward", {"rnn_forward": calling(forward_ok, rnn_step_forward=step_Wh_transposed), "rnn_step_forward": step_Wh_transposed},
     "rnn_forward calls rnn_step_forward, which fails its own test: fix rnn_step_forward first"),
    ("rnn_step_backward", {"rnn_step_backward": step_backward_no_derivative}, "skip the tanh"),
    ("rnn_step_backward", {"rnn_step_backward": step_backward_dWh_transposed}, "dWh is transposed"),
    ("rnn_step_backward", {"rnn_step_backward": step_backward_db_mean}, "not its mean"),
    ("rnn_step_backward", {"rnn_step_backward": step_backward_db_per_row}, "db has shape (2, 4); expected (H,) = (4,)"),
    ("rnn_step_backward", {"rnn_step_backward": step_backward_dprev_h_not_transposed}, "dprev_h goes back through Wh transposed"),
    ("rnn_step_backward", {"rnn_step_backward": step_backward_tanh_twice}, "applies tanh twice"),
    ("rnn_backward", {**STEP_BACKWARD, "rnn_backward": backward_no_carry}, "not carried back"),
    ("rnn_backward", {**STEP_BACKWARD, "rnn_backward": backward_dWh_off_by_one}, "dWh uses the wrong state"),
    ("rnn_backward", {**STEP_BACKWARD, "rnn_backward": backward_carry_skips_derivative}, "carried gradient skips the tanh derivative"),
    ("rnn_backward", {**STEP_BACKWARD, "rnn_backward": backward_reads_step_caches}, "The cache is (x, h0, Wx, Wh, h), in that order"),
    ("rnn_backward", {"rnn_backward": calling(backward_ok, rnn_step_backward=step_backward_db_mean), "rnn_step_backward": step_backward_db_mean},
     "rnn_backward calls rnn_step_backward, which fails its own test: fix rnn_step_backward first"),
    ("truncated_bptt", {"truncated_bptt": tbptt_state_reset}, "Each chunk restarted from h0"),
    ("truncated_bptt", {"truncated_bptt": tbptt_local_t}, "not the position within a chunk"),
    ("truncated_bptt", {"truncated_bptt": tbptt_skips_short_chunk}, "is the last, shorter chunk skipped?"),
    ("truncated_bptt", {"truncated_bptt": tbptt_one_dict}, "each entry of the list the same object"),
    ("clip_grad_norm_global", {"clip_grad_norm_global": clip_per_parameter}, "clipped to its own norm"),
    ("clip_grad_norm_global", {"clip_grad_norm_global": clip_scales_up}, "scaled up"),
    ("clip_grad_norm_global", {"clip_grad_norm_global": clip_in_place}, "wrote into the arrays of grads"),
    ("clip_grad_norm_global", {"clip_grad_norm_global": clip_sum_of_norms}, "sum of the gradients' norms"),
    ("clip_grad_norm_global", {"clip_grad_norm_global": clip_no_raise}, "expected the function to raise ValueError"),
    ("rtrl", {"rtrl": rtrl_no_carry}, "sensitivities are not carried"),
    ("rtrl", {"rtrl": rtrl_no_derivative}, "tanh derivative is missing"),
    ("rtrl", {"rtrl": rtrl_direct_current}, "holds h_{t-1}"),
    ("rtrl", {"rtrl": rtrl_forgets_h0}, "grads.h0 is wrong"),
]


def _id(mistake):
    name, fns, _ = mistake
    return f"{name}-{list(fns.values())[-1].__name__}"


@pytest.mark.parametrize("name, functions, says", MISTAKES, ids=[_id(m) for m in MISTAKES])
def test_a_mistake_fails_and_is_named(name, functions, says):
    assert_mistake_fails_and_is_named(name, functions, says)


def all_mistakes():
    """The wrong answers of this file and of every tests/exercises/test_mistakes_<topic>.py (one file per assignment)."""
    import importlib

    found = list(MISTAKES)
    for path in sorted(Path(__file__).parent.glob("test_mistakes_*.py")):
        found += importlib.import_module(path.stem).MISTAKES
    return found


def test_every_graded_function_has_two_realistic_mistakes():
    counts = {}
    for name, _, _ in all_mistakes():
        counts[name] = counts.get(name, 0) + 1
    missing = set(check_names()) - set(counts)
    assert not missing, f"graded functions with no realistic wrong answer in tests/exercises: {sorted(missing)}"
    assert set(counts) <= set(check_names()), f"mistakes for unknown checks: {sorted(set(counts) - set(check_names()))}"
    few = {n: k for n, k in counts.items() if k < 2}
    assert not few, f"fewer than two realistic wrong answers: {few}"


def test_the_helpers_the_mistakes_are_built_from_are_right_without_the_mistake():
    assert in_process("rnn_step_backward", {"rnn_step_backward": step_backward_ok}) == (True, "")
    assert in_process("rnn_forward", {**STEP, "rnn_forward": calling(forward_ok, **STEP)}, hidden=True) == (True, "")
    assert in_process("rnn_backward", {**STEP_BACKWARD, "rnn_backward": _bptt}, hidden=True) == (True, "")
    assert in_process("rnn_backward", {**STEP_BACKWARD, "rnn_backward": calling(backward_ok, **STEP_BACKWARD)}, hidden=True) == (True, "")
    assert in_process("truncated_bptt", {"truncated_bptt": _chunks}, hidden=True) == (True, "")
    assert in_process("rtrl", {"rtrl": rtrl_ok}, hidden=True) == (True, "")
