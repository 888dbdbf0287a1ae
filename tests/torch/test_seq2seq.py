"""Tests for rnncourse.torch.seq2seq and the date translation data of rnncourse.torch.data."""

import datetime
import itertools

import pytest
import torch
import torch.nn.functional as F

import rnncourse.torch.seq2seq as seq2seq
from rnncourse.testing import assert_close
from rnncourse.torch.data import DATE_FORMATS, date_translation_pairs, format_date
from rnncourse.torch.seq2seq import BOS, EOS, PAD, UNK, Seq2Seq, Vocab

ATTENTIONS = ["additive", "dot", "scaled_dot", None]
CELLS = ["gru", "lstm"]
SRC_V, TGT_V = 9, 8  # 5 and 4 real tokens after the 4 specials


def tiny_model(attention, cell="gru", seed=0, tgt_vocab=TGT_V, dtype=torch.float64):
    """A small random model; every parameter (biases too) uniform in [-1, 1], so it is decisive."""
    torch.manual_seed(seed)
    model = Seq2Seq(SRC_V, tgt_vocab, embedding_size=5, hidden_size=6, attention=attention, attention_size=7, cell=cell)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-1.0, 1.0)
    return model.to(dtype).eval()


def source_batch(seed=0, lengths=(5, 2, 4)):
    """Random source tokens (ids >= 4), right-padded with PAD."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    src = torch.randint(4, SRC_V, (len(lengths), int(lengths.max())), generator=g)
    src[torch.arange(src.shape[1]) >= lengths[:, None]] = PAD
    return src, lengths


def target_batch(seed=0, lengths=(3, 6, 1), vocab=TGT_V):
    g = torch.Generator().manual_seed(seed + 100)
    tgt = torch.randint(4, vocab, (len(lengths), max(lengths) + 1), generator=g)
    for n, L in enumerate(lengths):
        tgt[n, L] = EOS
        tgt[n, L + 1 :] = PAD
    tgt_in = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], 1).masked_fill(tgt == PAD, PAD)
    return tgt_in, tgt


def after_first_eos(tokens):
    """(N, T) bool: True at the positions after the first EOS of each row."""
    eos = (tokens == EOS).long()
    return eos.cumsum(1) - eos > 0


def strip_after_eos(tokens):
    """Tokens with everything after the first EOS set to PAD (the decoders' convention)."""
    return tokens.masked_fill(after_first_eos(tokens), PAD)


# ---------------------------------------------------------------- Vocab and data


def test_vocab_round_trip_and_conventions():
    v = Vocab.from_texts(["march 5", "2021"])
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    assert v.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and len(v) == 4 + len(set("march 52021"))
    ids = v.encode("march 5", bos=True, eos=True)
    assert ids[0] == BOS and ids[-1] == EOS and min(ids[1:-1]) >= 4
    assert "".join(v.decode(ids + [PAD, PAD])) == "march 5"
    assert "".join(v.decode(v.encode("ma") + [EOS] + v.encode("rch"))) == "ma"  # stops at EOS
    assert v.encode("mz") == [v.stoi["m"], UNK]
    ids, lengths = v.encode_batch(["ab", "", "march"], eos=True)
    assert ids.shape == (3, 6) and lengths.tolist() == [3, 1, 6]
    assert ids[1].tolist() == [EOS] + [PAD] * 5
    with pytest.raises(ValueError, match="special tokens"):
        Vocab(["a", "<eos>"])


def test_date_pairs_are_seeded_disjoint_and_correct():
    train, test = date_translation_pairs(400, 100, seed=3)
    assert len(train) == 400 and len(test) == 100
    assert (train, test) == date_translation_pairs(400, 100, seed=3)
    assert train != date_translation_pairs(400, 100, seed=4)[0]
    targets = [t for _, t in train + test]
    assert len(set(targets)) == 500, "a date occurs twice"
    assert not {t for _, t in train} & {t for _, t in test}, "a date is in both train and test"
    seen = set()
    for source, target in train + test:
        date = datetime.date.fromisoformat(target)
        assert 1950 <= date.year <= 2049
        fmts = [f for f in DATE_FORMATS if format_date(date, f) == source]
        assert fmts, f"{source!r} is not {target} in any format"
        seen.update(fmts)
    assert seen == set(DATE_FORMATS)
    assert format_date(datetime.date(2021, 3, 5), "chinese") == "2021年3月5日"
    assert format_date(datetime.date(2021, 3, 22), "ordinal") == "march 22nd, 2021"
    assert format_date(datetime.date(2021, 3, 13), "ordinal") == "march 13th, 2021"
    with pytest.raises(ValueError, match="expected at most 366"):
        date_translation_pairs(300, 100, first_year=2024, last_year=2024)
    with pytest.raises(ValueError, match="formats holds 'roman'"):
        date_translation_pairs(1, 1, formats=["roman"])


# ---------------------------------------------------------------- the model


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_shapes_and_attention_weights(attention, cell):
    model = tiny_model(attention, cell).float()
    src, src_lengths = source_batch()
    tgt_in, tgt_out = target_batch()
    logits, weights = model(src, src_lengths, tgt_in)
    assert logits.shape == (3, 7, TGT_V) and logits.dtype == torch.float32
    tokens, gw = model.greedy_decode(src, src_lengths, max_len=6)
    best, scores, bw = model.beam_search(src, src_lengths, beam_size=3, max_len=6)
    assert tokens.shape == best.shape == (3, 6) and scores.shape == (3,)
    for t in (tokens, best):
        assert ((t >= UNK) | (t == EOS) | (t == PAD)).all(), "PAD or BOS generated"
        assert ((t == PAD) == after_first_eos(t)).all(), "PAD must follow EOS, and only EOS"
    if attention is None:
        assert weights is None and gw is None and bw is None
        return
    assert weights.shape == (3, 7, 5) and gw.shape == bw.shape == (3, 6, 5)
    pad = src == PAD
    for name, w in (("teacher forcing", weights), ("greedy", gw), ("beam", bw)):
        assert (w.masked_select(pad[:, None, :].expand_as(w)) == 0.0).all(), f"{name}: source padding got weight"
    assert_close(weights.sum(-1), torch.ones(3, 7), "weights sum over the source")


def logits_alone_and_in_a_batch(model):
    src, src_lengths = source_batch(seed=1)
    tgt_in, _ = target_batch(seed=1)
    batch, _ = model(src, src_lengths, tgt_in)
    for n, L in enumerate(src_lengths.tolist()):
        alone, _ = model(src[n : n + 1, :L], src_lengths[n : n + 1], tgt_in[n : n + 1])
        assert_close(batch[n], alone[0], f"logits of sentence {n} (length {L}) in a padded batch")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_source_padding_changes_nothing(attention, cell):
    """A sentence translates the same alone and in a padded batch (both RNN directions, attention)."""
    logits_alone_and_in_a_batch(tiny_model(attention, cell))


def test_padding_check_catches_a_naive_backward_direction_or_a_missing_mask(monkeypatch):
    model = tiny_model("additive")
    def unpacked(self, src, src_lengths):
        """The bidirectional RNN on the padded batch: its backward pass starts on the padding."""
        outputs, h_n = self.rnn(self.embedding(src))
        return outputs, torch.cat([h_n[0], h_n[1]], dim=-1)

    with monkeypatch.context() as m:
        m.setattr(seq2seq.Encoder, "forward", unpacked)
        with pytest.raises(AssertionError, match="in a padded batch"):
            logits_alone_and_in_a_batch(model)
    with monkeypatch.context() as m:
        m.setattr(seq2seq, "lengths_to_mask", lambda lengths, T: torch.ones(len(lengths), T, dtype=torch.bool))
        with pytest.raises(AssertionError, match="in a padded batch"):
            logits_alone_and_in_a_batch(model)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_teacher_forcing_agrees_with_greedy_decoding(attention, cell):
    """Feeding the greedy output back with teacher forcing gives the same choices and weights."""
    model = tiny_model(attention, cell, seed=2)
    src, src_lengths = source_batch(seed=2)
    tokens, gw = model.greedy_decode(src, src_lengths, max_len=7)
    tgt_in = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], 1)
    logits, weights = model(src, src_lengths, tgt_in)
    logits[..., [PAD, BOS]] = -torch.inf
    assert (strip_after_eos(logits.argmax(-1)) == tokens).all()
    steps = torch.log_softmax(model(src, src_lengths, tgt_in)[0], -1).gather(2, tokens[..., None])[..., 0]
    assert_close(model.sequence_log_prob(src, src_lengths, tokens), (steps * (tokens != PAD)).sum(1), "log prob")
    if attention is not None:
        real = (tokens != PAD)[..., None]
        assert_close(gw, weights * real, "greedy attention weights")


