"""The Triton kernels of the LSTM and GRU recurrences, forward and backward.

T: sequence length, N: batch size, H: hidden size, G: gate blocks (4 LSTM,
3 GRU). This module imports Triton; ``rnncourse.torch`` imports it only when
a recurrence runs on CUDA (or, for the tests, in Triton's interpreter).

What a kernel does, and what it leaves to PyTorch
-------------------------------------------------
The input projection ``x_t W_ih^T + b`` of every step does not depend on the
recurrence: it is one large matrix product over all ``T*N`` rows, done by
PyTorch (cuBLAS) before the kernel, which receives it as the ``(T, N, G*H)``
buffer ``gates``. The weight gradients ``dW_ih = da^T x``,
``dW_hh = da^T h_prev``, the bias gradients and ``dx = da W_ih`` are
likewise single large products after the backward kernel. A kernel does only
what the recurrence forces, step after step: the product with ``W_hh`` and
the element-wise gate math, fused, so that a step's pre-activations never
travel through memory between separate operations.

One kernel source per model and pass serves three variants (chosen by
``rnncourse.torch.triton.make_plan``):

- **persistent** (``RESIDENT=True``, one launch for all T steps): a program
  owns ``BH`` hidden units of ``BN`` batch rows and loads its slice of
  ``W_hh`` (all G gate blocks of its units, ``G*BH*H`` numbers) once, before
  the time loop; the slice stays on chip for all T steps (compiled for an
  H100, Triton keeps it in shared memory, as an operand of the tensor-core
  products). Programs exchange ``h``
  through global memory (L2) and wait for each other at every step with a
  grid barrier (``_grid_barrier``).
- **streamed** (``RESIDENT=False``, one launch): the same loop and barrier,
  but the weights are read again from L2 at every step, ``BK`` columns at a
  time; for sizes whose weights do not fit on chip.
- **step** (``RESIDENT=False``, ``SYNC=False``, one launch per time step):
  the end of a launch is the barrier. Any size; the variant Triton's
  interpreter can run with more than one program per batch tile.

What limits the sizes of the persistent variant (the numbers are in
``rnncourse.torch.triton``): every program of a batch tile must be resident
on the GPU at the same time, or the barrier waits forever for a program that
cannot start; so the grid may not exceed the number of streaming
multiprocessors (SMs), one program per SM. Each program holds ``G*BH*HP``
weights (HP: H rounded up to a power of two, since ``tl.arange`` sizes are
powers of two) and reads a ``BN x HP`` tile of ``h_{t-1}`` per step; an SM
has 256 KiB of registers and up to 228 KiB of shared memory (H100), shared
with the accumulators and everything else. Larger hidden sizes need more
programs (more SMs) or larger slices; past both limits the streamed or step
variant takes over.

Triton's interpreter (``TRITON_INTERPRET=1``) runs one program at a time, to
its end: a program that waits at a barrier for another one never returns.
The tests run the sequence variants there only with one program per batch
tile (``BH >= H``), where the barrier is passed at once, and the step
variant with any tiling.

Conventions: all buffers are contiguous, time-major ``(T, N, F)``; ``h`` of
time step ``t`` is written to ``out[t]``, and the state a step starts from is
``out`` (or, for the LSTM, ``c``) of the step before it in the direction's
order, or the initial state (``_before``). The cell state ``c`` is kept
in float32; ``h``, the gates and the gradients in the input dtype. Matrix
products accumulate in float32. Gates are stacked as in torch.nn: ``i, f,
g, o`` and ``r, z, n``.
"""

import triton
import triton.language as tl

#: True when the kernels were created by Triton's interpreter (``TRITON_INTERPRET=1``
#: at import): they then run on CPU tensors.
INTERPRETED = bool(triton.knobs.runtime.interpret)


