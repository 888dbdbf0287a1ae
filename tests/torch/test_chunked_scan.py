"""Tests for rnncourse.torch.scan: the chunked parallel scan and its backward.

Independent truths: rnncourse.numpy.scan (the loop and its hand-written
backward, themselves tested against autograd), autograd through the torch
loop (real and complex), torch.autograd.gradcheck and gradgradcheck in
float64 (gradients of the second order).
"""

import numpy as np
import pytest
import torch

import rnncourse.numpy as rn
from rnncourse.testing import assert_close
from rnncourse.torch.scan import linear_recurrence, parallel_scan, scan_backend

SHAPES = [(1, 1, 1), (2, 2, 3), (3, 7, 2), (2, 64, 3), (2, 65, 4), (1, 300, 2), (2, 1000, 3)]  # N, T, H
CHUNKS = [2, 4, 64]


def problem(N, T, H, dtype=torch.float64, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    real = torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32
    a = (torch.rand(N, T, H, generator=g, dtype=real) * 2 - 1) * 0.99
    b = torch.randn(N, T, H, generator=g, dtype=real)
    h0 = torch.randn(N, H, generator=g, dtype=real)
    if dtype.is_complex:
        a = a * torch.exp(1j * (torch.rand(N, T, H, generator=g, dtype=real) * 6 - 3))
        b = b + 1j * torch.randn(N, T, H, generator=g, dtype=real)
        h0 = h0 + 1j * torch.randn(N, H, generator=g, dtype=real)
    return [t.to(dtype).requires_grad_(requires_grad) for t in (a, b, h0)]


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("N, T, H", SHAPES)
def test_chunked_scan_equals_the_numpy_loop(N, T, H, chunk):
    a, b, h0 = problem(N, T, H, seed=T)
    h = parallel_scan(a, b, h0, chunk_size=chunk, backend="chunked")
    assert_close(h, rn.linear_recurrence(a.numpy(), b.numpy(), h0.numpy()), f"chunk {chunk}")


@pytest.mark.parametrize("N, T, H", SHAPES[1:6])
def test_complex_scan_and_gradients_equal_autograd_through_the_loop(N, T, H):
    a, b, h0 = problem(N, T, H, torch.complex128, seed=T, requires_grad=True)
    dh = torch.randn(N, T, H, dtype=torch.complex128)
    h_loop = linear_recurrence(a, b, h0)
    grads_loop = torch.autograd.grad(h_loop, (a, b, h0), dh)
    h = parallel_scan(a, b, h0, chunk_size=4)
    grads = torch.autograd.grad(h, (a, b, h0), dh)
    for got, want, name in zip((h, *grads), (h_loop, *grads_loop), ("h", "da", "db", "dh0")):
        assert_close(got.real, want.real, f"Re {name}")
        assert_close(got.imag, want.imag, f"Im {name}")


@pytest.mark.parametrize("N, T, H", SHAPES)
def test_gradients_equal_the_numpy_backward(N, T, H):
    a, b, h0 = problem(N, T, H, seed=T + 1, requires_grad=True)
    dh = torch.randn(N, T, H, dtype=torch.float64)
    h = parallel_scan(a, b, h0, chunk_size=4)
    da, db, dh0 = torch.autograd.grad(h, (a, b, h0), dh)
    want = rn.linear_recurrence_backward(dh.numpy(), a.detach().numpy(), h.detach().numpy(), h0.detach().numpy())
    for got, expected, name in zip((da, db, dh0), want, ("da", "db", "dh0")):
        assert_close(got, expected, name)


def test_gradcheck_and_gradgradcheck_in_float64():
    a, b, h0 = problem(2, 11, 2, seed=3, requires_grad=True)

    def f(a, b, h0):
        return parallel_scan(a, b, h0, chunk_size=4)

    assert torch.autograd.gradcheck(f, (a, b, h0))
    assert torch.autograd.gradgradcheck(f, (a, b, h0))


def test_complex_gradcheck():
    a, b, h0 = problem(1, 6, 2, torch.complex128, seed=4, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, h0: parallel_scan(a, b, h0, chunk_size=2), (a, b, h0))


def test_float32_stays_float32_and_is_close_to_float64():
    a, b, h0 = problem(2, 500, 3, torch.float32, seed=5)
    h = parallel_scan(a, b, h0)
    assert h.dtype == torch.float32
    assert_close(h, rn.linear_recurrence(*(t.double().numpy() for t in (a, b, h0))), "h", np.float32)


def test_no_product_of_coefficients_underflows():
    # a = 1e-3 everywhere: a product of 64 coefficients is 1e-192, of 128 it underflows in float64;
    # h_t = 1e-3 h_{t-1} + 1 stays 1 / (1 - 1e-3)
    a = torch.full((1, 5000, 1), 1e-3, dtype=torch.float64)
    b = torch.ones(1, 5000, 1, dtype=torch.float64)
    h = parallel_scan(a, b, chunk_size=64)
    assert torch.isfinite(h).all()
    assert_close(h[0, -1, 0], torch.tensor(1 / (1 - 1e-3), dtype=torch.float64), "steady state")


def test_h0_none_is_zeros():
    a, b, h0 = problem(2, 9, 3)
    assert_close(parallel_scan(a, b), parallel_scan(a, b, torch.zeros_like(h0)), "h")


def test_auto_backend_is_chunked_on_the_cpu_and_for_complex_tensors():
    a, _, _ = problem(1, 2, 1)
    assert scan_backend(a) == "chunked"
    assert scan_backend(a.to(torch.complex128)) == "chunked"
    assert scan_backend(a, "triton") == "triton"


def test_bad_inputs_say_what_was_expected():
    a, b, h0 = problem(2, 4, 3)
    with pytest.raises(ValueError, match=r"b has shape \(2, 3, 3\); expected \(N, T, H\) = \(2, 4, 3\)"):
        parallel_scan(a, b[:, :3])
    with pytest.raises(ValueError, match=r"h0 has shape \(2, 2\); expected \(N, H\) = \(2, 3\)"):
        parallel_scan(a, b, h0[:, :2])
    with pytest.raises(ValueError, match="expected one dtype"):
        parallel_scan(a, b.float())
    with pytest.raises(ValueError, match="chunk_size is 1"):
        parallel_scan(a, b, chunk_size=1)
    with pytest.raises(ValueError, match="backend is 'gpu'"):
        parallel_scan(a, b, backend="gpu")
    with pytest.raises(ValueError, match="the Triton scan takes real tensors"):
        parallel_scan(a.to(torch.complex128), b.to(torch.complex128), backend="triton")
    with pytest.raises(ValueError, match="expected floating-point or complex tensors"):
        linear_recurrence(a.long(), b.long())