@pytest.mark.parametrize("attention", ["additive", None])
def test_gradients_reach_every_parameter(attention):
    model = tiny_model(attention, "lstm", dtype=torch.float32).train()
    src, src_lengths = source_batch()
    tgt_in, tgt_out = target_batch()
    logits, _ = model(src, src_lengths, tgt_in)
    F.cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=PAD).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: no gradient"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient"


# ---------------------------------------------------------------- beam search


def exhaustive_search(model, src, src_lengths, max_len, length_penalty):
    """The best sequence of every source by scoring every possible sequence.

    The candidates are what beam search considers: tokens other than PAD,
    BOS and EOS (UNK included: a model may generate it) followed by EOS
    within max_len tokens, or max_len of them without EOS.
    """
    real = range(UNK, model.tgt_vocab_size)
    cands = []
    for L in range(max_len + 1):
        for body in itertools.product(real, repeat=L):
            if L < max_len:
                cands.append(list(body) + [EOS] + [PAD] * (max_len - L - 1))
            else:
                cands.append(list(body))
    cands = torch.tensor(cands)
    C = len(cands)
    lengths = (cands != PAD).sum(1).to(model.out.weight.dtype)
    best_tokens, best_scores = [], []
    for n in range(src.shape[0]):
        logp = model.sequence_log_prob(src[n : n + 1].expand(C, -1), src_lengths[n : n + 1].expand(C), cands)
        scores = logp / lengths**length_penalty
        best_tokens.append(cands[scores.argmax()])
        best_scores.append(scores.max())
    return torch.stack(best_tokens), torch.stack(best_scores), C


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
@pytest.mark.parametrize("attention,cell", [("additive", "gru"), ("dot", "lstm"), ("scaled_dot", "lstm"), (None, "gru")])
def test_full_beam_finds_the_exact_best_sequence(attention, cell, length_penalty):
    """4 choices per step (EOS, UNK and 2 real tokens), 4 steps: a beam of 4**4 prunes nothing."""
    model = tiny_model(attention, cell, seed=1, tgt_vocab=6)
    with torch.no_grad():
        # Sharper output distributions, and EOS less likely, so that the best
        # sequences differ between sources and greedy decoding misses some.
        model.out.weight.mul_(3.0)
        model.out.bias[EOS] -= 1.5
    src, src_lengths = source_batch(seed=1, lengths=(5, 2, 4, 3, 1, 5))
    best, best_score, n_cands = exhaustive_search(model, src, src_lengths, 4, length_penalty)
    assert n_cands == 1 + 3 + 9 + 27 + 81
    tokens, scores, _ = model.beam_search(src, src_lengths, beam_size=4**4, max_len=4, length_penalty=length_penalty)
    assert (tokens == best).all(), f"beam search found {tokens.tolist()}; the best is {best.tolist()}"
    assert_close(scores, best_score, "score of the best sequence")
    # The check can fail: greedy decoding misses the best sequence of some source.
    greedy, _ = model.greedy_decode(src, src_lengths, max_len=4)
    assert (greedy != best).any(dim=1).any(), "greedy already finds every best sequence: a weak test case"
    if length_penalty == 0:
        # and here (unlike the models of test_beam_of_one_is_greedy) a beam of 1
        # that finished every EOS candidate, not only the best one, would not be greedy
        beam_1, _, _ = model.beam_search(src, src_lengths, beam_size=1, max_len=4)
        assert (beam_1 == greedy).all(), f"a beam of 1 found {beam_1.tolist()}; greedy {greedy.tolist()}"


