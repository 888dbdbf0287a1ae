"""rnncourse.torch.translation: the chapter 6 recipe, and the batching helpers of rnncourse.torch.data."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnncourse.datasets import number_translation_pairs, number_words
from rnncourse.testing import assert_close
from rnncourse.torch.data import pad_batch, series_windows
from rnncourse.torch.seq2seq import BOS, EOS, PAD, Seq2Seq, Vocab
from rnncourse.torch.translation import RandomPairBatches, TranslationTask, fit_translator, teacher_forcing_loss


@pytest.fixture(scope="module")
def task_and_pairs():
    train, test = number_translation_pairs(300, 40, seed=1, max_digits=4)
    task = TranslationTask(Vocab(w for s, _ in train + test for w in number_words(s)), Vocab("0123456789"),
                           number_words, max_len=5, device="cpu")
    return task, train, test


def small_model(task, seed=0, attention="additive"):
    torch.manual_seed(seed)
    return Seq2Seq(task.src_vocab, task.tgt_vocab, embedding_size=8, hidden_size=12, attention=attention)


def test_encode_gives_the_teacher_forcing_tensors(task_and_pairs):
    task, train, _ = task_and_pairs
    pairs = [("forty two", "42"), ("one hundred and five", "105")]
    src, lengths, tgt_in, tgt_out = task.encode(pairs)
    assert lengths.tolist() == [2, 4] and src.shape == (2, 4) and (src[0, 2:] == PAD).all()
    assert tgt_in[:, 0].tolist() == [BOS, BOS] and "".join(task.tgt_vocab.decode(tgt_in[1, 1:])) == "105"
    assert tgt_out[0].tolist()[:3] == task.tgt_vocab.encode("42") + [EOS] and tgt_out[0, 3] == PAD


def test_random_batches_are_seeded_and_cut_to_their_longest(task_and_pairs):
    task, train, _ = task_and_pairs
    a, b = (list(task.random_batches(train, 8, 5, seed=3)) for _ in range(2))
    assert all(torch.equal(x, y) for ba, bb in zip(a, b) for x, y in zip(ba, bb))
    for src, lengths, tgt_in, tgt_out in a:
        assert src.shape[1] == lengths.max() and (tgt_out[:, -1] != PAD).any()
    assert len(RandomPairBatches(task.encode(train), 8, 5, 0)) == 5


def test_teacher_forcing_loss_is_the_mean_cross_entropy_of_the_real_tokens(task_and_pairs):
    task, train, _ = task_and_pairs
    model = small_model(task)
    batch = task.encode(train[:6])
    logits, _ = model(*batch[:3])
    real = batch[3] != PAD
    manual = F.cross_entropy(logits[real], batch[3][real])
    assert_close(teacher_forcing_loss(model, batch), manual, "teacher forcing loss")


def test_evaluation_during_training_does_not_change_the_model(task_and_pairs):
    """The chapter's decoding page retrains without the validation curve and must get the same model."""
    task, train, test = task_and_pairs
    models = []
    for valid in (test[:10], None):
        torch.manual_seed(0)
        model = small_model(task)
        history = fit_translator(model, torch.optim.Adam(model.parameters(), lr=1e-2), task, train, seed=0,
                                 steps=12, valid_pairs=valid, eval_every=4)
        models.append(model)
        assert len(history.metrics) == (3 if valid else 0)
    for p, q in zip(*(m.parameters() for m in models)):
        assert torch.equal(p, q)


def test_translate_and_scores_agree_with_the_model(task_and_pairs):
    task, train, test = task_and_pairs
    model = small_model(task).eval()
    outputs, weights = task.translate(model, test[:5])
    src, lengths, _, _ = task.encode(test[:5])
    tokens, w = model.greedy_decode(src, lengths, max_len=5)
    assert outputs == ["".join(task.tgt_vocab.decode(row)) for row in tokens]
    assert weights.shape == (5, 5, src.shape[1]) and np.allclose(weights, w.numpy())
    assert task.exact_match(model, test[:5]) == np.mean([o == t for o, (_, t) in zip(outputs, test[:5])])
    tgt, _ = task.tgt_vocab.encode_batch(outputs, eos=True)
    assert np.allclose(task.sequence_log_prob(model, test[:5], outputs),
                       model.sequence_log_prob(src, lengths, tgt).detach().numpy())
    assert task.translate(small_model(task, attention=None), test[:2])[1] is None


# --- rnncourse.torch.data: pad_batch and series_windows --------------------------------------------------


def test_pad_batch_takes_the_chosen_sequences():
    seqs = [np.ones((n, 2)) * n for n in (3, 1, 4)]
    x, lengths, labels = pad_batch(seqs, [3, 1, 4], [0, 1, 1], torch.tensor([2, 1]))
    assert x.shape == (2, 4, 2) and x.dtype == torch.float32
    assert lengths.tolist() == [4, 1] and labels.tolist() == [1, 1]
    assert x[1, 0].tolist() == [1, 1] and x[1, 1:].abs().sum() == 0


def test_series_windows_are_relative_to_the_last_value():
    y = np.arange(20.0) ** 2
    x, target = series_windows(y, [5, 10], window=3, horizon=2, scale=2.0)
    assert x.shape == (2, 3) and target.shape == (2, 2) and x.dtype == torch.float32
    assert x[0].tolist() == [(4 - 16) / 2, (9 - 16) / 2, 0.0]
    assert target[1].tolist() == [(100 - 81) / 2, (121 - 81) / 2]
    with pytest.raises(ValueError, match=r"expected each in \[window, M - horizon\] = \[3, 18\]"):
        series_windows(y, [2], window=3, horizon=2)
