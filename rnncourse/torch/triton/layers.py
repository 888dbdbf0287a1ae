"""One LSTM or GRU layer-direction on the Triton kernels, as ``torch.autograd.Function``.

S: rows of the flat sequence (``T*N``), T: sequence length, N: batch size,
D: input size, H: hidden size.

The same interface as ``rnncourse.torch._recurrence.LSTMLayer`` and
``GRULayer`` for a padded batch (no ``PackedSequence``, no ``proj_size``):
the input is flat ``(S, D)``, time-major, the weights are torch.nn's. Per
layer-direction the work is:

forward
    one matrix product for the input projection of all steps, then one
    kernel launch (or T, for the step variant) for the recurrence;
backward
    one kernel launch (or T) for backpropagation through time, which yields
    the pre-activation gradients ``da`` of every step, then one matrix
    product each for ``dx = da W_ih``, ``dW_ih = da^T x``, ``dW_hh = da^T
    h_prev`` and a sum for the biases.

This module imports Triton (through ``rnncourse.torch.triton.kernels``).
"""

import contextlib
import os

import torch

from .. import _recurrence
from . import kernels

__all__ = ["LSTMTritonLayer", "GRUTritonLayer", "cast_for_autocast"]


def cast_for_autocast(*tensors):
    """The tensors in the autocast dtype when autocast is on for CUDA (None stays None).

    The kernels take one dtype for everything; like cuDNN under autocast, the
    whole layer then runs in half precision, and the casts carry the
    gradients back to float32 parameters.
    """
    first = tensors[0]
    if first.device.type != "cuda" or not torch.is_autocast_enabled("cuda"):
        return tensors
    dtype = torch.get_autocast_dtype("cuda")
    return tuple(None if t is None else t.to(dtype) for t in tensors)


def _precision(dtype):
    """``tl.dot``'s input precision for float32 operands: TF32 exactly when PyTorch's matrix products use it."""
    if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "ieee"


def _affine(x, weight, bias):
    """``x @ weight^T + bias`` (bias may be None): the input projection of all steps at once."""
    if bias is None:
        return x @ weight.t()
    return torch.addmm(bias, x, weight.t())


def _launch(kernel, plan, tensors, T, N, H, reverse, dtype, **constants):
    """Run ``kernel`` over all T steps: one launch, or one per step for the step variant."""
    grid = plan.grid(N, H)
    device = tensors[0].device
    # barrier counters, one per batch tile, then the time-out flag
    sync = torch.zeros(grid[0] + 1, dtype=torch.int32, device=device)
    options = dict(
        REVERSE=bool(reverse), RESIDENT=plan.variant == "persistent", SYNC=plan.sync,
        BN=plan.BN, BH=plan.BH, BK=plan.BK, HP=plan.HP, PRECISION=_precision(dtype),
        UPCAST=kernels.INTERPRETED and dtype == torch.bfloat16, MAX_SPIN=kernels.MAX_SPIN,
        num_warps=plan.num_warps, **constants,
    )
    # Triton launches on the current device: make it the tensors'
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        if plan.variant == "step":
            for s in range(T):
                kernel[grid](*tensors, sync, s, s + 1, T, N, H, **options)
        else:
            kernel[grid](*tensors, sync, 0, T, T, N, H, **options)
    if os.environ.get("RNNCOURSE_TRITON_CHECK") == "1" and not _capturing(device) and int(sync[-1]) != 0:
        # reading the flag waits for the GPU: only when asked (the tests)
        raise RuntimeError(f"{kernel.fn.__name__}: a barrier timed out ({plan}); the grid was not co-resident")


def _capturing(device):
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def _previous_product(da, out, h0, T, N, reverse):
    """``sum over steps of da_t^T h_{t-1}``: ``(G*H, H)``, e.g. dW_hh, without gathering the previous states."""
    S = T * N
    if reverse:  # time t starts from h_{t+1}; the last time step from h0
        return torch.addmm(da[S - N:].t() @ h0, da[: S - N].t(), out[N:])
    return torch.addmm(da[:N].t() @ h0, da[N:].t(), out[: S - N])