class ScriptedModel(Seq2Seq):
    """Next-token logits read from a table ``(step, previous token) -> (V,)``: tests the search alone."""

    def __init__(self, table):
        super().__init__(SRC_V, table.shape[-1], embedding_size=2, hidden_size=2, attention=None)
        self.table = table

    def _start(self, src, src_lengths):
        return torch.zeros(src.shape[0], dtype=torch.long), {}  # the state is the step number

    def _step(self, y_prev, step, memory):
        return self.table[step, y_prev], step + 1, None


def test_beam_search_escapes_the_greedy_trap():
    """Greedy takes 'a' (0.6) over EOS (0.4) and then finds nothing better than 0.32 per step."""
    a, b, c = 4, 5, 6
    first, later = torch.full((7,), 1e-12), torch.full((7,), 1e-12)
    first[[a, EOS]] = torch.tensor([0.6, 0.4])
    later[[a, b, c, EOS]] = torch.tensor([0.32, 0.26, 0.2, 0.22])
    table = torch.stack([first] + [later] * 3)[:, None, :].expand(4, 7, 7).log()
    model = ScriptedModel(table)
    src, src_lengths = source_batch()
    greedy, _ = model.greedy_decode(src, src_lengths, max_len=4)
    assert greedy.tolist() == [[a, a, a, a]] * 3
    beam_1, score_1, _ = model.beam_search(src, src_lengths, beam_size=1, max_len=4)
    assert (beam_1 == greedy).all(), "a beam of 1 must keep only EOS candidates that are the best candidate"
    assert_close(score_1, torch.tensor([0.6 * 0.32**3] * 3).log(), "greedy score")
    best, score, _ = model.beam_search(src, src_lengths, beam_size=2, max_len=4)
    assert best.tolist() == [[EOS, PAD, PAD, PAD]] * 3
    assert_close(score, torch.tensor([0.4] * 3).log(), "best score")
    exhaustive, _, _ = exhaustive_search(model, src, src_lengths, 4, 0.0)
    assert (exhaustive == best).all()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_beam_of_one_is_greedy(attention, cell):
    model = tiny_model(attention, cell, seed=4)
    src, src_lengths = source_batch(seed=4)
    tokens, gw = model.greedy_decode(src, src_lengths, max_len=6)
    best, scores, bw = model.beam_search(src, src_lengths, beam_size=1, max_len=6)
    assert (best == tokens).all()
    assert_close(scores, model.sequence_log_prob(src, src_lengths, tokens), "beam-1 score")
    if attention is not None:
        assert_close(bw, gw, "beam-1 attention weights")


