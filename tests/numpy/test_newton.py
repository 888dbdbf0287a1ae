"""Tests for rnncourse.numpy.newton: a tanh RNN solved by Newton's method with a scan, and the fixed-point baseline.

Independent truth: rnncourse.numpy.rnn_forward, the loop (itself tested
against torch.nn.RNN), and properties of the iterations that hold for any
triangular system.
"""

import numpy as np
import pytest

from rnncourse.numpy import rnn_forward
from rnncourse.numpy.newton import fixed_point_rnn, newton_rnn, rnn_residual
from rnncourse.testing import assert_close


def problem(N=2, T=64, D=3, H=6, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((N, T, D)), h0=0.5 * rng.standard_normal((N, H)),
        Wx=0.5 * rng.standard_normal((D, H)), Wh=scale * rng.standard_normal((H, H)) / np.sqrt(H),
        b=0.3 * rng.standard_normal(H),
    )  # fmt: skip


@pytest.mark.parametrize("parallel", [True, False])
def test_newton_reaches_the_loops_states_in_a_few_iterations(parallel):
    p = problem()
    h_loop, _ = rnn_forward(**p)
    h, residuals = newton_rnn(**p, iterations=12, tol=1e-13, parallel=parallel)
    assert_close(h, h_loop, "h")
    assert len(residuals) - 1 <= 10, residuals
    assert residuals[-1] <= 1e-13


def test_newton_converges_quadratically_near_the_solution():
    p = problem(T=128, seed=1)
    _, residuals = newton_rnn(**p, iterations=12, tol=1e-14)
    # once below 1e-2, each residual is at most a constant times the square of the one before
    close = [(r0, r1) for r0, r1 in zip(residuals, residuals[1:]) if r0 < 1e-2 and r1 > 1e-14]
    assert close, residuals
    for r0, r1 in close:
        assert r1 <= 50 * r0**2, residuals


def test_iteration_k_is_exact_on_the_first_k_steps():
    p = problem(T=20, scale=1.5, seed=2)
    h_loop, _ = rnn_forward(**p)
    for k in range(1, 5):
        for solver in (newton_rnn, fixed_point_rnn):
            h, _ = solver(**p, iterations=k)
            assert_close(h[:, :k], h_loop[:, :k], f"{solver.__name__}, {k} iterations")


def test_fixed_point_iteration_needs_far_more_iterations_than_newton():
    p = problem(T=256, scale=1.2, seed=3)
    _, newton = newton_rnn(**p, iterations=50, tol=1e-10)
    _, fixed = fixed_point_rnn(**p, iterations=50, tol=1e-10)
    assert len(newton) < 12
    assert len(fixed) > 3 * len(newton)


def test_the_residual_is_zero_at_the_rnns_states_only():
    p = problem()
    h, _ = rnn_forward(**p)
    assert np.abs(rnn_residual(h, **p)).max() < 1e-14
    assert np.abs(rnn_residual(h + 1e-3, **p)).max() > 1e-4


def test_bad_inputs_say_what_was_expected():
    p = problem()
    with pytest.raises(ValueError, match=r"Wx has shape \(3, 5\); expected \(D, H\) = \(3, 6\)"):
        newton_rnn(**{**p, "Wx": p["Wx"][:, :5]})
    with pytest.raises(ValueError, match=r"h_init has shape"):
        newton_rnn(**p, h_init=np.zeros((2, 3, 6)))
