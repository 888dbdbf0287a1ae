"""Long short-term memory (LSTM), forward and backward by hand.

One step, with row vectors as the code multiplies them and the four gates
stacked ``i, f, g, o`` along the last axis (PyTorch's order)::

    a_t = x_t Wx + h_{t-1} Wh + b          (N, 4H), split into a_i, a_f, a_g, a_o
    i_t = sigmoid(a_i)                     input gate
    f_t = sigmoid(a_f)                     forget gate
    g_t = tanh(a_g)                        cell candidate
    o_t = sigmoid(a_o)                     output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Backward, given the gradients ``dh_t`` and ``dc_t`` arriving at ``h_t`` and ``c_t``::

    dc    = dc_t + dh_t * o_t * (1 - tanh(c_t)^2)      c_t also reaches the loss through h_t
    da_i  = dc * g_t * i_t (1 - i_t)
    da_f  = dc * c_{t-1} * f_t (1 - f_t)
    da_g  = dc * i_t * (1 - g_t^2)
    da_o  = dh_t * tanh(c_t) * o_t (1 - o_t)
    dc_{t-1} = dc * f_t,   dh_{t-1} = da_t Wh^T,   dx_t = da_t Wx^T

and the weight gradients ``dWx = sum_t x_t^T da_t``, ``dWh = sum_t h_{t-1}^T da_t``.
"""

import numpy as np

from .rnn import _check_recurrent_inputs, _check_upstream, _input_gradients, _previous_states

__all__ = ["lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward"]


def _sigmoid(a, out):
    """sigmoid(a), written into ``out``, as ``(1 + tanh(a / 2)) / 2``.

    The same function as :func:`rnncourse.numpy.activations.sigmoid` and as
    stable (tanh cannot overflow), but with no temporaries: the gates are the
    inner loop of the LSTM and GRU, where this is several times faster.
    ``out`` may be ``a``.
    """
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


def _split(a, H):
    """The four (N, H) blocks ``i, f, g, o`` of an (N, 4H) array, as views."""
    return a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]


def _lstm_cell(a, prev_c, i, f, g, o, c, tanh_c, h):
    """The LSTM equations after the matrix products, unchecked.

    ``a`` (N, 4H) holds the pre-activations ``x_t Wx + h_{t-1} Wh + b``. Writes
    the gates, ``c_t``, ``tanh(c_t)`` and ``h_t`` into the (N, H) arrays
    ``i, f, g, o, c, tanh_c, h``.
    """
    a_i, a_f, a_g, a_o = _split(a, prev_c.shape[1])
    _sigmoid(a_i, out=i)
    _sigmoid(a_f, out=f)
    np.tanh(a_g, out=g)
    _sigmoid(a_o, out=o)
    # c_t = f * c_{t-1} + i * g and h_t = o * tanh(c_t), into the arrays given
    np.multiply(f, prev_c, out=c)
    c += i * g
    np.tanh(c, out=tanh_c)
    np.multiply(o, tanh_c, out=h)


