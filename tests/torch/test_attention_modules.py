"""Tests for rnncourse.torch.attention: parity with the NumPy reference and with torch, masks."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnncourse.numpy.attention import attention_backward, attention_forward
from rnncourse.testing import assert_close
from rnncourse.torch.attention import (
    AdditiveAttention,
    DotProductAttention,
    ScaledDotProductAttention,
    lengths_to_mask,
    make_attention,
    masked_softmax,
)

DTYPES = [np.float64, np.float32]
KINDS = ["dot", "scaled_dot", "additive"]
# N, Tq, Tk, Dq, Dk, Dv, A
SHAPES = [(1, 1, 1, 1, 1, 1, 1), (2, 3, 4, 4, 3, 5, 6), (3, 2, 5, 2, 4, 3, 3), (4, 4, 3, 3, 2, 2, 5)]
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def make(seed, N, Tq, Tk, Dq, Dk, Dv, A, dtype=np.float64, kind="scaled_dot"):
    """Random inputs and a module; lengths cover a full, an empty and a partial sequence."""
    rng = np.random.default_rng(seed)
    Dk = Dk if kind == "additive" else Dq
    r = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    lengths = rng.integers(0, Tk + 1, size=N)
    lengths[0] = Tk
    if N > 1:
        lengths[1] = 0
    if N > 2:
        lengths[2] = max(1, Tk - 2)
    a = dict(q=r(N, Tq, Dq), k=r(N, Tk, Dk), v=r(N, Tk, Dv), lengths=lengths)
    module = make_attention(kind, Dq, Dk, A, dtype=TORCH_DTYPE[dtype])
    if kind == "additive":
        a["params"] = dict(Wq=r(Dq, A), Wk=r(Dk, A), v_a=r(A))
        with torch.no_grad():
            module.query_proj.weight.copy_(torch.from_numpy(a["params"]["Wq"].T))
            module.key_proj.weight.copy_(torch.from_numpy(a["params"]["Wk"].T))
            module.v.copy_(torch.from_numpy(a["params"]["v_a"]))
    else:
        a["params"] = None
    return a, module


def leaf(x):
    return torch.tensor(x, requires_grad=True)


def run_torch(module, a, dcontext, dweights, **mask):
    """Our module's context, weights and the autograd gradients of sum(c dc) + sum(w dw)."""
    q, k, v = leaf(a["q"]), leaf(a["k"]), leaf(a["v"])
    module.zero_grad()
    context, weights = module(q, k, v, **mask)
    ((context * torch.from_numpy(dcontext)).sum() + (weights * torch.from_numpy(dweights)).sum()).backward()
    grads = dict(q=q.grad, k=k.grad, v=v.grad)
    if isinstance(module, AdditiveAttention):
        grads.update(Wq=module.query_proj.weight.grad.T, Wk=module.key_proj.weight.grad.T, v_a=module.v.grad)
    return context, weights, grads


def check_against_numpy(module, a, kind, dtype, seed=0):
    """Ours against rnncourse.numpy: context, weights and every gradient."""
    context, weights, cache = attention_forward(a["q"], a["k"], a["v"], a["lengths"], kind, a["params"])
    rng = np.random.default_rng(seed)
    dcontext = rng.standard_normal(context.shape).astype(dtype)
    dweights = rng.standard_normal(weights.shape).astype(dtype)
    grads = attention_backward(dcontext, cache, dweights)
    ct, wt, gt = run_torch(module, a, dcontext, dweights, lengths=torch.from_numpy(a["lengths"]))
    assert ct.dtype == TORCH_DTYPE[dtype] and wt.dtype == TORCH_DTYPE[dtype]
    assert_close(ct, context, f"{kind} context")
    assert_close(wt, weights, f"{kind} weights")
    assert set(gt) == set(grads)
    for name in grads:
        assert_close(gt[name], grads[name], f"d{name} of {kind} attention")


