"""Linear recurrences in PyTorch: the loop, and a chunked parallel scan with its own backward.

N: batch size, T: sequence length, H: state size. The recurrence of
:mod:`rnncourse.numpy.scan`, elementwise, real or complex::

    h_t = a_t * h_{t-1} + b_t

- :func:`linear_recurrence`: the definition, a loop of T steps (autograd
  records 2 T operations).
- :func:`parallel_scan`: the same ``h`` in ``O(log T)`` rounds of whole-tensor
  operations, with a backward pass that is itself a scan.

How :func:`parallel_scan` runs (``backend="chunked"``, any device and dtype):
the sequence is cut into chunks of ``chunk_size`` steps; inside every chunk,
all chunks at once, a Hillis–Steele scan (``log2 chunk_size`` rounds) gives
each step's prefix ``(A_t, B_t)`` from the chunk's start; the chunks' totals
form a recurrence T / chunk_size times shorter, solved the same way
(recursively); a last multiply-add, ``h_t = A_t h_start + B_t``, puts each
chunk's starting state in. Work ``O(T log chunk_size)``, depth
``O(log T)``, and no product of more than ``chunk_size`` coefficients is
formed outside the recurrence (products of many ``|a| < 1`` underflow).
Why Hillis–Steele inside a chunk: its rounds are few whole-tensor operations,
and in PyTorch the cost of an operation, not its arithmetic, dominates at
these sizes.

``backend="triton"`` runs a Triton kernel (``rnncourse.torch.triton.scan``):
one program per batch row and block of channels walks the sequence in
blocks, scanning each block with ``tl.associative_scan`` and carrying the
state between blocks. ``"auto"`` picks it for real floating-point tensors on
CUDA when Triton is installed (and ``RNNCOURSE_TRITON`` is not ``off``), and
the chunked scan otherwise.

The backward pass of both is the scan run backwards in time (see
:func:`rnncourse.numpy.scan.linear_recurrence_backward`), written with
differentiable operations, so gradients of every order exist. Complex
tensors follow PyTorch's convention and equal autograd's through the loop.
"""

import os

import torch

from ._checks import check_state_shape

__all__ = ["linear_recurrence", "parallel_scan", "scan_backend"]

BACKENDS = ("auto", "chunked", "triton")
DEFAULT_CHUNK = 64


def _check(a, b, h0):
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError(f"a and b must be tensors; got {type(a).__name__} and {type(b).__name__}")
    if a.dim() != 3:
        raise ValueError(f"a has shape {tuple(a.shape)}; expected (N, T, H) with 3 dimensions")
    if b.shape != a.shape:
        raise ValueError(f"b has shape {tuple(b.shape)}; expected (N, T, H) = {tuple(a.shape)}")
    if a.shape[1] == 0:
        raise ValueError(f"a has shape {tuple(a.shape)}; expected at least one time step (T >= 1)")
    if not (a.is_floating_point() or a.is_complex()) or not (b.is_floating_point() or b.is_complex()):
        raise ValueError(f"a and b have dtypes {a.dtype} and {b.dtype}; expected floating-point or complex tensors")
    N, _, H = a.shape
    if h0 is not None:
        check_state_shape(h0, (N, H))


def linear_recurrence(a, b, h0=None):
    """The definition: ``h_t = a_t * h_{t-1} + b_t``, t = 1..T, in a loop.

    Parameters
    ----------
    a, b : Tensor (N, T, H), real or complex.
    h0 : Tensor (N, H) or None (zeros).

    Returns
    -------
    h : Tensor (N, T, H)
    """
    _check(a, b, h0)
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    states = []
    # unbind, not a[:, t]: the backward of T selections would build T full-size gradients
    for a_t, b_t in zip(a.unbind(1), b.unbind(1)):
        h = a_t * h + b_t
        states.append(h)
    return torch.stack(states, 1)