def _lstm_cell_backward(dh, dc_next, i, f, g, o, prev_c, tanh_c, da):
    """Backward of :func:`_lstm_cell`, unchecked.

    ``dh`` and ``dc_next`` (N, H) are the gradients arriving at ``h_t`` and
    ``c_t``. Writes the gradient of the pre-activations into ``da`` (N, 4H)
    and returns that of ``c_{t-1}`` (N, H).
    """
    da_i, da_f, da_g, da_o = _split(da, prev_c.shape[1])
    # c_t reaches the loss directly (through step t + 1) and through h_t = o * tanh(c_t)
    dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
    # each gate's gradient times its activation's slope: sigmoid' = s (1 - s), tanh' = 1 - g^2
    np.multiply(dc * g, i * (1 - i), out=da_i)
    np.multiply(dc * prev_c, f * (1 - f), out=da_f)
    np.multiply(dc * i, 1 - g * g, out=da_g)
    np.multiply(dh * tanh_c, o * (1 - o), out=da_o)
    return dc * f


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
    cache : what :func:`lstm_step_backward` needs.
    """
    x, (prev_h, prev_c), Wx, Wh, (b,) = _check_recurrent_inputs(
        x, {"prev_h": prev_h, "prev_c": prev_c}, Wx, Wh, {"b": b}, gates=4, sequence=False
    )
    a = x @ Wx + prev_h @ Wh + b
    dtype = np.result_type(a, prev_c)
    i, f, g, o, next_c, tanh_c, next_h = (np.empty(prev_c.shape, dtype) for _ in range(7))
    _lstm_cell(a, prev_c, i, f, g, o, next_c, tanh_c, next_h)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, (i, f, g, o), tanh_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of :func:`lstm_step_forward`.

    N: batch size, D: input size, H: hidden size.

    Parameters
    ----------
    dnext_h : ndarray (N, H), upstream gradient of ``next_h``.
    dnext_c : ndarray (N, H), upstream gradient of ``next_c``.
    cache : from :func:`lstm_step_forward`. Not modified.

    Returns
    -------
    dx : ndarray (N, D)
    dprev_h : ndarray (N, H)
    dprev_c : ndarray (N, H)
    dWx : ndarray (D, 4H)
    dWh : ndarray (H, 4H)
    db : ndarray (4H,)
    """
    x, prev_h, prev_c, Wx, Wh, gates, tanh_c = cache
    N, H = prev_c.shape
    dnext_h = _check_upstream("dnext_h", dnext_h, "N H", (N, H))
    dnext_c = _check_upstream("dnext_c", dnext_c, "N H", (N, H))
    da = np.empty((N, 4 * H), np.result_type(dnext_h, dnext_c, tanh_c))
    dprev_c = _lstm_cell_backward(dnext_h, dnext_c, *gates, prev_c, tanh_c, da)
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_forward(x, h0, Wx, Wh, b, c0=None, *, return_state=False):
    """The LSTM over a whole sequence.

    N: batch size, T: sequence length, D: input size, H: hidden size.
    Gates stacked ``i, f, g, o``; see :func:`lstm_step_forward` for one step.

    Parameters
    ----------
    x : ndarray (N, T, D), the input sequences.
    h0 : ndarray (N, H), the initial hidden state.
    Wx : ndarray (D, 4H), input-to-hidden weights.
    Wh : ndarray (H, 4H), hidden-to-hidden weights.
    b : ndarray (4H,), bias.
    c0 : ndarray (N, H), the initial cell state; None (default) means zeros.
    return_state : if True, also return the final cell state (for stateful
        truncated backpropagation through time).

    Returns
    -------
    h : ndarray (N, T, H), the hidden state at every step.
    c_last : ndarray (N, H), the final cell state ``c_T``; only with ``return_state=True``.
    cache : what :func:`lstm_backward` needs.
    """
    states = {"h0": h0} if c0 is None else {"h0": h0, "c0": c0}
    x, states, Wx, Wh, (b,) = _check_recurrent_inputs(x, states, Wx, Wh, {"b": b}, gates=4, sequence=True)
    h0 = states[0]
    N, T, D = x.shape
    H = Wh.shape[0]
    c0 = states[1] if c0 is not None else np.zeros((N, H), h0.dtype)
    dtype = np.result_type(x, h0, c0, Wx, Wh, b)

    # x_t Wx + b does not depend on the recurrence: all steps in one product.
    xWx_b = (x.reshape(N * T, D) @ Wx).astype(dtype, copy=False).reshape(N, T, 4 * H)
    xWx_b += b
    # What the backward pass needs besides h, stored time-major: each step's
    # (N, H) block is contiguous, and NumPy is 2-3 times slower on strided blocks.
    i, f, g, o, c, tanh_c = (np.empty((T, N, H), dtype) for _ in range(6))
    h = np.empty((N, T, H), dtype)
    a = np.empty((N, 4 * H), dtype)
    prev_h, prev_c = h0, c0
    for t in range(T):
        np.matmul(prev_h, Wh, out=a)
        a += xWx_b[:, t]
        _lstm_cell(a, prev_c, i[t], f[t], g[t], o[t], c[t], tanh_c[t], h[:, t])
        prev_h, prev_c = h[:, t], c[t]

    cache = (x, h0, c0, Wx, Wh, (i, f, g, o), c, tanh_c, h)
    if return_state:
        return h, c[-1].copy(), cache
    return h, cache


def lstm_backward(dh, cache, *, dc_last=None, return_state=False):
    """Backward pass of :func:`lstm_forward` (backpropagation through time).

    N: batch size, T: sequence length, D: input size, H: hidden size.

    Parameters
    ----------
    dh : ndarray (N, T, H), upstream gradient of every hidden state ``h[:, t]``
        (from the loss at that step only, not through later steps).
    cache : from :func:`lstm_forward`. Not modified.
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
    x, h0, c0, Wx, Wh, (i, f, g, o), c, tanh_c, h = cache
    N, T, D = x.shape
    H = Wh.shape[0]
    dh = _check_upstream("dh", dh, "N T H", (N, T, H))
    dtype = np.result_type(dh, h)
    if dc_last is None:
        dc_carry = np.zeros((N, H), dtype)
    else:
        dc_carry = _check_upstream("dc_last", dc_last, "N H", (N, H))
        dtype = np.result_type(dtype, dc_carry)

    da = np.empty((N, T, 4 * H), dtype)
    dh_t = np.empty((N, H), dtype)
    # the gradient reaching h_t through step t + 1; none beyond the last step
    dh_carry = np.zeros((N, H), dtype)
    WhT = np.ascontiguousarray(Wh.T)  # a contiguous copy: the per-step product runs faster than with the view
    for t in reversed(range(T)):
        np.add(dh[:, t], dh_carry, out=dh_t)
        prev_c = c[t - 1] if t > 0 else c0
        dc_carry = _lstm_cell_backward(dh_t, dc_carry, i[t], f[t], g[t], o[t], prev_c, tanh_c[t], da[:, t])
        np.matmul(da[:, t], WhT, out=dh_carry)

    dx, dWx = _input_gradients(x, da, Wx)
    dWh = _previous_states(h0, h).T @ da.reshape(N * T, 4 * H)
    grads = (dx, dh_carry, dWx, dWh, da.sum(axis=(0, 1)))
    return grads + (dc_carry,) if return_state else grads
