"""Attention as ``torch.nn`` modules: dot-product, scaled dot-product, additive.

The same three steps as :mod:`rnncourse.numpy.attention`, with autograd
doing the backward pass:

1. **scores** ``e[n, i, j]``: how well query ``i`` matches key ``j``;
2. **weights** ``alpha = masked_softmax(e)`` over the keys ``j``;
3. **context** ``c[n, i] = sum_j alpha[n, i, j] v[n, j]``, i.e. ``alpha @ v``.

Every module's ``forward(query, keys, values, mask=None, lengths=None)``
returns ``(context, weights)``, so the weights can be plotted.

Shapes are batch first: ``query (N, Tq, Dq)``, or ``(N, Dq)`` for a single
query (one decoder step), ``keys (N, Tk, Dk)``, ``values (N, Tk, Dv)``.

**The mask.** Either a boolean ``mask`` that is ``True`` where a key is
*real* (the convention of the boolean ``attn_mask`` of
:func:`torch.nn.functional.scaled_dot_product_attention`; note it is the
opposite of ``key_padding_mask`` in :class:`torch.nn.MultiheadAttention`),
of shape ``(N, Tk)`` or ``(N, Tq, Tk)``; or ``lengths (N,)``, the number of
real keys of each sequence (keys ``j >= lengths[n]`` are padding). Masked keys
get weight exactly ``0.0``. A query with no real key at all gets all-zero
weights and a zero context (and zero gradients), never NaN: there is nothing
to attend to, and the zero vector is what ``sum_j alpha_j v_j`` is over an
empty set.
"""

import math

import torch
from torch import nn

from ..validation import check_int

__all__ = [
    "lengths_to_mask",
    "masked_softmax",
    "Attention",
    "DotProductAttention",
    "ScaledDotProductAttention",
    "AdditiveAttention",
    "make_attention",
    "ATTENTION_KINDS",
]

ATTENTION_KINDS = ("dot", "scaled_dot", "additive")


def lengths_to_mask(lengths, max_len):
    """The boolean key mask of a padded batch: ``mask[n, j] = j < lengths[n]``.

    N: batch size, T: padded length.

    Parameters
    ----------
    lengths : Tensor (N,), integer: the number of real positions of each sequence.
    max_len : int: the padded length ``T``.

    Returns
    -------
    mask : Tensor (N, T), bool, on the device of ``lengths``: True where real.
    """
    if not isinstance(lengths, torch.Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(
            f"lengths has shape {tuple(lengths.shape)} and dtype {lengths.dtype}; "
            "expected a 1-D integer tensor (N,)"
        )
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]


