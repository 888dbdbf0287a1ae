"""State-space models: zero-order-hold discretisation and the selective SSM (Mamba's S6), by hand.

N: batch size, T: sequence length, D: channels (input and output size),
S: state size per channel.

**Continuous time.** A linear time-invariant system with a diagonal ``A``,
for one input channel ``u(t)``::

    h'(t) = A h(t) + B u(t),        y(t) = C h(t)

**Zero-order hold** (零阶保持): if ``u`` is constant over a step of length
``delta``, the state after the step is exactly ``h_t = A_bar h_{t-1} + B_bar u_t``
with (:func:`zoh_discretize`, elementwise for a diagonal ``A``)::

    A_bar = exp(delta A),     B_bar = (exp(delta A) - 1) / A * B

**Selectivity** (Gu & Dao 2023). In S4 ``delta``, ``B`` and ``C`` are
parameters, the same at every step: the layer is a convolution of the input
with a fixed kernel and cannot decide, token by token, what to store. In S6
they are functions of the input (row vectors, per channel d and state s)::

    delta_t = softplus(x_t W_delta + b_delta)              (N, T, D)
    B_t = x_t W_B,   C_t = x_t W_C                         (N, T, S)
    A = -exp(A_log)                                        (D, S), negative: decaying modes
    h_t[d, s] = exp(delta_t[d] A[d, s]) h_{t-1}[d, s] + delta_t[d] B_t[s] x_t[d]
    y_t[d] = sum_s h_t[d, s] C_t[s] + skip[d] x_t[d]

A large ``delta_t`` resets a channel to the current input, a small one
keeps its state: the step size is a gate. ``A`` is discretised by the zero-
order hold and ``B`` by Euler's rule (``delta B``), as in Mamba's code. The
recurrence is elementwise in ``(d, s)``: a linear recurrence of
:mod:`rnncourse.numpy.scan` with ``D S`` channels, run by a loop
(``mode="sequential"``) or a scan (``mode="parallel"``).

The cache of :func:`selective_ssm_forward` is ``(x, h0, A_log, W_delta, W_B,
W_C, skip, delta, B, C, A_bar, h)``, with ``A_bar``, ``h`` of shape (N, T, D, S).
"""

import numpy as np

from ..validation import check_choice
from ._checks import at_least_one_step, dims, expect_shape, float_array, upstream_gradient
from .activations import softplus
from .scan import MODES, linear_recurrence, linear_recurrence_backward, parallel_scan

__all__ = ["zoh_discretize", "selective_ssm_step_forward", "selective_ssm_forward", "selective_ssm_backward"]


def zoh_discretize(A, B, delta):
    """Zero-order hold for a diagonal system ``h' = A h + B u``: ``A_bar = exp(delta A)``, ``B_bar = (A_bar - 1) / A * B``.

    Elementwise (arrays broadcast), real or complex. ``A`` must be non-zero;
    as ``A -> 0`` the formula tends to Euler's ``delta B``.

    Parameters
    ----------
    A : ndarray, the diagonal of the continuous state matrix.
    B : ndarray, the input weights, broadcastable with ``A``.
    delta : ndarray or float > 0, the step.

    Returns
    -------
    A_bar, B_bar : ndarrays of the broadcast shape.
    """
    A = np.asarray(A)
    if np.any(A == 0):
        raise ValueError("A has zero elements; zero-order hold divides by A (use delta * B where A = 0)")
    if np.any(np.asarray(delta) <= 0):
        raise ValueError("delta has elements <= 0; expected positive steps")
    A_bar = np.exp(delta * A)
    return A_bar, (A_bar - 1) / A * B


