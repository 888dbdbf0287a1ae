"""Causal linear attention (Katharopoulos et al. 2020), as attention and as an RNN, by hand.

N: batch size, T: sequence length, F: query/key size, E: value size. Queries
``q``, keys ``k`` (N, T, F), values ``v`` (N, T, E), row vectors. Softmax
attention weighs value s at position t by ``exp(q_t . k_s)``; linear
attention replaces the exponential by a dot product of features,
``phi(q_t) . phi(k_s)`` with ``phi(a) = elu(a) + 1 > 0``::

    out_t = sum_{s <= t} (phi(q_t) . phi(k_s)) v_s  /  sum_{s <= t} phi(q_t) . phi(k_s)

**As attention** (:func:`linear_attention_forward`): the (T, T) matrix of
weights, masked to ``s <= t``; ``O(T^2)`` time and memory, all positions at once.

**As an RNN** (:func:`linear_attention_rnn_forward`): the sums do not depend
on t except through their range, so they are running sums, a state of fixed size::

    S_t = S_{t-1} + phi(k_t)^T v_t      (F, E): a matrix memory
    z_t = z_{t-1} + phi(k_t)            (F,):   the normaliser
    out_t = phi(q_t) S_t / (phi(q_t) . z_t)

``O(T)`` time, ``O(1)`` memory per step at inference. Writing is an outer
product (store ``v_t`` under key ``phi(k_t)``), reading a matrix-vector
product (look up ``phi(q_t)``). With ``normalize=False`` the division by
``phi(q_t) . z_t`` is left out, as in many later variants.

Caches: :func:`linear_attention_forward`: ``(q, k, v, phi_q, phi_k, weights, out, den)``;
:func:`linear_attention_rnn_forward`: ``(q, k, v, phi_q, phi_k, S, z, out, den)``,
with ``S`` (N, T, F, E) and ``z`` (N, T, F) the states after every step.
With ``normalize=False``, ``den`` is None.
"""

import numpy as np

from ._checks import at_least_one_step, dims, expect_shape, float_array, upstream_gradient

__all__ = [
    "elu_feature_map",
    "linear_attention_forward",
    "linear_attention_backward",
    "linear_attention_rnn_step",
    "linear_attention_rnn_forward",
    "linear_attention_rnn_backward",
]


def elu_feature_map(a):
    """``phi(a) = elu(a) + 1``: ``a + 1`` for ``a > 0``, ``exp(a)`` otherwise; always > 0."""
    a = np.asarray(a)
    return np.where(a > 0, a + 1, np.exp(np.minimum(a, 0)))


def _feature_map_derivative(phi):
    """``phi'(a)`` from ``phi = phi(a)``: 1 where ``phi > 1`` (a > 0), else ``exp(a) = phi``."""
    return np.where(phi > 1, 1.0, phi)


def _check(q, k, v, *, sequence=True):
    q, k, v = float_array("q", q), float_array("k", k), float_array("v", v)
    symbols = "N T F" if sequence else "N F"
    dims("q", q, symbols)
    dims("k", k, symbols)
    dims("v", v, "N T E" if sequence else "N E")
    expect_shape("k", k, symbols, q.shape)
    expect_shape("v", v, "N T E" if sequence else "N E", q.shape[:-1] + v.shape[-1:])
    if sequence:
        at_least_one_step("q", q)
    return q, k, v


def linear_attention_forward(q, k, v, *, normalize=True):
    """Causal linear attention as attention: all (t, s) weights ``phi(q_t) . phi(k_s)``, masked to ``s <= t``.

    N: batch size, T: sequence length, F: query/key size, E: value size.

    Parameters
    ----------
    q, k : ndarray (N, T, F), queries and keys (before the feature map).
    v : ndarray (N, T, E), values.
    normalize : divide by the sum of the weights (True, Katharopoulos et al.) or not.

    Returns
    -------
    out : ndarray (N, T, E)
    cache : ``(q, k, v, phi_q, phi_k, weights, out, den)``; ``weights`` (N, T, T)
        is zero above the diagonal, ``den`` (N, T) the sums of its rows (None
        without normalisation).
    """
    q, k, v = _check(q, k, v)
    T = q.shape[1]
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    causal = np.tril(np.ones((T, T), bool))
    weights = np.where(causal, phi_q @ phi_k.transpose(0, 2, 1), 0.0)  # (N, T, T): row t, column s
    out = weights @ v
    den = None
    if normalize:
        den = weights.sum(axis=2)
        out = out / den[..., None]
    return out, (q, k, v, phi_q, phi_k, weights, out, den)


def linear_attention_backward(dout, cache):
    """Backward pass of :func:`linear_attention_forward`.

    Parameters
    ----------
    dout : ndarray (N, T, E), upstream gradient of ``out``.

    Returns
    -------
    dq, dk : ndarray (N, T, F)
    dv : ndarray (N, T, E)
    """
    q, k, v, phi_q, phi_k, weights, out, den = cache
    dout = upstream_gradient("dout", dout, "N T E", out.shape)
    T = q.shape[1]
    if den is None:
        dnum, dweights = dout, dout @ v.transpose(0, 2, 1)
    else:
        dnum = dout / den[..., None]  # out = num / den
        dden = -(dnum * out).sum(axis=2)  # d(num/den)/dden = -out/den
        dweights = dnum @ v.transpose(0, 2, 1) + dden[..., None]  # den is the row sum
    dweights = np.where(np.tril(np.ones((T, T), bool)), dweights, 0.0)
    dv = weights.transpose(0, 2, 1) @ dnum
    dphi_q = dweights @ phi_k
    dphi_k = dweights.transpose(0, 2, 1) @ phi_q
    return dphi_q * _feature_map_derivative(phi_q), dphi_k * _feature_map_derivative(phi_k), dv


