"""Gated recurrent unit (GRU), forward and backward by hand.

One step, as ``torch.nn.GRU`` computes it, with row vectors and the gates
stacked ``r, z, n`` along the last axis of ``Wx (D, 3H)``, ``Wh (H, 3H)``,
``bx`` and ``bh (3H,)`` (so ``Wh = [Whr, Whz, Whn]``), in the symbols of the
book's GRU chapter::

    r_t = sigmoid(x_t Wxr + bxr + h_{t-1} Whr + bhr)       reset gate
    z_t = sigmoid(x_t Wxz + bxz + h_{t-1} Whz + bhz)       update gate
    n_t = tanh(x_t Wxn + bxn + r_t * (h_{t-1} Whn + bhn))  candidate state
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

With ``reset_after=False`` the reset gate acts *before* the matrix product,
as in Cho et al. (2014)::

    n_t = tanh(x_t Wxn + bxn + (r_t * h_{t-1}) Whn + bhn)

The code names ``hn`` the hidden side of the candidate, ``h_{t-1} Whn + bhn``
(or ``(r_t * h_{t-1}) Whn + bhn``), and ``a_r, a_z, a_n`` the arguments of the
sigmoids and the tanh. Backward, the same lines from the last to the first,
given the gradient ``dh_t`` arriving at ``h_t``::

    da_z = dh_t * (h_{t-1} - n_t) * z_t (1 - z_t)
    da_n = dh_t * (1 - z_t) * (1 - n_t^2)
    dhn  = da_n * r_t,   da_r = da_n * hn * r_t (1 - r_t)
    dh_{t-1} = dh_t * z_t + dhn Whn^T + da_r Whr^T + da_z Whz^T

and ``dWx = x_t^T [da_r, da_z, da_n]``, ``dbx = [da_r, da_z, da_n]``,
``dWh = h_{t-1}^T [da_r, da_z, dhn]``, ``dbh = [da_r, da_z, dhn]`` (summed over
the batch). With ``reset_after=False``, writing ``s_t = r_t * h_{t-1}``::

    dhn  = da_n,   ds = dhn Whn^T,   da_r = ds * h_{t-1} * r_t (1 - r_t)
    dh_{t-1} = dh_t * z_t + ds * r_t + da_r Whr^T + da_z Whz^T

and ``dWhn = s_t^T dhn``. :func:`gru_forward` is :func:`gru_step_forward` in a
loop over the steps, :func:`gru_backward` is :func:`gru_step_backward` in a
loop over the steps run backwards, summing the weights' gradients.

The caches (the layouts the exercises state)::

    gru_step_forward -> (x, prev_h, Wx, Wh, r, z, n, hn)
    gru_forward      -> (x, h0, Wx, Wh, r, z, n, hn, h)

With ``reset_after=False``, which the exercises do not ask for, the cache has
one more element after these arrays, ``False``.
"""

import numpy as np

from ._checks import recurrent_inputs, unpack_cache, upstream_gradient
from .activations import sigmoid

__all__ = ["gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward"]


def _with_option(cache, reset_after):
    """A cache of the stated layout, followed by ``False`` for ``reset_after=False``."""
    return cache if reset_after else cache + (False,)


