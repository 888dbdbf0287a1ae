"""Tests for rnncourse.numpy.lru: the linear recurrent unit, forward and backward, sequential and parallel.

Independent truths: the LRU's equations written here in PyTorch with complex
tensors (forward and autograd), finite differences in float64 (the complex
initial state by its real and imaginary parts, PyTorch's convention), and the
statistics the initialisation promises.
"""

import numpy as np
import pytest
import torch

from rnncourse.numpy import gradcheck
from rnncourse.numpy.lru import lru_backward, lru_forward, lru_init, lru_lambda
from rnncourse.testing import assert_close

NAMES = ["x", "h0", "nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "skip"]
SHAPES = [(1, 1, 1, 1), (2, 5, 3, 4), (3, 12, 2, 6), (1, 33, 4, 3)]  # N, T, D, H


def params(N, T, D, H, seed=0, complex_h0=True):
    rng = np.random.default_rng(seed)
    p = lru_init(D, H, r_min=0.4, r_max=0.99, max_phase=np.pi, rng=rng)
    p["gamma_log"] = p["gamma_log"] + rng.uniform(-0.5, 0.5, H)  # trained away from its initial value
    h0 = rng.standard_normal((N, H)) + (1j * rng.standard_normal((N, H)) if complex_h0 else 0)
    return dict(x=rng.standard_normal((N, T, D)), h0=h0, **p)


def torch_reference(p, dy):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    lam = torch.exp(-torch.exp(t["nu_log"]) + 1j * torch.exp(t["theta_log"]))
    gamma = torch.exp(t["gamma_log"])
    B = torch.complex(t["B_re"], t["B_im"])
    C = torch.complex(t["C_re"], t["C_im"])
    h, ys = t["h0"], []
    for s in range(t["x"].shape[1]):
        xs = t["x"][:, s]
        h = lam * h + gamma * (xs.to(B.dtype) @ B)
        ys.append((h @ C).real + t["skip"] * xs)
    y = torch.stack(ys, 1)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), {k: v.grad.numpy() for k, v in t.items()}


@pytest.mark.parametrize("N, T, D, H", SHAPES)
def test_forward_and_backward_equal_torch_autograd_with_complex_tensors(N, T, D, H):
    p = params(N, T, D, H, seed=T)
    dy = np.random.default_rng(1).standard_normal((N, T, D))
    y_torch, g_torch = torch_reference(p, dy)
    for mode in ("sequential", "parallel"):
        y, cache = lru_forward(**p, mode=mode)
        assert_close(y, y_torch, f"{mode} y")
        for name, g in zip(NAMES, lru_backward(dy, cache)):
            if np.iscomplexobj(g_torch[name]):
                assert np.iscomplexobj(g), name
                assert_close(g.real, g_torch[name].real, f"Re d{name}")
                assert_close(g.imag, g_torch[name].imag, f"Im d{name}")
            else:
                assert not np.iscomplexobj(g), f"d{name} is complex; {name} is real"
                assert_close(g, g_torch[name], f"{mode} d{name}")


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
@pytest.mark.parametrize("N, T, D, H", SHAPES[:3])
def test_backward_matches_finite_differences(mode, N, T, D, H):
    p = params(N, T, D, H, seed=3)
    dy = np.random.default_rng(4).standard_normal((N, T, D))
    y, cache = lru_forward(**p, mode=mode)
    grads = dict(zip(NAMES, lru_backward(dy, cache)))
    # the complex h0 by its two real parts: dL/dRe h0 + i dL/dIm h0
    h0 = p.pop("h0")
    real_inputs = dict(p, h0_re=h0.real.copy(), h0_im=h0.imag.copy())

    def f(h0_re, h0_im, **rest):
        return lru_forward(h0=h0_re + 1j * h0_im, **rest, mode=mode)[0]

    analytic = {k: v for k, v in grads.items() if k != "h0"}
    analytic.update(h0_re=grads["h0"].real, h0_im=grads["h0"].imag)
    report = gradcheck(f, real_inputs, analytic, dy)
    assert report.ok, str(report)


def test_a_real_initial_state_gets_a_real_gradient():
    p = params(2, 4, 3, 2, complex_h0=False)
    assert not np.iscomplexobj(p["h0"])
    y, cache = lru_forward(**p)
    dh0 = lru_backward(np.ones_like(y), cache)[1]
    assert not np.iscomplexobj(dh0)


def test_h0_none_is_zeros():
    p = params(2, 4, 3, 2)
    y0, _ = lru_forward(**{**p, "h0": None})
    y1, _ = lru_forward(**{**p, "h0": np.zeros((2, 2), complex)})
    assert_close(y0, y1, "y")


def test_eigenvalues_stay_inside_the_unit_circle_for_any_parameter():
    nu_log = np.linspace(-30, 5, 200)
    theta_log = np.linspace(-5, 5, 200)
    modulus = np.abs(lru_lambda(nu_log, theta_log))
    assert np.all(modulus <= 1) and np.all(modulus[nu_log > -30] < 1)


def test_ring_initialisation_and_normalisation():
    rng = np.random.default_rng(0)
    H, r_min, r_max = 4000, 0.9, 0.999
    p = lru_init(8, H, r_min=r_min, r_max=r_max, max_phase=np.pi / 10, rng=rng)
    lam = lru_lambda(p["nu_log"], p["theta_log"])
    modulus = np.abs(lam)
    assert modulus.min() >= r_min - 1e-12 and modulus.max() <= r_max + 1e-12
    # uniform in area: |lambda|^2 uniform on [r_min^2, r_max^2], mean in the middle
    assert abs(np.mean(modulus**2) - (r_min**2 + r_max**2) / 2) < 0.002
    assert np.all(np.angle(lam) >= 0) and np.all(np.angle(lam) <= np.pi / 10 + 1e-12)
    # gamma = sqrt(1 - |lambda|^2): white noise in, stationary variance of each mode = 1
    assert_close(np.exp(p["gamma_log"]), np.sqrt(1 - modulus**2), "gamma")


def test_normalisation_keeps_every_modes_variance_equal():
    # white noise through modes with |lambda| from 0.5 to 0.999: without gamma the
    # variance grows like 1 / (1 - |lambda|^2) (up to 500x); with it every mode has ~ E|u|^2
    rng = np.random.default_rng(1)
    D, H, T = 1, 6, 6000
    p = lru_init(D, H, r_min=0.5, r_max=0.999, rng=rng)
    p["B_re"][:], p["B_im"][:] = 1.0, 0.0
    p["C_re"][:], p["C_im"][:] = 0.0, 0.0
    x = rng.standard_normal((1, T, D))
    _, cache = lru_forward(x, None, **p, mode="parallel")
    h = cache[-1][0, T // 2 :]
    variance = np.mean(np.abs(h) ** 2, axis=0)
    assert np.all(np.abs(variance - 1) < 0.35), variance


def test_bad_inputs_say_what_was_expected():
    p = params(2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"C_re has shape \(5, 3\); expected \(H, D\) = \(5, 4\)"):
        lru_forward(**{**p, "C_re": p["C_re"][:, :3]})
    with pytest.raises(ValueError, match=r"h0 has shape \(2, 4\); expected \(N, H\) = \(2, 5\)"):
        lru_forward(**{**p, "h0": p["h0"][:, :4]})
    with pytest.raises(ValueError, match="r_min, r_max are 0.9, 0.5"):
        lru_init(2, 3, r_min=0.9, r_max=0.5)
    with pytest.raises(ValueError, match="mode is 'fast'"):
        lru_forward(**p, mode="fast")