def linear_attention_rnn_step(q, k, v, prev_S, prev_z, *, normalize=True):
    """One step of linear attention as an RNN: write ``phi(k)^T v`` into the matrix memory, read it with ``phi(q)``.

    N: batch size, F: query/key size, E: value size.

    Parameters
    ----------
    q, k : ndarray (N, F); v : ndarray (N, E): this step's query, key and value.
    prev_S : ndarray (N, F, E), the memory; prev_z : ndarray (N, F), the normaliser.
    normalize : as for :func:`linear_attention_forward`.

    Returns
    -------
    out : ndarray (N, E)
    S : ndarray (N, F, E)
    z : ndarray (N, F)
    """
    q, k, v = _check(q, k, v, sequence=False)
    N, F = q.shape
    prev_S, prev_z = float_array("prev_S", prev_S), float_array("prev_z", prev_z)
    expect_shape("prev_S", prev_S, "N F E", (N, F, v.shape[1]))
    expect_shape("prev_z", prev_z, "N F", (N, F))
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    S = prev_S + phi_k[:, :, None] * v[:, None, :]
    z = prev_z + phi_k
    out = (phi_q[:, None, :] @ S)[:, 0]
    if normalize:
        out = out / (phi_q * z).sum(axis=1, keepdims=True)
    return out, S, z


def linear_attention_rnn_forward(q, k, v, *, normalize=True):
    """Causal linear attention as an RNN with a matrix state, in a loop over time.

    The same ``out`` as :func:`linear_attention_forward`, to rounding, in
    ``O(T F E)`` time instead of ``O(T^2 (F + E))``.

    Parameters
    ----------
    q, k : ndarray (N, T, F); v : ndarray (N, T, E).
    normalize : as for :func:`linear_attention_forward`.

    Returns
    -------
    out : ndarray (N, T, E)
    cache : ``(q, k, v, phi_q, phi_k, S, z, out, den)``, ``S`` (N, T, F, E) and
        ``z`` (N, T, F) after every step, ``den`` (N, T) or None.
    """
    q, k, v = _check(q, k, v)
    N, T, F = q.shape
    E = v.shape[2]
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    dtype = np.result_type(q, k, v)
    S = np.empty((N, T, F, E), dtype)
    z = np.empty((N, T, F), dtype)
    out = np.empty((N, T, E), dtype)
    prev_S, prev_z = np.zeros((N, F, E), dtype), np.zeros((N, F), dtype)
    for t in range(T):
        S[:, t] = prev_S + phi_k[:, t, :, None] * v[:, t, None, :]  # write: outer product
        z[:, t] = prev_z + phi_k[:, t]
        out[:, t] = (phi_q[:, t, None, :] @ S[:, t])[:, 0]  # read: phi(q_t) S_t
        prev_S, prev_z = S[:, t], z[:, t]
    den = None
    if normalize:
        den = (phi_q * z).sum(axis=2)
        out /= den[..., None]
    return out, (q, k, v, phi_q, phi_k, S, z, out, den)


def linear_attention_rnn_backward(dout, cache):
    """Backward pass of :func:`linear_attention_rnn_forward`: an RNN running backwards with a matrix state.

    The gradient of ``S_t`` collects the reads of every later step,
    ``dS_t = dS_{t+1} + phi(q_t)^T dnum_t``, and the write of step t receives
    it: ``dphi(k_t) = dS_t v_t + dz_t``, ``dv_t = phi(k_t) dS_t``.

    Parameters
    ----------
    dout : ndarray (N, T, E), upstream gradient of ``out``.

    Returns
    -------
    dq, dk, dv : the gradients :func:`linear_attention_backward` gives, to rounding.
    """
    q, k, v, phi_q, phi_k, S, z, out, den = cache
    dout = upstream_gradient("dout", dout, "N T E", out.shape)
    N, T, F = q.shape
    E = v.shape[2]
    if den is None:
        dnum, dden = dout, np.zeros((N, T), dout.dtype)
    else:
        dnum = dout / den[..., None]
        dden = -(dnum * out).sum(axis=2)
    dphi_q = np.empty_like(phi_q)
    dphi_k = np.empty_like(phi_k)
    dv = np.empty_like(v)
    dS = np.zeros((N, F, E), dnum.dtype)  # nothing reads S after the last step
    dz = np.zeros((N, F), dnum.dtype)
    for t in reversed(range(T)):
        # read: num_t = phi(q_t) S_t, den_t = phi(q_t) . z_t
        dphi_q[:, t] = (S[:, t] @ dnum[:, t, :, None])[..., 0] + dden[:, t, None] * z[:, t]
        dS += phi_q[:, t, :, None] * dnum[:, t, None, :]
        dz += dden[:, t, None] * phi_q[:, t]
        # write: S_t = S_{t-1} + phi(k_t)^T v_t, z_t = z_{t-1} + phi(k_t)
        dphi_k[:, t] = (dS @ v[:, t, :, None])[..., 0] + dz
        dv[:, t] = (phi_k[:, t, None, :] @ dS)[:, 0]
    return dphi_q * _feature_map_derivative(phi_q), dphi_k * _feature_map_derivative(phi_k), dv
