"""Long short-term memory (LSTM), forward and backward by hand.

One step, with row vectors as the code multiplies them and the four gates
stacked ``i, f, g, o`` along the last axis (PyTorch's order), in the symbols
of the book's LSTM chapter::

    [a_i, a_f, a_g, a_o] = x_t Wx + h_{t-1} Wh + b     (N, 4H), four (N, H) blocks
    i_t = sigmoid(a_i)                     input gate
    f_t = sigmoid(a_f)                     forget gate
    g_t = tanh(a_g)                        cell candidate
    o_t = sigmoid(a_o)                     output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Backward, the same lines from the last to the first, given the gradients
``dh_t`` and ``dc_t`` arriving at ``h_t`` and ``c_t``::

    da_o  = dh_t * tanh(c_t) * o_t (1 - o_t)
    dc    = dc_t + dh_t * o_t * (1 - tanh(c_t)^2)      c_t also reaches the loss through h_t
    dc_{t-1} = dc * f_t
    da_g  = dc * i_t * (1 - g_t^2)
    da_f  = dc * c_{t-1} * f_t (1 - f_t)
    da_i  = dc * g_t * i_t (1 - i_t)
    da_t  = [da_i, da_f, da_g, da_o],   dh_{t-1} = da_t Wh^T,   dx_t = da_t Wx^T

and the weight gradients ``dWx = x_t^T da_t``, ``dWh = h_{t-1}^T da_t``,
``db = sum over the batch of da_t``, each summed over the steps by
:func:`lstm_backward`, which is :func:`lstm_step_backward` in a loop over the
steps run backwards (as :func:`lstm_forward` is :func:`lstm_step_forward` in a
loop).

The caches (the layouts the exercises state; ``tanh_c`` is ``tanh(c_t)``)::

    lstm_step_forward -> (x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c)
    lstm_forward      -> (x, h0, c0, Wx, Wh, i, f, g, o, tanh_c, h, c)
"""

import numpy as np

from ._checks import recurrent_inputs, upstream_gradient
from .activations import sigmoid

__all__ = ["lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward"]


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One time step of the LSTM.

    N: batch size, D: input size, H: hidden size. Gates stacked ``i, f, g, o``.

    ``a = x Wx + prev_h Wh + b``; ``i, f, o = sigmoid(a_i, a_f, a_o)``,
    ``g = tanh(a_g)``; ``next_c = f * prev_c + i * g``; ``next_h = o * tanh(next_c)``.

    Parameters
    ----------
    x : ndarray (N, D), the inputs at this step.
    prev_h : ndarray (N, H), the previous hidden state.
    prev_c : ndarray (N, H), the previous cell state.
    Wx : ndarray (D, 4H), input-to-hidden weights.
    Wh : ndarray (H, 4H), hidden-to-hidden weights.
    b : ndarray (4H,), bias.

    Returns
    -------
    next_h : ndarray (N, H)
    next_c : ndarray (N, H)
    cache : tuple ``(x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c)``, the
        step's inputs, its gates (N, H) each and ``tanh_c = tanh(next_c)``,
        for :func:`lstm_step_backward`.
    """
    x, (prev_h, prev_c), Wx, Wh, (b,) = recurrent_inputs(
        x, {"prev_h": prev_h, "prev_c": prev_c}, Wx, Wh, {"b": b}, gates=4, sequence=False
    )
    a_i, a_f, a_g, a_o = np.split(x @ Wx + prev_h @ Wh + b, 4, axis=1)
    i = sigmoid(a_i)
    f = sigmoid(a_f)
    g = np.tanh(a_g)
    o = sigmoid(a_o)
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of :func:`lstm_step_forward`.

    N: batch size, D: input size, H: hidden size.

    Parameters
    ----------
    dnext_h : ndarray (N, H), upstream gradient of ``next_h``.
    dnext_c : ndarray (N, H), upstream gradient of ``next_c``.
    cache : ``(x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c)`` from
        :func:`lstm_step_forward`.

    Returns
    -------
    dx : ndarray (N, D)
    dprev_h : ndarray (N, H)
    dprev_c : ndarray (N, H)
    dWx : ndarray (D, 4H)
    dWh : ndarray (H, 4H)
    db : ndarray (4H,)
    """
    x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c = cache
    dnext_h = upstream_gradient("dnext_h", dnext_h, "N H", prev_c.shape)
    dnext_c = upstream_gradient("dnext_c", dnext_c, "N H", prev_c.shape)
    # next_h = o * tanh(next_c): next_c reaches the loss directly and through next_h
    da_o = dnext_h * tanh_c * o * (1 - o)
    dc = dnext_c + dnext_h * o * (1 - tanh_c**2)
    # next_c = f * prev_c + i * g; each gate's gradient times the slope of its activation
    dprev_c = dc * f
    da_g = dc * i * (1 - g**2)
    da_f = dc * prev_c * f * (1 - f)
    da_i = dc * g * i * (1 - i)
    # a = x Wx + prev_h Wh + b, its blocks stacked like the gates
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b, c0=None, *, return_state=False):
    """The LSTM over a whole sequence: :func:`lstm_step_forward` in a loop over the steps.

    N: batch size, T: sequence length, D: input size, H: hidden size.
    Gates stacked ``i, f, g, o``; see :func:`lstm_step_forward` for one step.

    Parameters
    ----------
    x : ndarray (N, T, D), the input sequences.
    h0 : ndarray (N, H), the initial hidden state.
    Wx, Wh, b : ndarray (D, 4H), (H, 4H), (4H,), the weights of
        :func:`lstm_step_forward`, the same at every step.
    c0 : ndarray (N, H), the initial cell state; None (default) means zeros.
    return_state : if True, also return the final cell state (for stateful
        truncated backpropagation through time).

    Returns
    -------
    h : ndarray (N, T, H), the hidden state at every step.
    c_last : ndarray (N, H), the final cell state ``c_T``; only with ``return_state=True``.
    cache : tuple ``(x, h0, c0, Wx, Wh, i, f, g, o, tanh_c, h, c)``, for
        :func:`lstm_backward`: the inputs (``c0`` zeros if it was None), the
        gates and ``tanh_c`` of every step, ``(N, T, H)`` each, and the states
        ``h`` and ``c`` ``(N, T, H)``. Step ``t``'s cache is ``(x[:, t],
        prev_h, prev_c, Wx, Wh, i[:, t], f[:, t], g[:, t], o[:, t],
        tanh_c[:, t])`` with ``prev_h, prev_c = h0, c0`` at ``t = 0``, else
        ``h[:, t-1], c[:, t-1]``.
    """
    states = {"h0": h0} if c0 is None else {"h0": h0, "c0": c0}
    x, states, Wx, Wh, (b,) = recurrent_inputs(x, states, Wx, Wh, {"b": b}, gates=4)
    h0 = states[0]
    c0 = np.zeros_like(h0) if c0 is None else states[1]
    steps = []
    prev_h, prev_c = h0, c0
    for t in range(x.shape[1]):
        prev_h, prev_c, step_cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        steps.append((*step_cache[5:], prev_h, prev_c))
    # each step's i, f, g, o, tanh_c and its states h_t, c_t, stacked over time: (N, T, H) each
    i, f, g, o, tanh_c, h, c = (np.stack(field, axis=1) for field in zip(*steps))
    cache = (x, h0, c0, Wx, Wh, i, f, g, o, tanh_c, h, c)
    if return_state:
        return h, prev_c, cache
    return h, cache


