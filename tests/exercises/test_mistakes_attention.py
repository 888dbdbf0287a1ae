"""Assignment 06 (attention): realistic wrong answers lose their points and are named.

Every function below is a learner's answer with one mistake, written the way
a learner would write it (not taken from rnncourse.checks). For each, the
visible cases must fail (so the notebook's test cell, and its points, fail),
the message must point at the mistake, and the grader's out-of-process mode
must give the same verdict and message as the learner's process.

Also here: the trusted side's models of the PyTorch decoder step agree with
:class:`rnncourse.torch.Seq2Seq` (the check's reference is the course's
decoder step, and the hand-written step the mistakes are built from is right
without a mistake).
"""

import math

import numpy as np
import pytest
import torch

from exercisetools import assert_mistake_fails_and_is_named, calling, in_process
from rnncourse.checks import make_cases
from rnncourse.checks import attention as checks

ASSIGNMENT = "06_attention"


# --- right answers, written as a learner would: the base the mistakes are made from ----


def _real(lengths, N, Tk):
    """(N, 1, Tk) bool, True at the real keys."""
    if lengths is None:
        lengths = np.full(N, Tk)
    return (np.arange(Tk) < lengths[:, None])[:, None, :]


def softmax_ok(scores, lengths=None):
    real = _real(lengths, scores.shape[0], scores.shape[-1])
    masked = np.where(real, scores, -np.inf)
    m = masked.max(axis=-1, keepdims=True)
    e = np.exp(masked - np.where(np.isfinite(m), m, 0))
    total = e.sum(axis=-1, keepdims=True)
    w = e / np.where(total > 0, total, 1)
    return w, (w,)


def softmax_backward_ok(dweights, cache):
    (w,) = cache
    return w * (dweights - (w * dweights).sum(axis=-1, keepdims=True))


def attention_ok(q, k, v, lengths=None, *, scale=None, softmax=softmax_ok):
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    w, _ = softmax(scale * q @ k.transpose(0, 2, 1), lengths)
    return w @ v, w, (q, k, v, w)


def attention_backward_ok(dcontext, cache, *, jacobian=softmax_backward_ok, use_scale=True):
    q, k, v, w = cache
    scale = 1 / math.sqrt(q.shape[-1]) if use_scale else 1
    dv = w.transpose(0, 2, 1) @ dcontext
    dscores = jacobian(dcontext @ v.transpose(0, 2, 1), (w,)) * scale
    return {"q": dscores @ k, "k": dscores.transpose(0, 2, 1) @ q, "v": dv}


def attention_calls_softmax(q, k, v, lengths=None):
    """Right, calling masked_softmax_forward by name as the notebook asks: the learner's softmax, whatever it is."""
    w, _ = masked_softmax_forward(q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1]), lengths)  # noqa: F821
    return w @ v, w, (q, k, v, w)


def attention_backward_calls_softmax(dcontext, cache):
    """Right, calling masked_softmax_backward by name as the notebook asks."""
    q, k, v, w = cache
    dscores = masked_softmax_backward(dcontext @ v.transpose(0, 2, 1), (w,)) / math.sqrt(q.shape[-1])  # noqa: F821
    return {"q": dscores @ k, "k": dscores.transpose(0, 2, 1) @ q, "v": w.transpose(0, 2, 1) @ dcontext}


def additive_ok(q, k, Wq, Wk, v_a):
    return np.tanh((q @ Wq)[:, :, None] + (k @ Wk)[:, None]) @ v_a, None


def decoder_ok(y_prev, s_prev, enc_out, lengths, Wq, Wk, v_a, embedding, cell, out):
    scores = torch.tanh((s_prev @ Wq).unsqueeze(1) + enc_out @ Wk) @ v_a
    pad = torch.arange(enc_out.shape[1])[None, :] >= lengths[:, None]
    weights = torch.softmax(scores.masked_fill(pad, float("-inf")), dim=1)
    context = torch.bmm(weights.unsqueeze(1), enc_out).squeeze(1)
    s = cell(torch.cat([embedding(y_prev), context], dim=1), s_prev)
    return out(torch.cat([s, context], dim=1)), s, weights


# --- 1. masked_softmax_forward ---------------------------------------------------------


