"""Checks of assignment 06, attention: masked softmax, scaled dot-product attention, a decoder step.

The learner writes the twins of
:func:`rnncourse.numpy.attention.masked_softmax_forward` and
:func:`~rnncourse.numpy.attention.masked_softmax_backward`,
:func:`~rnncourse.numpy.attention.attention_forward` and
:func:`~rnncourse.numpy.attention.attention_backward` (the scaled dot-product
score only, so their signatures stop after ``lengths``),
:func:`~rnncourse.numpy.attention.additive_scores_forward`, and, in PyTorch,
``attention_decoder_step``: one step of the decoder of
:class:`rnncourse.torch.seq2seq.Seq2Seq` with additive attention and a GRU cell.

This is the trusted side; how the functions are called, and the caches'
layout (``(weights,)`` for the softmax, ``(q, k, v, weights)`` for
attention): :mod:`rnncourse.checks.calls.attention`. The backward checks get
the reference's cache. For the PyTorch check the call builds the tensors and
the ``torch.nn`` modules the learner's step takes from the case's arrays;
the reference is the same step built from :mod:`rnncourse.torch`. PyTorch is
imported inside those functions only, so that ``import rnncourse.checks``
stays light.
"""

import math

import numpy as np

from rnncourse.numpy import (
    additive_scores_forward,
    attention_backward,
    attention_forward,
    masked_softmax_backward,
    masked_softmax_forward,
)

from ._core import Case, Check, Mistake, nonzero_bias, random_cases
from .calls.attention import GRADS, decoder_modules, decoder_tensors


def _valid(i, Tk):
    """``(N, 1, Tk)`` bool: True at the real keys; all True when the case has no lengths."""
    lengths = i.get("lengths")
    if lengths is None:
        return np.ones((1, 1, Tk), bool)
    return (np.arange(Tk) < lengths[:, None])[:, None, :]


def _softmax(scores, axis=-1):
    """The plain softmax, shifted by the row maximum."""
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _has_padding(i):
    """True when some key of the case is padding."""
    if "lengths" not in i:
        return False
    Tk = i["scores"].shape[-1] if "scores" in i else i["k"].shape[1]
    return bool(np.any(i["lengths"] < Tk))


def _has_empty(i):
    return "lengths" in i and bool(np.any(i["lengths"] == 0))


# --- masked_softmax_forward -----------------------------------------------------------


def _scores(rng, N, Tq, Tk, dtype=np.float64, *, lengths=None, spread=2.0, offset=0.0, pad_score=None):
    """Scores (and lengths, unless None); ``pad_score`` overwrites the scores of padding keys."""
    scores = spread * rng.standard_normal((N, Tq, Tk))
    if offset:
        # Multiples of 1/8 near the offset are exact in float32 too: rounding the inputs
        # of a float32 answer would otherwise move its weights by more than float32's tolerance.
        scores = offset + np.round(8 * scores) / 8
    inputs = {}
    if lengths is not None:
        lengths = np.asarray(lengths, dtype=np.int64)
        if pad_score is not None:
            scores = np.where((np.arange(Tk) < lengths[:, None])[:, None, :], scores, pad_score)
        inputs["lengths"] = lengths
    inputs["scores"] = scores.astype(dtype)
    return inputs


def _random_lengths(rng, N, T, low):
    return rng.integers(low, T + 1, N).astype(np.int64)


def _softmax_hidden_inputs(rng, N, Tq, Tk, dtype=np.float64):
    """Random shapes; a quarter of the cases without lengths, the others with lengths in [0, Tk]."""
    lengths = None if rng.random() < 0.25 else _random_lengths(rng, N, Tk, 0)
    return _scores(rng, N, Tq, Tk, dtype, lengths=lengths)


def _softmax_forward_reference(i):
    return {"weights": masked_softmax_forward(i["scores"], i.get("lengths"))[0]}


def _zero_rows(weights, i, fill):
    """``weights`` with the rows of empty sequences (lengths 0) set to ``fill``."""
    empty = (i["lengths"] == 0)[:, None, None]
    return np.where(empty, fill, weights)


def _mask_after_softmax(i):
    """A softmax over every key, then the padding weights zeroed, not renormalised."""
    scores = i["scores"]
    return _softmax(scores) * _valid(i, scores.shape[-1])


def _renormalised_after_softmax(i):
    """A softmax over every key (padding included), the padding zeroed, then renormalised."""
    scores = i["scores"]
    with np.errstate(invalid="ignore", divide="ignore", under="ignore"):
        e = np.exp(scores - scores.max(axis=-1, keepdims=True)) * _valid(i, scores.shape[-1])
        return e / e.sum(axis=-1, keepdims=True)


def _mask_with_zero(i):
    scores = i["scores"]
    return _softmax(np.where(_valid(i, scores.shape[-1]), scores, 0.0))


