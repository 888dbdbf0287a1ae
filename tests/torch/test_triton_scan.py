"""The Triton scan kernel (rnncourse.torch.triton.scan) against the chunked scan and the NumPy loop.

Without a GPU the kernel runs in Triton's interpreter on CPU tensors:
``TRITON_INTERPRET=1`` is set here before the kernel module is first
imported (as in test_triton_kernels.py). With CUDA the same tests run
natively. The interpreter runs every operation of every program in NumPy,
so most tests use blocks of 8 steps and 4 channels and shapes that cross
them (the carry between blocks, the masked edges); one runs the default
blocks (64 steps, 32 channels).
"""

import functools
import os

import numpy as np
import pytest
import torch

NATIVE = torch.cuda.is_available()
if not NATIVE:
    os.environ["TRITON_INTERPRET"] = "1"  # before rnncourse.torch.triton.scan is imported
pytest.importorskip("triton")

import rnncourse.numpy as rn  # noqa: E402
from rnncourse.testing import assert_close  # noqa: E402
from rnncourse.torch.scan import parallel_scan  # noqa: E402
from rnncourse.torch.triton import kernels, scan  # noqa: E402

if kernels.INTERPRETED == NATIVE:
    pytest.skip("the kernels were created before TRITON_INTERPRET could be set for this machine "
                "(run this file on its own)", allow_module_level=True)

DEVICE = "cuda" if NATIVE else "cpu"
SHAPES = [(1, 1, 1), (2, 7, 3), (1, 8, 5), (2, 17, 4), (1, 30, 9)]  # N, T, H
SMALL = dict(block_t=8, block_h=4)


def problem(N, T, H, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(N, T, H, generator=g, dtype=torch.float64) * 2 - 1) * 0.99
    return a, torch.randn(N, T, H, generator=g, dtype=torch.float64), torch.randn(N, H, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("N, T, H", SHAPES)
def test_kernel_equals_the_numpy_loop_in_float64(N, T, H):
    a, b, h0 = problem(N, T, H, seed=T)
    h = scan.linear_scan(a.to(DEVICE), b.to(DEVICE), h0.to(DEVICE), **SMALL).cpu()
    assert_close(h, rn.linear_recurrence(a.numpy(), b.numpy(), h0.numpy()), "h")


def test_kernel_with_its_default_blocks():
    a, b, h0 = problem(1, 65, 33, seed=3)
    h = scan.linear_scan(a.to(DEVICE), b.to(DEVICE), h0.to(DEVICE)).cpu()
    assert_close(h, rn.linear_recurrence(a.numpy(), b.numpy(), h0.numpy()), "h")


@pytest.mark.parametrize("N, T, H", SHAPES[1:4])
def test_kernel_in_float32_accumulates_to_float32_precision(N, T, H):
    a, b, h0 = problem(N, T, H, seed=T)
    h = scan.linear_scan(*(t.float().to(DEVICE) for t in (a, b, h0)), **SMALL).cpu()
    assert h.dtype == torch.float32
    assert_close(h, rn.linear_recurrence(a.numpy(), b.numpy(), h0.numpy()), "h", np.float32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_kernel_in_half_precision_is_within_its_rounding(dtype):
    # inputs rounded to 16 bits, arithmetic in float32, h rounded to 16 bits once:
    # within a few units of the 16-bit format's last place of the float32 answer
    a, b, h0 = (t.to(dtype) for t in problem(2, 30, 3, seed=1))
    h = scan.linear_scan(a.to(DEVICE), b.to(DEVICE), h0.to(DEVICE), **SMALL).cpu()
    assert h.dtype == dtype
    want = rn.linear_recurrence(*(t.double().numpy() for t in (a, b, h0)))
    eps = torch.finfo(dtype).eps
    assert np.abs(h.double().numpy() - want).max() <= 4 * eps * max(1.0, np.abs(want).max())


def test_gradients_through_the_triton_backend_equal_the_chunked_ones(monkeypatch):
    if not NATIVE:  # small blocks in the interpreter (rnncourse.torch.scan looks linear_scan up at each call)
        monkeypatch.setattr(scan, "linear_scan", functools.partial(scan.linear_scan, **SMALL))
    a, b, h0 = (t.to(DEVICE).requires_grad_() for t in problem(2, 20, 3, seed=2))
    dh = torch.randn(2, 20, 3, dtype=torch.float64, device=DEVICE)
    results = {}
    for backend in ("triton", "chunked"):
        h = parallel_scan(a, b, h0, backend=backend)
        results[backend] = (h, *torch.autograd.grad(h, (a, b, h0), dh))
    for got, want, name in zip(results["triton"], results["chunked"], ("h", "da", "db", "dh0")):
        assert_close(got.cpu(), want.cpu(), name)


def test_kernel_rejects_what_it_cannot_run():
    a, b, h0 = problem(1, 3, 2)
    with pytest.raises(ValueError, match="the Triton scan takes float16, bfloat16, float32 or float64"):
        scan.linear_scan(a.to(torch.complex128), b.to(torch.complex128), h0.to(torch.complex128))