# ---------------------------------------------------------------- parity


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_numpy_reference(shape, kind, dtype):
    """Same weights and context as rnncourse.numpy; autograd gives its hand-written gradients.

    The lengths include an empty sequence: the NumPy reference defines its
    weights and context as zero, and so must we (all rows are compared).
    """
    a, module = make(sum(shape), *shape, dtype=dtype, kind=kind)
    check_against_numpy(module, a, kind, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_scaled_dot_matches_torch_sdpa(shape, dtype):
    """Both dot scores against F.scaled_dot_product_attention (its boolean mask: True = attend)."""
    a, _ = make(sum(shape) + 1, *shape, dtype=dtype)
    N, Tq, Tk = shape[:3]
    n = np.flatnonzero(a["lengths"] > 0)  # torch's SDPA is NaN on a row without keys
    valid = lengths_to_mask(torch.from_numpy(a["lengths"][n]), Tk)[:, None, :].expand(-1, Tq, -1)
    dcontext = torch.from_numpy(np.random.default_rng(2).standard_normal((len(n), Tq, shape[5])).astype(dtype))
    for module, scale in ((ScaledDotProductAttention(), None), (DotProductAttention(), 1.0)):
        ours = [leaf(a[x][n]) for x in "qkv"]
        theirs = [leaf(a[x][n]) for x in "qkv"]
        context, _ = module(*ours, mask=valid)
        expected = F.scaled_dot_product_attention(*theirs, attn_mask=valid, scale=scale)
        (context * dcontext).sum().backward()
        (expected * dcontext).sum().backward()
        assert_close(context, expected, f"{type(module).__name__} context")
        for name, x, y in zip("qkv", ours, theirs):
            assert_close(x.grad, y.grad, f"d{name} of {type(module).__name__}")


@pytest.mark.parametrize("kind", KINDS)
def test_mask_and_lengths_agree_and_one_query_is_a_row(kind):
    """lengths, an (N, Tk) mask and an (N, Tq, Tk) mask are the same; a 2-D query is Tq = 1."""
    a, module = make(5, 3, 4, 6, 3, 2, 4, 5, kind=kind)
    q, k, v = (torch.from_numpy(a[x]) for x in "qkv")
    lengths = torch.from_numpy(a["lengths"])
    c, w = module(q, k, v, lengths=lengths)
    mask = lengths_to_mask(lengths, 6)
    for m in (mask, mask[:, None, :].expand(-1, 4, -1)):
        c2, w2 = module(q, k, v, mask=m)
        assert_close(c2, c, "context with a boolean mask")
        assert_close(w2, w, "weights with a boolean mask")
    c1, w1 = module(q[:, 2], k, v, lengths=lengths)
    assert c1.shape == (3, 4) and w1.shape == (3, 6)
    assert_close(c1, c[:, 2], "context of a single (N, Dq) query")
    assert_close(w1, w[:, 2], "weights of a single (N, Dq) query")
    # precomputing the keys changes nothing
    c3, _ = module(q, k, v, lengths=lengths, precomputed_keys=module.precompute_keys(k))
    assert_close(c3, c, "context with precomputed keys")


def test_per_query_mask():
    """An (N, Tq, Tk) mask may differ between queries (e.g. causal): row by row the same."""
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 3, dtype=torch.float64), torch.randn(2, 4, 3, dtype=torch.float64), torch.randn(
        2, 4, 5, dtype=torch.float64
    )
    causal = torch.ones(4, 4, dtype=torch.bool).tril().expand(2, -1, -1)
    c, w = ScaledDotProductAttention()(q, k, v, mask=causal)
    for i in range(4):
        ci, wi = ScaledDotProductAttention()(q[:, i], k[:, : i + 1], v[:, : i + 1])
        assert_close(c[:, i], ci, f"context of query {i}")
        assert_close(w[:, i, : i + 1], wi, f"weights of query {i}")
    assert (w[~causal] == 0.0).all()
    assert_close(w, F.softmax((q @ k.transpose(1, 2) / 3**0.5).masked_fill(~causal, -torch.inf), -1), "weights")


