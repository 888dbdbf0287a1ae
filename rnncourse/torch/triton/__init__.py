"""Fused LSTM and GRU recurrences in Triton: the fast path of ``rnncourse.torch`` on CUDA.

T: sequence length, N: batch size, H: hidden size, G: gate blocks (4 LSTM,
3 GRU).

``rnncourse.torch.LSTM`` and ``GRU`` run each layer and direction through
``rnncourse.torch.triton.layers`` when :func:`choose` says it applies,
and through ``rnncourse.torch._recurrence`` otherwise. It applies to
tensors on CUDA of dtype float32, bfloat16 or float16 (under autocast, the
autocast dtype), with Triton importable, a padded batch (not a
``PackedSequence``) and no ``proj_size``; anything else falls back, with the
same results. The kernels are in ``rnncourse.torch.triton.kernels``,
whose docstring says how they work.

Importing this package does not import Triton: on a CPU-only machine, or
one without Triton, ``rnncourse.torch`` works as before and never imports it.

The environment variable ``RNNCOURSE_TRITON`` (or :func:`set_mode`) selects:

- ``auto`` (default): on CUDA, the ``step`` variant for now. The persistent
  and streamed variants synchronise their programs with a grid barrier
  whose memory ordering has been compiled for the GPU but never run on one
  (see ``BARRIERS_RUN_ON_A_GPU``); until the native tests pass on a GPU they
  are used only when asked for by name. Then ``auto`` picks the fastest
  variant that fits (persistent, else streamed, else step);
- ``off``: never;
- ``persistent``, ``streamed``, ``step``: that variant wherever the Triton
  path applies (falling back to ``step`` if the persistent or streamed one
  does not fit), and also on CPU tensors when Triton's interpreter is on
  (``TRITON_INTERPRET=1``), which is how the tests run the kernels without
  a GPU.
"""

import functools
import os
from dataclasses import dataclass

import torch

__all__ = ["Plan", "make_plan", "choose", "available", "set_mode", "get_mode", "lstm_layer", "gru_layer"]

MODES = ("auto", "off", "persistent", "streamed", "step")

# Set to True once tests/torch/test_triton_kernels.py has passed natively on a
# GPU: the barrier variants have only run in Triton's interpreter, which runs
# one program at a time and cannot show a memory-ordering bug. Until then
# "auto" never picks a variant that waits on other programs.
BARRIERS_RUN_ON_A_GPU = False
_mode = None  # set_mode's choice; None: the environment's

# What limits the persistent variant (see rnncourse.torch.triton.kernels),
# per program (one program per SM; an H100 SM has 64K 32-bit registers and
# up to 227 KiB of shared memory per program). Compiled for sm_90 with the
# bundled ptxas, Triton keeps a resident W_hh slice as a tensor-core operand
# in shared memory, and stages each step's h_{t-1} tile through it; the
# registers go to that tile on its way in, the accumulators and the gate
# math. The numbers below keep the compiled kernels (8 warps) at or near no
# register spills for the benchmark's shapes; they are starting points for
# tuning on the device, not measured optima.
RESIDENT_BYTES = 64 * 1024  # the program's slice of W_hh: G * BH * HP numbers
H_TILE_NUMBERS = 16 * 1024  # most numbers of h_{t-1} a program reads per step (BN x HP); so HP <= 1024
H_TILE_PREFERRED = 8 * 1024  # BN is lowered to this where the batch allows (fewer registers)
BLOCK_PAIRS = {True: 512, False: 256}  # most BN x BH per program, with / without tensor cores
MIN_BLOCK_H = 8  # fewer units per program leave the tensor-core tiles mostly empty