def _check(x, h0, A_log, W_delta, b_delta, W_B, W_C, skip, *, sequence=True):
    x = float_array("x", x)
    dims("x", x, "N T D" if sequence else "N D")
    if sequence:
        at_least_one_step("x", x)
    N, D = x.shape[0], x.shape[-1]
    A_log = float_array("A_log", A_log)
    dims("A_log", A_log, "D S")
    S = A_log.shape[1]
    expect_shape("A_log", A_log, "D S", (D, S))
    out = [x]
    name = "h0" if sequence else "prev_h"
    h0 = np.zeros((N, D, S), x.dtype) if h0 is None else float_array(name, h0)
    dims(name, h0, "N D S")
    expect_shape(name, h0, "N D S", (N, D, S))
    out += [h0, A_log]
    for pname, value, symbols, shape in (("W_delta", W_delta, "D D", (D, D)), ("b_delta", b_delta, "D", (D,)),
                                         ("W_B", W_B, "D S", (D, S)), ("W_C", W_C, "D S", (D, S)),
                                         ("skip", skip, "D", (D,))):
        value = float_array(pname, value)
        dims(pname, value, symbols)
        expect_shape(pname, value, symbols, shape)
        out.append(value)
    return out


def _selective_parameters(x, A_log, W_delta, b_delta, W_B, W_C):
    """``delta``, ``B``, ``C`` from the input, and ``A_bar = exp(delta A)``, for one step or all steps."""
    delta = softplus(x @ W_delta + b_delta)  # (..., D)
    B, C = x @ W_B, x @ W_C  # (..., S)
    A_bar = np.exp(delta[..., None] * -np.exp(A_log))  # (..., D, S)
    return delta, B, C, A_bar


def selective_ssm_step_forward(x, prev_h, A_log, W_delta, b_delta, W_B, W_C, skip):
    """One step of the selective SSM, as at inference: the state is updated from this token alone.

    N: batch size, D: channels, S: state size per channel.

    Parameters
    ----------
    x : ndarray (N, D), this step's input.
    prev_h : ndarray (N, D, S), the state.
    A_log : ndarray (D, S), ``A = -exp(A_log)``.
    W_delta : ndarray (D, D); b_delta : ndarray (D,): the step ``delta = softplus(x W_delta + b_delta)``.
    W_B, W_C : ndarray (D, S): ``B = x W_B``, ``C = x W_C``.
    skip : ndarray (D,), the direct path.

    Returns
    -------
    y : ndarray (N, D)
    next_h : ndarray (N, D, S)
    """
    x, prev_h, A_log, W_delta, b_delta, W_B, W_C, skip = _check(
        x, prev_h, A_log, W_delta, b_delta, W_B, W_C, skip, sequence=False)
    delta, B, C, A_bar = _selective_parameters(x, A_log, W_delta, b_delta, W_B, W_C)
    next_h = A_bar * prev_h + (delta * x)[:, :, None] * B[:, None, :]
    y = (next_h * C[:, None, :]).sum(axis=2) + skip * x
    return y, next_h


def selective_ssm_forward(x, h0, A_log, W_delta, b_delta, W_B, W_C, skip, *, mode="sequential"):
    """The selective SSM (S6) over a sequence.

    N: batch size, T: sequence length, D: channels, S: state size per channel.

    Parameters
    ----------
    x : ndarray (N, T, D), the inputs.
    h0 : ndarray (N, D, S) or None (zeros), the initial state.
    A_log : ndarray (D, S), ``A = -exp(A_log)``.
    W_delta : ndarray (D, D); b_delta : ndarray (D,): the step ``delta_t = softplus(x_t W_delta + b_delta)``.
    W_B, W_C : ndarray (D, S): ``B_t = x_t W_B``, ``C_t = x_t W_C``.
    skip : ndarray (D,), the direct path ``skip * x_t``.
    mode : ``"sequential"`` (a loop) or ``"parallel"`` (a scan).

    Returns
    -------
    y : ndarray (N, T, D)
    cache : ``(x, h0, A_log, W_delta, W_B, W_C, skip, delta, B, C, A_bar, h)``.
    """
    check_choice("mode", mode, MODES)
    x, h0, A_log, W_delta, b_delta, W_B, W_C, skip = _check(x, h0, A_log, W_delta, b_delta, W_B, W_C, skip)
    N, T, D = x.shape
    S = A_log.shape[1]
    delta, B, C, A_bar = _selective_parameters(x, A_log, W_delta, b_delta, W_B, W_C)
    u = (delta * x)[..., None] * B[:, :, None, :]  # delta_t[d] x_t[d] B_t[s], (N, T, D, S)
    recurrence = linear_recurrence if mode == "sequential" else parallel_scan
    # D S independent channels: one linear recurrence on (N, T, D*S)
    h = recurrence(A_bar.reshape(N, T, D * S), u.reshape(N, T, D * S), h0.reshape(N, D * S)).reshape(N, T, D, S)
    y = (h * C[:, :, None, :]).sum(axis=3) + skip * x
    return y, (x, h0, A_log, W_delta, W_B, W_C, skip, delta, B, C, A_bar, h)