def softmax_zeroes_padding_after(scores, lengths=None):
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    w = e / e.sum(axis=-1, keepdims=True)
    w = w * _real(lengths, scores.shape[0], scores.shape[-1])
    return w, (w,)


def softmax_renormalises_after(scores, lengths=None):
    e = np.exp(scores - scores.max(axis=-1, keepdims=True)) * _real(lengths, scores.shape[0], scores.shape[-1])
    w = e / e.sum(axis=-1, keepdims=True)
    return w, (w,)


def softmax_fills_zero(scores, lengths=None):
    masked = np.where(_real(lengths, scores.shape[0], scores.shape[-1]), scores, 0.0)
    e = np.exp(masked - masked.max(axis=-1, keepdims=True))
    w = e / e.sum(axis=-1, keepdims=True)
    return w, (w,)


def softmax_over_queries(scores, lengths=None):
    masked = np.where(_real(lengths, scores.shape[0], scores.shape[-1]), scores, -np.inf)
    e = np.exp(masked - masked.max(axis=1, keepdims=True))
    w = e / e.sum(axis=1, keepdims=True)
    return w, (w,)


def softmax_no_shift(scores, lengths=None):
    e = np.exp(scores) * _real(lengths, scores.shape[0], scores.shape[-1])
    w = e / e.sum(axis=-1, keepdims=True)
    return w, (w,)


def softmax_nan_on_empty(scores, lengths=None):
    masked = np.where(_real(lengths, scores.shape[0], scores.shape[-1]), scores, -np.inf)
    e = np.exp(masked - masked.max(axis=-1, keepdims=True))
    w = e / e.sum(axis=-1, keepdims=True)
    return w, (w,)


def softmax_large_negative(scores, lengths=None):
    masked = np.where(_real(lengths, scores.shape[0], scores.shape[-1]), scores, -1e9)
    e = np.exp(masked - masked.max(axis=-1, keepdims=True))
    w = e / e.sum(axis=-1, keepdims=True)
    return w, (w,)


def softmax_off_by_one(scores, lengths=None):
    N, _, Tk = scores.shape
    return softmax_ok(scores, None if lengths is None else np.minimum(lengths + 1, Tk))


# --- 2. masked_softmax_backward --------------------------------------------------------


def softmax_backward_no_subtraction(dweights, cache):
    (w,) = cache
    return w * dweights


def softmax_backward_diagonal(dweights, cache):
    (w,) = cache
    return w * (1 - w) * dweights


def softmax_backward_sum_over_queries(dweights, cache):
    (w,) = cache
    return w * (dweights - (w * dweights).sum(axis=1, keepdims=True))


def softmax_backward_reads_weights_as_cache(dweights, cache):
    """Takes the cache for the weights themselves, not the tuple (weights,) the notebook states."""
    return cache * (dweights - (cache * dweights).sum(axis=-1, keepdims=True))


# --- 3. attention_forward ---------------------------------------------------------------


def attention_unscaled(q, k, v, lengths=None):
    return attention_ok(q, k, v, lengths, scale=1.0)


def attention_scaled_by_D(q, k, v, lengths=None):
    return attention_ok(q, k, v, lengths, scale=1.0 / q.shape[-1])


def attention_ignores_lengths(q, k, v, lengths=None):
    return attention_ok(q, k, v)


def attention_context_from_keys(q, k, v, lengths=None):
    context, w, cache = attention_ok(q, k, v, lengths)
    return w @ k, w, cache


def attention_softmax_over_queries(q, k, v, lengths=None):
    return attention_ok(q, k, v, lengths, softmax=softmax_over_queries)


# --- 4. attention_backward -------------------------------------------------------------


def backward_no_subtraction(dcontext, cache):
    return attention_backward_ok(dcontext, cache, jacobian=softmax_backward_no_subtraction)


def backward_diagonal(dcontext, cache):
    return attention_backward_ok(dcontext, cache, jacobian=softmax_backward_diagonal)


def backward_forgets_scale(dcontext, cache):
    return attention_backward_ok(dcontext, cache, use_scale=False)


def backward_dv_not_transposed(dcontext, cache):
    grads = attention_backward_ok(dcontext, cache)
    grads["v"] = cache[3] @ dcontext
    return grads


def backward_returns_tuple(dcontext, cache):
    grads = attention_backward_ok(dcontext, cache)
    return grads["q"], grads["k"], grads["v"]


