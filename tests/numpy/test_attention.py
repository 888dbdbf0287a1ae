"""Tests for rnncourse.numpy.attention: scores, masked softmax, attention."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnncourse.numpy import gradcheck
from rnncourse.numpy.attention import (
    additive_scores_backward,
    additive_scores_forward,
    attention_backward,
    attention_forward,
    dot_product_scores_backward,
    dot_product_scores_forward,
    masked_softmax_backward,
    masked_softmax_forward,
    scaled_dot_product_scores_backward,
    scaled_dot_product_scores_forward,
)
from rnncourse.testing import assert_close

DTYPES = [np.float64, np.float32]
# N, Tq, Tk, Dq, Dk, Dv, A
SHAPES = [(1, 1, 1, 1, 1, 1, 1), (2, 3, 4, 4, 3, 5, 6), (3, 2, 5, 2, 4, 3, 3), (4, 4, 3, 3, 2, 2, 5)]
SCORE_NAMES = ["dot", "scaled_dot", "additive"]


def make(seed, N, Tq, Tk, Dq, Dk, Dv, A, dtype=np.float64, score="scaled_dot"):
    """Random inputs; for the dot scores the keys take the query size Dq.

    The lengths cover a full sequence, and (when N > 1) an empty one and a
    partial one, so the mask is exercised in every test that uses them.
    """
    rng = np.random.default_rng(seed)
    Dk = Dk if score == "additive" else Dq
    r = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    lengths = rng.integers(0, Tk + 1, size=N)
    lengths[0] = Tk
    if N > 1:
        lengths[1] = 0
    if N > 2:
        lengths[2] = max(1, Tk - 2)
    params = dict(Wq=r(Dq, A), Wk=r(Dk, A), v_a=r(A)) if score == "additive" else None
    return dict(q=r(N, Tq, Dq), k=r(N, Tk, Dk), v=r(N, Tk, Dv), lengths=lengths, params=params)


def tt(a):
    return torch.tensor(a, requires_grad=True)


def key_mask(lengths, Tq, Tk):
    """(N, Tq, Tk) boolean, True where the key is real (the attn_mask convention of torch)."""
    return torch.tensor((np.arange(Tk) < np.asarray(lengths)[:, None])[:, None, :].repeat(Tq, axis=1))


def torch_scores(score, q, k, params):
    if score == "dot":
        return q @ k.transpose(1, 2)
    if score == "scaled_dot":
        return q @ k.transpose(1, 2) / np.sqrt(k.shape[2])
    h = torch.tanh((q @ params["Wq"])[:, :, None, :] + (k @ params["Wk"])[:, None, :, :])
    return h @ params["v_a"]


def torch_attention(score, q, k, v, lengths, params):
    """Textbook attention in torch: -inf at padding, softmax, weighted sum. NaN on empty rows."""
    scores = torch_scores(score, q, k, params)
    scores = scores.masked_fill(~key_mask(lengths, q.shape[1], k.shape[1]), -torch.inf)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def seqs_with_keys(lengths):
    return np.flatnonzero(np.asarray(lengths) > 0)


# ---------------------------------------------------------------- against PyTorch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_scaled_dot_attention_matches_torch_sdpa(shape, dtype):
    a = make(sum(shape), *shape, dtype=dtype)
    context, weights, cache = attention_forward(a["q"], a["k"], a["v"], a["lengths"])
    dcontext = np.random.default_rng(0).standard_normal(context.shape).astype(dtype)
    grads = attention_backward(dcontext, cache)
    assert context.dtype == dtype and weights.dtype == dtype
    assert all(g.dtype == dtype for g in grads.values())

    q, k, v = tt(a["q"]), tt(a["k"]), tt(a["v"])
    ct = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask(a["lengths"], *weights.shape[1:]))
    ct.backward(torch.tensor(dcontext))
    # Sequences are independent, so comparing only those with a real key is
    # not disturbed by what torch does on an empty one (NaN in older versions).
    n = seqs_with_keys(a["lengths"])
    assert_close(context[n], ct[n], "context")
    for name, t in (("q", q), ("k", k), ("v", v)):
        assert_close(grads[name][n], t.grad[n], "d" + name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("score", SCORE_NAMES)
@pytest.mark.parametrize("shape", SHAPES)
def test_attention_matches_torch_autograd(shape, score, dtype):
    """Every score, the weights and their gradient too (a loss that reads the weights)."""
    a = make(sum(shape) + 1, *shape, dtype=dtype, score=score)
    context, weights, cache = attention_forward(a["q"], a["k"], a["v"], a["lengths"], score, a["params"])
    rng = np.random.default_rng(1)
    dcontext = rng.standard_normal(context.shape).astype(dtype)
    dweights = rng.standard_normal(weights.shape).astype(dtype)
    grads = attention_backward(dcontext, cache, dweights)

    n = seqs_with_keys(a["lengths"])  # the torch textbook version is NaN on empty ones
    names = ["q", "k", "v"] + (["Wq", "Wk", "v_a"] if score == "additive" else [])
    t = {name: tt(a[name][n] if name in "qkv" else a["params"][name]) for name in names}
    ct, wt = torch_attention(score, t["q"], t["k"], t["v"], a["lengths"][n], t)
    ((ct * torch.tensor(dcontext[n])).sum() + (wt * torch.tensor(dweights[n])).sum()).backward()

    assert set(grads) == set(names)
    assert_close(context[n], ct, "context")
    assert_close(weights[n], wt, "weights")
    for name in names:
        ours = grads[name][n] if name in "qkv" else grads[name]
        if name not in "qkv" and len(n) < len(a["lengths"]):
            # parameters are shared: the empty sequences must add nothing to their gradient
            context_n, _, cache_n = attention_forward(
                a["q"][n], a["k"][n], a["v"][n], a["lengths"][n], score, a["params"]
            )
            ours_n = attention_backward(dcontext[n], cache_n, dweights[n])[name]
            assert_close(ours, ours_n, "d" + name + " (empty sequences excluded)")
        assert_close(ours, t[name].grad, "d" + name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_score_functions_match_torch(shape, dtype):
    a = make(sum(shape) + 2, *shape, dtype=dtype, score="additive")
    rng = np.random.default_rng(2)
    N, Tq, Tk = shape[:3]
    dscores = rng.standard_normal((N, Tq, Tk)).astype(dtype)
    q_dot, k_dot = a["q"], rng.standard_normal((N, Tk, shape[3])).astype(dtype)
    cases = [
        ("dot", dot_product_scores_forward, dot_product_scores_backward, [q_dot, k_dot], ["q", "k"]),
        ("scaled_dot", scaled_dot_product_scores_forward, scaled_dot_product_scores_backward,
         [q_dot, k_dot], ["q", "k"]),
        ("additive", additive_scores_forward, additive_scores_backward,
         [a["q"], a["k"], a["params"]["Wq"], a["params"]["Wk"], a["params"]["v_a"]],
         ["q", "k", "Wq", "Wk", "v_a"]),
    ]
    for score, forward, backward, inputs, names in cases:
        scores, cache = forward(*inputs)
        grads = backward(dscores, cache)
        t = {name: tt(x) for name, x in zip(names, inputs)}
        st = torch_scores(score, t["q"], t["k"], t)
        st.backward(torch.tensor(dscores))
        assert scores.dtype == dtype
        assert_close(scores, st, f"{score} scores")
        assert len(grads) == len(names)
        for name, g in zip(names, grads):
            assert g.dtype == dtype
            assert_close(g, t[name].grad, f"d{name} of the {score} scores")


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_softmax_matches_torch(dtype):
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((4, 3, 5)).astype(dtype)
    lengths = np.array([5, 0, 2, 1])
    weights, cache = masked_softmax_forward(scores, lengths)
    dweights = rng.standard_normal(weights.shape).astype(dtype)
    dscores = masked_softmax_backward(dweights, cache)

    n = seqs_with_keys(lengths)
    st = tt(scores[n])
    wt = torch.softmax(st.masked_fill(~key_mask(lengths[n], 3, 5), -torch.inf), dim=-1)
    wt.backward(torch.tensor(dweights[n]))
    assert weights.dtype == dtype and dscores.dtype == dtype
    assert_close(weights[n], wt, "weights")
    assert_close(dscores[n], st.grad, "dscores")


# ---------------------------------------------------------------- the mask


@pytest.mark.parametrize("dtype", DTYPES)
def test_padding_keys_get_exactly_zero_weight(dtype):
    rng = np.random.default_rng(4)
    scores = rng.standard_normal((3, 2, 6)).astype(dtype)
    lengths = np.array([6, 3, 1])
    scores[1, :, 3:] = 50.0  # padding that would win without the mask
    weights, cache = masked_softmax_forward(scores, lengths)
    for n, L in enumerate(lengths):
        assert (weights[n, :, L:] == 0.0).all(), f"sequence {n}: padding keys got weight"
        np.testing.assert_allclose(weights[n].sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(weights[2, :, 0], 1.0)  # a single key takes all the weight
    dscores = masked_softmax_backward(rng.standard_normal(weights.shape).astype(dtype), cache)
    assert (dscores[1, :, 3:] == 0.0).all() and (dscores[2, :, 1:] == 0.0).all()

    # the same check catches a softmax that ignores the lengths
    unmasked, _ = masked_softmax_forward(scores)
    assert not (unmasked[1, :, 3:] == 0.0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("score", SCORE_NAMES)
def test_empty_sequence_gives_zero_weights_context_and_gradients(score, dtype):
    """lengths[n] == 0: all-zero weights and context, zero gradient, never NaN."""
    a = make(5, 3, 2, 4, 3, 2, 3, 4, dtype=dtype, score=score)
    a["lengths"] = np.array([0, 4, 0])
    context, weights, cache = attention_forward(a["q"], a["k"], a["v"], a["lengths"], score, a["params"])
    rng = np.random.default_rng(6)
    grads = attention_backward(
        rng.standard_normal(context.shape).astype(dtype), cache, rng.standard_normal(weights.shape).astype(dtype)
    )
    for n in (0, 2):
        np.testing.assert_array_equal(weights[n], 0.0)
        np.testing.assert_array_equal(context[n], 0.0)
        for name in "qkv":
            np.testing.assert_array_equal(grads[name][n], 0.0)
    assert all(np.isfinite(g).all() for g in grads.values())
    # the textbook version (-inf fill, then softmax) gives NaN here: ours must not
    t = {name: torch.tensor(a[name]) for name in "qkv"}
    _, wt = torch_attention(score, t["q"], t["k"], t["v"], a["lengths"], a["params"] and {
        name: torch.tensor(x) for name, x in a["params"].items()})
    assert torch.isnan(wt[0]).all() and not np.isnan(weights).any()


# ---------------------------------------------------------------- extreme inputs


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_softmax_extreme_scores(dtype):
    rng = np.random.default_rng(7)
    scores = (1e4 * rng.standard_normal((3, 4, 6))).astype(dtype)
    scores[0, :, 2:] = 1e4  # huge padding scores
    scores[0, :, :2] = -1e4  # tiny real ones: shifting by the overall max would give 0/0
    lengths = np.array([2, 6, 3])
    weights, cache = masked_softmax_forward(scores, lengths)
    dscores = masked_softmax_backward(1e4 * rng.standard_normal(weights.shape).astype(dtype), cache)
    assert np.isfinite(weights).all() and np.isfinite(dscores).all()
    np.testing.assert_array_equal(weights[0, :, :2], 0.5)
    assert (weights[0, :, 2:] == 0.0).all()
    st = torch.tensor(scores).masked_fill(~key_mask(lengths, 4, 6), -torch.inf)
    assert_close(weights, torch.softmax(st, dim=-1), "weights")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("score", SCORE_NAMES)
def test_attention_extreme_inputs_are_finite(score, dtype):
    a = make(8, 3, 2, 5, 4, 3, 2, 3, dtype=dtype, score=score)
    q, k = 1e2 * a["q"], 1e2 * a["k"]  # dot scores of order 1e4
    params = a["params"] and {name: 1e4 * x for name, x in a["params"].items()}  # tanh saturated
    context, weights, cache = attention_forward(q, k, a["v"], a["lengths"], score, params)
    grads = attention_backward(np.ones_like(context), cache, np.ones_like(weights))
    assert np.isfinite(context).all() and np.isfinite(weights).all()
    assert all(np.isfinite(g).all() for g in grads.values())


# ---------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("shape", SHAPES[1:])
def test_score_gradchecks(shape):
    a = make(9, *shape, score="additive")
    rng = np.random.default_rng(10)
    N, Tq, Tk, Dq = shape[:4]
    k_dot = rng.standard_normal((N, Tk, Dq))
    dscores = rng.standard_normal((N, Tq, Tk))
    for forward, backward in ((dot_product_scores_forward, dot_product_scores_backward),
                              (scaled_dot_product_scores_forward, scaled_dot_product_scores_backward)):
        dq, dk = backward(dscores, forward(a["q"], k_dot)[1])
        report = gradcheck(lambda **x: forward(**x)[0], dict(q=a["q"], k=k_dot), dict(q=dq, k=dk), dscores)
        assert report.ok, f"{forward.__name__}\n{report}"
    inputs = dict(q=a["q"], k=a["k"], **a["params"])
    grads = additive_scores_backward(dscores, additive_scores_forward(**inputs)[1])
    report = gradcheck(lambda **x: additive_scores_forward(**x)[0], inputs, dict(zip(inputs, grads)), dscores)
    assert report.ok, str(report)


def test_masked_softmax_gradcheck():
    rng = np.random.default_rng(11)
    scores = rng.standard_normal((4, 3, 5))
    lengths = np.array([5, 0, 2, 1])
    dweights = rng.standard_normal(scores.shape)
    dscores = masked_softmax_backward(dweights, masked_softmax_forward(scores, lengths)[1])
    f = lambda scores: masked_softmax_forward(scores, lengths)[0]  # noqa: E731
    report = gradcheck(f, dict(scores=scores), dict(scores=dscores), dweights)
    assert report.ok, str(report)
    # a backward that forgets the -sum(alpha dalpha) term is caught
    weights = masked_softmax_forward(scores, lengths)[0]
    assert not gradcheck(f, dict(scores=scores), dict(scores=weights * dweights), dweights).ok


@pytest.mark.parametrize("score", SCORE_NAMES)
@pytest.mark.parametrize("shape", SHAPES[1:])
def test_attention_gradcheck(shape, score):
    a = make(12, *shape, score=score)
    params = a["params"] or {}
    rng = np.random.default_rng(13)
    context, weights, cache = attention_forward(a["q"], a["k"], a["v"], a["lengths"], score, a["params"])
    dout = (rng.standard_normal(context.shape), rng.standard_normal(weights.shape))
    grads = attention_backward(*dout[:1], cache, dout[1])

    def f(q, k, v, **p):
        return attention_forward(q, k, v, a["lengths"], score, p or None)[:2]

    inputs = dict(q=a["q"], k=a["k"], v=a["v"], **params)
    report = gradcheck(f, inputs, grads, dout)
    assert report.ok, str(report)


def test_gradcheck_catches_swapped_attention_gradients():
    a = make(14, 2, 3, 3, 3, 3, 3, 2)  # Tq == Tk and Dq == Dv: wrong gradients have the right shapes
    context, weights, cache = attention_forward(a["q"], a["k"], a["v"], a["lengths"])
    dcontext = np.random.default_rng(15).standard_normal(context.shape)
    grads = attention_backward(dcontext, cache)
    f = lambda q, k, v: attention_forward(q, k, v, a["lengths"])[0]  # noqa: E731
    inputs = dict(q=a["q"], k=a["k"], v=a["v"])
    assert gradcheck(f, inputs, grads, dcontext).ok
    assert not gradcheck(f, inputs, dict(q=grads["k"], k=grads["q"]), dcontext).ok
    assert not gradcheck(f, inputs, dict(v=weights @ dcontext), dcontext).ok  # alpha instead of alpha^T


# ---------------------------------------------------------------- "must be able to fail"


def test_torch_comparison_catches_a_missing_sqrt_scale():
    a = make(16, 2, 3, 4, 4, 4, 3, 2)
    n = seqs_with_keys(a["lengths"])
    q, k, v = (torch.tensor(a[name][n]) for name in "qkv")
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask(a["lengths"][n], 3, 4))
    context, _, _ = attention_forward(a["q"], a["k"], a["v"], a["lengths"], score="scaled_dot")
    assert_close(context[n], expected, "context")
    unscaled, _, _ = attention_forward(a["q"], a["k"], a["v"], a["lengths"], score="dot")
    with pytest.raises(AssertionError, match="context"):
        assert_close(unscaled[n], expected, "context")


def test_torch_comparison_catches_a_forgotten_mask():
    a = make(17, 3, 3, 5, 4, 4, 3, 2)
    n = seqs_with_keys(a["lengths"])
    q, k, v = (torch.tensor(a[name][n]) for name in "qkv")
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask(a["lengths"][n], 3, 5))
    unmasked, _, _ = attention_forward(a["q"], a["k"], a["v"])
    with pytest.raises(AssertionError, match="context"):
        assert_close(unmasked[n], expected, "context")


def test_scaling_keeps_score_variance_near_one():
    """What the sqrt(D) is for: unit-variance q, k give unit-variance scaled scores, D-variance plain ones."""
    rng = np.random.default_rng(18)
    D = 256
    q, k = rng.standard_normal((4, 50, D)), rng.standard_normal((4, 50, D))
    assert 0.8 < scaled_dot_product_scores_forward(q, k)[0].var() < 1.25
    assert 0.8 * D < dot_product_scores_forward(q, k)[0].var() < 1.25 * D


# ---------------------------------------------------------------- caches and inputs untouched


@pytest.mark.parametrize("score", SCORE_NAMES)
def test_backward_twice_gives_the_same_result(score):
    a = make(19, 3, 2, 4, 3, 2, 3, 4, score=score)
    before = {name: a[name].copy() for name in "qkv"}
    context, weights, cache = attention_forward(a["q"], a["k"], a["v"], a["lengths"], score, a["params"])
    rng = np.random.default_rng(20)
    dcontext, dweights = rng.standard_normal(context.shape), rng.standard_normal(weights.shape)
    first = attention_backward(dcontext, cache, dweights)
    second = attention_backward(dcontext, cache, dweights)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    for name in "qkv":
        np.testing.assert_array_equal(a[name], before[name])

    weights, cache = masked_softmax_forward(rng.standard_normal((3, 2, 4)), a["lengths"])
    np.testing.assert_array_equal(masked_softmax_backward(dweights, cache), masked_softmax_backward(dweights, cache))
    dscores = rng.standard_normal((3, 2, 4))
    k_dot = rng.standard_normal((3, 4, 3))
    b = make(19, 3, 2, 4, 3, 2, 3, 4, score="additive")
    for forward, backward, inputs in (
        (dot_product_scores_forward, dot_product_scores_backward, (a["q"], k_dot)),
        (scaled_dot_product_scores_forward, scaled_dot_product_scores_backward, (a["q"], k_dot)),
        (additive_scores_forward, additive_scores_backward, (b["q"], b["k"], *b["params"].values())),
    ):
        cache = forward(*inputs)[1]
        for g1, g2 in zip(backward(dscores, cache), backward(dscores, cache)):
            np.testing.assert_array_equal(g1, g2)


# ---------------------------------------------------------------- bad input


def test_value_errors():
    a = make(21, 2, 3, 4, 4, 2, 5, 3, score="additive")
    q, k, v, p = a["q"], a["k"], a["v"], a["params"]
    kq = np.ones((2, 4, 4))
    with pytest.raises(ValueError, match=r"k has shape \(2, 4, 2\); expected \(N, Tk, Dq\) = \(2, 4, 4\)"):
        dot_product_scores_forward(q, k)
    with pytest.raises(ValueError, match=r"k has shape \(2, 4, 2\); expected \(N, Tk, Dq\) = \(2, 4, 4\)"):
        attention_forward(q, k, v, score="scaled_dot")
    with pytest.raises(ValueError, match=r"k has shape \(3, 4, 4\); expected \(N, Tk, Dq\) = \(2, 4, 4\)"):
        scaled_dot_product_scores_forward(q, np.ones((3, 4, 4)))
    with pytest.raises(ValueError, match=r"q has shape \(3, 4\); expected \(N, Tq, Dq\)"):
        dot_product_scores_forward(q[0], kq)
    with pytest.raises(ValueError, match=r"q has dtype int64; expected a floating-point"):
        dot_product_scores_forward(np.ones((2, 3, 4), dtype=np.int64), kq)
    with pytest.raises(ValueError, match=r"expected Dq >= 1 and Dk >= 1"):
        scaled_dot_product_scores_forward(np.ones((2, 3, 0)), np.ones((2, 4, 0)))
    with pytest.raises(ValueError, match=r"Wq has shape \(3, 3\); expected \(Dq, A\) = \(4, 3\)"):
        additive_scores_forward(q, k, p["Wq"][:3], p["Wk"], p["v_a"])
    with pytest.raises(ValueError, match=r"Wk has shape \(2, 4\); expected \(Dk, A\) = \(2, 3\)"):
        additive_scores_forward(q, k, p["Wq"], np.ones((2, 4)), p["v_a"])
    with pytest.raises(ValueError, match=r"v_a has shape \(2,\); expected \(A\) = \(3,\)"):
        additive_scores_forward(q, k, p["Wq"], p["Wk"], p["v_a"][:2])

    with pytest.raises(ValueError, match=r"v has shape \(2, 3, 5\); expected \(N, Tk, Dv\) = \(2, 4, 5\)"):
        attention_forward(q, kq, v[:, :3])
    with pytest.raises(ValueError, match=r"score is 'cosine'; expected one of 'dot', 'scaled_dot', 'additive'"):
        attention_forward(q, kq, v, score="cosine")
    with pytest.raises(ValueError, match=r"params is None; score='additive' needs params"):
        attention_forward(q, k, v, score="additive")
    with pytest.raises(ValueError, match=r"params has keys \['Wq', 'v_a'\]; expected a dict with keys"):
        attention_forward(q, k, v, score="additive", params=dict(Wq=p["Wq"], v_a=p["v_a"]))
    with pytest.raises(ValueError, match=r"params is given with score='dot'"):
        attention_forward(q, kq, v, score="dot", params=p)

    with pytest.raises(ValueError, match=r"lengths holds 5 at \[1\]; expected integers in \[0, Tk\] = \[0, 4\]"):
        attention_forward(q, kq, v, lengths=np.array([4, 5]))
    with pytest.raises(ValueError, match=r"lengths holds -1 at \[0\]"):
        masked_softmax_forward(np.ones((2, 3, 4)), np.array([-1, 2]))
    with pytest.raises(ValueError, match=r"lengths has dtype float64; expected an integer array"):
        attention_forward(q, kq, v, lengths=np.array([4.0, 2.0]))
    with pytest.raises(ValueError, match=r"lengths has shape \(3,\); expected \(N\) = \(2,\)"):
        masked_softmax_forward(np.ones((2, 3, 4)), [1, 2, 3])
    with pytest.raises(ValueError, match=r"scores has shape \(2, 4\); expected \(N, Tq, Tk\)"):
        masked_softmax_forward(np.ones((2, 4)), [1, 2])

    context, weights, cache = attention_forward(q, kq, v, lengths=[4, 2])
    with pytest.raises(ValueError, match=r"dcontext has shape \(2, 3, 4\); expected \(N, Tq, Dv\) = \(2, 3, 5\)"):
        attention_backward(np.ones((2, 3, 4)), cache)
    with pytest.raises(ValueError, match=r"dweights has shape \(2, 4, 3\); expected \(N, Tq, Tk\) = \(2, 3, 4\)"):
        attention_backward(context, cache, np.ones((2, 4, 3)))
    _, cache = masked_softmax_forward(weights, [4, 2])
    with pytest.raises(ValueError, match=r"dweights has shape \(2, 3\); expected \(N, Tq, Tk\) = \(2, 3, 4\)"):
        masked_softmax_backward(np.ones((2, 3)), cache)
    _, cache = additive_scores_forward(q, k, **p)
    with pytest.raises(ValueError, match=r"dscores has shape \(2, 4, 3\); expected \(N, Tq, Tk\) = \(2, 3, 4\)"):
        additive_scores_backward(np.ones((2, 4, 3)), cache)
    _, cache = dot_product_scores_forward(q, kq)
    with pytest.raises(ValueError, match=r"dscores has dtype int64"):
        dot_product_scores_backward(np.ones((2, 3, 4), dtype=np.int64), cache)