def _mask_off_by_one(i):
    """Keys j <= lengths[n] taken as real: one padding key too many."""
    scores = i["scores"]
    return masked_softmax_forward(scores, np.minimum(i["lengths"] + 1, scores.shape[-1]))[0]


def _overflowing_softmax(scores):
    """A softmax without the shift: exp overflows to inf for large scores."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(scores)
        return e / e.sum(axis=-1, keepdims=True)


MASKED_SOFTMAX_FORWARD = Check(
    name="masked_softmax_forward",
    reference=_softmax_forward_reference,
    visible=(
        Case(
            "no_lengths",
            "no lengths given (every key is real), N=2, Tq=3, Tk=4",
            "Without lengths this is a plain softmax over the keys, the last axis: each weights[n, i, :] sums to 1.",
            lambda rng: _scores(rng, 2, 3, 4),
        ),
        Case(
            "large_scores",
            "large scores (about 1000), no lengths",
            "exp(1000) overflows: subtract each row's largest score before exp (the softmax does not change).",
            lambda rng: _scores(rng, 2, 2, 4, offset=1000.0),
        ),
        Case(
            "padding",
            "padding: lengths = [4, 2, 1] of Tk = 4",
            "Keys j >= lengths[n] are padding: their weight must be exactly 0, and the real keys' weights sum to 1.",
            lambda rng: _scores(rng, 3, 2, 4, lengths=[4, 2, 1]),
        ),
        Case(
            "huge_padding_scores",
            "the padding keys hold huge scores (1e4), lengths = [3, 1] of Tk = 5",
            "A padding key's score can be anything: mask the scores before the exp, and shift by the largest *real* score.",
            lambda rng: _scores(rng, 2, 3, 5, lengths=[3, 1], pad_score=1e4),
        ),
        Case(
            "empty_sequence",
            "a sequence of length 0: lengths = [3, 0] of Tk = 3",
            "A sequence with lengths[n] = 0 has no key to attend to: its weights must be all zeros (not NaN, not 1/Tk).",
            lambda rng: _scores(rng, 2, 2, 3, lengths=[3, 0]),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _softmax_hidden_inputs, N=(1, 4), Tq=(1, 5), Tk=(1, 6)),
    mistakes=(
        Mistake(
            "A sequence with lengths[n] = 0 got NaN (-inf - (-inf) is NaN): with no key to attend to, "
            "define its weights as all zeros.",
            lambda i: {"weights": _zero_rows(_softmax_forward_reference(i)["weights"], i, np.nan)},
            applies=_has_empty,
        ),
        Mistake(
            "A sequence with lengths[n] = 0 got the uniform weights 1/Tk (what a large negative fill gives): "
            "with no key to attend to, its weights must be all zeros (its context is then 0).",
            lambda i: {"weights": _zero_rows(_softmax_forward_reference(i)["weights"], i, 1.0 / i["scores"].shape[-1])},
            applies=_has_empty,
        ),
        Mistake(
            "The softmax runs over axis 1, the queries; it must run over the keys, the last axis, "
            "so that each weights[n, i, :] sums to 1.",
            lambda i: {"weights": _softmax(i["scores"], axis=1)},
            applies=lambda i: "lengths" not in i,
        ),
        Mistake(
            "exp overflowed (inf / inf = NaN): subtract each row's largest score before exp.",
            lambda i: {"weights": _overflowing_softmax(i["scores"])},
            applies=lambda i: "lengths" not in i,
        ),
        Mistake(
            "The padding weights were zeroed after the softmax, so the real weights no longer sum to 1: "
            "mask the scores before the softmax.",
            lambda i: {"weights": _mask_after_softmax(i)},
            applies=_has_padding,
        ),
        Mistake(
            "The padding scores were set to 0, and exp(0 - max) > 0 still gives padding keys weight: "
            "set them to -inf (or mask the exp) instead.",
            lambda i: {"weights": _mask_with_zero(i)},
            applies=_has_padding,
        ),
        Mistake(
            "Off by one: the real keys are j = 0 .. lengths[n] - 1, that is j < lengths[n].",
            lambda i: {"weights": _mask_off_by_one(i)},
            applies=_has_padding,
        ),
        Mistake(
            "A huge padding score (1e4 here) set the row maximum, so every real exp underflowed to 0 and "
            "0 / 0 gave NaN: mask the padding scores before taking the maximum and the exp.",
            lambda i: {"weights": _renormalised_after_softmax(i)},
            applies=_has_padding,
        ),
    ),
)


# --- masked_softmax_backward ----------------------------------------------------------


def _with_dweights(inputs, rng, dtype=np.float64):
    inputs["dweights"] = rng.standard_normal(inputs["scores"].shape).astype(dtype)
    return inputs


def _softmax_backward_reference(i):
    _, cache = masked_softmax_forward(i["scores"], i.get("lengths"))
    return {"dscores": masked_softmax_backward(i["dweights"], cache)}


def _weights(i):
    return _softmax_forward_reference(i)["weights"]


def _softmax_backward_hidden(rng):
    def make(rng, dtype, **dims):
        return _with_dweights(_softmax_hidden_inputs(rng, dtype=dtype, **dims), rng, dtype)

    return random_cases(rng, make, N=(1, 4), Tq=(1, 5), Tk=(1, 6))


MASKED_SOFTMAX_BACKWARD = Check(
    name="masked_softmax_backward",
    reference=_softmax_backward_reference,
    given=lambda i: {"weights": _weights(i)},
    visible=(
        Case(
            "one_sequence",
            "one sequence: N=1, Tq=2, Tk=4",
            "For each row (n, i): dscores_j = alpha_j (dweights_j - sum_l alpha_l dweights_l).",
            lambda rng: _with_dweights(_scores(rng, 1, 2, 4), rng),
        ),
        Case(
            "several_rows",
            "several rows: N=2, Tq=3, Tk=4",
            "The sum in the Jacobian runs over the keys of one row: sum_l alpha[n, i, l] dweights[n, i, l].",
            lambda rng: _with_dweights(_scores(rng, 2, 3, 4), rng),
        ),
        Case(
            "padding",
            "padding and an empty sequence: lengths = [4, 2, 0] of Tk = 4",
            "Padding keys and a sequence of length 0 have weight 0, so their dscores must be 0 (not NaN).",
            lambda rng: _with_dweights(_scores(rng, 3, 2, 4, lengths=[4, 2, 0]), rng),
        ),
    ),
    hidden=_softmax_backward_hidden,
    mistakes=(
        Mistake(
            "dscores = alpha * dweights misses the softmax Jacobian's second term: every weight of a row "
            "depends on every score of that row, so dscores_j = alpha_j (dweights_j - sum_l alpha_l dweights_l).",
            lambda i: {"dscores": _weights(i) * i["dweights"]},
        ),
        Mistake(
            "alpha (1 - alpha) dweights is only the diagonal of the softmax Jacobian: "
            "dscores_j = alpha_j (dweights_j - sum_l alpha_l dweights_l).",
            lambda i: {"dscores": _weights(i) * (1 - _weights(i)) * i["dweights"]},
        ),
        Mistake(
            "The sum runs over the wrong axis: it is over the keys of one row, the last axis.",
            lambda i: {"dscores": _weights(i) * (i["dweights"] - (_weights(i) * i["dweights"]).sum(axis=1, keepdims=True))},
            applies=lambda i: i["scores"].shape[1] > 1,
        ),
        Mistake(
            "The sign is flipped: dscores_j = alpha_j (dweights_j - sum_l alpha_l dweights_l).",
            lambda i: {"dscores": -masked_softmax_backward(i["dweights"], (_weights(i),))},
        ),
    ),
)


# --- attention_forward ----------------------------------------------------------------


def _qkv(rng, N, Tq, Tk, D, Dv, dtype=np.float64, *, lengths=None):
    """Queries, keys, values (and lengths, unless None)."""
    inputs = {
        "q": rng.standard_normal((N, Tq, D)).astype(dtype),
        "k": rng.standard_normal((N, Tk, D)).astype(dtype),
        "v": rng.standard_normal((N, Tk, Dv)).astype(dtype),
    }
    if lengths is not None:
        inputs["lengths"] = np.asarray(lengths, dtype=np.int64)
    return inputs


def _qkv_hidden(rng, N, Tq, Tk, D, Dv, dtype=np.float64):
    """Random shapes; a quarter of the cases without lengths, the others with lengths in [1, Tk]."""
    lengths = None if rng.random() < 0.25 else _random_lengths(rng, N, Tk, 1)
    return _qkv(rng, N, Tq, Tk, D, Dv, dtype, lengths=lengths)


def _forward_reference(i):
    context, weights, _ = attention_forward(i["q"], i["k"], i["v"], i.get("lengths"))
    return {"context": context, "weights": weights}


def _attend(i, *, scale=None, transpose_scores=False, softmax_axis=-1, mask=True, values="v", transpose_weights=False):
    """Attention with one deliberate mistake: context and weights, to recognise it in a learner's outputs."""
    q, k = i["q"], i["k"]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = scale * (k @ q.transpose(0, 2, 1) if transpose_scores else q @ k.transpose(0, 2, 1))
    if softmax_axis == -1:
        weights = masked_softmax_forward(scores, i.get("lengths") if mask else None)[0]
    else:
        weights = _softmax(scores, axis=softmax_axis)
    w = weights.transpose(0, 2, 1) if transpose_weights else weights
    return {"context": w @ i[values], "weights": weights}


