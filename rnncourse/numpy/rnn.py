"""The plain (Elman) recurrent network, forward and backward by hand.

One step of the network, with row vectors as the code multiplies them::

    a_t = x_t Wx + h_{t-1} Wh + b
    h_t = tanh(a_t)                   (or relu(a_t) with nonlinearity="relu")

and its backward pass, given the upstream gradient ``dh_t`` of ``h_t``::

    da_t      = dh_t * (1 - h_t ** 2)        (relu: dh_t * [h_t > 0])
    dx_t      = da_t Wx^T
    dh_{t-1}  = da_t Wh^T
    dWx      += x_t^T da_t,   dWh += h_{t-1}^T da_t,   db += sum over the batch of da_t

Over a sequence, ``h_{t-1}`` gets gradient from two places: the loss at step
``t - 1`` (``dh[:, t-1]``) and step ``t`` through ``Wh``. The sequence
functions do the input projection ``x Wx`` for all time steps in one matrix
product, and in the backward pass ``dx``, ``dWx`` and ``dWh`` after the time
loop; only ``h_{t-1} Wh`` (forward) and ``da_t Wh^T`` (backward) must wait
for the previous step.

This module also holds the input checks that the LSTM and GRU modules share.
"""

import numpy as np

from ._checks import dims, expect_shape, float_array

__all__ = ["rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward"]

_NONLINEARITIES = ("tanh", "relu")


# --- input checks shared by rnn.py, lstm.py and gru.py --------------------------------


def _check_nonlinearity(nonlinearity):
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"nonlinearity is {nonlinearity!r}; expected 'tanh' or 'relu'")


def _check_recurrent_inputs(x, states, Wx, Wh, biases, *, gates, sequence):
    """Validate the inputs of a recurrent step or sequence function.

    ``x`` is ``(N, D)`` for a step, ``(N, T, D)`` for a sequence. ``states``
    maps names (``"prev_h"``, ``"h0"``, ``"c0"``...) to ``(N, H)`` arrays,
    ``biases`` maps names to ``(G H,)`` arrays, ``gates`` is ``G`` (1 for
    the plain RNN, 4 for the LSTM, 3 for the GRU). ``H`` is read off
    ``Wh (H, G H)``, the only input that holds nothing but ``H``.

    Returns ``x, [states...], Wx, Wh, [biases...]`` as float arrays.
    """
    gh = "H" if gates == 1 else f"{gates}H"
    x = float_array("x", x)
    dims("x", x, "N T D" if sequence else "N D")
    states = {name: float_array(name, s) for name, s in states.items()}
    for name, s in states.items():
        dims(name, s, "N H")
    Wx, Wh = float_array("Wx", Wx), float_array("Wh", Wh)
    dims("Wx", Wx, f"D {gh}")
    dims("Wh", Wh, f"H {gh}")
    biases = {name: float_array(name, b) for name, b in biases.items()}
    for name, b in biases.items():
        dims(name, b, gh)

    if sequence and x.shape[1] == 0:
        raise ValueError(f"x has shape {x.shape}; expected at least one time step (T >= 1)")
    N, D, H = x.shape[0], x.shape[-1], Wh.shape[0]
    expect_shape("Wh", Wh, f"H {gh}", (H, gates * H))
    expect_shape("Wx", Wx, f"D {gh}", (D, gates * H))
    for name, b in biases.items():
        expect_shape(name, b, gh, (gates * H,))
    for name, s in states.items():
        expect_shape(name, s, "N H", (N, H))
    return x, list(states.values()), Wx, Wh, list(biases.values())


def _check_upstream(name, d, symbols, shape):
    """Validate an upstream gradient and return it as a float array."""
    d = float_array(name, d)
    dims(name, d, symbols)
    expect_shape(name, d, symbols, shape)
    return d


# --- the step, unchecked --------------------------------------------------------------


def _activate(a, nonlinearity):
    """h = tanh(a) or relu(a), in place."""
    if nonlinearity == "tanh":
        np.tanh(a, out=a)
    else:
        np.maximum(a, 0, out=a)
    return a


def _activation_backward(dh, h, nonlinearity, out):
    """da = dh * f'(a), with f' written through the output h = f(a); into ``out`` (may be ``dh``)."""
    if nonlinearity == "tanh":
        # tanh'(a) = 1 - tanh(a)^2 = 1 - h^2
        np.multiply(dh, 1 - h * h, out=out)
    else:
        # relu'(a) = 1 where h > 0, else 0
        np.multiply(dh, h > 0, out=out)
    return out


# --- public functions -----------------------------------------------------------------


def rnn_step_forward(x, prev_h, Wx, Wh, b, *, nonlinearity="tanh"):
    """One time step of the plain RNN, ``h_t = tanh(x_t Wx + h_{t-1} Wh + b)``.

    N: batch size, D: input size, H: hidden size.

    Parameters
    ----------
    x : ndarray (N, D), the inputs at this step.
    prev_h : ndarray (N, H), the previous hidden state ``h_{t-1}``.
    Wx : ndarray (D, H), input-to-hidden weights.
    Wh : ndarray (H, H), hidden-to-hidden weights.
    b : ndarray (H,), bias.
    nonlinearity : ``"tanh"`` (default) or ``"relu"``.

    Returns
    -------
    next_h : ndarray (N, H), the new hidden state ``h_t``.
    cache : what :func:`rnn_step_backward` needs.
    """
    _check_nonlinearity(nonlinearity)
    x, (prev_h,), Wx, Wh, (b,) = _check_recurrent_inputs(
        x, {"prev_h": prev_h}, Wx, Wh, {"b": b}, gates=1, sequence=False
    )
    next_h = _activate(x @ Wx + prev_h @ Wh + b, nonlinearity)
    return next_h, (x, prev_h, Wx, Wh, next_h, nonlinearity)