def _interpreter_loop_bounds():
    """Let the interpreter take runtime scalars as ``range`` bounds with NumPy >= 2.4.

    Triton 3.6's interpreter holds a scalar argument as a one-element array
    and turns it into a Python int with ``int(array)``, which NumPy 2.4 made
    an error ("only 0-dimensional arrays can be converted to Python
    scalars"); so ``for s in range(s_begin, s_end)`` fails there. This wraps
    the interpreter's patching of ``tl.tensor`` to convert through
    ``.item()``. Compiled kernels are not affected.
    """
    from triton.runtime import interpreter

    original = getattr(interpreter, "_patch_lang_tensor", None)
    if original is None or getattr(original, "_rnncourse", False):
        return

    def patch(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    patch._rnncourse = True
    interpreter._patch_lang_tensor = patch


if INTERPRETED:
    _interpreter_loop_bounds()

# A program waiting at a barrier gives up after this many polls (seconds on a
# GPU) and raises the error flag, so that a misplanned grid fails instead of hanging.
MAX_SPIN = 1 << 24


# ---------------------------------------------------------------------------
# element-wise pieces: the equations of the cells


@triton.jit
def _sigmoid(x):
    # from exp(-|x|), which never overflows (the interpreter would warn)
    e = tl.exp(-tl.abs(x))
    return tl.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@triton.jit
def _tanh(x):
    # Triton has no tanh of its own (libdevice's does not run in the
    # interpreter); from exp(-2|x|), which never overflows.
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x >= 0, t, -t)


@triton.jit
def _lstm_cell(a_i, a_f, a_g, a_o, c_prev):
    """One LSTM step from the pre-activations: the gates, ``c_t`` and ``h_t``."""
    i = _sigmoid(a_i)
    f = _sigmoid(a_f)
    g = _tanh(a_g)
    o = _sigmoid(a_o)
    c = f * c_prev + i * g
    h = o * _tanh(c)
    return i, f, g, o, c, h


@triton.jit
def _lstm_cell_backward(dh, dc_carry, i, f, g, o, c, c_prev):
    """The pre-activation gradients of one step, and the gradient ``dc * f`` it passes back to ``c_{t-1}``.

    ``dh``: everything reaching ``h_t``; ``dc_carry``: what reaches ``c_t``
    from step t + 1.
    """
    tanh_c = _tanh(c)
    dc = dc_carry + dh * o * (1.0 - tanh_c * tanh_c)
    da_i = dc * g * i * (1.0 - i)
    da_f = dc * c_prev * f * (1.0 - f)
    da_g = dc * i * (1.0 - g * g)
    da_o = dh * tanh_c * o * (1.0 - o)
    return da_i, da_f, da_g, da_o, dc * f


@triton.jit
def _gru_cell(a_r, a_z, x_n, h_n, h_prev):
    """One GRU step; ``h_n = h_{t-1} W_hn^T + b_hn`` enters the candidate through the reset gate."""
    r = _sigmoid(a_r)
    z = _sigmoid(a_z)
    n = _tanh(x_n + r * h_n)
    h = (1.0 - z) * n + z * h_prev
    return r, z, n, h


@triton.jit
def _gru_cell_backward(dh, r, z, n, h_n, h_prev):
    """Pre-activation gradients of one step: x side ``(r, z, n)``, the h side of n, and ``dh * z`` for ``h_{t-1}``."""
    da_n = dh * (1.0 - z) * (1.0 - n * n)
    da_r = da_n * h_n * r * (1.0 - r)
    da_z = dh * (h_prev - n) * z * (1.0 - z)
    return da_r, da_z, da_n, da_n * r, dh * z


# ---------------------------------------------------------------------------
# plumbing


@triton.jit
def _time(s, T, REVERSE: tl.constexpr):
    """The time step that loop step ``s`` visits."""
    if REVERSE:
        return T - 1 - s
    else:
        return s


@triton.jit
def _before(init, seq, t, T, N, H, REVERSE: tl.constexpr):
    """Pointer to the ``(N, H)`` state time step ``t`` starts from.

    ``init`` for the first step of the direction, else the slot of ``seq``
    (``(T, N, H)``) of the step before ``t`` in the direction's order.
    """
    if REVERSE:
        first = t == T - 1
        p = seq + (t + 1) * N * H
    else:
        first = t == 0
        p = seq + (t - 1) * N * H
    if first:
        p = init
    return p


