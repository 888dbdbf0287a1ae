"""A Triton kernel for the linear recurrence ``h_t = a_t * h_{t-1} + b_t``: the fast path of ``parallel_scan`` on CUDA.

N: batch size, T: sequence length, H: channels. One program owns one batch
row and ``BLOCK_H`` channels, and walks the sequence in blocks of
``BLOCK_T`` steps. For each block it loads ``a`` and ``b`` (``BLOCK_T x
BLOCK_H``), scans them along time with ``tl.associative_scan`` and the
operator ``(a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2)`` (the compiler lays the
scan out across the block's threads in ``log2 BLOCK_T`` rounds), and puts the
state carried from the previous block in: ``h = A * carry + B``. The block's
last state is the next block's carry. The channels are independent, so
programs never wait for each other; the only sequential part is the walk
over ``T / BLOCK_T`` blocks. Each element is read and written once: the
kernel is bound by memory bandwidth, as an elementwise scan should be.

Arithmetic is in float32 for 16-bit and 32-bit inputs, in float64 for
float64; ``h`` is stored in the input dtype. Rows past the sequence's end
are loaded as the identity step ``(1, 0)``, so the last row of a block is
always the block's final state. Complex tensors are not supported (Triton
has no complex type): ``rnncourse.torch.scan`` uses the chunked scan for them.

This module imports Triton; ``rnncourse.torch.scan`` imports it only when
the Triton backend runs. Tested on the CPU in Triton's interpreter
(``tests/torch/test_triton_scan.py``).
"""

import torch
import triton
import triton.language as tl

# Importing the kernels module applies its fix for the interpreter's loop
# bounds under NumPy >= 2.4 (runtime scalars as ``range`` bounds).
from . import kernels  # noqa: F401

__all__ = ["linear_scan", "BLOCK_T", "BLOCK_H"]

BLOCK_T = 64  # steps per block: the depth of each in-block scan is log2 BLOCK_T
BLOCK_H = 32  # channels per program


@triton.jit
def _compose(a1, b1, a2, b2):
    """Two affine steps as one: first ``(a1, b1)``, then ``(a2, b2)``."""
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _linear_scan_kernel(a_ptr, b_ptr, h0_ptr, h_ptr, T, H, ACC: tl.constexpr, BLOCK_T: tl.constexpr,
                        BLOCK_H: tl.constexpr):
    n = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    in_cols = cols < H
    carry = tl.load(h0_ptr + n * H + cols, mask=in_cols, other=0.0).to(ACC)
    steps = tl.arange(0, BLOCK_T)
    base = n.to(tl.int64) * T * H
    for t0 in range(0, T, BLOCK_T):
        rows = t0 + steps
        inside = (rows[:, None] < T) & in_cols[None, :]
        offsets = base + rows[:, None].to(tl.int64) * H + cols[None, :]
        a = tl.load(a_ptr + offsets, mask=inside, other=1.0).to(ACC)
        b = tl.load(b_ptr + offsets, mask=inside, other=0.0).to(ACC)
        A, B = tl.associative_scan((a, b), 0, _compose)  # prefixes from the block's start
        h = A * carry[None, :] + B
        tl.store(h_ptr + offsets, h.to(h_ptr.dtype.element_ty), mask=inside)
        # the block's last row (padding rows are identity steps, so it is the last state)
        carry = tl.sum(tl.where(steps[:, None] == BLOCK_T - 1, h, 0.0), 0)


def linear_scan(a, b, h0, *, block_t=BLOCK_T, block_h=BLOCK_H):
    """``h`` with ``h_t = a_t * h_{t-1} + b_t`` from ``h0``, by the kernel; no autograd.

    Parameters
    ----------
    a, b : Tensor (N, T, H), real, one of float16, bfloat16, float32, float64, on CUDA
        (or on the CPU in Triton's interpreter).
    h0 : Tensor (N, H), same dtype.
    block_t, block_h : the block's steps and channels (powers of two); the
        tests make them small, to cross block edges on short sequences.

    Returns
    -------
    h : Tensor (N, T, H)
    """
    if a.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise ValueError(f"a has dtype {a.dtype}; the Triton scan takes float16, bfloat16, float32 or float64")
    a, b, h0 = a.contiguous(), b.contiguous(), h0.contiguous()
    N, T, H = a.shape
    h = torch.empty_like(b)
    acc = tl.float64 if a.dtype == torch.float64 else tl.float32
    grid = (N, triton.cdiv(H, block_h))
    _linear_scan_kernel[grid](a, b, h0, h, T, H, ACC=acc, BLOCK_T=block_t, BLOCK_H=block_h)
    return h
