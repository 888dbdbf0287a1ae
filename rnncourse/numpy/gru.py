"""Gated recurrent unit (GRU), forward and backward by hand.

One step, as ``torch.nn.GRU`` computes it, with row vectors and the gates
stacked ``r, z, n`` along the last axis of ``Wx (D, 3H)``, ``Wh (H, 3H)``,
``bx`` and ``bh (3H,)``::

    r_t = sigmoid(x_t Wxr + bxr + h_{t-1} Whr + bhr)       reset gate
    z_t = sigmoid(x_t Wxz + bxz + h_{t-1} Whz + bhz)       update gate
    n_t = tanh(x_t Wxn + bxn + r_t * (h_{t-1} Whn + bhn))  new state
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

With ``reset_after=False`` the reset gate acts *before* the matrix product,
as in Cho et al. (2014)::

    n_t = tanh(x_t Wxn + bxn + (r_t * h_{t-1}) Whn + bhn)

Backward, given the gradient ``dh_t`` arriving at ``h_t``, with ``a`` the
pre-activation of each gate (the argument of its sigmoid or tanh)::

    da_n = dh_t * (1 - z_t) * (1 - n_t^2)
    da_z = dh_t * (h_{t-1} - n_t) * z_t (1 - z_t)
    da_r = da_n * (h_{t-1} Whn + bhn) * r_t (1 - r_t)
    dh_{t-1} = dh_t * z_t + [da_r, da_z, da_n * r_t] Wh^T

and, summed over the batch and the steps, ``dWx = x_t^T [da_r, da_z, da_n]``,
``dbx = [da_r, da_z, da_n]``, ``dWh = h_{t-1}^T [da_r, da_z, da_n * r_t]``,
``dbh = [da_r, da_z, da_n * r_t]``. With ``reset_after=False``, writing
``s_t = r_t * h_{t-1}``::

    ds   = da_n Whn^T
    da_r = ds * h_{t-1} * r_t (1 - r_t)
    dh_{t-1} = dh_t * z_t + ds * r_t + [da_r, da_z] [Whr, Whz]^T

and ``dWh = [h_{t-1}^T [da_r, da_z], s_t^T da_n]``, ``dbh = dbx``.
"""

import numpy as np

from .lstm import _sigmoid
from .rnn import _check_recurrent_inputs, _check_upstream, _input_gradients, _previous_states

__all__ = ["gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward"]


def _split(a, H):
    """The three (N, H) blocks ``r, z, n`` of an (N, 3H) array, as views."""
    return a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]


def _gru_cell(ax, prev_h, Wh, bh, reset_after, hWh, r, z, n, saved, h):
    """The GRU equations given the input projection, unchecked.

    ``ax`` (N, 3H) holds ``x_t Wx + bx``. Writes the gates and ``h_t`` into
    the (N, H) arrays ``r, z, n, h``, and into ``saved`` (N, H) what the
    backward pass needs besides them: ``h_{t-1} Whn + bhn`` (``reset_after``)
    or ``r_t * h_{t-1}``. ``hWh`` (N, 3H) is working space.
    """
    H = prev_h.shape[1]
    ax_r, ax_z, ax_n = _split(ax, H)
    if reset_after:
        # r and z from ax + (h_{t-1} Wh + bh); r then scales the n block of the latter
        np.matmul(prev_h, Wh, out=hWh)
        hWh += bh
        ah_r, ah_z, ah_n = _split(hWh, H)
        _sigmoid(ax_r + ah_r, out=r)
        _sigmoid(ax_z + ah_z, out=z)
        saved[...] = ah_n
        np.multiply(r, saved, out=n)
    else:
        # r scales h_{t-1} before its product with Whn
        ah_rz = np.matmul(prev_h, Wh[:, : 2 * H], out=hWh[:, : 2 * H])
        ah_rz += bh[: 2 * H]
        _sigmoid(ax_r + ah_rz[:, :H], out=r)
        _sigmoid(ax_z + ah_rz[:, H:], out=z)
        np.multiply(r, prev_h, out=saved)
        np.matmul(saved, Wh[:, 2 * H :], out=n)
        n += bh[2 * H :]
    n += ax_n
    np.tanh(n, out=n)
    # h_t = (1 - z) * n + z * h_{t-1}, written with one product fewer
    np.subtract(prev_h, n, out=h)
    h *= z
    h += n


