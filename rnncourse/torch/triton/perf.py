"""The work of a recurrence, the hardware limit, and the algorithm cuDNN is asked for.

T: sequence length, N: batch size, D: input size, H: hidden size, G: gate
blocks (4 LSTM, 3 GRU). Pure Python: no Triton, no GPU. Used by
``benchmarks/triton_vs_cudnn.py`` and by the book's appendix on making RNNs
fast, so that both count the same way.
"""

__all__ = ["recurrence_flops", "hardware_limit_ms", "cudnn_rnn_algorithm"]

GATES = {"lstm": 4, "gru": 3}


def recurrence_flops(model, N, T, D, H, backward=False):
    """Floating-point operations of one layer-direction: the matrix products only.

    The same definition for every implementation, the input projection
    included: forward ``2 T N G H (D + H)`` (the products with ``W_ih`` and
    ``W_hh``); forward and backward three times that (each product has two
    more of the same size in the backward pass: for the input gradient and
    for the weight gradient). The element-wise gate math, some ``10 T N H``
    operations, is left out.

    Parameters
    ----------
    model : ``"lstm"`` or ``"gru"``.
    N, T, D, H : int.
    backward : if True, forward and backward.

    Returns
    -------
    int
    """
    forward = 2 * T * N * GATES[model] * H * (D + H)
    return 3 * forward if backward else forward


def hardware_limit_ms(flops, peak_tflops, steps, step_floor_us):
    """The time no implementation can beat: the larger of the arithmetic and the chain of steps, in ms.

    Parameters
    ----------
    flops : the work, from :func:`recurrence_flops`.
    peak_tflops : the device's measured rate for the dtype (TFLOP/s).
    steps : dependent steps (T forward; 2T forward and backward).
    step_floor_us : the measured time of one dependent step that does no
        work (microseconds).
    """
    return max(flops / (peak_tflops * 1e12) * 1e3, steps * step_floor_us * 1e-3)


def cudnn_rnn_algorithm(model, N, T, D, H, dtype, capability, sm_count, forward=True, num_layers=1,
                        bidirectional=False):
    """The algorithm PyTorch asks cuDNN for, for a padded (not packed) batch.

    A transcription of ``get_algo`` in PyTorch's
    ``aten/src/ATen/native/cudnn/RNN.cpp`` (PyTorch 2.x, cuDNN >= 8.2.1):
    ``"persist_static_small_h"`` for small hidden sizes (LSTM, GRU: H <= 192
    forward, H <= 128 backward; not float64), ``"persist_static"`` only for
    float16 with one unidirectional layer, H <= 1024, H and D multiples of
    128 and a device rule (on sm_80 and later with at least 98 SMs, not
    sm_86: LSTM only, batch a multiple of 8 and at most 128), else
    ``"standard"``: one launch of a matrix product and of the gate math per
    step (and per layer-direction).

    Parameters
    ----------
    model : ``"lstm"`` or ``"gru"``.
    N, T, D, H : int.
    dtype : ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``"float64"``.
    capability : ``(major, minor)`` of the GPU, e.g. ``(9, 0)`` for an H100.
    sm_count : its number of SMs.
    forward : the forward pass (True) or the backward pass.

    Returns
    -------
    str
    """
    if dtype != "float64":
        limit = (192 if forward else 128)
        if H <= limit and capability[0] >= 6:
            return "persist_static_small_h"
    if dtype == "float16" and num_layers == 1 and not bidirectional and H <= 1024 and H % 128 == 0 \
            and D % 128 == 0 and _persist_device_rule(model, N, T, capability, sm_count):
        return "persist_static"
    return "standard"


def _persist_device_rule(model, N, T, capability, sm_count):
    major, minor = capability
    if major == 7:
        if minor == 5:
            return False
        return ((N % 16 == 0 and N not in (80, 112)) or N == 8) and (
            (T >= 40 and N <= 128) or (T >= 20 and N <= 96) or (T >= 10 and N <= 32))
    if major >= 8 and sm_count >= 98 and minor != 6:
        return model == "lstm" and N % 8 == 0 and N <= 128
    return False