def gru_step_forward(x, prev_h, Wx, Wh, bx, bh, *, reset_after=True):
    """One time step of the GRU, as ``torch.nn.GRU`` computes it.

    N: batch size, D: input size, H: hidden size. Gates stacked ``r, z, n``.

    ``r = sigmoid(x Wxr + bxr + prev_h Whr + bhr)``, ``z`` likewise,
    ``n = tanh(x Wxn + bxn + r * (prev_h Whn + bhn))``,
    ``next_h = (1 - z) * n + z * prev_h``.

    Parameters
    ----------
    x : ndarray (N, D), the inputs at this step.
    prev_h : ndarray (N, H), the previous hidden state.
    Wx : ndarray (D, 3H), input-to-hidden weights.
    Wh : ndarray (H, 3H), hidden-to-hidden weights.
    bx : ndarray (3H,), input-side bias (``bias_ih_l0`` in torch).
    bh : ndarray (3H,), hidden-side bias (``bias_hh_l0`` in torch).
    reset_after : True (default, torch's GRU) applies the reset gate after the
        product with ``Whn``; False gives Cho et al.'s
        ``n = tanh(x Wxn + bxn + (r * prev_h) Whn + bhn)``.

    Returns
    -------
    next_h : ndarray (N, H)
    cache : tuple ``(x, prev_h, Wx, Wh, r, z, n, hn)``, the step's inputs, its
        gates (N, H) each and ``hn = prev_h Whn + bhn`` (with
        ``reset_after=False``, ``(r * prev_h) Whn + bhn``, and ``False`` after
        it), for :func:`gru_step_backward`.
    """
    x, (prev_h,), Wx, Wh, (bx, bh) = recurrent_inputs(
        x, {"prev_h": prev_h}, Wx, Wh, {"bx": bx, "bh": bh}, gates=3, sequence=False
    )
    Whr, Whz, Whn = np.split(Wh, 3, axis=1)
    bhr, bhz, bhn = np.split(bh, 3)
    ax_r, ax_z, ax_n = np.split(x @ Wx + bx, 3, axis=1)  # the input side x Wx + bx, blocks r, z, n
    r = sigmoid(ax_r + prev_h @ Whr + bhr)
    z = sigmoid(ax_z + prev_h @ Whz + bhz)
    if reset_after:
        hn = prev_h @ Whn + bhn
        n = np.tanh(ax_n + r * hn)
    else:
        hn = (r * prev_h) @ Whn + bhn
        n = np.tanh(ax_n + hn)
    next_h = (1 - z) * n + z * prev_h
    return next_h, _with_option((x, prev_h, Wx, Wh, r, z, n, hn), reset_after)


def gru_step_backward(dnext_h, cache):
    """Backward pass of :func:`gru_step_forward`.

    N: batch size, D: input size, H: hidden size.

    Parameters
    ----------
    dnext_h : ndarray (N, H), upstream gradient of ``next_h``.
    cache : ``(x, prev_h, Wx, Wh, r, z, n, hn)`` from :func:`gru_step_forward`
        (and ``False`` after it for ``reset_after=False``).

    Returns
    -------
    dx : ndarray (N, D)
    dprev_h : ndarray (N, H)
    dWx : ndarray (D, 3H)
    dWh : ndarray (H, 3H)
    dbx : ndarray (3H,)
    dbh : ndarray (3H,)
    """
    (x, prev_h, Wx, Wh, r, z, n, hn), reset_after = unpack_cache(cache, "x prev_h Wx Wh r z n hn", True)
    dnext_h = upstream_gradient("dnext_h", dnext_h, "N H", prev_h.shape)
    Whr, Whz, Whn = np.split(Wh, 3, axis=1)
    # next_h = (1 - z) * n + z * prev_h; each gate through the slope of its activation
    da_z = dnext_h * (prev_h - n) * z * (1 - z)
    da_n = dnext_h * (1 - z) * (1 - n**2)
    # dhn: the gradient of hn; dprev_h_via_n: what prev_h gets through hn (and, before, through r * prev_h)
    if reset_after:
        # n = tanh(ax_n + r * hn), hn = prev_h Whn + bhn
        dhn = da_n * r
        da_r = da_n * hn * r * (1 - r)
        dprev_h_via_n = dhn @ Whn.T
        dWhn = prev_h.T @ dhn
    else:
        # n = tanh(ax_n + hn), hn = s Whn + bhn with s = r * prev_h
        dhn = da_n
        ds = dhn @ Whn.T
        da_r = ds * prev_h * r * (1 - r)
        dprev_h_via_n = ds * r
        dWhn = (r * prev_h).T @ dhn
    # r = sigmoid(ax_r + prev_h Whr + bhr) and z likewise; prev_h also reaches next_h directly
    dprev_h = dnext_h * z + dprev_h_via_n + da_r @ Whr.T + da_z @ Whz.T
    dWh = np.concatenate([prev_h.T @ da_r, prev_h.T @ da_z, dWhn], axis=1)
    dbh = np.concatenate([da_r, da_z, dhn], axis=1).sum(axis=0)
    # the input side x Wx + bx, its blocks stacked r, z, n
    dax = np.concatenate([da_r, da_z, da_n], axis=1)
    dx = dax @ Wx.T
    dWx = x.T @ dax
    dbx = dax.sum(axis=0)
    return dx, dprev_h, dWx, dWh, dbx, dbh