def rnn_step_backward(dnext_h, cache):
    """Backward pass of :func:`rnn_step_forward`.

    N: batch size, D: input size, H: hidden size.

    Parameters
    ----------
    dnext_h : ndarray (N, H), upstream gradient of ``h_t``.
    cache : from :func:`rnn_step_forward`.

    Returns
    -------
    dx : ndarray (N, D)
    dprev_h : ndarray (N, H)
    dWx : ndarray (D, H)
    dWh : ndarray (H, H)
    db : ndarray (H,)
    """
    x, prev_h, Wx, Wh, next_h, nonlinearity = cache
    dnext_h = _check_upstream("dnext_h", dnext_h, "N H", next_h.shape)
    da = np.empty(next_h.shape, np.result_type(dnext_h, next_h))
    _activation_backward(dnext_h, next_h, nonlinearity, out=da)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b, *, nonlinearity="tanh"):
    """The plain RNN over a whole sequence: ``h_t = tanh(x_t Wx + h_{t-1} Wh + b)`` for t = 1..T.

    N: batch size, T: sequence length, D: input size, H: hidden size.

    Parameters
    ----------
    x : ndarray (N, T, D), the input sequences.
    h0 : ndarray (N, H), the initial hidden state.
    Wx : ndarray (D, H), input-to-hidden weights.
    Wh : ndarray (H, H), hidden-to-hidden weights.
    b : ndarray (H,), bias.
    nonlinearity : ``"tanh"`` (default) or ``"relu"``.

    Returns
    -------
    h : ndarray (N, T, H), the hidden state at every step; ``h[:, -1]`` is the final state.
    cache : what :func:`rnn_backward` needs.
    """
    _check_nonlinearity(nonlinearity)
    x, (h0,), Wx, Wh, (b,) = _check_recurrent_inputs(
        x, {"h0": h0}, Wx, Wh, {"b": b}, gates=1, sequence=True
    )
    N, T, D = x.shape
    H = Wh.shape[0]
    # x_t Wx + b does not depend on the recurrence: all steps in one product.
    dtype = np.result_type(x, h0, Wx, Wh, b)
    xWx_b = (x.reshape(N * T, D) @ Wx).astype(dtype, copy=False).reshape(N, T, H)
    xWx_b += b

    h = np.empty((N, T, H), dtype)
    prev_h = h0
    for t in range(T):
        a_t = np.matmul(prev_h, Wh, out=h[:, t])
        a_t += xWx_b[:, t]
        prev_h = _activate(a_t, nonlinearity)
    return h, (x, h0, Wx, Wh, h, nonlinearity)


def rnn_backward(dh, cache):
    """Backward pass of :func:`rnn_forward` (backpropagation through time).

    N: batch size, T: sequence length, D: input size, H: hidden size.

    Parameters
    ----------
    dh : ndarray (N, T, H), upstream gradient of every hidden state ``h[:, t]``
        (from the loss at that step only, not through later steps).
    cache : from :func:`rnn_forward`. Not modified.

    Returns
    -------
    dx : ndarray (N, T, D)
    dh0 : ndarray (N, H)
    dWx : ndarray (D, H)
    dWh : ndarray (H, H)
    db : ndarray (H,)
    """
    x, h0, Wx, Wh, h, nonlinearity = cache
    N, T, D = x.shape
    H = Wh.shape[0]
    dh = _check_upstream("dh", dh, "N T H", (N, T, H))

    da = np.empty((N, T, H), np.result_type(dh, h))
    dprev_h = np.zeros((N, H), da.dtype)  # no gradient flows back from beyond the last step
    WhT = np.ascontiguousarray(Wh.T)  # a contiguous copy: the per-step product runs faster than with the view
    for t in reversed(range(T)):
        # h_t gets gradient from the loss at step t and from step t + 1
        da_t = np.add(dh[:, t], dprev_h, out=da[:, t])
        _activation_backward(da_t, h[:, t], nonlinearity, out=da_t)
        np.matmul(da_t, WhT, out=dprev_h)

    dx, dWx = _input_gradients(x, da, Wx)
    dWh = _previous_states(h0, h).T @ da.reshape(N * T, H)
    return dx, dprev_h, dWx, dWh, da.sum(axis=(0, 1))


def _input_gradients(x, da, Wx):
    """``dx = da Wx^T`` and ``dWx = x^T da`` for all time steps at once, each one product.

    ``da`` (N, T, G) holds the gradient of the pre-activations ``x_t Wx + ...``
    of every step; ``x`` is (N, T, D). Returns ``dx (N, T, D)``, ``dWx (D, G)``.
    """
    N, T, D = x.shape
    da_rows = da.reshape(N * T, da.shape[2])
    return (da_rows @ Wx.T).reshape(N, T, D), x.reshape(N * T, D).T @ da_rows


def _previous_states(h0, h):
    """The state each step started from, ``[h0, h_1, ..., h_{T-1}]``, as (N T, H) rows.

    Rows line up with ``da.reshape(N * T, G)``, so ``dWh`` is one product.
    """
    N, T, H = h.shape
    prev = np.empty((N, T, H), np.result_type(h0, h))
    prev[:, 0] = h0
    prev[:, 1:] = h[:, :-1]
    return prev.reshape(N * T, H)