@pytest.mark.parametrize("attention", ["additive", "dot", None])
def test_beam_scores_and_weights_are_those_of_the_returned_sequence(attention):
    model = tiny_model(attention, "gru", seed=5)
    src, src_lengths = source_batch(seed=5)
    alpha = 0.6
    best, scores, bw = model.beam_search(src, src_lengths, beam_size=3, max_len=7, length_penalty=alpha)
    L = (best != PAD).sum(1).double()
    assert_close(scores, model.sequence_log_prob(src, src_lengths, best) / L**alpha, "beam scores")
    if attention is not None:
        tgt_in = torch.cat([torch.full_like(best[:, :1], BOS), best[:, :-1]], 1)
        _, weights = model(src, src_lengths, tgt_in)
        assert_close(bw, weights * (best != PAD)[..., None], "attention weights of the best hypothesis")


# ---------------------------------------------------------------- errors


def test_bad_input_raises_clear_errors():
    model = tiny_model("additive")
    src, src_lengths = source_batch()
    tgt_in, _ = target_batch()
    with pytest.raises(ValueError, match=r"src_lengths holds \[5, 0, 4\]; expected integers in \[1, S\] = \[1, 5\]"):
        model(src, torch.tensor([5, 0, 4]), tgt_in)
    with pytest.raises(ValueError, match=r"src_lengths has shape \(2,\)"):
        model(src, torch.tensor([5, 2]), tgt_in)
    with pytest.raises(ValueError, match=r"src has dtype torch.float32 and shape \(3, 5\)"):
        model(src.float(), src_lengths, tgt_in)
    with pytest.raises(ValueError, match=r"tgt_in has shape \(2, 7\); expected \(N, T\) with N = 3 and T >= 1"):
        model(src, src_lengths, tgt_in[:2])
    with pytest.raises(ValueError, match="max_len is 0"):
        model.greedy_decode(src, src_lengths, max_len=0)
    with pytest.raises(ValueError, match="beam_size is 0"):
        model.beam_search(src, src_lengths, beam_size=0, max_len=3)
    with pytest.raises(ValueError, match="length_penalty is -1"):
        model.beam_search(src, src_lengths, beam_size=2, max_len=3, length_penalty=-1)
    with pytest.raises(ValueError, match="attention is 'luong'"):
        Seq2Seq(SRC_V, TGT_V, attention="luong")
    with pytest.raises(ValueError, match="cell is 'rnn'"):
        Seq2Seq(SRC_V, TGT_V, cell="rnn")
    with pytest.raises(ValueError, match="tgt_vocab has size 3"):
        Seq2Seq(SRC_V, 3)


