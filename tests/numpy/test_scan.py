"""Tests for rnncourse.numpy.scan: the linear recurrence, its scans and its backward.

Independent truths: a loop written here in PyTorch (forward and autograd, real
and complex), finite differences in float64 (real, and for complex inputs
the real and imaginary parts separately, which is PyTorch's convention
``dL/dx + i dL/dy``), closed forms, and counts of the scans' rounds.
"""

import numpy as np
import pytest
import torch

from rnncourse.numpy import gradcheck
from rnncourse.numpy.scan import (
    blelloch_scan,
    compose_affine,
    hillis_steele_scan,
    linear_recurrence,
    linear_recurrence_backward,
    log_space_scan,
    matrix_linear_recurrence,
    matrix_parallel_scan,
    parallel_scan,
)
from rnncourse.testing import assert_close

SHAPES = [(1, 1, 1), (2, 2, 3), (1, 3, 2), (3, 5, 4), (2, 8, 3), (2, 13, 2), (1, 64, 3), (2, 100, 5)]  # N, T, H
SCANS = [linear_recurrence, parallel_scan, hillis_steele_scan, blelloch_scan]


def problem(N, T, H, *, complex_=False, dtype=np.float64, seed=0):
    """a in the unit disk (|a| up to 1.2 on a few steps, so growth is tested too), b and h0 standard normal."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (N, T, H)) * np.where(rng.random((N, T, H)) < 0.1, 1.2, 1.0)
    b, h0 = rng.standard_normal((N, T, H)), rng.standard_normal((N, H))
    if complex_:
        a = a * np.exp(1j * rng.uniform(-np.pi, np.pi, (N, T, H)))
        b = b + 1j * rng.standard_normal((N, T, H))
        h0 = h0 + 1j * rng.standard_normal((N, H))
        return a, b, h0
    return a.astype(dtype), b.astype(dtype), h0.astype(dtype)


def assert_close_complex(actual, expected, name, dtype=np.float64):
    assert np.iscomplexobj(actual) == np.iscomplexobj(expected), f"{name}: complex {np.iscomplexobj(actual)}"
    assert_close(np.real(actual), np.real(expected), f"Re {name}", dtype)
    assert_close(np.imag(actual), np.imag(expected), f"Im {name}", dtype)


def torch_loop(a, b, h0, dh=None):
    """The recurrence as a loop of torch operations; with dh, also autograd's gradients of a, b, h0."""
    at, bt, h0t = (torch.tensor(v, requires_grad=True) for v in (a, b, h0))
    hs, h = [], h0t
    for t in range(at.shape[1]):
        h = at[:, t] * h + bt[:, t]
        hs.append(h)
    h = torch.stack(hs, 1)
    if dh is None:
        return h.detach().numpy()
    h.backward(torch.tensor(dh))
    return h.detach().numpy(), at.grad.numpy(), bt.grad.numpy(), h0t.grad.numpy()


def complex_numeric_gradient(f, inputs, name, dout, eps=1e-6):
    """PyTorch's convention by finite differences: dL/dRe + i dL/dIm of L = Re sum(conj(dout) f(**inputs))."""
    def loss(values):
        return float(np.real(np.sum(np.conj(dout) * f(**values))))

    z = inputs[name]
    grad = np.zeros(z.shape, complex)
    for i in np.ndindex(z.shape):
        for unit in (1, 1j):
            plus, minus = dict(inputs), dict(inputs)
            plus[name], minus[name] = z.copy(), z.copy()
            plus[name][i] += eps * unit
            minus[name][i] -= eps * unit
            grad[i] += unit * (loss(plus) - loss(minus)) / (2 * eps)
    return grad


# ------------------------------------------------------------ forward


