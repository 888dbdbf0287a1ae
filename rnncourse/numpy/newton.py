"""A nonlinear RNN solved for all time steps at once: Newton's method with a scan (the idea of ParaRNN).

N: batch size, T: sequence length, D: input size, H: hidden size.

The tanh RNN ``h_t = tanh(x_t Wx + h_{t-1} Wh + b)`` is, over a whole
sequence, a system of T H equations in the T H unknowns ``h_1 .. h_T``::

    F_t(h) = h_t - tanh(x_t Wx + h_{t-1} Wh + b) = 0,     t = 1..T

The loop solves it by forward substitution, one step after another. Newton's
method solves it by iteration: at the current guess ``h``, linearise ``F``
and solve ``F(h) + J(h) delta = 0`` for the correction ``delta``. Only
``h_t`` and ``h_{t-1}`` appear in ``F_t``, so the Jacobian is block
bidiagonal and the linear system is a *linear recurrence* with a matrix per
step (row vectors, ``s_t = 1 - tanh(a_t)^2`` at the current guess)::

    delta_t = delta_{t-1} (Wh diag(s_t)) - F_t,      delta_0 = 0

which a parallel scan solves in ``O(log T)`` steps
(:func:`rnncourse.numpy.scan.matrix_parallel_scan`). Near the solution
Newton's method converges quadratically, so a few iterations, each one scan,
replace T sequential steps (Danieli et al. 2025, "ParaRNN", who also make
the Jacobians diagonal or block-diagonal so that a combine costs less than a
dense ``H^3`` product). As the Jacobian is triangular, iteration k is exact
on at least the first k steps, so T iterations always suffice.

The baseline, :func:`fixed_point_rnn`, iterates ``h <- tanh(x Wx + shift(h) Wh + b)``
on all steps at once (Jacobi's method): each iteration is as parallel, but
it converges only linearly, one more exact step per iteration in the worst case.
"""

import numpy as np

from ._checks import expect_shape, float_array, recurrent_inputs
from .scan import matrix_linear_recurrence, matrix_parallel_scan

__all__ = ["rnn_residual", "newton_rnn", "fixed_point_rnn"]


def _previous(h0, h):
    """``[h0, h_1, ..., h_{T-1}]``: the state each step starts from, (N, T, H)."""
    return np.concatenate([h0[:, None], h[:, :-1]], axis=1)


def rnn_residual(h, x, h0, Wx, Wh, b):
    """``F_t = h_t - tanh(x_t Wx + h_{t-1} Wh + b)`` for every t at once; zero exactly at the RNN's states.

    Parameters
    ----------
    h : ndarray (N, T, H), a guess of every state.
    x : ndarray (N, T, D); h0 : ndarray (N, H); Wx : (D, H); Wh : (H, H); b : (H,).

    Returns
    -------
    F : ndarray (N, T, H)
    """
    return h - np.tanh(x @ Wx + _previous(h0, h) @ Wh + b)


def _first_guess(h_init, x, h0, Wx, Wh, b):
    """The states (N, T, H) an iteration starts from: ``h_init`` checked and copied, or zeros if None."""
    N, T, _ = x.shape
    H = Wh.shape[0]
    if h_init is None:
        return np.zeros((N, T, H), np.result_type(x, h0, Wx, Wh, b))
    return expect_shape("h_init", float_array("h_init", h_init).copy(), "N T H", (N, T, H))


def newton_rnn(x, h0, Wx, Wh, b, *, iterations=10, tol=0.0, h_init=None, parallel=True):
    """The tanh RNN's states by Newton's method on all time steps at once, one scan per iteration.

    Parameters
    ----------
    x : ndarray (N, T, D), the inputs.
    h0 : ndarray (N, H), the initial state.
    Wx : ndarray (D, H); Wh : ndarray (H, H); b : ndarray (H,): the RNN's weights.
    iterations : the most Newton iterations.
    tol : stop once the largest residual ``|F_t(h)|`` is at most this.
    h_init : ndarray (N, T, H) or None: the first guess (zeros if None).
    parallel : solve each linear system by :func:`~rnncourse.numpy.scan.matrix_parallel_scan`
        (True) or by the loop :func:`~rnncourse.numpy.scan.matrix_linear_recurrence`.

    Returns
    -------
    h : ndarray (N, T, H), the last iterate.
    residuals : list of float, the largest ``|F_t(h)|`` of the first guess and after each iteration.
    """
    x, (h0,), Wx, Wh, (b,) = recurrent_inputs(x, {"h0": h0}, Wx, Wh, {"b": b}, gates=1)  # as rnn_forward
    h = _first_guess(h_init, x, h0, Wx, Wh, b)
    solve = matrix_parallel_scan if parallel else matrix_linear_recurrence
    xWx_b = x @ Wx + b
    residuals = []
    for k in range(iterations + 1):
        tanh_a = np.tanh(xWx_b + _previous(h0, h) @ Wh)
        F = h - tanh_a
        residuals.append(float(np.abs(F).max()))
        if residuals[-1] <= tol or k == iterations:
            break
        # Jacobian blocks dF_t/dh_{t-1} = -Wh diag(s_t): the correction is a linear recurrence
        s = 1 - tanh_a**2  # (N, T, H)
        A = Wh[None, None] * s[:, :, None, :]  # (N, T, H, H): Wh with column j scaled by s_tj
        h = h + solve(A, -F)  # delta_0 = 0: h0 is given
    return h, residuals


def fixed_point_rnn(x, h0, Wx, Wh, b, *, iterations=10, tol=0.0, h_init=None):
    """The baseline: Jacobi iteration ``h <- tanh(x Wx + [h0, h_1..h_{T-1}] Wh + b)``, all steps at once.

    Same parameters and returns as :func:`newton_rnn`. Iteration k is exact
    on the first k steps; convergence beyond that is only linear, at the rate
    the RNN forgets (the norm of ``Wh diag(s)``).
    """
    x, (h0,), Wx, Wh, (b,) = recurrent_inputs(x, {"h0": h0}, Wx, Wh, {"b": b}, gates=1)  # as rnn_forward
    h = _first_guess(h_init, x, h0, Wx, Wh, b)
    xWx_b = x @ Wx + b
    residuals = []
    for k in range(iterations + 1):
        new_h = np.tanh(xWx_b + _previous(h0, h) @ Wh)
        residuals.append(float(np.abs(h - new_h).max()))
        if residuals[-1] <= tol or k == iterations:
            break
        h = new_h
    return h, residuals