# ---------------------------------------------------------------- learning


def exact_match(model, pairs, src_vocab, tgt_vocab, **beam):
    src, src_lengths = src_vocab.encode_batch([s for s, _ in pairs])
    max_len = len(pairs[0][1]) + 1
    if beam:
        tokens, _, _ = model.beam_search(src, src_lengths, max_len=max_len, **beam)
    else:
        tokens, _ = model.greedy_decode(src, src_lengths, max_len=max_len)
    return sum("".join(tgt_vocab.decode(t)) == target for t, (_, target) in zip(tokens, pairs)) / len(pairs)


@pytest.mark.slow
def test_learns_to_translate_dates():
    """Plain training loop on the date task: >= 90% of held-out dates translated exactly."""
    torch.manual_seed(0)
    train, test = date_translation_pairs(2000, 200, seed=0)
    src_vocab = Vocab.from_texts(s for s, _ in train)
    tgt_vocab = Vocab.from_texts("0123456789-")
    src, src_lengths = src_vocab.encode_batch([s for s, _ in train])
    tgt_in, _ = tgt_vocab.encode_batch([t for _, t in train], bos=True)
    tgt_out, _ = tgt_vocab.encode_batch([t for _, t in train], eos=True)
    model = Seq2Seq(src_vocab, tgt_vocab, embedding_size=16, hidden_size=48, attention="additive")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices this small only lose time to threading on a shared CPU
    try:
        before = exact_match(model, test, src_vocab, tgt_vocab)
        for epoch in range(3):
            for idx in torch.randperm(len(train)).split(50):
                logits, _ = model(src[idx], src_lengths[idx], tgt_in[idx])
                loss = F.cross_entropy(logits.transpose(1, 2), tgt_out[idx], ignore_index=PAD)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
        model.eval()
        greedy = exact_match(model, test, src_vocab, tgt_vocab)
        beam = exact_match(model, test, src_vocab, tgt_vocab, beam_size=3)
    finally:
        torch.set_num_threads(threads)
    assert before == 0.0
    assert greedy >= 0.9, f"greedy exact match on held-out dates is {greedy:.0%}"
    assert beam >= 0.9, f"beam exact match on held-out dates is {beam:.0%}"


# ---------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("attention", ["additive", None])
def test_cuda_matches_cpu(attention):
    model = tiny_model(attention, "lstm", seed=6)
    src, src_lengths = source_batch(seed=6)
    tgt_in, _ = target_batch(seed=6)
    logits, _ = model(src, src_lengths, tgt_in)
    tokens, _ = model.greedy_decode(src, src_lengths, max_len=6)
    best, scores, _ = model.beam_search(src, src_lengths, beam_size=3, max_len=6)
    model.cuda()
    src, tgt_in = src.cuda(), tgt_in.cuda()  # src_lengths stays on the CPU: the model moves it
    logits_g, _ = model(src, src_lengths, tgt_in)
    tokens_g, _ = model.greedy_decode(src, src_lengths, max_len=6)
    best_g, scores_g, _ = model.beam_search(src, src_lengths, beam_size=3, max_len=6)
    assert logits_g.is_cuda and tokens_g.is_cuda and best_g.is_cuda
    assert_close(logits_g, logits, "logits on CUDA")
    assert (tokens_g.cpu() == tokens).all() and (best_g.cpu() == best).all()
    assert_close(scores_g, scores, "beam scores on CUDA")
