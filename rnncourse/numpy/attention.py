"""Attention over a padded batch of keys, forward and backward by hand.

Attention in three steps, each a forward/backward pair of its own:

1. **scores** ``e[n, i, j]``: how well query ``i`` matches key ``j`` of
   sequence ``n``: dot product, scaled dot product, or additive (Bahdanau).
2. **weights** ``alpha = masked_softmax(e)`` over the keys ``j``, with the
   padding keys (``j >= lengths[n]``) getting weight exactly 0.
3. **context** ``c[n, i] = sum_j alpha[n, i, j] v[n, j]``, i.e. ``alpha @ v``.

:func:`attention_forward` chains the three; :func:`attention_backward`
returns its gradients as a dict, since which parameters exist depends on
the score.

Batch first: queries ``q (N, Tq, Dq)``, keys ``k (N, Tk, Dk)``, values
``v (N, Tk, Dv)``. Only keys are masked: padded *queries* get a context like
any other row, and the loss mask is what ignores them.
"""

import math

import numpy as np

from ._checks import dims, expect_shape, first_index, float_array, int_array, upstream_gradient

__all__ = [
    "dot_product_scores_forward",
    "dot_product_scores_backward",
    "scaled_dot_product_scores_forward",
    "scaled_dot_product_scores_backward",
    "additive_scores_forward",
    "additive_scores_backward",
    "masked_softmax_forward",
    "masked_softmax_backward",
    "attention_forward",
    "attention_backward",
    "ATTENTION_SCORES",
]

ATTENTION_SCORES = ("dot", "scaled_dot", "additive")


# ---------------------------------------------------------------- checks


def _check_qk(q, k, same_size):
    """Check ``q (N, Tq, Dq)`` and ``k (N, Tk, Dk)``; ``Dk == Dq`` if ``same_size``."""
    q = float_array("q", q)
    N, Tq, Dq = dims("q", q, "N Tq Dq")
    k = float_array("k", k)
    _, Tk, Dk = dims("k", k, "N Tk Dk")
    if Dq == 0 or Dk == 0:
        raise ValueError(f"q has shape {q.shape} and k {k.shape}; expected Dq >= 1 and Dk >= 1")
    if same_size:
        expect_shape("k", k, "N Tk Dq", (N, Tk, Dq))
    else:
        expect_shape("k", k, "N Tk Dk", (N, Tk, Dk))
    return q, k


def _check_additive_params(q, k, Wq, Wk, v_a):
    Dq, Dk = q.shape[2], k.shape[2]
    Wq = float_array("Wq", Wq)
    _, A = dims("Wq", Wq, "Dq A")
    expect_shape("Wq", Wq, "Dq A", (Dq, A))
    Wk = float_array("Wk", Wk)
    dims("Wk", Wk, "Dk A")
    expect_shape("Wk", Wk, "Dk A", (Dk, A))
    v_a = float_array("v_a", v_a)
    expect_shape("v_a", v_a, "A", (A,))
    return Wq, Wk, v_a


def _check_lengths(lengths, N, Tk):
    """``lengths`` as an integer array (N,) with values in [0, Tk]; None stays None."""
    if lengths is None:
        return None
    lengths = int_array("lengths", lengths)
    expect_shape("lengths", lengths, "N", (N,))
    bad = (lengths < 0) | (lengths > Tk)
    if bad.any():
        where = first_index(bad)
        raise ValueError(
            f"lengths holds {int(lengths[tuple(where)])} at {where}; expected integers in [0, Tk] = [0, {Tk}]"
        )
    return lengths


# ---------------------------------------------------------------- scores
# The private helpers compute without checking; the public functions check
# once and call them, and so does attention_forward.


def _dot_scores(q, k, scale):
    # scale = 1 for the plain dot product, 1 / sqrt(Dk) for the scaled one
    return scale * (q @ k.transpose(0, 2, 1)), (q, k, scale)


def _dot_scores_backward(dscores, cache):
    q, k, scale = cache
    dscores = scale * dscores
    return dscores @ k, dscores.transpose(0, 2, 1) @ q