# ---------------------------------------------------------------- the mask


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", KINDS)
def test_masked_keys_get_exactly_zero_weight(kind, dtype):
    """Padding keys that would win without the mask still get 0.0, not merely a tiny weight."""
    torch.manual_seed(1)
    N, Tq, Tk, D = 3, 2, 6, 4
    module = make_attention(kind, D, D, 5, dtype=dtype)
    q = torch.randn(N, Tq, D, dtype=dtype)
    k = torch.randn(N, Tk, D, dtype=dtype)
    lengths = torch.tensor([6, 3, 1])
    k[1, 3:] = 30 * q[1, 0]  # the padding matches the query far better than any real key
    v = torch.randn(N, Tk, 3, dtype=dtype)
    _, w = module(q, k, v, lengths=lengths)
    for n, L in enumerate(lengths.tolist()):
        assert (w[n, :, L:] == 0.0).all(), f"sequence {n}: padding keys got weight {w[n, :, L:]}"
        assert_close(w[n].sum(-1), torch.ones(Tq, dtype=dtype), f"sequence {n}: weights sum")
    assert (w[2, :, 0] == 1.0).all(), "a single real key must take all the weight"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", KINDS)
def test_fully_masked_rows_give_zero_weights_context_and_gradients(kind, dtype):
    """A query with no real key: zero weights, zero context, zero (not NaN) gradients."""
    check_fully_masked_rows(make_attention(kind, 3, 3, 4, dtype=dtype), dtype)


def check_fully_masked_rows(module, dtype):
    torch.manual_seed(2)
    q = torch.randn(3, 2, 3, dtype=dtype, requires_grad=True)
    k = torch.randn(3, 5, 3, dtype=dtype, requires_grad=True)
    v = torch.randn(3, 5, 4, dtype=dtype, requires_grad=True)
    mask = torch.ones(3, 2, 5, dtype=torch.bool)
    mask[0] = False  # sequence 0: no key at all
    mask[2, 1] = False  # sequence 2: its second query sees no key
    # Anomaly detection stops at a NaN anywhere in the backward pass, even one
    # that a later masked_fill would hide from the final gradients.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Anomaly Detection has been enabled"
        with torch.autograd.detect_anomaly():
            c, w = module(q, k, v, mask=mask)
            (c.square().sum() + w.square().sum()).backward()
    for name, x in (("context", c), ("weights", w)):
        assert torch.isfinite(x).all(), f"{name} has NaN or inf"
        assert (x[0] == 0).all() and (x[2, 1] == 0).all(), f"{name} of a query without keys is not 0"
    assert_close(w[1].sum(-1), torch.ones(2, dtype=dtype), "weights of a full row")
    grads = [("q", q.grad), ("k", k.grad), ("v", v.grad)] + [(n, p.grad) for n, p in module.named_parameters()]
    for name, g in grads:
        assert torch.isfinite(g).all(), f"d{name} has NaN or inf"
    assert (q.grad[0] == 0).all() and (k.grad[0] == 0).all() and (v.grad[0] == 0).all()
    # the same with lengths = 0
    c0, w0 = module(q.detach(), k.detach(), v.detach(), lengths=torch.tensor([0, 5, 5]))
    assert (c0[0] == 0).all() and (w0[0] == 0).all()


def test_masked_softmax_and_lengths_to_mask():
    scores = torch.tensor([[[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0]]])
    mask = lengths_to_mask(torch.tensor([2, 0]), 3)
    assert mask.tolist() == [[True, True, False], [False, False, False]]
    w = masked_softmax(scores, mask[:, None, :])
    assert_close(w[0, 0], torch.tensor([1.0, np.e, 0.0]) / (1 + np.e), "two real keys")
    assert (w[1] == 0).all()
    assert_close(masked_softmax(scores), torch.softmax(scores, -1), "no mask")


# ---------------------------------------------------------------- the checks can fail