def scan_backend(a, backend="auto"):
    """The backend :func:`parallel_scan` uses for ``a``: ``"triton"`` or ``"chunked"``.

    ``"auto"`` is ``"triton"`` for real float16/bfloat16/float32/float64
    tensors on CUDA with Triton installed and ``RNNCOURSE_TRITON`` not
    ``off``; else ``"chunked"``. ``"triton"`` on a CPU tensor needs Triton's
    interpreter (``TRITON_INTERPRET=1``), which is how the tests run it.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend is {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    if a.device.type != "cuda" or a.is_complex() or os.environ.get("RNNCOURSE_TRITON", "auto") == "off":
        return "chunked"
    from .triton import available

    return "triton" if available() else "chunked"


def _hillis_steele(a, b):
    """Inclusive prefixes ``(A_t, B_t)`` along dim 1 in ``ceil(log2 T)`` rounds (no autograd needed)."""
    T = a.shape[1]
    k = 1
    while k < T:
        # every position t >= k reads the previous round's prefix ending at t - k
        b_new = b.clone()
        b_new[:, k:].addcmul_(a[:, k:], b[:, :-k])
        a_new = a.clone()
        a_new[:, k:].mul_(a[:, :-k])
        a, b = a_new, b_new
        k *= 2
    return a, b


def _chunked(a, b, chunk):
    """``h`` of the recurrence with ``h0 = 0`` (fold ``h0`` into ``b_1`` first), chunk by chunk."""
    N, T, H = a.shape
    if T <= chunk:
        return _hillis_steele(a, b)[1]
    K = -(-T // chunk)
    pad = K * chunk - T
    if pad:  # identity steps (a = 1, b = 0) fill the last chunk
        a = torch.cat([a, a.new_ones(N, pad, H)], 1)
        b = torch.cat([b, b.new_zeros(N, pad, H)], 1)
    A, B = _hillis_steele(a.reshape(N * K, chunk, H), b.reshape(N * K, chunk, H))
    A, B = A.view(N, K, chunk, H), B.view(N, K, chunk, H)
    # the chunks' totals: a recurrence over K chunks, solved the same way
    ends = _chunked(A[:, :, -1], B[:, :, -1], chunk)  # the state at the end of each chunk
    starts = torch.cat([ends.new_zeros(N, 1, H), ends[:, :-1]], 1)
    h = torch.addcmul(B, A, starts[:, :, None])
    return h.reshape(N, K * chunk, H)[:, :T]


def _scan(a, b, h0, chunk, backend):
    """``h`` with no autograd: the forward of :class:`_LinearRecurrence`."""
    if backend == "triton":
        from .triton.scan import linear_scan

        return linear_scan(a, b, h0)
    b = b.clone()
    b[:, 0] += a[:, 0] * h0
    return _chunked(a, b, chunk)


class _LinearRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, h0, chunk, backend):
        h = _scan(a, b, h0, chunk, backend)
        ctx.save_for_backward(a, h, h0)
        ctx.chunk, ctx.backend = chunk, backend
        return h

    @staticmethod
    def backward(ctx, dh):
        a, h, h0 = ctx.saved_tensors
        # g_t = dh_t + conj(a_{t+1}) g_{t+1}: the same recurrence, reversed in time
        a_next = torch.cat([a[:, 1:], torch.zeros_like(a[:, :1])], 1).conj()
        g = _LinearRecurrence.apply(a_next.flip(1), dh.flip(1), torch.zeros_like(dh[:, 0]), ctx.chunk,
                                    ctx.backend).flip(1)
        h_prev = torch.cat([h0[:, None], h[:, :-1]], 1)
        da = g * h_prev.conj()
        dh0 = a[:, 0].conj() * g[:, 0]
        return da, g, dh0, None, None


def parallel_scan(a, b, h0=None, *, chunk_size=DEFAULT_CHUNK, backend="auto"):
    """:func:`linear_recurrence` by a chunked parallel scan, with a backward pass that is a scan too.

    N: batch size, T: sequence length, H: state size.

    Parameters
    ----------
    a : Tensor (N, T, H), real or complex, the coefficients.
    b : Tensor (N, T, H), same dtype, the inputs.
    h0 : Tensor (N, H) or None (zeros), the initial state.
    chunk_size : steps per chunk of the chunked backend (a power of two is fastest).
    backend : ``"auto"``, ``"chunked"`` or ``"triton"`` (see :func:`scan_backend`).

    Returns
    -------
    h : Tensor (N, T, H)
    """
    _check(a, b, h0)
    if a.dtype != b.dtype or (h0 is not None and h0.dtype != a.dtype):
        raise ValueError(f"a, b and h0 have dtypes {a.dtype}, {b.dtype}, {None if h0 is None else h0.dtype}; "
                         "expected one dtype")
    if int(chunk_size) < 2:
        raise ValueError(f"chunk_size is {chunk_size}; expected an integer >= 2")
    backend = scan_backend(a, backend)
    if backend == "triton" and a.is_complex():
        raise ValueError("the Triton scan takes real tensors; use backend='chunked' for complex ones")
    if h0 is None:
        h0 = torch.zeros_like(a[:, 0])
    return _LinearRecurrence.apply(a, b, h0, int(chunk_size), backend)
