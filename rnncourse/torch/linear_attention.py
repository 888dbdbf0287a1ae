"""Causal linear attention in PyTorch: as attention, as an RNN with a matrix state, and as a module.

N: batch size, T: sequence length, F: query/key size, E: value size. The
equations are those of :mod:`rnncourse.numpy.linear_attention` (the reference
these are tested against): features ``phi(a) = elu(a) + 1``, and::

    out_t = phi(q_t) S_t / (phi(q_t) . z_t),   S_t = sum_{s <= t} phi(k_s)^T v_s,   z_t = sum_{s <= t} phi(k_s)

- :func:`linear_attention`: the (T, T) masked weight matrix, ``O(T^2)``;
- :func:`linear_attention_rnn`: the RNN's states ``S_t`` for all t at once, as a
  running sum (``torch.cumsum``, a scan whose coefficient is 1), ``O(T F E)``
  time and memory; :func:`linear_attention_step` is one step of it, for
  generation with ``O(F E)`` memory whatever the length.
"""

import torch
from torch import nn
from torch.nn import functional as F

from ..validation import check_choice

__all__ = ["elu_feature_map", "linear_attention", "linear_attention_rnn", "linear_attention_step",
           "CausalLinearAttention"]

FORMS = ("rnn", "attention")


def elu_feature_map(a):
    """``phi(a) = elu(a) + 1 > 0``."""
    return F.elu(a) + 1


def _check(q, k, v):
    if q.dim() != 3 or k.shape != q.shape:
        raise ValueError(f"q, k have shapes {tuple(q.shape)}, {tuple(k.shape)}; expected one shape (N, T, F)")
    if v.dim() != 3 or v.shape[:2] != q.shape[:2]:
        raise ValueError(f"v has shape {tuple(v.shape)}; expected (N, T, E) with (N, T) = {tuple(q.shape[:2])}")


def linear_attention(q, k, v, *, normalize=True):
    """Causal linear attention as attention: weights ``phi(q_t) . phi(k_s)`` for ``s <= t``.

    Parameters
    ----------
    q, k : Tensor (N, T, F); v : Tensor (N, T, E).
    normalize : divide by the sum of each row's weights.

    Returns
    -------
    out : Tensor (N, T, E)
    """
    _check(q, k, v)
    T = q.shape[1]
    weights = elu_feature_map(q) @ elu_feature_map(k).transpose(1, 2)  # (N, T, T)
    weights = weights * torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    out = weights @ v
    return out / weights.sum(-1, keepdim=True) if normalize else out


def linear_attention_rnn(q, k, v, *, normalize=True):
    """Causal linear attention as an RNN: the matrix memory ``S_t`` of every step, then one read per step.

    Same parameters and result as :func:`linear_attention`.
    """
    _check(q, k, v)
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    S = torch.cumsum(phi_k[..., :, None] * v[..., None, :], dim=1)  # (N, T, F, E): S_t for every t
    out = (phi_q[..., None, :] @ S)[..., 0, :]
    if normalize:
        out = out / (phi_q * torch.cumsum(phi_k, dim=1)).sum(-1, keepdim=True)
    return out


def linear_attention_step(q, k, v, S, z, *, normalize=True):
    """One step: write ``phi(k)^T v`` into the memory ``S`` (N, F, E) and ``phi(k)`` into ``z`` (N, F), read with ``phi(q)``.

    Returns ``(out (N, E), S, z)``, the new state.
    """
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    S = S + phi_k[:, :, None] * v[:, None, :]
    z = z + phi_k
    out = (phi_q[:, None, :] @ S)[:, 0]
    if normalize:
        out = out / (phi_q * z).sum(-1, keepdim=True)
    return out, S, z


class CausalLinearAttention(nn.Module):
    """Linear projections to queries, keys and values, causal linear attention, and an output projection.

    Parameters
    ----------
    input_size : the size of each input vector.
    key_size : F, the size of queries and keys (the memory has F rows).
    value_size : E, the size of values (the memory has E columns).
    output_size : the output's size (``input_size`` if None).
    normalize : as for :func:`linear_attention`.
    form : ``"rnn"`` (:func:`linear_attention_rnn`) or ``"attention"`` (:func:`linear_attention`).
    """

    def __init__(self, input_size, key_size, value_size, output_size=None, *, normalize=True, form="rnn",
                 device=None, dtype=None):
        super().__init__()
        check_choice("form", form, FORMS)
        kw = dict(device=device, dtype=dtype)
        self.normalize, self.form = normalize, form
        self.query = nn.Linear(input_size, key_size, **kw)
        self.key = nn.Linear(input_size, key_size, **kw)
        self.value = nn.Linear(input_size, value_size, **kw)
        self.out = nn.Linear(value_size, output_size or input_size, **kw)

    def extra_repr(self):
        return f"normalize={self.normalize}, form={self.form!r}"

    def forward(self, x):
        """``x`` (N, T, input_size) -> (N, T, output_size)."""
        attend = linear_attention_rnn if self.form == "rnn" else linear_attention
        return self.out(attend(self.query(x), self.key(x), self.value(x), normalize=self.normalize))