def gru_forward(x, h0, Wx, Wh, bx, bh, *, reset_after=True):
    """The GRU over a whole sequence: :func:`gru_step_forward` in a loop over the steps.

    N: batch size, T: sequence length, D: input size, H: hidden size.
    Gates stacked ``r, z, n``; see :func:`gru_step_forward` for one step.

    Parameters
    ----------
    x : ndarray (N, T, D), the input sequences.
    h0 : ndarray (N, H), the initial hidden state.
    Wx, Wh, bx, bh : ndarray (D, 3H), (H, 3H), (3H,), (3H,), the weights of
        :func:`gru_step_forward`, the same at every step.
    reset_after : True (default, torch's GRU) or False (Cho et al. 2014);
        see :func:`gru_step_forward`.

    Returns
    -------
    h : ndarray (N, T, H), the hidden state at every step.
    cache : tuple ``(x, h0, Wx, Wh, r, z, n, hn, h)``, for :func:`gru_backward`:
        the inputs, the gates and ``hn`` of every step, ``(N, T, H)`` each,
        and the states ``h``; with ``reset_after=False`` followed by
        ``False``. Step ``t``'s cache is ``(x[:, t], prev_h, Wx, Wh, r[:, t],
        z[:, t], n[:, t], hn[:, t])`` with ``prev_h = h0`` at ``t = 0``, else
        ``h[:, t-1]``.
    """
    x, (h0,), Wx, Wh, (bx, bh) = recurrent_inputs(x, {"h0": h0}, Wx, Wh, {"bx": bx, "bh": bh}, gates=3)
    steps = []
    prev_h = h0
    for t in range(x.shape[1]):
        prev_h, step_cache = gru_step_forward(x[:, t], prev_h, Wx, Wh, bx, bh, reset_after=reset_after)
        steps.append((*step_cache[4:8], prev_h))
    # each step's r, z, n, hn and its state h_t, stacked over time: (N, T, H) each
    r, z, n, hn, h = (np.stack(field, axis=1) for field in zip(*steps))
    return h, _with_option((x, h0, Wx, Wh, r, z, n, hn, h), reset_after)


def gru_backward(dh, cache):
    """Backward pass of :func:`gru_forward` (backpropagation through time).

    N: batch size, T: sequence length, D: input size, H: hidden size.
    :func:`gru_step_backward` in a loop over the steps, last step first.

    Parameters
    ----------
    dh : ndarray (N, T, H), upstream gradient of every hidden state ``h[:, t]``
        (from the loss at that step only, not through later steps).
    cache : ``(x, h0, Wx, Wh, r, z, n, hn, h)`` from :func:`gru_forward` (and
        ``False`` after it for ``reset_after=False``).

    Returns
    -------
    dx : ndarray (N, T, D)
    dh0 : ndarray (N, H)
    dWx : ndarray (D, 3H)
    dWh : ndarray (H, 3H)
    dbx : ndarray (3H,)
    dbh : ndarray (3H,)
    """
    (x, h0, Wx, Wh, r, z, n, hn, h), reset_after = unpack_cache(cache, "x h0 Wx Wh r z n hn h", True)
    N, T, H = h.shape
    dh = upstream_gradient("dh", dh, "N T H", h.shape)
    dtype = np.result_type(dh, h)
    dx = np.empty(x.shape, dtype)
    dWx, dWh = np.zeros(Wx.shape, dtype), np.zeros(Wh.shape, dtype)
    dbx, dbh = np.zeros(3 * H, dtype), np.zeros(3 * H, dtype)
    dprev_h = np.zeros((N, H), dtype)  # no gradient comes back from beyond the last step
    for t in reversed(range(T)):
        prev_h = h0 if t == 0 else h[:, t - 1]
        step_cache = _with_option((x[:, t], prev_h, Wx, Wh, r[:, t], z[:, t], n[:, t], hn[:, t]), reset_after)
        # h_t gets gradient from the loss at step t and from step t + 1
        dx[:, t], dprev_h, dWx_t, dWh_t, dbx_t, dbh_t = gru_step_backward(dh[:, t] + dprev_h, step_cache)
        dWx += dWx_t
        dWh += dWh_t
        dbx += dbx_t
        dbh += dbh_t
    return dx, dprev_h, dWx, dWh, dbx, dbh