def selective_ssm_backward(dy, cache):
    """Backward pass of :func:`selective_ssm_forward` (either mode).

    Parameters
    ----------
    dy : ndarray (N, T, D), upstream gradient of ``y``.

    Returns
    -------
    dx : ndarray (N, T, D)
    dh0 : ndarray (N, D, S)
    dA_log : ndarray (D, S)
    dW_delta : ndarray (D, D); db_delta : ndarray (D,)
    dW_B, dW_C : ndarray (D, S)
    dskip : ndarray (D,)
    """
    x, h0, A_log, W_delta, W_B, W_C, skip, delta, B, C, A_bar, h = cache
    N, T, D = x.shape
    S = A_log.shape[1]
    dy = upstream_gradient("dy", dy, "N T D", x.shape)

    # y_t[d] = sum_s h_t[d, s] C_t[s] + skip[d] x_t[d]
    dC = (dy[..., None] * h).sum(axis=2)  # (N, T, S)
    dh = dy[..., None] * C[:, :, None, :]  # (N, T, D, S)
    dskip = (dy * x).sum(axis=(0, 1))
    dx = dy * skip

    # h_t = A_bar_t h_{t-1} + u_t, D S channels
    flat = (N, T, D * S)
    dA_bar, du, dh0 = linear_recurrence_backward(dh.reshape(flat), A_bar.reshape(flat), h.reshape(flat),
                                                 h0.reshape(N, D * S))
    dA_bar, du, dh0 = dA_bar.reshape(N, T, D, S), du.reshape(N, T, D, S), dh0.reshape(N, D, S)

    # A_bar = exp(delta A), A = -exp(A_log)
    A = -np.exp(A_log)
    dA_bar_arg = dA_bar * A_bar  # gradient of delta A
    ddelta = (dA_bar_arg * A).sum(axis=3)
    dA_log = (dA_bar_arg * delta[..., None]).sum(axis=(0, 1)) * A  # dA/dA_log = A

    # u = delta x B
    du_B = (du * B[:, :, None, :]).sum(axis=3)  # gradient of delta_t[d] x_t[d]
    ddelta += du_B * x
    dx += du_B * delta
    dB = (du * (delta * x)[..., None]).sum(axis=2)  # (N, T, S)

    # delta = softplus(x W_delta + b_delta); B = x W_B; C = x W_C
    # softplus'(k) = sigmoid(k) = 1 - exp(-softplus(k)): read off delta, as tanh' is off h
    dk = ddelta * -np.expm1(-delta)
    dx += dk @ W_delta.T + dB @ W_B.T + dC @ W_C.T
    rows = x.reshape(N * T, D).T
    dW_delta = rows @ dk.reshape(N * T, D)
    dW_B = rows @ dB.reshape(N * T, S)
    dW_C = rows @ dC.reshape(N * T, S)
    return dx, dh0, dA_log, dW_delta, dk.sum(axis=(0, 1)), dW_B, dW_C, dskip
