"""beam_search_trace replays Seq2Seq.beam_search step by step, and next_token_log_probs feeds it."""

import functools
import itertools
import math

import pytest
import torch

from rnncourse.testing import assert_close
from rnncourse.torch.seq2seq import BOS, EOS, PAD, Seq2Seq, beam_search_trace

SRC_V, TGT_V = 9, 8


def tiny_model(attention, cell="gru", seed=0):
    """Every parameter uniform in [-1, 1] (biases too), so the next-token distributions differ a lot."""
    torch.manual_seed(seed)
    model = Seq2Seq(SRC_V, TGT_V, embedding_size=5, hidden_size=6, attention=attention, attention_size=7, cell=cell)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-1.0, 1.0)
    return model.double().eval()


def sources(seed, n=4):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        S = int(torch.randint(1, 6, (), generator=g))
        yield torch.randint(4, SRC_V, (1, S), generator=g), torch.tensor([S])


def test_next_token_log_probs_are_the_teacher_forced_ones():
    model = tiny_model("additive")
    src, lengths = next(sources(0))
    prefix = [5, 6, 4]
    logits, _ = model(src, lengths, torch.tensor([[BOS] + prefix]))
    expected = torch.log_softmax(logits[0, -1], -1)
    got = model.next_token_log_probs(src, lengths, prefix)
    assert torch.isinf(got[[PAD, BOS]]).all() and (got[[PAD, BOS]] < 0).all(), "never generated"
    keep = [v for v in range(TGT_V) if v not in (PAD, BOS)]
    assert_close(got[keep], expected[keep], "the other tokens")
    with pytest.raises(ValueError, match=r"expected \(1, S\)"):
        model.next_token_log_probs(torch.cat([src, src]), torch.cat([lengths, lengths]), prefix)


@pytest.mark.parametrize("attention, cell", [("additive", "gru"), ("dot", "lstm"), (None, "gru")])
@pytest.mark.parametrize("beam_size", [1, 2, 3, 5])
def test_the_trace_finds_what_the_model_s_beam_search_finds(attention, cell, beam_size):
    model = tiny_model(attention, cell, seed=beam_size)
    for src, lengths in sources(beam_size):
        tokens, score, _ = model.beam_search(src, lengths, beam_size=beam_size, max_len=5)
        (best, best_score), steps = beam_search_trace(
            functools.partial(model.next_token_log_probs, src, lengths), beam_size, max_len=5)
        assert list(best) == [t for t in tokens[0].tolist() if t != PAD]
        assert best_score == pytest.approx(float(score[0]), abs=1e-9)
        assert len(steps) <= 5


def _table_model(table, vocab=5):
    def next_log_probs(prefix):
        probs = table.get(tuple(prefix), {EOS: 1.0})
        out = torch.full((vocab,), -math.inf, dtype=torch.float64)
        for token, p in probs.items():
            out[token] = math.log(p)
        return out
    return next_log_probs


TOY = {(): {3: 0.5, 4: 0.4, EOS: 0.1}, (3,): {3: 0.4, 4: 0.3, EOS: 0.3}, (4,): {EOS: 0.9, 3: 0.05, 4: 0.05}}


def test_greedy_falls_into_the_trap_and_a_beam_of_two_escapes():
    (greedy, g_score), _ = beam_search_trace(_table_model(TOY), 1, max_len=4)
    (best, b_score), steps = beam_search_trace(_table_model(TOY), 2, max_len=4)
    assert greedy[0] == 3 and b_score > g_score
    assert best == (4, EOS) and b_score == pytest.approx(math.log(0.4 * 0.9))
    first = steps[0]
    assert [c["token"] for c in first] == [3, 4, EOS]
    assert [c["status"] for c in first] == ["alive", "alive", "pruned"]  # EOS is third: not among the best B = 2
    assert [c["best"] for c in first] == [False, True, False]
    finished = [c for c in steps[1] if c["status"] == "finished"]
    assert finished[0]["token"] == EOS and finished[0]["parent"] == 1 and finished[0]["best"]


def test_a_beam_as_wide_as_every_sequence_is_exhaustive():
    """Against enumeration of every sequence of at most 3 tokens of a random table."""
    g = torch.Generator().manual_seed(0)
    tokens = [EOS, 3, 4]
    table = {}
    for length in range(3):
        for prefix in itertools.product([3, 4], repeat=length):
            p = torch.rand(3, generator=g) + 0.05
            table[prefix] = dict(zip(tokens, (p / p.sum()).tolist()))
    scores = {}
    for length in range(1, 4):
        for seq in itertools.product(tokens, repeat=length):
            if EOS in seq[:-1] or (length < 3 and seq[-1] != EOS):
                continue  # a hypothesis ends with its EOS, or is cut at max_len
            logp = sum(math.log(table.get(seq[:i], {EOS: 1.0}).get(seq[i], 0.0) or 1e-300) for i in range(length))
            scores[seq] = logp
    exact = max(scores, key=scores.get)
    (best, score), _ = beam_search_trace(_table_model(table), 8, max_len=3)
    assert best == exact and score == pytest.approx(scores[exact])