def dot_product_scores_forward(q, k):
    """Dot-product scores ``e[n, i, j] = q[n, i] . k[n, j]``, i.e. ``e = q k^T``.

    N: batch size, Tq: number of queries, Tk: number of keys, D: query and key size.

    Parameters
    ----------
    q : ndarray (N, Tq, D), float: queries.
    k : ndarray (N, Tk, D), float: keys, the same size as the queries.

    Returns
    -------
    scores : ndarray (N, Tq, Tk).
    cache : what :func:`dot_product_scores_backward` needs.
    """
    q, k = _check_qk(q, k, same_size=True)
    return _dot_scores(q, k, 1.0)


def dot_product_scores_backward(dscores, cache):
    """Backward pass of :func:`dot_product_scores_forward`.

    N: batch size, Tq: number of queries, Tk: number of keys, D: query and key size.

    Parameters
    ----------
    dscores : ndarray (N, Tq, Tk).

    Returns
    -------
    dq : ndarray (N, Tq, D) ``= dscores k``.
    dk : ndarray (N, Tk, D) ``= dscores^T q``.
    """
    q, k, _ = cache
    dscores = upstream_gradient("dscores", dscores, "N Tq Tk", (q.shape[0], q.shape[1], k.shape[1]))
    return _dot_scores_backward(dscores, cache)


def scaled_dot_product_scores_forward(q, k):
    """Scaled dot-product scores ``e = q k^T / sqrt(D)`` (Vaswani et al., 2017).

    N: batch size, Tq: number of queries, Tk: number of keys, D: query and key size.

    Why the ``sqrt(D)``: if the ``D`` components of ``q`` and ``k`` are
    independent with mean 0 and variance 1, their dot product is a sum of
    ``D`` terms of variance 1, so its variance is ``D``: the scores spread
    like ``sqrt(D)``. With large ``D`` the softmax then puts nearly all its
    weight on one key, and its gradient (``alpha (1 - alpha)`` and friends)
    is nearly 0: it saturates and learning stalls. Dividing by ``sqrt(D)``
    brings the variance back to 1 whatever the size.

    Parameters
    ----------
    q : ndarray (N, Tq, D), float: queries.
    k : ndarray (N, Tk, D), float: keys.

    Returns
    -------
    scores : ndarray (N, Tq, Tk).
    cache : what :func:`scaled_dot_product_scores_backward` needs.
    """
    q, k = _check_qk(q, k, same_size=True)
    return _dot_scores(q, k, 1.0 / math.sqrt(k.shape[2]))


def scaled_dot_product_scores_backward(dscores, cache):
    """Backward pass of :func:`scaled_dot_product_scores_forward`.

    It is :func:`dot_product_scores_backward`: the cache carries the scale
    ``1 / sqrt(D)``, which multiplies both gradients.

    Parameters
    ----------
    dscores : ndarray (N, Tq, Tk).

    Returns
    -------
    dq : ndarray (N, Tq, D) ``= dscores k / sqrt(D)``.
    dk : ndarray (N, Tk, D) ``= dscores^T q / sqrt(D)``.
    """
    return dot_product_scores_backward(dscores, cache)


def _additive_scores(q, k, Wq, Wk, v_a):
    # Project once per query and once per key, then broadcast to every
    # (query, key) pair: (N, Tq, 1, A) + (N, 1, Tk, A) -> (N, Tq, Tk, A).
    h = np.tanh((q @ Wq)[:, :, None, :] + (k @ Wk)[:, None, :, :])
    return h @ v_a, (q, k, Wq, Wk, v_a, h)


def _additive_scores_backward(dscores, cache):
    q, k, Wq, Wk, v_a, h = cache
    A = v_a.shape[0]
    dv_a = h.reshape(-1, A).T @ dscores.reshape(-1)
    dpre = dscores[..., None] * v_a * (1 - h * h)  # tanh' = 1 - tanh^2
    dqp = dpre.sum(axis=2)  # q[n, i] Wq entered every key j
    dkp = dpre.sum(axis=1)  # k[n, j] Wk entered every query i
    dq = dqp @ Wq.T
    dk = dkp @ Wk.T
    dWq = q.reshape(-1, q.shape[2]).T @ dqp.reshape(-1, A)
    dWk = k.reshape(-1, k.shape[2]).T @ dkp.reshape(-1, A)
    return dq, dk, dWq, dWk, dv_a