# --- 5. additive_scores_forward --------------------------------------------------------


def additive_no_tanh(q, k, Wq, Wk, v_a):
    return ((q @ Wq)[:, :, None] + (k @ Wk)[:, None]) @ v_a, None


def additive_tanh_per_term(q, k, Wq, Wk, v_a):
    return (np.tanh(q @ Wq)[:, :, None] + np.tanh(k @ Wk)[:, None]) @ v_a, None


def additive_pairs_transposed(q, k, Wq, Wk, v_a):
    return np.tanh((q @ Wq)[:, None] + (k @ Wk)[:, :, None]) @ v_a, None


def additive_sums_hidden(q, k, Wq, Wk, v_a):
    return np.tanh((q @ Wq)[:, :, None] + (k @ Wk)[:, None]).sum(axis=-1), None


# --- 6. attention_decoder_step (PyTorch) -----------------------------------------------


def _decoder(y_prev, s_prev, enc_out, lengths, Wq, Wk, v_a, embedding, cell, out, *, mask="-inf", dim=-1,
             swap_cell_input=False, logits_from_prev=False, weights_via_numpy=False):  # fmt: skip
    scores = torch.tanh((s_prev @ Wq)[:, None, :] + enc_out @ Wk) @ v_a
    real = torch.arange(enc_out.shape[1]) < lengths[:, None]
    if mask == "-inf":
        scores = scores.masked_fill(~real, -math.inf)
    elif mask == "zero":
        scores = scores * real
    weights = torch.softmax(scores, dim=dim)
    if weights_via_numpy:
        weights = torch.from_numpy(weights.detach().numpy())
    context = (weights[:, :, None] * enc_out).sum(dim=1)
    embedded = embedding(y_prev)
    s = cell(torch.cat([context, embedded] if swap_cell_input else [embedded, context], dim=-1), s_prev)
    logits = out(torch.cat([s_prev if logits_from_prev else s, context], dim=-1))
    return logits, s, weights


def decoder_no_mask(*args):
    return _decoder(*args, mask=None)


def decoder_mask_zero(*args):
    return _decoder(*args, mask="zero")


def decoder_softmax_over_batch(*args):
    return _decoder(*args, dim=0)


def decoder_swaps_cell_input(*args):
    return _decoder(*args, swap_cell_input=True)


def decoder_logits_from_prev(*args):
    return _decoder(*args, logits_from_prev=True)


def decoder_weights_via_numpy(*args):
    return _decoder(*args, weights_via_numpy=True)


def decoder_all_numpy(y_prev, s_prev, enc_out, lengths, Wq, Wk, v_a, embedding, cell, out):
    with torch.no_grad():
        return decoder_ok(y_prev, s_prev, enc_out, lengths, Wq, Wk, v_a, embedding, cell, out)


SOFTMAX = {"masked_softmax_forward": softmax_ok}
SOFTMAX_BACKWARD = {"masked_softmax_backward": softmax_backward_ok}
ATTENTION = {**SOFTMAX, "attention_forward": attention_ok}

