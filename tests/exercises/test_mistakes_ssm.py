"""Assignment 09 (state-space models and linear attention): realistic wrong answers lose their points and are named.

Every function below is a learner's answer with one mistake, written the way
a learner would write it (not taken from rnncourse.checks). For each, the
visible cases must fail (so the notebook's test cell, and its points, fail),
the message must point at the mistake, and the grader's out-of-process mode
must give the same verdict and message as the learner's process.
"""

import numpy as np
import pytest

from exercisetools import assert_mistake_fails_and_is_named, calling, in_process, mistake_id

ASSIGNMENT = "09_ssm"


# --- right answers, written as a learner would: the base the mistakes are made from ----


def zoh_euler_A(A, B, delta):
    return 1 + delta * A, (np.exp(delta * A) - 1) / A * B


def zoh_euler_B(A, B, delta):
    return np.exp(delta * A), delta * B


def zoh_no_division(A, B, delta):
    A_bar = np.exp(delta * A)
    return A_bar, (A_bar - 1) * B


def zoh_ok(A, B, delta):
    A_bar = np.exp(delta * A)
    return A_bar, (A_bar - 1) / A * B


def _ssm_parts(x, A_log, W_delta, b_delta, W_B, W_C, *, softplus=True, sign=-1):
    k = x @ W_delta + b_delta
    delta = np.log1p(np.exp(k)) if softplus else k
    A = sign * np.exp(A_log)
    return delta, x @ W_B, x @ W_C, np.exp(delta[:, :, None] * A)


def ssm_step_ok(x, prev_h, A_log, W_delta, b_delta, W_B, W_C, skip):
    delta, B, C, A_bar = _ssm_parts(x, A_log, W_delta, b_delta, W_B, W_C)
    next_h = A_bar * prev_h + (delta * x)[:, :, None] * B[:, None, :]
    return (next_h * C[:, None, :]).sum(axis=2) + skip * x, next_h


def ssm_step_no_softplus(x, prev_h, A_log, W_delta, b_delta, W_B, W_C, skip):
    delta, B, C, A_bar = _ssm_parts(x, A_log, W_delta, b_delta, W_B, W_C, softplus=False)
    next_h = A_bar * prev_h + (delta * x)[:, :, None] * B[:, None, :]
    return (next_h * C[:, None, :]).sum(axis=2) + skip * x, next_h


def ssm_step_positive_A(x, prev_h, A_log, W_delta, b_delta, W_B, W_C, skip):
    delta, B, C, A_bar = _ssm_parts(x, A_log, W_delta, b_delta, W_B, W_C, sign=1)
    next_h = A_bar * prev_h + (delta * x)[:, :, None] * B[:, None, :]
    return (next_h * C[:, None, :]).sum(axis=2) + skip * x, next_h


def ssm_step_reads_old_state(x, prev_h, A_log, W_delta, b_delta, W_B, W_C, skip):
    delta, B, C, A_bar = _ssm_parts(x, A_log, W_delta, b_delta, W_B, W_C)
    next_h = A_bar * prev_h + (delta * x)[:, :, None] * B[:, None, :]
    return (prev_h * C[:, None, :]).sum(axis=2) + skip * x, next_h


def ssm_step_no_skip(x, prev_h, A_log, W_delta, b_delta, W_B, W_C, skip):
    delta, B, C, A_bar = _ssm_parts(x, A_log, W_delta, b_delta, W_B, W_C)
    next_h = A_bar * prev_h + (delta * x)[:, :, None] * B[:, None, :]
    return (next_h * C[:, None, :]).sum(axis=2), next_h


def ssm_step_write_without_delta(x, prev_h, A_log, W_delta, b_delta, W_B, W_C, skip):
    delta, B, C, A_bar = _ssm_parts(x, A_log, W_delta, b_delta, W_B, W_C)
    next_h = A_bar * prev_h + x[:, :, None] * B[:, None, :]
    return (next_h * C[:, None, :]).sum(axis=2) + skip * x, next_h


def _phi(a):
    return np.where(a > 0, a + 1, np.exp(np.minimum(a, 0)))


def la_step_ok(q, k, v, prev_S, prev_z, *, phi=_phi, normalize=True):
    phi_q, phi_k = phi(q), phi(k)
    S = prev_S + phi_k[:, :, None] * v[:, None, :]
    z = prev_z + phi_k
    out = (phi_q[:, None, :] @ S)[:, 0]
    if normalize:
        out = out / (phi_q * z).sum(axis=1, keepdims=True)
    return out, S, z


def _no_map(a):
    return a


def la_step_no_feature_map(q, k, v, prev_S, prev_z):
    return la_step_ok(q, k, v, prev_S, prev_z, phi=_no_map)