@dataclass(frozen=True)
class Plan:
    """How a recurrence is split into programs.

    Attributes
    ----------
    variant : ``"persistent"``, ``"streamed"`` or ``"step"``.
    BN, BH : batch rows and hidden units per program (powers of two).
    BK : columns of ``W_hh`` read per inner iteration (streamed, step).
    HP : H rounded up to a power of two, at least 16.
    num_warps : Triton's warps per program.
    sync : whether the programs of a batch tile wait for each other at every
        step (the sequence variants with more than one program per tile).
    """

    variant: str
    BN: int
    BH: int
    BK: int
    HP: int
    num_warps: int
    sync: bool

    def grid(self, N, H):
        """``(batch tiles, hidden tiles)``."""
        return (-(-N // self.BN), -(-H // self.BH))


def _pow2(n):
    """The smallest power of two >= n."""
    return 1 << max(0, (int(n) - 1).bit_length())


def _floor_pow2(n):
    """The largest power of two <= n (0 for n < 1)."""
    return 1 << (int(n).bit_length() - 1) if n >= 1 else 0


def make_plan(G, N, H, itemsize, programs_limit, variant="auto", tensor_cores=True):
    """The :class:`Plan` for a recurrence of G gate blocks, batch N, hidden size H.

    Pure Python (no Triton, no GPU): the book calls it to show what would run
    on a given GPU.

    Parameters
    ----------
    G : 4 (LSTM) or 3 (GRU).
    N, H : batch and hidden size.
    itemsize : bytes per number of the weights (4 float32, 2 bfloat16/float16).
    programs_limit : how many programs of a batch tile may wait for each
        other: the number of SMs on a GPU (for the whole grid), or None in
        Triton's interpreter, which runs one program at a time (so a batch
        tile must be one program).
    variant : ``"auto"``, ``"persistent"``, ``"streamed"`` or ``"step"``; the
        first two fall back to the next variant where they do not fit.
    tensor_cores : False for float32 without TF32, whose products run on the
        ordinary cores with every operand in registers (smaller tiles).

    Returns
    -------
    Plan
    """
    if variant not in ("auto", "persistent", "streamed", "step"):
        raise ValueError(f"variant is {variant!r}; expected 'auto', 'persistent', 'streamed' or 'step'")
    HP = max(16, _pow2(H))
    pairs = BLOCK_PAIRS[bool(tensor_cores)]

    def fits(BN, BH):
        n_b, n_h = -(-N // BN), -(-H // BH)
        if programs_limit is None:
            return n_h == 1
        return n_b * n_h <= programs_limit

    if variant in ("auto", "persistent") and 16 * HP <= H_TILE_NUMBERS:
        BN = max(16, min(_pow2(N), H_TILE_PREFERRED // HP))
        # the largest slice in budget, so that the fewest programs meet at each barrier
        BH = min(HP, _floor_pow2(RESIDENT_BYTES // itemsize // (G * HP)), pairs // BN)
        if BH >= MIN_BLOCK_H and fits(BN, BH):
            return Plan("persistent", BN, BH, 32, HP, 8, sync=-(-H // BH) > 1)
    BN = max(16, min(_pow2(N), 64 if tensor_cores else 16))
    if variant in ("auto", "persistent", "streamed"):
        for BH in (16, 32, 64):
            if BN * BH <= 4 * pairs and fits(BN, BH):
                return Plan("streamed", BN, BH, 32, HP, 8, sync=-(-H // BH) > 1)
    return Plan("step", BN, min(32 if tensor_cores else 16, HP), 32, HP, 8, sync=False)


def get_mode():
    """The mode in force: :func:`set_mode`'s, else ``RNNCOURSE_TRITON``'s, else ``"auto"``."""
    mode = _mode or os.environ.get("RNNCOURSE_TRITON", "auto") or "auto"
    if mode not in MODES:
        raise ValueError(f"RNNCOURSE_TRITON is {mode!r}; expected one of {', '.join(MODES)}")
    return mode


def set_mode(mode):
    """Select the Triton path: ``auto``, ``off``, ``persistent``, ``streamed`` or ``step``; None: the environment's.

    Returns the previous setting (for restoring it).
    """
    global _mode
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode is {mode!r}; expected one of {', '.join(MODES)} or None")
    previous, _mode = _mode, mode
    return previous


@functools.lru_cache(maxsize=None)
def available():
    """Whether Triton can be imported (the import happens here, once, on the first call)."""
    try:
        import triton  # noqa: F401
    except Exception:  # not installed, or broken on this platform
        return False
    return True


def _interpreting():
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


@functools.lru_cache(maxsize=None)
def _sm_count(device_index):
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def compute_dtype(x):
    """The dtype the recurrence runs in: the autocast dtype on CUDA under autocast, else ``x``'s."""
    if x.device.type == "cuda" and torch.is_autocast_enabled("cuda"):
        return torch.get_autocast_dtype("cuda")
    return x.dtype


def choose(mode, x, steps, hidden_size, proj_size):
    """The :class:`Plan` for one module call, or None to use ``rnncourse.torch._recurrence``.

    Parameters
    ----------
    mode : ``"LSTM"``, ``"GRU"`` (anything else: None).
    x : ``(S, D)`` the flat input of the first layer.
    steps : the ``_recurrence.Steps`` of the call (``T``, ``N``, ``packed``).
    hidden_size, proj_size : of the module.
    """
    if mode not in ("LSTM", "GRU") or proj_size or steps.packed:
        return None
    setting = get_mode()
    if setting == "off":
        return None
    dtype = compute_dtype(x)
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        return None
    if x.device.type == "cuda":
        programs_limit = _sm_count(x.device.index if x.device.index is not None else torch.cuda.current_device())
    elif x.device.type == "cpu" and setting != "auto" and _interpreting():
        programs_limit = None
    else:
        return None
    G = 4 if mode == "LSTM" else 3
    if steps.T * steps.N * G * hidden_size >= 2**31 or not available():  # int32 offsets in the kernels
        return None
    itemsize = torch.empty((), dtype=dtype).element_size()
    tensor_cores = dtype != torch.float32 or torch.backends.cuda.matmul.allow_tf32
    variant = "step" if setting == "auto" and not BARRIERS_RUN_ON_A_GPU else setting
    return make_plan(G, steps.N, hidden_size, itemsize, programs_limit, variant, tensor_cores)


def lstm_layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh, T, reverse, plan):
    """One LSTM layer-direction through the kernels; see ``layers.LSTMTritonLayer``."""
    from .layers import LSTMTritonLayer, cast_for_autocast

    args = cast_for_autocast(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    return LSTMTritonLayer.apply(*args, T, reverse, plan)


def gru_layer(x, h0, w_ih, w_hh, b_ih, b_hh, T, reverse, plan):
    """One GRU layer-direction through the kernels; see ``layers.GRUTritonLayer``."""
    from .layers import GRUTritonLayer, cast_for_autocast

    args = cast_for_autocast(x, h0, w_ih, w_hh, b_ih, b_hh)
    return GRUTritonLayer.apply(*args, T, reverse, plan)