def additive_scores_forward(q, k, Wq, Wk, v_a):
    """Additive (Bahdanau) scores ``e[n, i, j] = tanh(q[n, i] Wq + k[n, j] Wk) v_a``.

    N: batch size, Tq: number of queries, Tk: number of keys, Dq: query size,
    Dk: key size, A: attention size.

    A one-hidden-layer network scores each (query, key) pair, so queries and
    keys may have different sizes. (Bahdanau et al., 2015, write
    ``v_a^T tanh(W_a s_{i-1} + U_a h_j)`` with column vectors.)

    Parameters
    ----------
    q : ndarray (N, Tq, Dq), float: queries (the decoder states).
    k : ndarray (N, Tk, Dk), float: keys (the encoder states).
    Wq : ndarray (Dq, A), float.
    Wk : ndarray (Dk, A), float.
    v_a : ndarray (A,), float.

    Returns
    -------
    scores : ndarray (N, Tq, Tk).
    cache : what :func:`additive_scores_backward` needs. It holds the
        ``(N, Tq, Tk, A)`` hidden activations.
    """
    q, k = _check_qk(q, k, same_size=False)
    Wq, Wk, v_a = _check_additive_params(q, k, Wq, Wk, v_a)
    return _additive_scores(q, k, Wq, Wk, v_a)


def additive_scores_backward(dscores, cache):
    """Backward pass of :func:`additive_scores_forward`.

    N: batch size, Tq: number of queries, Tk: number of keys, Dq: query size,
    Dk: key size, A: attention size.

    Parameters
    ----------
    dscores : ndarray (N, Tq, Tk).

    Returns
    -------
    dq : ndarray (N, Tq, Dq).
    dk : ndarray (N, Tk, Dk).
    dWq : ndarray (Dq, A).
    dWk : ndarray (Dk, A).
    dv_a : ndarray (A,).
    """
    h = cache[5]
    dscores = upstream_gradient("dscores", dscores, "N Tq Tk", h.shape[:3])
    return _additive_scores_backward(dscores, cache)


# ---------------------------------------------------------------- masked softmax


def _masked_softmax(scores, lengths):
    if lengths is None:
        valid = np.ones(scores.shape[-1:], dtype=bool)
    else:
        # (N, 1, Tk): key j of sequence n is real iff j < lengths[n], for every query
        valid = (np.arange(scores.shape[-1]) < lengths[:, None])[:, None, :]
    # Shift by the largest *valid* score: a huge padding score must not push
    # every valid exponent to 0. A row without valid keys gets shift 0.
    m = np.where(valid, scores, -np.inf).max(axis=-1, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)
    # exp(-inf) = 0 exactly: padding keys get weight 0.0, not merely tiny.
    e = np.exp(np.where(valid, scores - m, -np.inf))
    total = e.sum(axis=-1, keepdims=True)
    # total >= 1 when a row has a valid key (its largest term is exp(0));
    # a row without one has total 0 and e = 0, so 0 / 1 gives zero weights.
    weights = e / np.where(total > 0, total, 1)
    return weights, (weights,)


def _masked_softmax_backward(dweights, cache):
    (weights,) = cache
    # Softmax Jacobian: d e_j = alpha_j (d alpha_j - sum_l alpha_l d alpha_l).
    # Padding keys and empty rows have alpha = 0, so their gradient is 0.
    return weights * (dweights - (weights * dweights).sum(axis=-1, keepdims=True))


