"""The plain (Elman) recurrent network, forward and backward by hand.

One step of the network, with row vectors as the code multiplies them::

    a_t = x_t Wx + h_{t-1} Wh + b
    h_t = tanh(a_t)                   (or relu(a_t) with nonlinearity="relu")

and its backward pass, given the gradient ``dh_t`` arriving at ``h_t``::

    da_t      = dh_t * (1 - h_t ** 2)        (relu: dh_t * [h_t > 0])
    dx_t      = da_t Wx^T
    dh_{t-1}  = da_t Wh^T
    dWx = x_t^T da_t,   dWh = h_{t-1}^T da_t,   db = sum over the batch of da_t

:func:`rnn_forward` is :func:`rnn_step_forward` in a loop over ``t``, and
:func:`rnn_backward` is :func:`rnn_step_backward` in a loop over ``t`` run
backwards. There ``h_{t-1}`` gets gradient from two places: the loss at step
``t - 1`` (``dh[:, t-1]``) and step ``t`` through ``Wh``; and the weights, used
at every step, get the sum of their gradients at each step.

The caches (the layouts the exercises state; see each function)::

    rnn_step_forward -> (x, prev_h, Wx, Wh, next_h)
    rnn_forward      -> (x, h0, Wx, Wh, h)

With ``nonlinearity="relu"``, which the exercises do not ask for, the cache
has one more element after these arrays, the string ``"relu"``.
"""

import numpy as np

from ._checks import check_nonlinearity, recurrent_inputs, unpack_cache, upstream_gradient

__all__ = ["rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward"]


def _with_option(cache, nonlinearity):
    """A cache of the stated layout, followed by the nonlinearity unless it is the exercises' tanh."""
    return cache if nonlinearity == "tanh" else cache + (nonlinearity,)


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
    cache : tuple ``(x, prev_h, Wx, Wh, next_h)``, the step's inputs and its
        output, for :func:`rnn_step_backward`; with ``nonlinearity="relu"``
        followed by the string ``"relu"``.
    """
    check_nonlinearity(nonlinearity)
    x, (prev_h,), Wx, Wh, (b,) = recurrent_inputs(x, {"prev_h": prev_h}, Wx, Wh, {"b": b}, gates=1, sequence=False)
    a = x @ Wx + prev_h @ Wh + b
    next_h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
    return next_h, _with_option((x, prev_h, Wx, Wh, next_h), nonlinearity)


def rnn_step_backward(dnext_h, cache):
    """Backward pass of :func:`rnn_step_forward`.

    N: batch size, D: input size, H: hidden size.

    Parameters
    ----------
    dnext_h : ndarray (N, H), upstream gradient of ``h_t``.
    cache : ``(x, prev_h, Wx, Wh, next_h)`` from :func:`rnn_step_forward`
        (and ``"relu"`` after it for that nonlinearity).

    Returns
    -------
    dx : ndarray (N, D)
    dprev_h : ndarray (N, H)
    dWx : ndarray (D, H)
    dWh : ndarray (H, H)
    db : ndarray (H,)
    """
    (x, prev_h, Wx, Wh, next_h), nonlinearity = unpack_cache(cache, "x prev_h Wx Wh next_h", "tanh")
    dnext_h = upstream_gradient("dnext_h", dnext_h, "N H", next_h.shape)
    if nonlinearity == "tanh":
        da = dnext_h * (1 - next_h**2)  # tanh'(a) = 1 - tanh(a)^2, written with the output
    else:
        da = dnext_h * (next_h > 0)  # relu'(a) = 1 where a > 0, that is where next_h > 0
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)  # b was added to every row of the batch
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b, *, nonlinearity="tanh"):
    """The plain RNN over a whole sequence: ``h_t = tanh(x_t Wx + h_{t-1} Wh + b)`` for t = 1..T.

    N: batch size, T: sequence length, D: input size, H: hidden size.
    :func:`rnn_step_forward` in a loop over the steps.

    Parameters
    ----------
    x : ndarray (N, T, D), the input sequences.
    h0 : ndarray (N, H), the initial hidden state.
    Wx, Wh, b : ndarray (D, H), (H, H), (H,), the weights of
        :func:`rnn_step_forward`, the same at every step.
    nonlinearity : as for :func:`rnn_step_forward`.

    Returns
    -------
    h : ndarray (N, T, H), the hidden state at every step; ``h[:, -1]`` is the final state.
    cache : tuple ``(x, h0, Wx, Wh, h)``, for :func:`rnn_backward`; with
        ``nonlinearity="relu"`` followed by the string ``"relu"``. Step
        ``t``'s cache is ``(x[:, t], prev_h, Wx, Wh, h[:, t])`` with
        ``prev_h = h0`` at ``t = 0``, else ``h[:, t-1]``.
    """
    check_nonlinearity(nonlinearity)
    x, (h0,), Wx, Wh, (b,) = recurrent_inputs(x, {"h0": h0}, Wx, Wh, {"b": b}, gates=1)
    h = []
    prev_h = h0
    for t in range(x.shape[1]):
        prev_h, _ = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b, nonlinearity=nonlinearity)
        h.append(prev_h)
    h = np.stack(h, axis=1)
    return h, _with_option((x, h0, Wx, Wh, h), nonlinearity)


def rnn_backward(dh, cache):
    """Backward pass of :func:`rnn_forward` (backpropagation through time).

    N: batch size, T: sequence length, D: input size, H: hidden size.
    :func:`rnn_step_backward` in a loop over the steps, last step first.

    Parameters
    ----------
    dh : ndarray (N, T, H), upstream gradient of every hidden state ``h[:, t]``
        (from the loss at that step only, not through later steps).
    cache : ``(x, h0, Wx, Wh, h)`` from :func:`rnn_forward` (and ``"relu"``
        after it for that nonlinearity).

    Returns
    -------
    dx : ndarray (N, T, D)
    dh0 : ndarray (N, H)
    dWx : ndarray (D, H)
    dWh : ndarray (H, H)
    db : ndarray (H,)
    """
    (x, h0, Wx, Wh, h), nonlinearity = unpack_cache(cache, "x h0 Wx Wh h", "tanh")
    N, T, H = h.shape
    dh = upstream_gradient("dh", dh, "N T H", h.shape)
    dtype = np.result_type(dh, h)
    dx = np.empty(x.shape, dtype)
    dWx, dWh, db = np.zeros(Wx.shape, dtype), np.zeros(Wh.shape, dtype), np.zeros(H, dtype)
    dprev_h = np.zeros((N, H), dtype)  # no gradient comes back from beyond the last step
    for t in reversed(range(T)):
        prev_h = h0 if t == 0 else h[:, t - 1]
        step_cache = _with_option((x[:, t], prev_h, Wx, Wh, h[:, t]), nonlinearity)
        # h_t gets gradient from the loss at step t and from step t + 1
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, step_cache)
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db