def masked_softmax(scores, mask=None):
    """Softmax over the last axis in which masked positions get weight exactly 0.

    N: batch size, Tq: number of queries, Tk: number of keys.

    A row whose keys are all masked gets all-zero weights (not NaN) and a
    zero gradient.

    Parameters
    ----------
    scores : Tensor (N, Tq, Tk), float.
    mask : Tensor (N, Tq, Tk) or anything broadcastable to it (e.g. (N, 1, Tk)),
        bool, optional: True where the key is real. None: every key is real.

    Returns
    -------
    weights : Tensor (N, Tq, Tk), the dtype of ``scores``: rows sum to 1 (0 if fully masked).
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    # Fill with the most negative *finite* number rather than -inf: a fully
    # masked row then gives a uniform softmax instead of 0/0 = NaN, and the
    # masked_fill after the softmax zeroes it. With -inf the outputs would be
    # the same, but a NaN would pass through the softmax and its backward
    # (where torch.autograd.detect_anomaly stops). In a row with a real key,
    # exp(min - max) underflows to exactly 0: masked keys get exactly 0 either
    # way. Two masked_fills and one fused softmax: no extra reduction, no sync.
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)


class Attention(nn.Module):
    """Base class: scores from a subclass, then the masked softmax and the weighted sum.

    N: batch size, Tq: number of queries, Tk: number of keys, Dq: query size,
    Dk: key size, Dv: value size.

    A subclass defines :meth:`score`, and :meth:`precompute_keys` if part of
    the score depends on the keys alone. An encoder-decoder attends to the
    same keys at every decoder step, so that part is computed once per source
    sentence and passed back as ``precomputed_keys`` (it is the ``k Wk``
    projection of the additive score, and nothing for the dot scores).
    """

    #: True when :meth:`score` needs ``Dq == Dk``.
    same_size = True

    def precompute_keys(self, keys):
        """What :meth:`score` needs from the keys, computed once: here the keys themselves.

        Parameters
        ----------
        keys : Tensor (N, Tk, Dk).

        Returns
        -------
        Tensor, to pass to :meth:`forward` as ``precomputed_keys``.
        """
        return keys

    def score(self, query, keys):
        """Scores ``e (N, Tq, Tk)`` from ``query (N, Tq, Dq)`` and precomputed keys."""
        raise NotImplementedError

    def forward(self, query, keys, values, mask=None, lengths=None, precomputed_keys=None):
        """Attend from each query to the keys; return the context and the weights.

        Parameters
        ----------
        query : Tensor (N, Tq, Dq), or (N, Dq) for a single query per sequence.
        keys : Tensor (N, Tk, Dk).
        values : Tensor (N, Tk, Dv).
        mask : Tensor (N, Tk) or (N, Tq, Tk), bool, optional: True where the key
            is real. Give ``mask`` or ``lengths``, not both; neither: all keys are real.
        lengths : Tensor (N,), integer, optional: number of real keys per sequence.
        precomputed_keys : Tensor, optional: ``self.precompute_keys(keys)``,
            to skip recomputing it at every decoder step.

        Returns
        -------
        context : Tensor (N, Tq, Dv), or (N, Dv) for a single query.
        weights : Tensor (N, Tq, Tk), or (N, Tk) for a single query: the
            attention weights, exactly 0 at masked keys, all 0 on a query
            with no real key (whose context is then 0).
        """
        single = query.dim() == 2
        if single:
            query = query[:, None, :]
        N, Tk = self._check(query, keys, values)
        valid = self._valid(mask, lengths, N, query.shape[1], Tk, keys.device)
        if precomputed_keys is None:
            precomputed_keys = self.precompute_keys(keys)
        weights = masked_softmax(self.score(query, precomputed_keys), valid)
        context = weights @ values
        if single:
            return context[:, 0], weights[:, 0]
        return context, weights

    def _check(self, query, keys, values):
        if query.dim() != 3:
            raise ValueError(f"query has shape {tuple(query.shape)}; expected (N, Tq, Dq) or (N, Dq)")
        if keys.dim() != 3 or keys.shape[0] != query.shape[0]:
            raise ValueError(
                f"keys has shape {tuple(keys.shape)}; expected (N, Tk, Dk) with N = {query.shape[0]}"
            )
        N, Tk, Dk = keys.shape
        if self.same_size and Dk != query.shape[2]:
            raise ValueError(
                f"keys has shape {tuple(keys.shape)}; expected (N, Tk, Dq) = (N, Tk, {query.shape[2]}): "
                f"{type(self).__name__} needs keys the size of the queries"
            )
        if values.dim() != 3 or values.shape[:2] != (N, Tk):
            raise ValueError(f"values has shape {tuple(values.shape)}; expected (N, Tk, Dv) = ({N}, {Tk}, Dv)")
        return N, Tk

    @staticmethod
    def _valid(mask, lengths, N, Tq, Tk, device):
        """The key mask as a bool tensor broadcastable to (N, Tq, Tk), or None."""
        if mask is not None and lengths is not None:
            raise ValueError("both mask and lengths are given; expected one of them (or neither)")
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=device)
            if lengths.shape != (N,):
                raise ValueError(f"lengths has shape {tuple(lengths.shape)}; expected (N,) = ({N},)")
            return lengths_to_mask(lengths, Tk)[:, None, :]
        if mask is None:
            return None
        if mask.dtype != torch.bool:
            raise ValueError(f"mask has dtype {mask.dtype}; expected torch.bool (True where the key is real)")
        if mask.dim() == 2 and mask.shape == (N, Tk):
            return mask[:, None, :]
        if mask.dim() == 3 and mask.shape in ((N, Tq, Tk), (N, 1, Tk)):
            return mask
        raise ValueError(
            f"mask has shape {tuple(mask.shape)}; expected (N, Tk) = ({N}, {Tk}) or (N, Tq, Tk) = ({N}, {Tq}, {Tk})"
        )


class DotProductAttention(Attention):
    """Dot-product attention (Luong et al., 2015): ``e = q k^T``.

    N: batch size, Tq: number of queries, Tk: number of keys, D: query and key
    size, Dv: value size. No parameters; queries and keys have the same size.
    See :meth:`Attention.forward` for the call.
    """

    def score(self, query, keys):
        """Scores ``e (N, Tq, Tk) = query (N, Tq, D) @ keys^T (N, D, Tk)``."""
        return query @ keys.transpose(1, 2)


class ScaledDotProductAttention(Attention):
    """Scaled dot-product attention (Vaswani et al., 2017): ``e = q k^T / sqrt(D)``.

    N: batch size, Tq: number of queries, Tk: number of keys, D: query and key
    size, Dv: value size. No parameters. Without padding, the context is what
    :func:`torch.nn.functional.scaled_dot_product_attention` returns.

    Why ``sqrt(D)``: a dot product of ``D`` independent unit-variance terms has
    variance ``D``; dividing by ``sqrt(D)`` brings the scores back to unit
    variance, so the softmax does not saturate (and its gradient vanish) as
    ``D`` grows.

    Parameters
    ----------
    scale : float, optional: the factor instead of ``1 / sqrt(D)``.
    """

    def __init__(self, scale=None):
        super().__init__()
        self.scale = scale

    def score(self, query, keys):
        """Scores ``e (N, Tq, Tk) = query @ keys^T * scale``."""
        scale = self.scale if self.scale is not None else 1.0 / math.sqrt(keys.shape[-1])
        return (query @ keys.transpose(1, 2)) * scale

    def extra_repr(self):
        return "" if self.scale is None else f"scale={self.scale}"


class AdditiveAttention(Attention):
    """Additive attention (Bahdanau et al., 2015): ``e[n, i, j] = v . tanh(q_i Wq + k_j Wk)``.

    N: batch size, Tq: number of queries, Tk: number of keys, Dq: query size,
    Dk: key size, Dv: value size, A: attention size.

    A one-hidden-layer network scores every (query, key) pair, so queries and
    keys may have different sizes. As in the paper there is no bias. In the
    weights of :mod:`rnncourse.numpy.attention`: ``Wq = query_proj.weight.T``,
    ``Wk = key_proj.weight.T``, ``v_a = v``.

    Parameters
    ----------
    query_size : int, Dq.
    key_size : int, Dk.
    attention_size : int, A.

    Attributes
    ----------
    query_proj : nn.Linear(Dq, A, bias=False).
    key_proj : nn.Linear(Dk, A, bias=False).
    v : Parameter (A,).
    """

    same_size = False

    def __init__(self, query_size, key_size, attention_size, device=None, dtype=None):
        super().__init__()
        for name, size in (("query_size", query_size), ("key_size", key_size), ("attention_size", attention_size)):
            check_int(name, size)
        factory = dict(device=device, dtype=dtype)
        self.query_proj = nn.Linear(query_size, attention_size, bias=False, **factory)
        self.key_proj = nn.Linear(key_size, attention_size, bias=False, **factory)
        self.v = nn.Parameter(torch.empty(attention_size, **factory))
        bound = 1.0 / math.sqrt(attention_size)
        nn.init.uniform_(self.v, -bound, bound)

    def precompute_keys(self, keys):
        """The key projection ``keys @ Wk``, (N, Tk, A): the same at every decoder step."""
        if keys.shape[-1] != self.key_proj.in_features:
            raise ValueError(
                f"keys has shape {tuple(keys.shape)}; expected (N, Tk, Dk) with Dk = {self.key_proj.in_features}"
            )
        return self.key_proj(keys)

    def score(self, query, keys):
        """Scores ``e (N, Tq, Tk)`` from ``query (N, Tq, Dq)`` and projected keys (N, Tk, A)."""
        if query.shape[-1] != self.query_proj.in_features:
            raise ValueError(
                f"query has shape {tuple(query.shape)}; expected size Dq = {self.query_proj.in_features}"
            )
        # (N, Tq, 1, A) + (N, 1, Tk, A) -> (N, Tq, Tk, A): every pair at once.
        hidden = torch.tanh(self.query_proj(query)[:, :, None, :] + keys[:, None, :, :])
        return hidden @ self.v

    def extra_repr(self):
        return (
            f"query_size={self.query_proj.in_features}, key_size={self.key_proj.in_features}, "
            f"attention_size={self.v.shape[0]}"
        )


def make_attention(kind, query_size=None, key_size=None, attention_size=None, **factory):
    """An attention module by name: ``"dot"``, ``"scaled_dot"`` or ``"additive"``.

    Parameters
    ----------
    kind : str, one of ``ATTENTION_KINDS``.
    query_size, key_size, attention_size : int, for ``"additive"`` only.
    **factory : ``device=``, ``dtype=`` for the parameters of ``"additive"``.

    Returns
    -------
    Attention
    """
    if kind == "dot":
        return DotProductAttention()
    if kind == "scaled_dot":
        return ScaledDotProductAttention()
    if kind == "additive":
        return AdditiveAttention(query_size, key_size, attention_size, **factory)
    raise ValueError(f"attention is {kind!r}; expected one of {', '.join(map(repr, ATTENTION_KINDS))}")