def masked_softmax_forward(scores, lengths=None):
    """Softmax over the keys, giving padding keys weight exactly 0.

    N: batch size, Tq: number of queries, Tk: number of keys.

    With ``L = lengths[n]`` and ``m`` the largest of ``scores[n, i, :L]``::

        alpha[n, i, j] = exp(e[n, i, j] - m) / sum_{l < L} exp(e[n, i, l] - m)   for j < L
        alpha[n, i, j] = 0                                                       for j >= L

    Padding scores are never exponentiated (they may be anything, even
    1e4), so the result is finite and the weights of padding keys are
    exactly 0.0. A sequence with ``lengths[n] == 0`` has no key to attend
    to: its weights are defined as all zeros (so its context is the zero
    vector) and its gradient is zero, never NaN.

    Parameters
    ----------
    scores : ndarray (N, Tq, Tk), float.
    lengths : ndarray (N,), integer in [0, Tk], optional: the number of real
        keys of each sequence. None means every key is real.

    Returns
    -------
    weights : ndarray (N, Tq, Tk): each row sums to 1 (0 for an empty sequence).
    cache : ``(weights,)``, what :func:`masked_softmax_backward` needs (the
        layout the exercise of chapter 6 states).
    """
    scores = float_array("scores", scores)
    N, _, Tk = dims("scores", scores, "N Tq Tk")
    lengths = _check_lengths(lengths, N, Tk)
    return _masked_softmax(scores, lengths)


def masked_softmax_backward(dweights, cache):
    """Backward pass of :func:`masked_softmax_forward`.

    N: batch size, Tq: number of queries, Tk: number of keys.

    Parameters
    ----------
    dweights : ndarray (N, Tq, Tk).

    Returns
    -------
    dscores : ndarray (N, Tq, Tk): ``alpha * (dweights - sum_j alpha_j dweights_j)``;
        0 at padding keys and on empty rows.
    """
    dweights = upstream_gradient("dweights", dweights, "N Tq Tk", cache[0].shape)
    return _masked_softmax_backward(dweights, cache)


# ---------------------------------------------------------------- attention


def attention_forward(q, k, v, lengths=None, score="scaled_dot", params=None):
    """Attention: scores, masked softmax over the keys, weighted sum of the values.

    N: batch size, Tq: number of queries, Tk: number of keys, Dq: query size,
    Dk: key size, Dv: value size, A: attention size (additive score only).

    ::

        e     = score(q, k)                     (N, Tq, Tk)
        alpha = masked_softmax(e, lengths)      (N, Tq, Tk)
        c     = alpha v                         (N, Tq, Dv)

    With ``score="scaled_dot"`` and no padding this is
    ``torch.nn.functional.scaled_dot_product_attention``.

    Parameters
    ----------
    q : ndarray (N, Tq, Dq), float: queries.
    k : ndarray (N, Tk, Dk), float: keys (``Dk == Dq`` for the dot scores).
    v : ndarray (N, Tk, Dv), float: values, one per key.
    lengths : ndarray (N,), integer in [0, Tk], optional: the number of real
        keys per sequence; keys at positions ``>= lengths[n]`` get weight 0.
        A sequence of length 0 gets a zero context. None: all keys are real.
    score : ``"dot"`` (``q k^T``), ``"scaled_dot"`` (``q k^T / sqrt(Dk)``)
        or ``"additive"`` (``tanh(q Wq + k Wk) v_a``).
    params : for ``score="additive"`` only, ``dict(Wq=(Dq, A), Wk=(Dk, A), v_a=(A,))``.

    Returns
    -------
    context : ndarray (N, Tq, Dv).
    weights : ndarray (N, Tq, Tk), the attention weights ``alpha`` (to plot them).
    cache : a tuple of arrays, what :func:`attention_backward` needs:
        ``(q, k, v, weights)`` for ``score="scaled_dot"`` (the layout the
        exercise of chapter 6 states: the scale ``1 / sqrt(Dk)`` follows from
        ``k``); the other scores add what they need after these four:
        ``(q, k, v, weights, scale)`` for ``"dot"`` (``scale``, a 0-d array,
        is 1) and ``(q, k, v, weights, Wq, Wk, v_a, hidden)`` for
        ``"additive"``, ``hidden`` the ``(N, Tq, Tk, A)`` activations.
    """
    if score not in ATTENTION_SCORES:
        raise ValueError(f"score is {score!r}; expected one of {', '.join(map(repr, ATTENTION_SCORES))}")
    q, k = _check_qk(q, k, same_size=score != "additive")
    N, Tq, _ = q.shape
    Tk = k.shape[1]
    v = float_array("v", v)
    _, _, Dv = dims("v", v, "N Tk Dv")
    expect_shape("v", v, "N Tk Dv", (N, Tk, Dv))
    lengths = _check_lengths(lengths, N, Tk)

    extra = ()
    if score == "additive":
        if params is None:
            raise ValueError("params is None; score='additive' needs params=dict(Wq=..., Wk=..., v_a=...)")
        if not isinstance(params, dict) or set(params) != {"Wq", "Wk", "v_a"}:
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise ValueError(f"params has keys {got}; expected a dict with keys ['Wk', 'Wq', 'v_a']")
        Wq, Wk, v_a = _check_additive_params(q, k, params["Wq"], params["Wk"], params["v_a"])
        scores, score_cache = _additive_scores(q, k, Wq, Wk, v_a)
        extra = score_cache[2:]  # Wq, Wk, v_a, hidden
    else:
        if params is not None:
            raise ValueError(f"params is given with score={score!r}; only score='additive' has parameters")
        scale = 1.0 / math.sqrt(k.shape[2]) if score == "scaled_dot" else 1.0
        scores, _ = _dot_scores(q, k, scale)
        if score == "dot":
            extra = (np.array(scale),)

    weights, _ = _masked_softmax(scores, lengths)
    context = weights @ v
    return context, weights, (q, k, v, weights, *extra)