def _with_final(dout, dh_n, T, N, reverse):
    """``(T, N, H)``: the gradient reaching each h_t from outside the recurrence (dout, plus dh_n at the last step)."""
    dh = dout.reshape(T, N, -1).clone(memory_format=torch.contiguous_format)
    dh[0 if reverse else T - 1] += dh_n
    return dh


class LSTMTritonLayer(torch.autograd.Function):
    """One LSTM layer-direction on the Triton kernels.

    ``apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, T, reverse, plan)`` with ``x
    (S, D)`` time-major, ``h0``, ``c0 (N, H)``, torch.nn's weights ``w_ih
    (4H, D)``, ``w_hh (4H, H)``, ``b_ih``, ``b_hh (4H,)`` or None, a bool
    and a ``Plan``. Returns ``out (S, H)``,
    ``h_n``, ``c_n (N, H)``, all in ``x``'s dtype.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, T, reverse, plan):
        """The input projection, then the recurrence kernel; see the class docstring."""
        inputs = (x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        N, H = h0.shape
        gates = _affine(x, w_ih, None if b_ih is None else b_ih + b_hh)  # (S, 4H), becomes the gates
        w_hh = w_hh.contiguous()
        h0 = h0.contiguous()
        c0 = c0.float().contiguous()
        out = x.new_empty(T * N, H)
        c_all = torch.empty(T * N, H, dtype=torch.float32, device=x.device)
        _launch(kernels.lstm_forward_kernel, plan, (gates, w_hh, h0, out, c0, c_all), T, N, H, reverse, x.dtype)
        last = slice(0, N) if reverse else slice((T - 1) * N, T * N)
        _recurrence.keep_for_backward(ctx, inputs, (h0, c0, w_hh, gates, c_all, out))
        ctx.T, ctx.reverse, ctx.plan, ctx.has_bias = T, reverse, plan, b_ih is not None
        return out, out[last].clone(), c_all[last].to(x.dtype, copy=True)

    @staticmethod
    def backward(ctx, dout, dh_n, dc_n):
        """Backpropagation through time in the kernel, then the products that need no chain."""
        inputs, (h0, c0, w_hh, gates, c_all, out) = _recurrence.kept(ctx)
        x, w_ih = inputs[0], inputs[3]
        T, reverse, plan = ctx.T, ctx.reverse, ctx.plan
        N, H = h0.shape
        if _recurrence.needs_composite_backward(dout, dh_n, dc_n):  # double backward, vmap: see _recurrence
            steps = _recurrence.Steps((N,) * T)

            def layer(x, h0, c0, *weights):
                return _recurrence.composite_layer(_recurrence.lstm_step, x, (h0, c0), (*weights, None), steps,
                                                   reverse)

            grads = _recurrence.differentiable_backward(ctx, layer, inputs, (dout, dh_n, dc_n))
            return (*grads, None, None, None)
        dh = _with_final(dout, dh_n, T, N, reverse)
        da = torch.empty_like(gates)
        dc = dc_n.float().clone(memory_format=torch.contiguous_format)  # in: dc_n; out: dc_0 (written)
        _launch(kernels.lstm_backward_kernel, plan, (gates, w_hh, c0, c_all, dh, da, dc), T, N, H, reverse,
                x.dtype)
        first = slice((T - 1) * N, T * N) if reverse else slice(0, N)  # the step that started from h0
        needs = ctx.needs_input_grad
        dx = da @ w_ih if needs[0] else None
        dh0 = da[first] @ w_hh if needs[1] else None
        dc0 = dc.to(x.dtype) if needs[2] else None
        dw_ih = da.t() @ x if needs[3] else None
        dw_hh = _previous_product(da, out, h0, T, N, reverse) if needs[4] else None
        db = da.sum(0) if ctx.has_bias else None
        return dx, dh0, dc0, dw_ih, dw_hh, db, None if db is None else db.clone(), None, None, None


class GRUTritonLayer(torch.autograd.Function):
    """One GRU layer-direction on the Triton kernels (torch's GRU: reset after the product).

    ``apply(x, h0, w_ih, w_hh, b_ih, b_hh, T, reverse, plan)`` with ``x (S,
    D)`` time-major, ``h0 (N, H)``, ``w_ih (3H, D)``, ``w_hh (3H, H)``,
    ``b_ih``, ``b_hh (3H,)`` or None. Returns ``out (S, H)`` and ``h_n (N, H)``.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, T, reverse, plan):
        """The input projection, then the recurrence kernel; see the class docstring."""
        inputs = (x, h0, w_ih, w_hh, b_ih, b_hh)
        N, H = h0.shape
        has_bias = b_ih is not None
        if has_bias:
            # b_hr and b_hz join the input projection; b_hn stays inside r * (h W_hn + b_hn)
            bias = b_ih + torch.cat((b_hh[: 2 * H], torch.zeros_like(b_hh[2 * H :])))
            b_hn = b_hh[2 * H :].contiguous()
        else:
            bias, b_hn = None, x.new_zeros(1)
        gates = _affine(x, w_ih, bias)  # (S, 3H), becomes r, z, n
        w_hh = w_hh.contiguous()
        h0 = h0.contiguous()
        h_side = x.new_empty(T * N, H)
        out = x.new_empty(T * N, H)
        _launch(kernels.gru_forward_kernel, plan, (gates, h_side, w_hh, b_hn, h0, out), T, N, H, reverse, x.dtype,
                HAS_BIAS=has_bias)
        last = slice(0, N) if reverse else slice((T - 1) * N, T * N)
        _recurrence.keep_for_backward(ctx, inputs, (h0, w_hh, gates, h_side, out))
        ctx.T, ctx.reverse, ctx.plan, ctx.has_bias = T, reverse, plan, has_bias
        return out, out[last].clone()

    @staticmethod
    def backward(ctx, dout, dh_n):
        """Backpropagation through time in the kernel, then the products that need no chain."""
        inputs, (h0, w_hh, gates, h_side, out) = _recurrence.kept(ctx)
        x, w_ih = inputs[0], inputs[2]
        T, reverse, plan = ctx.T, ctx.reverse, ctx.plan
        N, H = h0.shape
        if _recurrence.needs_composite_backward(dout, dh_n):  # double backward, vmap: see _recurrence
            steps = _recurrence.Steps((N,) * T)

            def layer(x, h0, *weights):
                return _recurrence.composite_layer(_recurrence.gru_step, x, (h0,), weights, steps, reverse)

            return (*_recurrence.differentiable_backward(ctx, layer, inputs, (dout, dh_n)), None, None, None)
        dh = _with_final(dout, dh_n, T, N, reverse)
        dax = torch.empty_like(gates)  # x side: (da_r, da_z, da_n)
        dhn = torch.empty_like(out)  # h side of n: da_n * r
        carry = torch.zeros(N, H, dtype=torch.float32, device=x.device)
        _launch(kernels.gru_backward_kernel, plan, (gates, h_side, w_hh, h0, out, dh, dax, dhn, carry), T, N, H,
                reverse, x.dtype)
        dah = torch.cat((dax[:, : 2 * H], dhn), 1)  # h side: (da_r, da_z, da_n * r)
        first = slice((T - 1) * N, T * N) if reverse else slice(0, N)
        needs = ctx.needs_input_grad
        dx = dax @ w_ih if needs[0] else None
        dh0 = torch.addmm(carry.to(x.dtype), dah[first], w_hh) if needs[1] else None
        dw_ih = dax.t() @ x if needs[2] else None
        dw_hh = _previous_product(dah, out, h0, T, N, reverse) if needs[3] else None
        db_ih = dax.sum(0) if ctx.has_bias else None
        db_hh = dah.sum(0) if ctx.has_bias else None
        return dx, dh0, dw_ih, dw_hh, db_ih, db_hh, None, None, None
