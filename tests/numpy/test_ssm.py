"""Tests for rnncourse.numpy.ssm: zero-order hold and the selective SSM (S6).

Independent truths: the exact solution of the continuous system (a matrix
exponential of the augmented system, from SciPy), Mamba's equations written
here as a PyTorch loop (forward and autograd, non-zero biases), finite
differences in float64, and the step function in a loop.
"""

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from rnncourse.numpy import gradcheck
from rnncourse.numpy.ssm import selective_ssm_backward, selective_ssm_forward, selective_ssm_step_forward, zoh_discretize
from rnncourse.testing import assert_close

NAMES = ["x", "h0", "A_log", "W_delta", "b_delta", "W_B", "W_C", "skip"]
SHAPES = [(1, 1, 1, 1), (2, 5, 3, 4), (3, 9, 2, 3), (1, 20, 4, 2)]  # N, T, D, S


def params(N, T, D, S, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, D, S)),
        A_log=rng.uniform(-1, 1, (D, S)), W_delta=rng.standard_normal((D, D)) / np.sqrt(D),
        b_delta=rng.choice([-1, 1], D) * (0.3 + rng.random(D)),
        W_B=rng.standard_normal((D, S)), W_C=rng.standard_normal((D, S)), skip=rng.standard_normal(D),
    )  # fmt: skip


def torch_reference(p, dy):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    A = -torch.exp(t["A_log"])
    h, ys = t["h0"], []
    for s in range(t["x"].shape[1]):
        xs = t["x"][:, s]
        delta = torch.nn.functional.softplus(xs @ t["W_delta"] + t["b_delta"])
        B, C = xs @ t["W_B"], xs @ t["W_C"]
        h = torch.exp(delta[:, :, None] * A) * h + (delta * xs)[:, :, None] * B[:, None, :]
        ys.append((h * C[:, None, :]).sum(2) + t["skip"] * xs)
    y = torch.stack(ys, 1)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), {k: v.grad.numpy() for k, v in t.items()}


@pytest.mark.parametrize("N, T, D, S", SHAPES)
def test_forward_and_backward_equal_torch_autograd(N, T, D, S):
    p = params(N, T, D, S, seed=T)
    dy = np.random.default_rng(1).standard_normal((N, T, D))
    y_torch, g_torch = torch_reference(p, dy)
    for mode in ("sequential", "parallel"):
        y, cache = selective_ssm_forward(**p, mode=mode)
        assert_close(y, y_torch, f"{mode} y")
        for name, g in zip(NAMES, selective_ssm_backward(dy, cache)):
            assert_close(g, g_torch[name], f"{mode} d{name}")


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
@pytest.mark.parametrize("N, T, D, S", SHAPES[:3])
def test_backward_matches_finite_differences(mode, N, T, D, S):
    p = params(N, T, D, S, seed=2)
    dy = np.random.default_rng(3).standard_normal((N, T, D))
    _, cache = selective_ssm_forward(**p, mode=mode)
    analytic = dict(zip(NAMES, selective_ssm_backward(dy, cache)))
    report = gradcheck(lambda **a: selective_ssm_forward(**a, mode=mode)[0], p, analytic, dy)
    assert report.ok, str(report)


def test_step_in_a_loop_is_the_sequence():
    p = params(2, 6, 3, 4)
    y, _ = selective_ssm_forward(**p)
    h = p["h0"]
    weights = [p[k] for k in NAMES[2:]]
    for t in range(6):
        y_t, h = selective_ssm_step_forward(p["x"][:, t], h, *weights)
        assert_close(y_t, y[:, t], f"y[:, {t}]")


def test_the_step_size_is_a_gate():
    # delta -> infinity: the state forgets and holds only the current input (B_bar ~ delta B, A_bar -> 0);
    # delta -> 0: the state is kept and the input ignored
    p = params(1, 4, 2, 3)
    p["W_delta"][:] = 0
    for b_delta, keeps in ((-30.0, True), (30.0, False)):
        p["b_delta"][:] = b_delta
        y, cache = selective_ssm_forward(**p)
        h = cache[-1]
        if keeps:
            assert_close(h[0, -1], p["h0"][0], "state kept")
        else:
            assert np.abs(h[0, -1] - h[0, -2]).max() > 1.0  # overwritten every step


@pytest.mark.parametrize("A", [-0.7, -2.5 + 1.3j, -1e-3])
def test_zero_order_hold_is_exact_for_a_piecewise_constant_input(A):
    # the augmented system d/dt [h, u] = [[A, B], [0, 0]] [h, u] holds u constant;
    # its exact solution over one step is the matrix exponential (Van Loan's method)
    B, delta = 1.7, 0.3
    M = np.array([[A, B], [0, 0]], dtype=complex) * delta
    exact = expm(M)
    A_bar, B_bar = zoh_discretize(np.array(A), np.array(B), delta)
    assert abs(A_bar - exact[0, 0]) < 1e-12
    assert abs(B_bar - exact[0, 1]) < 1e-12


def test_zero_order_hold_tends_to_euler_for_small_steps():
    A, B = np.array([-1.0, -3.0]), np.array([2.0, 0.5])
    for delta in (1e-2, 1e-4):
        A_bar, B_bar = zoh_discretize(A, B, delta)
        assert np.abs(B_bar - delta * B).max() < delta**2 * 3
        assert np.abs(A_bar - (1 + delta * A)).max() < delta**2 * 5


def test_bad_inputs_say_what_was_expected():
    p = params(2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"W_C has shape \(4, 3\); expected \(D, S\) = \(4, 5\)"):
        selective_ssm_forward(**{**p, "W_C": p["W_C"][:, :3]})
    with pytest.raises(ValueError, match=r"h0 has shape \(2, 4, 4\); expected \(N, D, S\) = \(2, 4, 5\)"):
        selective_ssm_forward(**{**p, "h0": p["h0"][..., :4]})
    with pytest.raises(ValueError, match="A has zero elements"):
        zoh_discretize(np.array([0.0, -1.0]), np.ones(2), 0.1)
    with pytest.raises(ValueError, match="delta has elements <= 0"):
        zoh_discretize(np.array([-1.0]), np.ones(1), 0.0)