def la_step_unnormalised(q, k, v, prev_S, prev_z):
    return la_step_ok(q, k, v, prev_S, prev_z, normalize=False)


def _relu_map(a):
    return np.maximum(a, 0)


def la_step_relu(q, k, v, prev_S, prev_z):
    return la_step_ok(q, k, v, prev_S, prev_z, phi=_relu_map)


def la_forward_ok(q, k, v):
    N, T, F = q.shape
    out = np.empty((N, T, v.shape[2]))
    S, z = np.zeros((N, F, v.shape[2])), np.zeros((N, F))
    for t in range(T):
        out[:, t], S, z = linear_attention_rnn_step(q[:, t], k[:, t], v[:, t], S, z)  # noqa: F821
    return out, None


def la_forward_resets(q, k, v):
    N, T, F = q.shape
    out = np.empty((N, T, v.shape[2]))
    for t in range(T):
        S, z = np.zeros((N, F, v.shape[2])), np.zeros((N, F))
        out[:, t], S, z = linear_attention_rnn_step(q[:, t], k[:, t], v[:, t], S, z)  # noqa: F821
    return out, None


def la_forward_non_causal(q, k, v):
    """The memory of the whole sequence first, then every position reads it."""
    N, T, F = q.shape
    S, z = np.zeros((N, F, v.shape[2])), np.zeros((N, F))
    for t in range(T):
        _, S, z = linear_attention_rnn_step(q[:, t], k[:, t], v[:, t], S, z)  # noqa: F821
    phi_q = _phi(q)
    return (phi_q @ S) / (phi_q * z[:, None, :]).sum(axis=2, keepdims=True), None


STEP = {"linear_attention_rnn_step": la_step_ok}


def _forward(fn, step=la_step_ok):
    return {"linear_attention_rnn_step": step, "linear_attention_rnn_forward": calling(fn, linear_attention_rnn_step=step)}


MISTAKES = [
    ("zoh_discretize", {"zoh_discretize": zoh_euler_A}, "A_bar by Euler's rule"),
    ("zoh_discretize", {"zoh_discretize": zoh_euler_B}, "B_bar by Euler's rule"),
    ("zoh_discretize", {"zoh_discretize": zoh_no_division}, "B_bar is not divided by A"),
    ("selective_ssm_step_forward", {"selective_ssm_step_forward": ssm_step_no_softplus}, "delta is the pre-activation"),
    ("selective_ssm_step_forward", {"selective_ssm_step_forward": ssm_step_positive_A}, "A has the wrong sign"),
    ("selective_ssm_step_forward", {"selective_ssm_step_forward": ssm_step_reads_old_state}, "y reads the state before"),
    ("selective_ssm_step_forward", {"selective_ssm_step_forward": ssm_step_no_skip}, "The direct path is missing"),
    ("selective_ssm_step_forward", {"selective_ssm_step_forward": ssm_step_write_without_delta}, "written without the step"),
    ("linear_attention_rnn_step", {"linear_attention_rnn_step": la_step_no_feature_map}, "The feature map is missing"),
    ("linear_attention_rnn_step", {"linear_attention_rnn_step": la_step_unnormalised}, "out is not normalised"),
    ("linear_attention_rnn_step", {"linear_attention_rnn_step": la_step_relu}, "The feature map is relu"),
    ("linear_attention_rnn_forward", _forward(la_forward_resets), "Every step started from an empty memory"),
    ("linear_attention_rnn_forward", _forward(la_forward_non_causal), "Every position reads the whole sequence"),
    ("linear_attention_rnn_forward", _forward(la_forward_ok, la_step_unnormalised),
     "linear_attention_rnn_forward calls linear_attention_rnn_step, which fails its own test: fix linear_attention_rnn_step first"),
]  # fmt: skip


@pytest.mark.parametrize("name, functions, says", MISTAKES, ids=[mistake_id(m) for m in MISTAKES])
def test_a_mistake_fails_and_is_named(name, functions, says):
    assert_mistake_fails_and_is_named(name, functions, says)


def test_the_helpers_the_mistakes_are_built_from_are_right_without_the_mistake():
    assert in_process("zoh_discretize", {"zoh_discretize": zoh_ok}, hidden=True) == (True, "")
    assert in_process("selective_ssm_step_forward", {"selective_ssm_step_forward": ssm_step_ok}, hidden=True) == (True, "")
    assert in_process("linear_attention_rnn_step", STEP, hidden=True) == (True, "")
    assert in_process("linear_attention_rnn_forward", _forward(la_forward_ok), hidden=True) == (True, "")