class ForgotTheScale(ScaledDotProductAttention):
    def score(self, query, keys):
        return query @ keys.transpose(1, 2)


class ForgotTheMask(DotProductAttention):
    def forward(self, query, keys, values, mask=None, lengths=None, precomputed_keys=None):
        return super().forward(query, keys, values)


class TextbookMask(DotProductAttention):
    def forward(self, query, keys, values, mask=None, lengths=None, precomputed_keys=None):
        scores = self.score(query, keys).masked_fill(~mask, -torch.inf)
        weights = torch.softmax(scores, dim=-1)
        return weights @ values, weights


class NaNInside(DotProductAttention):
    def forward(self, query, keys, values, mask=None, lengths=None, precomputed_keys=None):
        scores = self.score(query, keys).masked_fill(~mask, -torch.inf)
        weights = torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)
        return weights @ values, weights


def test_the_checks_catch_a_missing_scale_or_mask():
    a, _ = make(7, 3, 2, 5, 4, 4, 3, 2, kind="scaled_dot")
    with pytest.raises(AssertionError, match="scaled_dot context"):
        check_against_numpy(ForgotTheScale(), a, "scaled_dot", np.float64)
    a, _ = make(8, 3, 2, 5, 4, 4, 3, 2, kind="dot")
    with pytest.raises(AssertionError, match="dot context"):
        check_against_numpy(ForgotTheMask(), a, "dot", np.float64)
    # the textbook mask (-inf, then softmax) gives NaN on a row without keys,
    # and zeroing those rows after the softmax still leaves a NaN inside the backward pass
    for module in (TextbookMask(), NaNInside()):
        with pytest.raises(RuntimeError, match="returned nan values"):
            check_fully_masked_rows(module, torch.float64)


# ---------------------------------------------------------------- errors


def test_bad_input_raises_clear_errors():
    dot, add = DotProductAttention(), AdditiveAttention(3, 4, 5)
    q, k, v = torch.randn(2, 1, 3), torch.randn(2, 4, 3), torch.randn(2, 4, 6)
    with pytest.raises(ValueError, match=r"keys has shape \(2, 4, 4\); expected \(N, Tk, Dq\)"):
        dot(q, torch.randn(2, 4, 4), v)
    with pytest.raises(ValueError, match=r"values has shape \(2, 3, 6\)"):
        dot(q, k, torch.randn(2, 3, 6))
    with pytest.raises(ValueError, match="both mask and lengths"):
        dot(q, k, v, mask=torch.ones(2, 4, dtype=torch.bool), lengths=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="expected torch.bool"):
        dot(q, k, v, mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"mask has shape \(2, 5\)"):
        dot(q, k, v, mask=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"lengths has shape \(3,\)"):
        dot(q, k, v, lengths=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"query has shape \(2, 1, 3, 1\)"):
        dot(q[..., None], k, v)
    with pytest.raises(ValueError, match=r"keys has shape \(2, 4, 3\); expected \(N, Tk, Dk\) with Dk = 4"):
        add(q, k, v)
    with pytest.raises(ValueError, match="expected one of 'dot', 'scaled_dot', 'additive'"):
        make_attention("multiplicative")
    with pytest.raises(ValueError, match="attention_size is 0"):
        AdditiveAttention(3, 3, 0)


# ---------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_matches_cpu(kind):
    a, module = make(9, 3, 2, 5, 4, 3, 2, 6, dtype=np.float64, kind=kind)
    q, k, v = (torch.from_numpy(a[x]) for x in "qkv")
    lengths = torch.from_numpy(a["lengths"])  # stays on the CPU: the module moves it
    c, w = module(q, k, v, lengths=lengths)
    cg, wg = module.cuda()(q.cuda(), k.cuda(), v.cuda(), lengths=lengths)
    assert cg.is_cuda and wg.is_cuda
    assert_close(cg, c, "context on CUDA")
    assert_close(wg, w, "weights on CUDA")