# (check, {function name: learner's function}, what the visible message must say)
MISTAKES = [
    ("masked_softmax_forward", {"masked_softmax_forward": softmax_zeroes_padding_after}, "zeroed after the softmax"),
    ("masked_softmax_forward", {"masked_softmax_forward": softmax_renormalises_after}, "underflowed"),
    ("masked_softmax_forward", {"masked_softmax_forward": softmax_fills_zero}, "padding scores were set to 0"),
    ("masked_softmax_forward", {"masked_softmax_forward": softmax_over_queries}, "runs over axis 1, the queries"),
    ("masked_softmax_forward", {"masked_softmax_forward": softmax_no_shift}, "exp overflowed"),
    ("masked_softmax_forward", {"masked_softmax_forward": softmax_nan_on_empty}, "lengths[n] = 0 got NaN"),
    ("masked_softmax_forward", {"masked_softmax_forward": softmax_large_negative}, "uniform weights 1/Tk"),
    ("masked_softmax_forward", {"masked_softmax_forward": softmax_off_by_one}, "Off by one"),
    ("masked_softmax_backward", {"masked_softmax_backward": softmax_backward_no_subtraction}, "second term"),
    ("masked_softmax_backward", {"masked_softmax_backward": softmax_backward_diagonal}, "only the diagonal"),
    ("masked_softmax_backward", {"masked_softmax_backward": softmax_backward_sum_over_queries}, "wrong axis"),
    ("masked_softmax_backward", {"masked_softmax_backward": softmax_backward_reads_weights_as_cache}, "dscores has shape (1, 1, 2, 4)"),
    ("attention_forward", {**SOFTMAX, "attention_forward": attention_unscaled}, "not scaled: divide q k^T by sqrt(D)"),
    ("attention_forward", {**SOFTMAX, "attention_forward": attention_scaled_by_D}, "divided by D"),
    ("attention_forward", {**SOFTMAX, "attention_forward": attention_ignores_lengths}, "pass lengths on"),
    ("attention_forward", {**SOFTMAX, "attention_forward": attention_context_from_keys}, "context has shape (2, 3, 2); expected (N, Tq, Dv) = (2, 3, 4)"),
    ("attention_forward", {**SOFTMAX, "attention_forward": attention_softmax_over_queries}, "runs over the queries"),
    ("attention_forward", {"attention_forward": calling(attention_calls_softmax, masked_softmax_forward=softmax_fills_zero),
                           "masked_softmax_forward": softmax_fills_zero},
     "attention_forward calls masked_softmax_forward, which fails its own test: fix masked_softmax_forward first"),
    ("attention_backward", {**SOFTMAX_BACKWARD, "attention_backward": backward_no_subtraction}, "Jacobian's second term"),
    ("attention_backward", {**SOFTMAX_BACKWARD, "attention_backward": backward_diagonal}, "only the diagonal"),
    ("attention_backward", {**SOFTMAX_BACKWARD, "attention_backward": backward_forgets_scale}, "dq and dk miss the scale"),
    ("attention_backward", {**SOFTMAX_BACKWARD, "attention_backward": backward_dv_not_transposed}, "attention_backward raised ValueError"),
    ("attention_backward", {**SOFTMAX_BACKWARD, "attention_backward": backward_returns_tuple}, "expected a dict with the keys 'q', 'k', 'v'"),
    ("attention_backward", {"attention_backward": calling(attention_backward_calls_softmax, masked_softmax_backward=softmax_backward_diagonal),
                            "masked_softmax_backward": softmax_backward_diagonal},
     "attention_backward calls masked_softmax_backward, which fails its own test: fix masked_softmax_backward first"),
    ("additive_scores_forward", {"additive_scores_forward": additive_no_tanh}, "tanh is missing"),
    ("additive_scores_forward", {"additive_scores_forward": additive_tanh_per_term}, "each term separately"),
    ("additive_scores_forward", {"additive_scores_forward": additive_pairs_transposed}, "scores has shape (2, 4, 3); expected (N, Tq, Tk) = (2, 3, 4)"),
    ("additive_scores_forward", {"additive_scores_forward": additive_sums_hidden}, "weighted by v_a"),
    ("attention_decoder_step", {"attention_decoder_step": decoder_no_mask}, "Padding positions (j >= lengths[n]) got attention weight"),
    ("attention_decoder_step", {"attention_decoder_step": decoder_mask_zero}, "set to 0"),
    ("attention_decoder_step", {"attention_decoder_step": decoder_softmax_over_batch}, "over the batch (dim 0)"),
    ("attention_decoder_step", {"attention_decoder_step": decoder_swaps_cell_input}, "[embedding(y_prev); context], in that order"),
    ("attention_decoder_step", {"attention_decoder_step": decoder_logits_from_prev}, "not from s_prev"),
    ("attention_decoder_step", {"attention_decoder_step": decoder_weights_via_numpy}, "cut off from autograd"),
    ("attention_decoder_step", {"attention_decoder_step": decoder_all_numpy}, "autograd cannot go back"),
]


def _id(mistake):
    name, fns, _ = mistake
    return f"{name}-{list(fns.values())[-1].__name__}"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # a learner's NaN and overflow warn; the verdict is what counts
@pytest.mark.parametrize("name, functions, says", MISTAKES, ids=[_id(m) for m in MISTAKES])
def test_a_mistake_fails_and_is_named(name, functions, says):
    assert_mistake_fails_and_is_named(name, functions, says)