def _square(i):
    return i["q"].shape[1] == i["k"].shape[1]


ATTENTION_FORWARD = Check(
    name="attention_forward",
    reference=_forward_reference,
    visible=(
        Case(
            "one_key",
            "one key (Tk = 1): every weight is 1",
            "With one key every weight is 1 whatever the scores: context[n, i] must be v[n, 0] for every query i.",
            lambda rng: _qkv(rng, 2, 3, 1, 2, 4),
        ),
        Case(
            "scale_one",
            "D = 1, so the scale 1/sqrt(D) is 1: N=2, Tq=Tk=3",
            "With D = 1 the scale does not matter: check the scores q k^T, the softmax over the keys and context = weights v.",
            lambda rng: _qkv(rng, 2, 3, 3, 1, 2),
        ),
        Case(
            "scaled",
            "D = 4: N=2, Tq=3, Tk=5, Dv=2",
            "Check the scale: scores = q k^T / sqrt(D), with D the size of the queries and keys.",
            lambda rng: _qkv(rng, 2, 3, 5, 4, 2),
        ),
        Case(
            "padding",
            "padding: lengths = [5, 2] of Tk = 5",
            "Keys j >= lengths[n] are padding: pass lengths on to your masked_softmax_forward.",
            lambda rng: _qkv(rng, 2, 3, 5, 4, 2, lengths=[5, 2]),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _qkv_hidden, N=(1, 4), Tq=(1, 5), Tk=(1, 6), D=(1, 6), Dv=(1, 5)),
    mistakes=(
        Mistake(
            "The scores are not scaled: divide q k^T by sqrt(D), D the size of the queries and keys.",
            lambda i: _attend(i, scale=1.0),
            applies=lambda i: i["q"].shape[-1] > 1,
        ),
        Mistake(
            "The scores are divided by D; divide them by sqrt(D), the standard deviation of a dot product "
            "of D unit-variance terms.",
            lambda i: _attend(i, scale=1.0 / i["q"].shape[-1]),
            applies=lambda i: i["q"].shape[-1] > 1,
        ),
        Mistake(
            "The scale uses the size of the values; D is the size of the queries and keys: q k^T / sqrt(D).",
            lambda i: _attend(i, scale=1 / math.sqrt(i["v"].shape[-1])),
            applies=lambda i: i["v"].shape[-1] != i["q"].shape[-1],
        ),
        Mistake(
            "The softmax runs over the queries (axis 1); it must run over the keys, the last axis, "
            "so that each weights[n, i, :] sums to 1.",
            lambda i: _attend(i, softmax_axis=1),
            applies=lambda i: "lengths" not in i and i["q"].shape[1] > 1,
        ),
        Mistake(
            "The scores are transposed: scores[n, i, j] = q_i . k_j, that is q @ k^T of shape (N, Tq, Tk).",
            lambda i: _attend(i, transpose_scores=True),
            applies=lambda i: _square(i) and "lengths" not in i,
        ),
        Mistake(
            "context is a weighted sum of the values v, not of the keys.",
            lambda i: {"context": _attend(i, values="k")["context"]},
            applies=lambda i: i["k"].shape[-1] == i["v"].shape[-1],
        ),
        Mistake(
            "The weights are transposed in the context: context = weights @ v, (N, Tq, Tk) @ (N, Tk, Dv).",
            lambda i: {"context": _attend(i, transpose_weights=True)["context"]},
            applies=_square,
        ),
        Mistake(
            "Padding keys got weight: pass lengths on to your masked_softmax_forward.",
            lambda i: _attend(i, mask=False),
            applies=_has_padding,
        ),
    ),
)


# --- attention_backward ---------------------------------------------------------------


def _with_dcontext(inputs, rng, dtype=np.float64):
    N, Tq, _ = inputs["q"].shape
    inputs["dcontext"] = rng.standard_normal((N, Tq, inputs["v"].shape[-1])).astype(dtype)
    return inputs


def _backward_reference(i):
    _, _, cache = attention_forward(i["q"], i["k"], i["v"], i.get("lengths"))
    grads = attention_backward(i["dcontext"], cache)
    return {f"d{k}": grads[k] for k in GRADS}


def _backprop(i, *, jacobian="full", scale=None, transpose_dv=False, transpose_dk=False):
    """The gradients with one deliberate mistake, to recognise it in a learner's gradients."""
    q, k, v, dcontext = i["q"], i["k"], i["v"], i["dcontext"]
    weights = _forward_reference(i)["weights"]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    dweights = dcontext @ v.transpose(0, 2, 1)
    if jacobian == "full":
        dscores = weights * (dweights - (weights * dweights).sum(axis=-1, keepdims=True))
    elif jacobian == "no_subtraction":
        dscores = weights * dweights
    else:  # "diagonal"
        dscores = weights * (1 - weights) * dweights
    dscores = scale * dscores
    return {
        "dq": dscores @ k,
        "dk": (dscores if transpose_dk else dscores.transpose(0, 2, 1)) @ q,
        "dv": (weights if transpose_dv else weights.transpose(0, 2, 1)) @ dcontext,
    }


def _only(outputs, *names):
    """The outputs a mistake changes (one it leaves right must not be compared, or the mistake is never named)."""
    return {k: outputs[k] for k in names}


def _backward_hidden(rng):
    def make(rng, dtype, **dims):
        return _with_dcontext(_qkv_hidden(rng, dtype=dtype, **dims), rng, dtype)

    return random_cases(rng, make, N=(1, 4), Tq=(1, 5), Tk=(2, 6), D=(2, 6), Dv=(1, 5))


_GRADIENT_SHAPES = "Each gradient has the shape of what it is the gradient of: dq like q, dk like k, dv like v."

ATTENTION_BACKWARD = Check(
    name="attention_backward",
    reference=_backward_reference,
    given=lambda i: {"weights": _forward_reference(i)["weights"]},
    visible=(
        Case(
            "one_key",
            "one key (Tk = 1): every weight is 1 whatever the scores",
            "With one key the scores do not change the weights: dq and dk must be 0, and dv[n, 0] = sum_i dcontext[n, i].",
            lambda rng: _with_dcontext(_qkv(rng, 2, 3, 1, 2, 4), rng),
            shape_hint=_GRADIENT_SHAPES,
        ),
        Case(
            "scale_one",
            "D = 1, so the scale 1/sqrt(D) is 1: N=2, Tq=Tk=3",
            "With D = 1 the scale does not matter: check dweights = dcontext v^T, the softmax backward, "
            "dq = dscores k and dk = dscores^T q.",
            lambda rng: _with_dcontext(_qkv(rng, 2, 3, 3, 1, 2), rng),
            shape_hint=_GRADIENT_SHAPES,
        ),
        Case(
            "scaled",
            "D = 4: N=2, Tq=3, Tk=5, Dv=2",
            "Check the scale: the scores are q k^T / sqrt(D), so dq and dk carry the same 1/sqrt(D).",
            lambda rng: _with_dcontext(_qkv(rng, 2, 3, 5, 4, 2), rng),
            shape_hint=_GRADIENT_SHAPES,
        ),
        Case(
            "padding",
            "padding: lengths = [5, 2] of Tk = 5",
            "Padding keys have weight 0 and do not move it: their rows of dk and dv must be 0.",
            lambda rng: _with_dcontext(_qkv(rng, 2, 3, 5, 4, 2, lengths=[5, 2]), rng),
        ),
    ),
    hidden=_backward_hidden,
    output_hints={
        "*": "Every gradient is wrong: check dweights = dcontext v^T and the softmax backward first.",
        "dq": "dq = dscores k / sqrt(D), with dscores the gradient of the scores.",
        "dk": "dk = dscores^T q / sqrt(D): key j collects from every query i.",
        "dv": "dv = weights^T dcontext: value j collects dcontext[n, i] of every query i, weighted by weights[n, i, j].",
    },
    mistakes=(
        Mistake(
            "dq and dk miss the softmax Jacobian's second term: dscores = weights * (dweights - "
            "sum_j weights_j dweights_j), the sum over the keys of each row.",
            lambda i: _only(_backprop(i, jacobian="no_subtraction"), "dq", "dk"),
        ),
        Mistake(
            "weights * (1 - weights) * dweights is only the diagonal of the softmax Jacobian: "
            "dscores = weights * (dweights - sum_j weights_j dweights_j).",
            lambda i: _only(_backprop(i, jacobian="diagonal"), "dq", "dk"),
        ),
        Mistake(
            "dq and dk miss the scale: the scores are q k^T / sqrt(D), so both gradients carry 1/sqrt(D) too.",
            lambda i: _only(_backprop(i, scale=1.0), "dq", "dk"),
            applies=lambda i: i["q"].shape[-1] > 1,
        ),
        Mistake(
            "dq and dk are divided by D; the scale is 1/sqrt(D), in the backward pass as in the forward.",
            lambda i: _only(_backprop(i, scale=1.0 / i["q"].shape[-1]), "dq", "dk"),
            applies=lambda i: i["q"].shape[-1] > 1,
        ),
        Mistake(
            "dv = weights^T dcontext: transpose the weights, (N, Tk, Tq) @ (N, Tq, Dv).",
            lambda i: _only(_backprop(i, transpose_dv=True), "dv"),
            applies=_square,
        ),
        Mistake(
            "dk = dscores^T q: transpose dscores, so that key j collects from every query i.",
            lambda i: _only(_backprop(i, transpose_dk=True), "dk"),
            applies=_square,
        ),
    ),
)


# --- additive_scores_forward ----------------------------------------------------------


def _additive_inputs(rng, N, Tq, Tk, Dq, Dk, A, dtype=np.float64, *, q=True, k=True):
    """Inputs of the additive score; a switched-off q or k is zero (its weights stay random)."""
    return {
        "q": (rng.standard_normal((N, Tq, Dq)) if q else np.zeros((N, Tq, Dq))).astype(dtype),
        "k": (rng.standard_normal((N, Tk, Dk)) if k else np.zeros((N, Tk, Dk))).astype(dtype),
        "Wq": (0.7 * rng.standard_normal((Dq, A))).astype(dtype),
        "Wk": (0.7 * rng.standard_normal((Dk, A))).astype(dtype),
        "v_a": rng.standard_normal(A).astype(dtype),
    }


def _projections(i):
    """``q Wq`` as (N, Tq, 1, A) and ``k Wk`` as (N, 1, Tk, A): every (query, key) pair when added."""
    return (i["q"] @ i["Wq"])[:, :, None, :], (i["k"] @ i["Wk"])[:, None, :, :]


ADDITIVE_SCORES_FORWARD = Check(
    name="additive_scores_forward",
    reference=lambda i: {"scores": additive_scores_forward(i["q"], i["k"], i["Wq"], i["Wk"], i["v_a"])[0]},
    visible=(
        Case(
            "query_only",
            "only the query term (k = 0)",
            "With k = 0 every key scores tanh(q_i Wq) . v_a: check the query term q Wq, q (N, Tq, Dq) and Wq (Dq, A).",
            lambda rng: _additive_inputs(rng, 2, 3, 4, 2, 3, 5, k=False),
        ),
        Case(
            "key_only",
            "only the key term (q = 0)",
            "With q = 0 every query scores tanh(k_j Wk) . v_a: check the key term k Wk, k (N, Tk, Dk) and Wk (Dk, A).",
            lambda rng: _additive_inputs(rng, 2, 3, 4, 2, 3, 5, q=False),
        ),
        Case(
            "both_terms",
            "both terms: N=2, Tq=3, Tk=4, Dq=2, Dk=3, A=5",
            "Each term alone is right; check how they combine: scores[n, i, j] = tanh(q_i Wq + k_j Wk) . v_a.",
            lambda rng: _additive_inputs(rng, 2, 3, 4, 2, 3, 5),
        ),
    ),
    hidden=lambda rng: random_cases(rng, _additive_inputs, N=(1, 4), Tq=(1, 5), Tk=(1, 5), Dq=(1, 5), Dk=(1, 5), A=(1, 6)),
    mistakes=(
        Mistake(
            "The tanh is missing: scores = tanh(q_i Wq + k_j Wk) . v_a.",
            lambda i: {"scores": sum(_projections(i)) @ i["v_a"]},
        ),
        Mistake(
            "tanh is applied to each term separately; apply it once, to the sum q_i Wq + k_j Wk.",
            lambda i: {"scores": (np.tanh(_projections(i)[0]) + np.tanh(_projections(i)[1])) @ i["v_a"]},
        ),
        Mistake(
            "v_a is applied before the tanh; it weighs the hidden layer: scores = tanh(q_i Wq + k_j Wk) . v_a.",
            lambda i: {"scores": np.tanh(sum(_projections(i)) @ i["v_a"])},
        ),
        Mistake(
            "The hidden layer is summed; it is weighted by v_a: scores = tanh(q_i Wq + k_j Wk) @ v_a.",
            lambda i: {"scores": np.tanh(sum(_projections(i))).sum(axis=-1)},
        ),
        Mistake(
            "The scores are transposed: scores[n, i, j] pairs query i with key j, shape (N, Tq, Tk).",
            lambda i: {"scores": (np.tanh(sum(_projections(i))) @ i["v_a"]).transpose(0, 2, 1)},
            applies=lambda i: i["q"].shape[1] == i["k"].shape[1],
        ),
    ),
)


# --- attention_decoder_step (PyTorch) -------------------------------------------------
# Everything that touches torch imports it inside the function: rnncourse.checks
# must import without PyTorch (a grader imports it once per submission).

DECODER_OUTPUTS = ("logits", "s", "weights", "ds_prev", "denc_out")


def _decoder_inputs(rng, N, S, C, H, A, E, V, dtype=np.float64, *, lengths=None):
    """One decoder step's inputs: the state, the encoder outputs, the weights, and dlogits for the backward.

    The padding positions of ``enc_out`` hold random vectors, not zeros: a
    step must ignore them because of ``lengths``, whatever they hold.
    """
    lengths = _random_lengths(rng, N, S, 1) if lengths is None else np.asarray(lengths, dtype=np.int64)
    floats = {
        "s_prev": rng.uniform(-1, 1, (N, H)),
        "enc_out": rng.standard_normal((N, S, C)),
        "Wq": 0.7 * rng.standard_normal((H, A)),
        "Wk": 0.7 * rng.standard_normal((C, A)),
        "v_a": rng.standard_normal(A),
        "embedding_weight": rng.standard_normal((V, E)),
        "cell_weight_ih": 0.5 * rng.standard_normal((3 * H, E + C)),
        "cell_weight_hh": 0.5 * rng.standard_normal((3 * H, H)),
        "cell_bias_ih": nonzero_bias(rng, 3 * H),
        "cell_bias_hh": nonzero_bias(rng, 3 * H),
        "out_weight": 0.5 * rng.standard_normal((V, H + C)),
        "out_bias": nonzero_bias(rng, V),
        "dlogits": rng.standard_normal((N, V)),
    }
    inputs = {"y_prev": rng.integers(0, V, N).astype(np.int64), "lengths": lengths}
    inputs.update({k: np.asarray(v).astype(dtype) for k, v in floats.items()})
    return inputs


def reference_decoder_step(y_prev, s_prev, enc_out, lengths, Wq, Wk, v_a, embedding, cell, out):
    """The learner's ``attention_decoder_step``, done with :mod:`rnncourse.torch`: a right answer.

    It is the decoder step of :class:`rnncourse.torch.seq2seq.Seq2Seq` with
    ``attention="additive"``, the encoder outputs being the keys and the
    values; returns ``logits (N, V), s (N, H), weights (N, S)``.
    """
    import torch

    from rnncourse.torch import AdditiveAttention

    (H, A), C = Wq.shape, Wk.shape[0]
    attention = AdditiveAttention(H, C, A, dtype=Wq.dtype)
    attention.load_state_dict({"query_proj.weight": Wq.T, "key_proj.weight": Wk.T, "v": v_a})
    context, weights = attention(s_prev, enc_out, enc_out, lengths=lengths)
    s = cell(torch.cat([embedding(y_prev), context], dim=-1), s_prev)
    return out(torch.cat([s, context], dim=-1)), s, weights


REFERENCES = {"attention_decoder_step": reference_decoder_step}
"""Name -> a right answer, for the function of this assignment that has no twin in :mod:`rnncourse.numpy`."""


def _decoder_reference(i):
    """The decoder step of :class:`rnncourse.torch.seq2seq.Seq2Seq` (additive attention, GRU), and its gradients."""
    import torch

    from rnncourse.torch import GRUCell

    t = decoder_tensors(i)
    embedding, cell, out = decoder_modules(i, cell_class=GRUCell)
    names = ("y_prev", "s_prev", "enc_out", "lengths", "Wq", "Wk", "v_a")
    logits, s, weights = reference_decoder_step(*(t[n] for n in names), embedding, cell, out)
    (logits * torch.from_numpy(i["dlogits"])).sum().backward()
    values = (logits, s, weights, t["s_prev"].grad, t["enc_out"].grad)
    return {k: v.detach().numpy() for k, v in zip(DECODER_OUTPUTS, values)}


def _decoder_by_hand(i, *, mask="-inf", softmax_dim=-1, tanh=True, cell_input="embedding, context",
                     out_input="s, context", out_state="s"):  # fmt: skip
    """The decoder step written out, with one deliberate mistake when an argument differs from its default.

    Used on the trusted side to recognise a learner's mistake by its
    outputs; with the defaults it equals the reference (the tests check it).
    ``mask``: ``"-inf"`` (right), ``"zero"`` (padding scores set to 0),
    ``"none"`` (no mask) or ``"after"`` (padding weights zeroed after the softmax).
    """
    import torch

    t = decoder_tensors(i)
    embedding, cell, out = decoder_modules(i)
    s_prev, enc_out = t["s_prev"], t["enc_out"]
    hidden = (s_prev @ t["Wq"])[:, None, :] + enc_out @ t["Wk"]  # (N, S, A)
    e = (torch.tanh(hidden) if tanh else hidden) @ t["v_a"]  # (N, S)
    real = torch.arange(e.shape[1]) < t["lengths"][:, None]
    if mask == "-inf":
        weights = torch.softmax(e.masked_fill(~real, -math.inf), dim=softmax_dim)
    elif mask == "zero":
        weights = torch.softmax(e.masked_fill(~real, 0.0), dim=softmax_dim)
    elif mask == "after":
        weights = torch.softmax(e, dim=softmax_dim).masked_fill(~real, 0.0)
    else:
        weights = torch.softmax(e, dim=softmax_dim)
    context = (weights[:, :, None] * enc_out).sum(dim=1)
    embedded = embedding(t["y_prev"])
    x = torch.cat([embedded, context] if cell_input == "embedding, context" else [context, embedded], dim=-1)
    s = cell(x, s_prev)
    state = s if out_state == "s" else s_prev
    logits = out(torch.cat([state, context] if out_input == "s, context" else [context, state], dim=-1))
    (logits * torch.from_numpy(i["dlogits"])).sum().backward()
    values = (logits, s, weights, s_prev.grad, enc_out.grad)
    return {k: v.detach().numpy() for k, v in zip(DECODER_OUTPUTS, values)}


def _changed(names, **mistake):
    """A mistake's outputs: only those it changes (an output it leaves right must not be compared)."""
    return lambda i: {k: v for k, v in _decoder_by_hand(i, **mistake).items() if k in names}


_AFTER_ATTENTION = ("logits", "s", "ds_prev", "denc_out")
_AFTER_CELL = ("logits", "ds_prev", "denc_out")


def _decoder_precheck(inputs, outputs, expected):
    reaches = outputs.get("reaches")
    if reaches is not None and not int(reaches):
        return (
            "autograd cannot go back from your logits to s_prev and enc_out: build the step from torch "
            "operations on the tensors given (no .numpy(), .detach(), .data or torch.no_grad()), so that it can be trained."
        )
    return None


def _decoder_hidden(rng):
    return random_cases(rng, _decoder_inputs, N=(1, 4), S=(1, 6), C=(1, 5), H=(1, 5), A=(1, 5), E=(1, 4), V=(2, 7))


ATTENTION_DECODER_STEP = Check(
    name="attention_decoder_step",
    reference=_decoder_reference,
    precheck=_decoder_precheck,
    visible=(
        Case(
            "no_padding",
            "no padding: N=2, S=4, C=3, H=5, A=4, E=3, V=6",
            "Check the attention: e[n, j] = tanh(s_prev[n] Wq + enc_out[n, j] Wk) . v_a, a softmax over the "
            "S positions, context = sum_j weights[n, j] enc_out[n, j].",
            lambda rng: _decoder_inputs(rng, 2, 4, 3, 5, 4, 3, 6, lengths=[4, 4]),
        ),
        Case(
            "padding",
            "padding: lengths = [4, 2] of S = 4",
            "Positions j >= lengths[n] are padding: their weight must be exactly 0 (fill their scores with -inf).",
            lambda rng: _decoder_inputs(rng, 2, 4, 3, 5, 4, 3, 6, lengths=[4, 2]),
        ),
        Case(
            "general",
            "N=3, S=5, C=2, H=3, A=6, E=4, V=7, lengths = [5, 3, 1]",
            "Check the order of the step: attend with s_prev, then s = cell([embedding(y_prev); context], s_prev), "
            "then logits = out([s; context]).",
            lambda rng: _decoder_inputs(rng, 3, 5, 2, 3, 6, 4, 7, lengths=[5, 3, 1]),
        ),
    ),
    hidden=_decoder_hidden,
    output_hints={
        "*": "Everything is wrong: check the attention weights first, then the cell, then the output layer.",
        "s": "Check the cell: s = cell(torch.cat([embedding(y_prev), context], dim=-1), s_prev).",
        "logits": "Check the output layer: logits = out(torch.cat([s, context], dim=-1)), s the new state.",
        "denc_out": "If the outputs are right, part of the step is cut off from autograd (.numpy(), .detach(), .data).",
    },
    mistakes=(
        Mistake(
            "Padding positions (j >= lengths[n]) got attention weight: fill their scores with -inf before the softmax.",
            _changed(DECODER_OUTPUTS, mask="none"),
            applies=lambda i: bool(np.any(i["lengths"] < i["enc_out"].shape[1])),
        ),
        Mistake(
            "The padding scores were set to 0, and exp(0 - max) > 0 still gives them weight: fill them with -inf.",
            _changed(DECODER_OUTPUTS, mask="zero"),
            applies=lambda i: bool(np.any(i["lengths"] < i["enc_out"].shape[1])),
        ),
        Mistake(
            "The padding weights were zeroed after the softmax, so the weights no longer sum to 1: "
            "fill the padding scores with -inf before the softmax.",
            _changed(DECODER_OUTPUTS, mask="after"),
            applies=lambda i: bool(np.any(i["lengths"] < i["enc_out"].shape[1])),
        ),
        Mistake(
            "The softmax runs over the batch (dim 0); it runs over the source positions, the last dim: "
            "each weights[n] sums to 1.",
            _changed(DECODER_OUTPUTS, softmax_dim=0),
            applies=lambda i: i["enc_out"].shape[0] > 1,
        ),
        Mistake(
            "The tanh of the additive score is missing: e[n, j] = tanh(s_prev[n] Wq + enc_out[n, j] Wk) . v_a.",
            _changed(DECODER_OUTPUTS, tanh=False),
            applies=lambda i: bool(np.any(i["lengths"] > 1)),
        ),
        Mistake(
            "The cell's input is [embedding(y_prev); context], in that order: torch.cat([embedded, context], dim=-1).",
            _changed(_AFTER_ATTENTION, cell_input="context, embedding"),
        ),
        Mistake(
            "The output layer reads [s; context], in that order: torch.cat([s, context], dim=-1).",
            _changed(_AFTER_CELL, out_input="context, s"),
        ),
        Mistake(
            "The logits come from the new state s (the cell's output), not from s_prev.",
            _changed(_AFTER_CELL, out_state="s_prev"),
        ),
    ),
)


CHECKS = (
    MASKED_SOFTMAX_FORWARD,
    MASKED_SOFTMAX_BACKWARD,
    ATTENTION_FORWARD,
    ATTENTION_BACKWARD,
    ADDITIVE_SCORES_FORWARD,
    ATTENTION_DECODER_STEP,
)