@triton.jit
def _tile(pid_b, N, H, G: tl.constexpr, BN: tl.constexpr, BH: tl.constexpr):
    """What a program of the grid ``(cdiv(N, BN), cdiv(H, BH))`` owns: its ``BN`` batch rows and ``BH`` units.

    Returns ``rows``, ``units`` and their masks ``row_ok``, ``unit_ok``;
    ``own``, the offsets of this program's ``(BN, BH)`` block in an ``(N, H)``
    slot, and its mask ``own_ok``; ``gate_own``, the offsets of its block of
    gate block 0 in an ``(N, G*H)`` slot (block j: ``+ j * H``).
    """
    rows = pid_b * BN + tl.arange(0, BN)
    units = tl.program_id(1) * BH + tl.arange(0, BH)
    row_ok = rows < N
    unit_ok = units < H
    own = rows[:, None] * H + units[None, :]
    own_ok = row_ok[:, None] & unit_ok[None, :]
    gate_own = rows[:, None] * (G * H) + units[None, :]
    return rows, units, row_ok, unit_ok, own, own_ok, gate_own


@triton.jit
def _dot(a, b, acc, PRECISION: tl.constexpr, UPCAST: tl.constexpr):
    """``acc + a @ b``, float32 accumulation.

    PRECISION: ``"ieee"`` or ``"tf32"`` for float32 operands (the caller
    follows ``torch.backends.cuda.matmul.allow_tf32``). UPCAST: the
    interpreter multiplies bfloat16 as raw integers, so there the operands
    are made float32 first; the products of two bfloat16 numbers are exact
    in float32 either way.
    """
    if UPCAST:
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    return tl.dot(a, b, acc, input_precision=PRECISION)


@triton.jit
def _w_rows_tile(w, row0, units, ks, H, unit_ok, k_ok):
    """``(K, BH)`` tile of ``W^T``: element ``[k, u] = w[row0 + u, k]`` of a row-major ``(G*H, H)`` weight."""
    return tl.load(w + (row0 + units)[None, :] * H + ks[:, None], mask=k_ok[:, None] & unit_ok[None, :], other=0.0)


@triton.jit
def _w_cols_tile(w, row0, ks, units, H, k_ok, unit_ok):
    """``(K, BH)`` tile of ``W``: ``[k, u] = w[row0 + k, u]`` (rows of one gate block, the program's columns)."""
    return tl.load(w + (row0 + ks)[:, None] * H + units[None, :], mask=k_ok[:, None] & unit_ok[None, :], other=0.0)