RIGHT = [
    ("masked_softmax_forward", SOFTMAX),
    ("masked_softmax_backward", SOFTMAX_BACKWARD),
    ("attention_forward", ATTENTION),
    ("attention_forward", {**SOFTMAX, "attention_forward": calling(attention_calls_softmax, **SOFTMAX)}),
    ("attention_backward", {**SOFTMAX_BACKWARD, "attention_backward": attention_backward_ok}),
    ("attention_backward", {**SOFTMAX_BACKWARD, "attention_backward": calling(attention_backward_calls_softmax, **SOFTMAX_BACKWARD)}),
    ("additive_scores_forward", {"additive_scores_forward": additive_ok}),
    ("attention_decoder_step", {"attention_decoder_step": decoder_ok}),
    ("attention_decoder_step", {"attention_decoder_step": _decoder}),
]


@pytest.mark.parametrize("name, functions", RIGHT, ids=[_id((n, f, "")) for n, f in RIGHT])
def test_the_answers_the_mistakes_are_built_from_are_right_without_the_mistake(name, functions):
    assert in_process(name, functions) == (True, "")
    for seed in (None, 21, 22):
        assert in_process(name, functions, hidden=True, seed=seed) == (True, "")


# --- the PyTorch check's trusted side -----------------------------------------------------


def _inputs(case):
    """A case's inputs in float64, as the judge sees them."""
    return {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in case.items() if not k.startswith("_")}


def _decoder_cases():
    name = "attention_decoder_step"
    return [_inputs(c) for c in make_cases(name) + make_cases(name, hidden=True) + make_cases(name, 5, hidden=True)]


def test_the_decoder_reference_is_the_step_of_seq2seq():
    """The check's reference is rnncourse.torch.Seq2Seq's decoder step (additive attention, GRU), given its weights."""
    from rnncourse.torch import Seq2Seq, lengths_to_mask

    torch.manual_seed(0)
    N, S, H, E, V = 3, 5, 4, 3, 7
    model = Seq2Seq(9, V, embedding_size=E, hidden_size=H, attention="additive", attention_size=6, cell="gru").double()
    enc_out = torch.randn(N, S, 2 * H, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 1])
    s_prev = torch.randn(N, H, dtype=torch.float64)
    y_prev = torch.tensor([4, 0, 6])
    memory = dict(
        keys=enc_out,
        keys_pre=model.attention.precompute_keys(enc_out),
        values=enc_out,
        valid=lengths_to_mask(lengths, S),
    )
    with torch.no_grad():
        logits, s, weights = model._step(y_prev, s_prev, memory)
    p = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    case = {
        "y_prev": y_prev.numpy(),
        "lengths": lengths.numpy(),
        "s_prev": s_prev.numpy(),
        "enc_out": enc_out.numpy(),
        "Wq": p["attention.query_proj.weight"].T,
        "Wk": p["attention.key_proj.weight"].T,
        "v_a": p["attention.v"],
        "embedding_weight": p["embedding.weight"],
        **{f"cell_{k}": p[f"cell.{k}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
        "out_weight": p["out.weight"],
        "out_bias": p["out.bias"],
        "dlogits": np.ones((N, V)),
    }
    got = checks._decoder_reference(case)
    for name, want in (("logits", logits), ("s", s), ("weights", weights)):
        np.testing.assert_allclose(got[name], want.numpy(), rtol=1e-12, atol=1e-14)


def test_the_hand_written_decoder_step_equals_the_reference_without_a_mistake():
    """The mistakes are recognised by a hand-written step; without a mistake it must be the reference."""
    for case in _decoder_cases():
        want, got = checks._decoder_reference(case), checks._decoder_by_hand(case)
        for name in checks.DECODER_OUTPUTS:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_each_decoder_mistake_changes_every_output_it_declares():
    """The judge names a mistake only if each output it declares is wrong (and the others right, by construction)."""
    for case in _decoder_cases():
        want = checks._decoder_reference(case)
        for mistake in checks.ATTENTION_DECODER_STEP.mistakes:
            if mistake.applies is None or mistake.applies(case):
                for name, value in mistake.outputs(case).items():
                    assert not np.allclose(value, want[name], rtol=1e-9, atol=1e-12), (mistake.message, name)