def _gru_cell_backward(dh, r, z, n, saved, prev_h, WhT, reset_after, dax, dah, dprev_h):
    """Backward of :func:`_gru_cell`, unchecked.

    ``dh`` (N, H) is the gradient arriving at ``h_t``; ``WhT`` (3H, H) is
    ``Wh.T`` (the sequence loop passes a contiguous copy, which multiplies faster). Writes the gradient of
    the input side's pre-activations ``x_t Wx + bx`` into ``dax`` (N, 3H) and
    that of ``h_{t-1}`` into ``dprev_h`` (N, H). With ``reset_after`` the
    hidden side ``h_{t-1} Wh + bh`` has a gradient of its own,
    ``[da_r, da_z, da_n * r]``, written into ``dah`` (N, 3H); without, the
    hidden side's pre-activations are the input side's and ``dah`` is unused.
    """
    H = prev_h.shape[1]
    # h_t = (1 - z) * n + z * h_{t-1}; then each gate through its activation's slope
    da_n = dh * (1 - z) * (1 - n * n)
    da_z = dh * (prev_h - n) * z * (1 - z)
    if reset_after:
        # n = tanh(x Wxn + bxn + r * saved) with saved = h_{t-1} Whn + bhn
        da_r = da_n * saved * r * (1 - r)
    else:
        # n = tanh(x Wxn + bxn + s Whn + bhn) with s = saved = r * h_{t-1}
        ds = da_n @ WhT[2 * H :]
        da_r = ds * prev_h * r * (1 - r)
    dax[:, :H], dax[:, H : 2 * H], dax[:, 2 * H :] = da_r, da_z, da_n
    if reset_after:
        dah[:, :H], dah[:, H : 2 * H], dah[:, 2 * H :] = da_r, da_z, da_n * r
        np.matmul(dah, WhT, out=dprev_h)
        dprev_h += dh * z
    else:
        np.matmul(dax[:, : 2 * H], WhT[: 2 * H], out=dprev_h)
        dprev_h += dh * z + ds * r