def attention_backward(dcontext, cache, dweights=None):
    """Backward pass of :func:`attention_forward`.

    N: batch size, Tq: number of queries, Tk: number of keys, Dq: query size,
    Dk: key size, Dv: value size, A: attention size (additive score only).

    ::

        dv      = alpha^T dcontext
        dalpha  = dcontext v^T  (+ dweights, when the weights feed a loss too)
        de      = masked_softmax_backward(dalpha)
        dq, dk (and dWq, dWk, dv_a) = score_backward(de)

    Parameters
    ----------
    dcontext : ndarray (N, Tq, Dv): gradient with respect to ``context``.
    cache : from :func:`attention_forward`. Its length says the
        score: 4 arrays scaled dot product, 5 dot product, 8 additive.
    dweights : ndarray (N, Tq, Tk), optional: gradient with respect to the
        returned ``weights``, for a loss that also reads them (an attention
        penalty, say). None means they enter the loss only through ``context``.

    Returns
    -------
    grads : dict of ndarrays with the shapes of the inputs: keys ``"q"``,
        ``"k"``, ``"v"``, and for ``score="additive"`` also ``"Wq"``,
        ``"Wk"``, ``"v_a"``. A dict rather than a tuple because which
        gradients exist depends on the score.
    """
    q, k, v, weights, *extra = cache
    if len(extra) not in (0, 1, 4):
        raise ValueError(
            f"cache holds {len(cache)} items; expected the 4, 5 or 8 arrays attention_forward returns"
        )
    N, Tq, Tk = weights.shape
    dcontext = upstream_gradient("dcontext", dcontext, "N Tq Dv", (N, Tq, v.shape[2]))

    dv = weights.transpose(0, 2, 1) @ dcontext
    dalpha = dcontext @ v.transpose(0, 2, 1)
    if dweights is not None:
        dalpha = dalpha + upstream_gradient("dweights", dweights, "N Tq Tk", (N, Tq, Tk))
    dscores = _masked_softmax_backward(dalpha, (weights,))

    if len(extra) == 4:
        dq, dk, dWq, dWk, dv_a = _additive_scores_backward(dscores, (q, k, *extra))
        return dict(q=dq, k=dk, v=dv, Wq=dWq, Wk=dWk, v_a=dv_a)
    scale = float(extra[0]) if extra else 1.0 / math.sqrt(k.shape[2])
    dq, dk = _dot_scores_backward(dscores, (q, k, scale))
    return dict(q=dq, k=dk, v=dv)