@triton.jit
def _rows_tile(base, rows, ks, stride, row_ok, k_ok):
    """``(BN, K)`` tile ``base[rows, ks]`` of a row-major matrix, written by other programs in this launch.

    ``.cg`` reads through L2 only, never from this SM's (incoherent) L1,
    where an old copy of a slot could sit.
    """
    return tl.load(base + rows[:, None] * stride + ks[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0,
                   cache_modifier=".cg")


@triton.jit
def _grid_barrier(counter, target, flag, MAX_SPIN: tl.constexpr):
    """Wait until ``target`` arrivals at ``counter`` (one per program and step).

    The pattern of a cooperative grid sync: every thread's stores of the step
    are issued (``debug_barrier``), one release-add announces them at GPU
    scope, the program polls with acquire loads until all have arrived, and
    no thread reads the next step's inputs before that. Scalar atomics run
    once per program. The counter only grows, so it needs no reset between
    steps.
    """
    tl.debug_barrier()
    tl.atomic_add(counter, 1, sem="release", scope="gpu")
    seen = tl.atomic_add(counter, 0, sem="acquire", scope="gpu")
    spins = 0
    while (seen < target) & (spins < MAX_SPIN):
        seen = tl.atomic_add(counter, 0, sem="acquire", scope="gpu")
        spins += 1
    if seen < target:
        tl.atomic_max(flag, 1)
    tl.debug_barrier()


# ---------------------------------------------------------------------------
# LSTM


@triton.jit(do_not_specialize=["s_begin", "s_end"])
def lstm_forward_kernel(
    gates, w_hh, h0, out, c0, c_all, sync, s_begin, s_end, T, N, H,
    REVERSE: tl.constexpr, RESIDENT: tl.constexpr, SYNC: tl.constexpr,
    BN: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, HP: tl.constexpr,
    PRECISION: tl.constexpr, UPCAST: tl.constexpr, MAX_SPIN: tl.constexpr,
):
    """LSTM forward, loop steps ``[s_begin, s_end)``; grid ``(cdiv(N, BN), cdiv(H, BH))``.

    Parameters
    ----------
    gates : ``(T, N, 4H)`` in: ``x_t W_ih^T + b_ih + b_hh``; out: the
        activated gates ``i, f, g, o`` (kept for the backward pass).
    w_hh : ``(4H, H)``, torch.nn's ``weight_hh``.
    h0 : ``(N, H)``; out : ``(T, N, H)``, every ``h_t``.
    c0 : ``(N, H)`` float32; c_all : ``(T, N, H)`` float32, every ``c_t``.
    sync : int32 ``(cdiv(N, BN) + 1,)`` zeros: a barrier counter per batch
        tile, then the time-out flag.
    """
    pid_b = tl.program_id(0)
    rows, units, row_ok, unit_ok, own, own_ok, gate_own = _tile(pid_b, N, H, 4, BN, BH)
    if RESIDENT:
        ks = tl.arange(0, HP)
        k_ok = ks < H
        # the W_hh^T columns of this program's units, one (HP, BH) tile per gate, for all steps
        w_i = _w_rows_tile(w_hh, 0 * H, units, ks, H, unit_ok, k_ok)
        w_f = _w_rows_tile(w_hh, 1 * H, units, ks, H, unit_ok, k_ok)
        w_g = _w_rows_tile(w_hh, 2 * H, units, ks, H, unit_ok, k_ok)
        w_o = _w_rows_tile(w_hh, 3 * H, units, ks, H, unit_ok, k_ok)

    c_start = _before(c0, c_all, _time(s_begin, T, REVERSE), T, N, H, REVERSE)
    c = tl.load(c_start + own, mask=own_ok, other=0.0)  # c stays in registers, float32
    for s in range(s_begin, s_end):
        t = _time(s, T, REVERSE)
        h_prev = _before(h0, out, t, T, N, H, REVERSE)
        g_t = gates + t * N * 4 * H + gate_own
        a_i = tl.load(g_t + 0 * H, mask=own_ok, other=0.0).to(tl.float32)
        a_f = tl.load(g_t + 1 * H, mask=own_ok, other=0.0).to(tl.float32)
        a_g = tl.load(g_t + 2 * H, mask=own_ok, other=0.0).to(tl.float32)
        a_o = tl.load(g_t + 3 * H, mask=own_ok, other=0.0).to(tl.float32)
        if RESIDENT:
            hk = _rows_tile(h_prev, rows, ks, H, row_ok, k_ok)
            a_i = _dot(hk, w_i, a_i, PRECISION, UPCAST)
            a_f = _dot(hk, w_f, a_f, PRECISION, UPCAST)
            a_g = _dot(hk, w_g, a_g, PRECISION, UPCAST)
            a_o = _dot(hk, w_o, a_o, PRECISION, UPCAST)
        else:
            for k0 in range(0, H, BK):
                kc = k0 + tl.arange(0, BK)
                kc_ok = kc < H
                hk = _rows_tile(h_prev, rows, kc, H, row_ok, kc_ok)
                a_i = _dot(hk, _w_rows_tile(w_hh, 0 * H, units, kc, H, unit_ok, kc_ok), a_i, PRECISION, UPCAST)
                a_f = _dot(hk, _w_rows_tile(w_hh, 1 * H, units, kc, H, unit_ok, kc_ok), a_f, PRECISION, UPCAST)
                a_g = _dot(hk, _w_rows_tile(w_hh, 2 * H, units, kc, H, unit_ok, kc_ok), a_g, PRECISION, UPCAST)
                a_o = _dot(hk, _w_rows_tile(w_hh, 3 * H, units, kc, H, unit_ok, kc_ok), a_o, PRECISION, UPCAST)
        i, f, g, o, c, h = _lstm_cell(a_i, a_f, a_g, a_o, c)
        out_ty = gates.dtype.element_ty
        tl.store(g_t + 0 * H, i.to(out_ty), mask=own_ok)
        tl.store(g_t + 1 * H, f.to(out_ty), mask=own_ok)
        tl.store(g_t + 2 * H, g.to(out_ty), mask=own_ok)
        tl.store(g_t + 3 * H, o.to(out_ty), mask=own_ok)
        tl.store(c_all + t * N * H + own, c, mask=own_ok)
        tl.store(out + t * N * H + own, h.to(out.dtype.element_ty), mask=own_ok)
        if SYNC:
            _grid_barrier(sync + pid_b, (s - s_begin + 1) * tl.num_programs(1), sync + tl.num_programs(0), MAX_SPIN)


@triton.jit(do_not_specialize=["s_begin", "s_end"])
def lstm_backward_kernel(
    gates, w_hh, c0, c_all, dh_in, da, dc_io, sync, s_begin, s_end, T, N, H,
    REVERSE: tl.constexpr, RESIDENT: tl.constexpr, SYNC: tl.constexpr,
    BN: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, HP: tl.constexpr,
    PRECISION: tl.constexpr, UPCAST: tl.constexpr, MAX_SPIN: tl.constexpr,
):
    """LSTM backward through time, loop steps ``[s_begin, s_end)`` from the last time step back.

    At loop step s > 0, ``h_t`` also gets ``da_{t+1} W_hh`` (time order of
    the direction): the product needs all 4H columns of ``da_{t+1}``, written
    by every program of the batch tile.

    Parameters
    ----------
    gates, c0, c_all : as in ``lstm_forward_kernel``: the activated gates
        ``(T, N, 4H)``, the initial and every cell state in float32.
    dh_in : ``(T, N, H)``, the gradient reaching each ``h_t`` from outside
        the recurrence (the output's, plus ``h_n``'s at the last step).
    da : ``(T, N, 4H)`` out: the pre-activation gradients.
    dc_io : ``(N, H)`` float32: in, the gradient of ``c_n``; out, what
        reaches the state before ``s_end`` (after the last step: ``dc_0``).
    """
    pid_b = tl.program_id(0)
    rows, units, row_ok, unit_ok, own, own_ok, gate_own = _tile(pid_b, N, H, 4, BN, BH)
    if RESIDENT:
        ks = tl.arange(0, HP)
        k_ok = ks < H
        # the W_hh columns of this program's units, one (HP, BH) tile per gate block
        v_i = _w_cols_tile(w_hh, 0 * H, ks, units, H, k_ok, unit_ok)
        v_f = _w_cols_tile(w_hh, 1 * H, ks, units, H, k_ok, unit_ok)
        v_g = _w_cols_tile(w_hh, 2 * H, ks, units, H, k_ok, unit_ok)
        v_o = _w_cols_tile(w_hh, 3 * H, ks, units, H, k_ok, unit_ok)

    dc = tl.load(dc_io + own, mask=own_ok, other=0.0)
    for s in range(s_begin, s_end):
        t = _time(s, T, not REVERSE)  # backward visits time in the opposite order
        dh = tl.load(dh_in + t * N * H + own, mask=own_ok, other=0.0).to(tl.float32)
        if s > 0:
            if REVERSE:
                da_next = da + (t - 1) * N * 4 * H
            else:
                da_next = da + (t + 1) * N * 4 * H
            if RESIDENT:
                dh = _dot(_rows_tile(da_next + 0 * H, rows, ks, 4 * H, row_ok, k_ok), v_i, dh, PRECISION, UPCAST)
                dh = _dot(_rows_tile(da_next + 1 * H, rows, ks, 4 * H, row_ok, k_ok), v_f, dh, PRECISION, UPCAST)
                dh = _dot(_rows_tile(da_next + 2 * H, rows, ks, 4 * H, row_ok, k_ok), v_g, dh, PRECISION, UPCAST)
                dh = _dot(_rows_tile(da_next + 3 * H, rows, ks, 4 * H, row_ok, k_ok), v_o, dh, PRECISION, UPCAST)
            else:
                for k0 in range(0, H, BK):
                    kc = k0 + tl.arange(0, BK)
                    kc_ok = kc < H
                    for gate in tl.static_range(4):
                        dh = _dot(_rows_tile(da_next + gate * H, rows, kc, 4 * H, row_ok, kc_ok),
                                  _w_cols_tile(w_hh, gate * H, kc, units, H, kc_ok, unit_ok), dh, PRECISION, UPCAST)
        g_t = gates + t * N * 4 * H + gate_own
        i = tl.load(g_t + 0 * H, mask=own_ok, other=0.0).to(tl.float32)
        f = tl.load(g_t + 1 * H, mask=own_ok, other=0.0).to(tl.float32)
        g = tl.load(g_t + 2 * H, mask=own_ok, other=0.0).to(tl.float32)
        o = tl.load(g_t + 3 * H, mask=own_ok, other=0.0).to(tl.float32)
        c = tl.load(c_all + t * N * H + own, mask=own_ok, other=0.0)
        c_prev = tl.load(_before(c0, c_all, t, T, N, H, REVERSE) + own, mask=own_ok, other=0.0)
        da_i, da_f, da_g, da_o, dc = _lstm_cell_backward(dh, dc, i, f, g, o, c, c_prev)
        da_t = da + t * N * 4 * H + gate_own
        out_ty = da.dtype.element_ty
        tl.store(da_t + 0 * H, da_i.to(out_ty), mask=own_ok)
        tl.store(da_t + 1 * H, da_f.to(out_ty), mask=own_ok)
        tl.store(da_t + 2 * H, da_g.to(out_ty), mask=own_ok)
        tl.store(da_t + 3 * H, da_o.to(out_ty), mask=own_ok)
        if SYNC:
            _grid_barrier(sync + pid_b, (s - s_begin + 1) * tl.num_programs(1), sync + tl.num_programs(0), MAX_SPIN)
    tl.store(dc_io + own, dc, mask=own_ok)


# ---------------------------------------------------------------------------
# GRU


@triton.jit(do_not_specialize=["s_begin", "s_end"])
def gru_forward_kernel(
    gates, h_side, w_hh, b_hn, h0, out, sync, s_begin, s_end, T, N, H,
    REVERSE: tl.constexpr, RESIDENT: tl.constexpr, SYNC: tl.constexpr, HAS_BIAS: tl.constexpr,
    BN: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, HP: tl.constexpr,
    PRECISION: tl.constexpr, UPCAST: tl.constexpr, MAX_SPIN: tl.constexpr,
):
    """GRU forward, loop steps ``[s_begin, s_end)``; grid ``(cdiv(N, BN), cdiv(H, BH))``.

    Parameters
    ----------
    gates : ``(T, N, 3H)`` in: ``x_t W_ih^T + b_ih``, plus ``b_hh`` in the
        r and z blocks; out: the activated gates ``r, z, n``.
    h_side : ``(T, N, H)`` out: ``h_{t-1} W_hn^T + b_hn`` (the backward pass needs it).
    w_hh : ``(3H, H)``; b_hn : ``(H,)``, the n block of ``b_hh`` (read if HAS_BIAS).
    h0 : ``(N, H)``; out : ``(T, N, H)``, every ``h_t``.
    sync : as in ``lstm_forward_kernel``.
    """
    pid_b = tl.program_id(0)
    rows, units, row_ok, unit_ok, own, own_ok, gate_own = _tile(pid_b, N, H, 3, BN, BH)
    if RESIDENT:
        ks = tl.arange(0, HP)
        k_ok = ks < H
        w_r = _w_rows_tile(w_hh, 0 * H, units, ks, H, unit_ok, k_ok)
        w_z = _w_rows_tile(w_hh, 1 * H, units, ks, H, unit_ok, k_ok)
        w_n = _w_rows_tile(w_hh, 2 * H, units, ks, H, unit_ok, k_ok)
    if HAS_BIAS:
        bias_n = tl.load(b_hn + units, mask=unit_ok, other=0.0).to(tl.float32)
    else:
        bias_n = tl.zeros((BH,), tl.float32)

    for s in range(s_begin, s_end):
        t = _time(s, T, REVERSE)
        h_prev = _before(h0, out, t, T, N, H, REVERSE)
        g_t = gates + t * N * 3 * H + gate_own
        a_r = tl.load(g_t + 0 * H, mask=own_ok, other=0.0).to(tl.float32)
        a_z = tl.load(g_t + 1 * H, mask=own_ok, other=0.0).to(tl.float32)
        x_n = tl.load(g_t + 2 * H, mask=own_ok, other=0.0).to(tl.float32)
        h_n = tl.zeros((BN, BH), tl.float32) + bias_n[None, :]
        if RESIDENT:
            hk = _rows_tile(h_prev, rows, ks, H, row_ok, k_ok)
            a_r = _dot(hk, w_r, a_r, PRECISION, UPCAST)
            a_z = _dot(hk, w_z, a_z, PRECISION, UPCAST)
            h_n = _dot(hk, w_n, h_n, PRECISION, UPCAST)
        else:
            for k0 in range(0, H, BK):
                kc = k0 + tl.arange(0, BK)
                kc_ok = kc < H
                hk = _rows_tile(h_prev, rows, kc, H, row_ok, kc_ok)
                a_r = _dot(hk, _w_rows_tile(w_hh, 0 * H, units, kc, H, unit_ok, kc_ok), a_r, PRECISION, UPCAST)
                a_z = _dot(hk, _w_rows_tile(w_hh, 1 * H, units, kc, H, unit_ok, kc_ok), a_z, PRECISION, UPCAST)
                h_n = _dot(hk, _w_rows_tile(w_hh, 2 * H, units, kc, H, unit_ok, kc_ok), h_n, PRECISION, UPCAST)
        h_own = tl.load(h_prev + own, mask=own_ok, other=0.0, cache_modifier=".cg").to(tl.float32)
        r, z, n, h = _gru_cell(a_r, a_z, x_n, h_n, h_own)
        out_ty = gates.dtype.element_ty
        tl.store(g_t + 0 * H, r.to(out_ty), mask=own_ok)
        tl.store(g_t + 1 * H, z.to(out_ty), mask=own_ok)
        tl.store(g_t + 2 * H, n.to(out_ty), mask=own_ok)
        tl.store(h_side + t * N * H + own, h_n.to(out_ty), mask=own_ok)
        tl.store(out + t * N * H + own, h.to(out.dtype.element_ty), mask=own_ok)
        if SYNC:
            _grid_barrier(sync + pid_b, (s - s_begin + 1) * tl.num_programs(1), sync + tl.num_programs(0), MAX_SPIN)


@triton.jit(do_not_specialize=["s_begin", "s_end"])
def gru_backward_kernel(
    gates, h_side, w_hh, h0, out, dh_in, dx, dhn, carry, sync, s_begin, s_end, T, N, H,
    REVERSE: tl.constexpr, RESIDENT: tl.constexpr, SYNC: tl.constexpr,
    BN: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, HP: tl.constexpr,
    PRECISION: tl.constexpr, UPCAST: tl.constexpr, MAX_SPIN: tl.constexpr,
):
    """GRU backward through time, loop steps ``[s_begin, s_end)`` from the last time step back.

    Parameters
    ----------
    gates, h_side, h0, out : as in ``gru_forward_kernel``.
    dh_in : ``(T, N, H)``, the gradient reaching each ``h_t`` from outside the recurrence.
    dx : ``(T, N, 3H)`` out: the x-side pre-activation gradients ``(r, z, n)``.
    dhn : ``(T, N, H)`` out: the gradient of ``h_{t-1} W_hn^T + b_hn``; the
        h-side gradients are ``(r, z)`` of ``dx`` and ``dhn``.
    carry : ``(N, H)`` float32 zeros in; out, ``dh_1 * z_1`` of the last
        step visited (the direct path to ``h_0``).
    """
    pid_b = tl.program_id(0)
    rows, units, row_ok, unit_ok, own, own_ok, gate_own = _tile(pid_b, N, H, 3, BN, BH)
    if RESIDENT:
        ks = tl.arange(0, HP)
        k_ok = ks < H
        v_r = _w_cols_tile(w_hh, 0 * H, ks, units, H, k_ok, unit_ok)
        v_z = _w_cols_tile(w_hh, 1 * H, ks, units, H, k_ok, unit_ok)
        v_n = _w_cols_tile(w_hh, 2 * H, ks, units, H, k_ok, unit_ok)

    direct = tl.load(carry + own, mask=own_ok, other=0.0)  # dh_{t+1} * z_{t+1}, own units
    for s in range(s_begin, s_end):
        t = _time(s, T, not REVERSE)
        dh = tl.load(dh_in + t * N * H + own, mask=own_ok, other=0.0).to(tl.float32) + direct
        if s > 0:
            if REVERSE:
                t_next = t - 1
            else:
                t_next = t + 1
            dx_next = dx + t_next * N * 3 * H
            dhn_next = dhn + t_next * N * H
            if RESIDENT:
                dh = _dot(_rows_tile(dx_next + 0 * H, rows, ks, 3 * H, row_ok, k_ok), v_r, dh, PRECISION, UPCAST)
                dh = _dot(_rows_tile(dx_next + 1 * H, rows, ks, 3 * H, row_ok, k_ok), v_z, dh, PRECISION, UPCAST)
                dh = _dot(_rows_tile(dhn_next, rows, ks, H, row_ok, k_ok), v_n, dh, PRECISION, UPCAST)
            else:
                for k0 in range(0, H, BK):
                    kc = k0 + tl.arange(0, BK)
                    kc_ok = kc < H
                    dh = _dot(_rows_tile(dx_next + 0 * H, rows, kc, 3 * H, row_ok, kc_ok),
                              _w_cols_tile(w_hh, 0 * H, kc, units, H, kc_ok, unit_ok), dh, PRECISION, UPCAST)
                    dh = _dot(_rows_tile(dx_next + 1 * H, rows, kc, 3 * H, row_ok, kc_ok),
                              _w_cols_tile(w_hh, 1 * H, kc, units, H, kc_ok, unit_ok), dh, PRECISION, UPCAST)
                    dh = _dot(_rows_tile(dhn_next, rows, kc, H, row_ok, kc_ok),
                              _w_cols_tile(w_hh, 2 * H, kc, units, H, kc_ok, unit_ok), dh, PRECISION, UPCAST)
        g_t = gates + t * N * 3 * H + gate_own
        r = tl.load(g_t + 0 * H, mask=own_ok, other=0.0).to(tl.float32)
        z = tl.load(g_t + 1 * H, mask=own_ok, other=0.0).to(tl.float32)
        n = tl.load(g_t + 2 * H, mask=own_ok, other=0.0).to(tl.float32)
        h_n = tl.load(h_side + t * N * H + own, mask=own_ok, other=0.0).to(tl.float32)
        h_prev = tl.load(_before(h0, out, t, T, N, H, REVERSE) + own, mask=own_ok, other=0.0).to(tl.float32)
        da_r, da_z, da_n, dh_n, direct = _gru_cell_backward(dh, r, z, n, h_n, h_prev)
        dx_t = dx + t * N * 3 * H + gate_own
        out_ty = dx.dtype.element_ty
        tl.store(dx_t + 0 * H, da_r.to(out_ty), mask=own_ok)
        tl.store(dx_t + 1 * H, da_z.to(out_ty), mask=own_ok)
        tl.store(dx_t + 2 * H, da_n.to(out_ty), mask=own_ok)
        tl.store(dhn + t * N * H + own, dh_n.to(out_ty), mask=own_ok)
        if SYNC:
            _grid_barrier(sync + pid_b, (s - s_begin + 1) * tl.num_programs(1), sync + tl.num_programs(0), MAX_SPIN)
    tl.store(carry + own, direct, mask=own_ok)


# ---------------------------------------------------------------------------
# the step floor


@triton.jit
def barrier_chain_kernel(buf, sync, T, MAX_SPIN: tl.constexpr):
    """T dependent steps that do no work: each program publishes a number, waits for all, reads another's.

    The time per step is the floor under any recurrence whose steps are
    spread over several programs (SMs): what ``benchmarks/triton_vs_cudnn.py``
    measures as the step floor. buf : int32 ``(2 * programs,)``; sync :
    int32 ``(2,)`` zeros (the counter, the time-out flag).
    """
    pid = tl.program_id(0)
    n = tl.num_programs(0)
    seen = 0
    for s in range(T):
        tl.store(buf + pid, s)
        _grid_barrier(sync, (s + 1) * n, sync + 1, MAX_SPIN)
        seen += tl.load(buf + (pid + 1) % n, cache_modifier=".cg")
    tl.store(buf + n + pid, seen)  # so that the reads are not optimised away