def _check_gru_inputs(x, states, Wx, Wh, bx, bh, sequence):
    return _check_recurrent_inputs(x, states, Wx, Wh, {"bx": bx, "bh": bh}, gates=3, sequence=sequence)


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
    cache : what :func:`gru_step_backward` needs.
    """
    x, (prev_h,), Wx, Wh, (bx, bh) = _check_gru_inputs(x, {"prev_h": prev_h}, Wx, Wh, bx, bh, False)
    N, H = prev_h.shape
    dtype = np.result_type(x, prev_h, Wx, Wh, bx, bh)
    r, z, n, saved, next_h = (np.empty((N, H), dtype) for _ in range(5))
    _gru_cell(x @ Wx + bx, prev_h, Wh, bh, reset_after, np.empty((N, 3 * H), dtype), r, z, n, saved, next_h)
    return next_h, (x, prev_h, Wx, Wh, (r, z, n), saved, bool(reset_after))


def gru_step_backward(dnext_h, cache):
    """Backward pass of :func:`gru_step_forward`.

    N: batch size, D: input size, H: hidden size.

    Parameters
    ----------
    dnext_h : ndarray (N, H), upstream gradient of ``next_h``.
    cache : from :func:`gru_step_forward`. Not modified.

    Returns
    -------
    dx : ndarray (N, D)
    dprev_h : ndarray (N, H)
    dWx : ndarray (D, 3H)
    dWh : ndarray (H, 3H)
    dbx : ndarray (3H,)
    dbh : ndarray (3H,)
    """
    x, prev_h, Wx, Wh, (r, z, n), saved, reset_after = cache
    N, H = prev_h.shape
    dnext_h = _check_upstream("dnext_h", dnext_h, "N H", (N, H))
    dtype = np.result_type(dnext_h, n)
    dax = np.empty((N, 3 * H), dtype)
    dah = np.empty((N, 3 * H), dtype) if reset_after else dax
    dprev_h = np.empty((N, H), dtype)
    _gru_cell_backward(dnext_h, r, z, n, saved, prev_h, Wh.T, reset_after, dax, dah, dprev_h)
    dx, dWx = dax @ Wx.T, x.T @ dax
    if reset_after:
        dWh = prev_h.T @ dah
    else:
        dWh = np.concatenate([prev_h.T @ dax[:, : 2 * H], saved.T @ dax[:, 2 * H :]], axis=1)
    return dx, dprev_h, dWx, dWh, dax.sum(axis=0), dah.sum(axis=0)


def gru_forward(x, h0, Wx, Wh, bx, bh, *, reset_after=True):
    """The GRU over a whole sequence, as ``torch.nn.GRU`` computes it.

    N: batch size, T: sequence length, D: input size, H: hidden size.
    Gates stacked ``r, z, n``; see :func:`gru_step_forward` for one step.

    Parameters
    ----------
    x : ndarray (N, T, D), the input sequences.
    h0 : ndarray (N, H), the initial hidden state.
    Wx : ndarray (D, 3H), input-to-hidden weights.
    Wh : ndarray (H, 3H), hidden-to-hidden weights.
    bx : ndarray (3H,), input-side bias.
    bh : ndarray (3H,), hidden-side bias.
    reset_after : True (default, torch's GRU) or False (Cho et al. 2014);
        see :func:`gru_step_forward`.

    Returns
    -------
    h : ndarray (N, T, H), the hidden state at every step.
    cache : what :func:`gru_backward` needs.
    """
    x, (h0,), Wx, Wh, (bx, bh) = _check_gru_inputs(x, {"h0": h0}, Wx, Wh, bx, bh, True)
    N, T, D = x.shape
    H = Wh.shape[0]
    dtype = np.result_type(x, h0, Wx, Wh, bx, bh)
    # x_t Wx + bx does not depend on the recurrence: all steps in one product.
    xWx_b = (x.reshape(N * T, D) @ Wx).astype(dtype, copy=False).reshape(N, T, 3 * H)
    xWx_b += bx
    # What the backward pass needs besides h, stored time-major: each step's
    # (N, H) block is contiguous, and NumPy is 2-3 times slower on strided blocks.
    r, z, n, saved = (np.empty((T, N, H), dtype) for _ in range(4))
    h = np.empty((N, T, H), dtype)
    hWh = np.empty((N, 3 * H), dtype)
    prev_h = h0
    for t in range(T):
        _gru_cell(xWx_b[:, t], prev_h, Wh, bh, reset_after, hWh, r[t], z[t], n[t], saved[t], h[:, t])
        prev_h = h[:, t]
    return h, (x, h0, Wx, Wh, (r, z, n), saved, h, bool(reset_after))


def gru_backward(dh, cache):
    """Backward pass of :func:`gru_forward` (backpropagation through time).

    N: batch size, T: sequence length, D: input size, H: hidden size.

    Parameters
    ----------
    dh : ndarray (N, T, H), upstream gradient of every hidden state ``h[:, t]``
        (from the loss at that step only, not through later steps).
    cache : from :func:`gru_forward`. Not modified.

    Returns
    -------
    dx : ndarray (N, T, D)
    dh0 : ndarray (N, H)
    dWx : ndarray (D, 3H)
    dWh : ndarray (H, 3H)
    dbx : ndarray (3H,)
    dbh : ndarray (3H,)
    """
    x, h0, Wx, Wh, (r, z, n), saved, h, reset_after = cache
    N, T, D = x.shape
    H = Wh.shape[0]
    dh = _check_upstream("dh", dh, "N T H", (N, T, H))
    dtype = np.result_type(dh, h)

    dax = np.empty((N, T, 3 * H), dtype)
    dah = np.empty((N, T, 3 * H), dtype) if reset_after else dax
    dh_t = np.empty((N, H), dtype)
    # the gradient reaching h_t through step t + 1; none beyond the last step
    dh_carry = np.zeros((N, H), dtype)
    WhT = np.ascontiguousarray(Wh.T)
    for t in reversed(range(T)):
        np.add(dh[:, t], dh_carry, out=dh_t)
        prev_h = h[:, t - 1] if t > 0 else h0
        _gru_cell_backward(
            dh_t, r[t], z[t], n[t], saved[t], prev_h, WhT, reset_after, dax[:, t], dah[:, t], dh_carry
        )

    dx, dWx = _input_gradients(x, dax, Wx)
    h_prev = _previous_states(h0, h)
    if reset_after:
        dWh = h_prev.T @ dah.reshape(N * T, 3 * H)
    else:
        da_rows = dax.reshape(N * T, 3 * H)
        r_h_prev = saved.transpose(1, 0, 2).reshape(N * T, H)
        dWh = np.concatenate([h_prev.T @ da_rows[:, : 2 * H], r_h_prev.T @ da_rows[:, 2 * H :]], axis=1)
    return dx, dh_carry, dWx, dWh, dax.sum(axis=(0, 1)), dah.sum(axis=(0, 1))