@pytest.mark.parametrize("scan", SCANS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("N, T, H", SHAPES)
def test_every_scan_equals_the_loop_in_torch(scan, N, T, H):
    a, b, h0 = problem(N, T, H, seed=T)
    assert_close(scan(a, b, h0), torch_loop(a, b, h0), scan.__name__)


@pytest.mark.parametrize("scan", SCANS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("N, T, H", SHAPES[2:6])
def test_every_scan_equals_the_loop_for_complex_inputs(scan, N, T, H):
    a, b, h0 = problem(N, T, H, complex_=True, seed=T)
    assert_close_complex(scan(a, b, h0), torch_loop(a, b, h0), scan.__name__)


@pytest.mark.parametrize("scan", SCANS, ids=lambda f: f.__name__)
def test_float32_stays_float32(scan):
    a, b, h0 = problem(2, 9, 3, dtype=np.float32)
    h = scan(a, b, h0)
    assert h.dtype == np.float32
    assert_close(h, torch_loop(*(v.astype(np.float64) for v in (a, b, h0))), scan.__name__, np.float32)


@pytest.mark.parametrize("scan", SCANS, ids=lambda f: f.__name__)
def test_h0_none_is_zeros_and_h0_enters_as_a_first_step(scan):
    a, b, h0 = problem(2, 7, 3)
    assert_close(scan(a, b), scan(a, b, np.zeros_like(h0)), "h0=None")
    # only h0 non-zero: h_t = a_t ... a_1 h0
    assert_close(scan(a, np.zeros_like(b), h0), np.cumprod(a, axis=1) * h0[:, None], "h0 alone")


def test_closed_form_of_a_constant_coefficient():
    # a_t = r, b_t = 1, h0 = 0: h_t = 1 + r + ... + r^{t-1} = (1 - r^t) / (1 - r)
    T, r = 50, 0.9
    a, b = np.full((1, T, 1), r), np.ones((1, T, 1))
    t = np.arange(1, T + 1)
    for scan in SCANS:
        assert_close(scan(a, b)[0, :, 0], (1 - r**t) / (1 - r), scan.__name__)


def test_compose_affine_is_composition_and_associative_but_not_commutative():
    rng = np.random.default_rng(3)
    p, q, r = [(rng.standard_normal(4), rng.standard_normal(4)) for _ in range(3)]
    h = rng.standard_normal(4)
    a, b = compose_affine(p, q)
    assert_close(a * h + b, q[0] * (p[0] * h + p[1]) + q[1], "first p, then q")
    left = compose_affine(compose_affine(p, q), r)
    right = compose_affine(p, compose_affine(q, r))
    for x, y in zip(left, right):
        assert_close(x, y, "associativity")
    assert not np.allclose(compose_affine(p, q)[1], compose_affine(q, p)[1])


@pytest.mark.parametrize("log2_T", [1, 3, 6, 10])
def test_depth_and_work_of_the_two_scans(log2_T):
    T = 2**log2_T
    a, b, _ = problem(1, T, 1)
    hs, bl = [], []
    hillis_steele_scan(a, b, trace=hs)
    blelloch_scan(a, b, trace=bl)
    assert len(hs) == log2_T and sum(hs) == T * log2_T - (T - 1)
    assert len(bl) == 2 * log2_T - 1 and sum(bl) == 2 * T - 2 - log2_T


def test_work_efficient_scan_does_less_than_twice_the_loops_work_at_any_length():
    for T in range(1, 70):
        a, b, _ = problem(1, T, 1, seed=T)
        bl = []
        blelloch_scan(a, b, trace=bl)
        assert sum(bl) <= 2 * (T - 1), T
        assert len(bl) <= 2 * int(np.ceil(np.log2(T))) if T > 1 else not bl


# ------------------------------------------------------------ backward


@pytest.mark.parametrize("N, T, H", SHAPES)
def test_backward_matches_torch_autograd(N, T, H):
    a, b, h0 = problem(N, T, H, seed=T + 1)
    dh = np.random.default_rng(9).standard_normal((N, T, H))
    h = linear_recurrence(a, b, h0)
    _, da_t, db_t, dh0_t = torch_loop(a, b, h0, dh)
    da, db, dh0 = linear_recurrence_backward(dh, a, h, h0)
    assert_close(da, da_t, "da")
    assert_close(db, db_t, "db")
    assert_close(dh0, dh0_t, "dh0")


@pytest.mark.parametrize("N, T, H", [(1, 1, 1), (2, 3, 2), (2, 6, 3)])
def test_backward_matches_finite_differences(N, T, H):
    a, b, h0 = problem(N, T, H, seed=5)
    dh = np.random.default_rng(6).standard_normal((N, T, H))
    da, db, dh0 = linear_recurrence_backward(dh, a, linear_recurrence(a, b, h0), h0)
    report = gradcheck(lambda **p: linear_recurrence(**p), dict(a=a, b=b, h0=h0), dict(a=da, b=db, h0=dh0), dh)
    assert report.ok, str(report)


@pytest.mark.parametrize("N, T, H", [(1, 1, 1), (2, 4, 3), (1, 9, 2)])
def test_complex_backward_follows_pytorchs_convention(N, T, H):
    a, b, h0 = problem(N, T, H, complex_=True, seed=7)
    rng = np.random.default_rng(8)
    dh = rng.standard_normal((N, T, H)) + 1j * rng.standard_normal((N, T, H))
    da, db, dh0 = linear_recurrence_backward(dh, a, linear_recurrence(a, b, h0), h0)
    _, da_t, db_t, dh0_t = torch_loop(a, b, h0, dh)
    for got, want, name in ((da, da_t, "da"), (db, db_t, "db"), (dh0, dh0_t, "dh0")):
        assert_close_complex(got, want, name)
    inputs = dict(a=a, b=b, h0=h0)
    for got, name in ((da, "a"), (db, "b"), (dh0, "h0")):
        numeric = complex_numeric_gradient(linear_recurrence, inputs, name, dh)
        assert np.abs(got - numeric).max() <= 1e-7 * max(1.0, np.abs(numeric).max()), name


def test_backward_is_the_recurrence_run_backwards():
    # g_t = dh_t + a_{t+1} g_{t+1}: with dh only at the last step, g_t = a_{t+1} ... a_T dh_T
    a, b, h0 = problem(1, 6, 2)
    dh = np.zeros_like(a)
    dh[:, -1] = 1.0
    _, db, _ = linear_recurrence_backward(dh, a, linear_recurrence(a, b, h0), h0)
    expected = np.stack([np.prod(a[:, t + 1 :], axis=1) for t in range(a.shape[1])], axis=1)
    assert_close(db, expected, "db = g")


def test_backward_does_not_modify_its_inputs():
    a, b, h0 = problem(2, 5, 3)
    h = linear_recurrence(a, b, h0)
    dh = np.ones_like(h)
    saved = [v.copy() for v in (dh, a, h, h0)]
    linear_recurrence_backward(dh, a, h, h0)
    for before, after in zip(saved, (dh, a, h, h0)):
        np.testing.assert_array_equal(before, after)


# ------------------------------------------------------------ log space


@pytest.mark.parametrize("T", [1, 2, 17, 300])
def test_log_space_scan_equals_the_loop(T):
    rng = np.random.default_rng(T)
    a, b, h0 = rng.uniform(0.01, 1, (2, T, 3)), rng.uniform(0.01, 2, (2, T, 3)), rng.uniform(0, 1, (2, 3))
    assert_close(np.exp(log_space_scan(np.log(a), np.log(b), np.log(h0))), linear_recurrence(a, b, h0), "h")
    assert_close(np.exp(log_space_scan(np.log(a), np.log(b))), linear_recurrence(a, b), "h (h0 = 0)")


def test_log_space_scan_keeps_states_whose_coefficient_products_underflow():
    # a_1 ... a_t falls below the smallest float64 (1e-308) after ~700 steps of 0.36;
    # h_t stays near b / (1 - a) and the log-space scan keeps it
    T = 2000
    log_a = np.full((1, T, 1), np.log(0.36))
    log_b = np.zeros((1, T, 1))
    h = np.exp(log_space_scan(log_a, log_b))
    assert np.all(np.isfinite(h))
    assert_close(h[0, -1, 0], 1 / (1 - 0.36), "steady state")


# ------------------------------------------------------------ matrices


@pytest.mark.parametrize("N, T, H", [(1, 1, 2), (2, 5, 3), (2, 16, 2), (1, 33, 4)])
def test_matrix_scan_equals_the_loop_in_torch(N, T, H):
    rng = np.random.default_rng(T)
    A, b, h0 = rng.standard_normal((N, T, H, H)) / np.sqrt(H), rng.standard_normal((N, T, H)), rng.standard_normal((N, H))
    At, bt, h = torch.tensor(A), torch.tensor(b), torch.tensor(h0)
    hs = []
    for t in range(T):
        h = (h[:, None] @ At[:, t])[:, 0] + bt[:, t]
        hs.append(h)
    expected = torch.stack(hs, 1).numpy()
    assert_close(matrix_linear_recurrence(A, b, h0), expected, "loop")
    assert_close(matrix_parallel_scan(A, b, h0), expected, "scan")


def test_matrix_scan_with_diagonal_matrices_is_the_elementwise_scan():
    a, b, h0 = problem(2, 11, 3)
    A = a[..., None] * np.eye(3)
    assert_close(matrix_parallel_scan(A, b, h0), parallel_scan(a, b, h0), "diagonal")


# ------------------------------------------------------------ bad input


def test_bad_inputs_say_what_was_expected():
    a, b, h0 = problem(2, 4, 3)
    with pytest.raises(ValueError, match=r"b has shape \(2, 3, 3\); expected \(N, T, H\) = \(2, 4, 3\)"):
        parallel_scan(a, b[:, :3], h0)
    with pytest.raises(ValueError, match=r"h0 has shape \(2, 2\); expected \(N, H\) = \(2, 3\)"):
        linear_recurrence(a, b, h0[:, :2])
    with pytest.raises(ValueError, match="a has dtype int64; expected a floating-point or complex array"):
        parallel_scan(np.ones((2, 4, 3), np.int64), b)
    with pytest.raises(ValueError, match=r"expected \(N, T, H\) with 3 dimensions"):
        parallel_scan(a[0], b[0])
    with pytest.raises(ValueError, match="at least one time step"):
        linear_recurrence(a[:, :0], b[:, :0])
    with pytest.raises(ValueError, match=r"dh has shape \(2, 4, 2\)"):
        linear_recurrence_backward(b[..., :2], a, b, h0)
    with pytest.raises(ValueError, match="complex"):
        log_space_scan(a + 0j, b)