def lstm_backward(dh, cache, *, dc_last=None, return_state=False):
    """Backward pass of :func:`lstm_forward` (backpropagation through time).

    N: batch size, T: sequence length, D: input size, H: hidden size.
    :func:`lstm_step_backward` in a loop over the steps, last step first.

    Parameters
    ----------
    dh : ndarray (N, T, H), upstream gradient of every hidden state ``h[:, t]``
        (from the loss at that step only, not through later steps).
    cache : ``(x, h0, c0, Wx, Wh, i, f, g, o, tanh_c, h, c)`` from
        :func:`lstm_forward`.
    dc_last : ndarray (N, H), upstream gradient of the final cell state
        ``c_last``; None (default) means zeros.
    return_state : if True, also return ``dc0``.

    Returns
    -------
    dx : ndarray (N, T, D)
    dh0 : ndarray (N, H)
    dWx : ndarray (D, 4H)
    dWh : ndarray (H, 4H)
    db : ndarray (4H,)
    dc0 : ndarray (N, H), gradient of the initial cell state; only with ``return_state=True``.
    """
    x, h0, c0, Wx, Wh, i, f, g, o, tanh_c, h, c = cache
    N, T, H = h.shape
    dh = upstream_gradient("dh", dh, "N T H", h.shape)
    if dc_last is None:
        dprev_c = np.zeros((N, H), dh.dtype)  # c_T reaches the loss only through h_T
    else:
        dprev_c = upstream_gradient("dc_last", dc_last, "N H", (N, H))
    dtype = np.result_type(dh, dprev_c, h)
    dx = np.empty(x.shape, dtype)
    dWx, dWh, db = np.zeros(Wx.shape, dtype), np.zeros(Wh.shape, dtype), np.zeros(4 * H, dtype)
    dprev_h = np.zeros((N, H), dtype)  # no gradient comes back from beyond the last step
    for t in reversed(range(T)):
        prev_h, prev_c = (h0, c0) if t == 0 else (h[:, t - 1], c[:, t - 1])
        step_cache = (x[:, t], prev_h, prev_c, Wx, Wh, i[:, t], f[:, t], g[:, t], o[:, t], tanh_c[:, t])
        # h_t gets gradient from the loss at step t and from step t + 1; c_t only from step t + 1
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:, t] + dprev_h, dprev_c, step_cache)
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    grads = (dx, dprev_h, dWx, dWh, db)
    return grads + (dprev_c,) if return_state else grads
