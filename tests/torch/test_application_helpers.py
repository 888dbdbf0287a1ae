"""What the applications chapter added to rnncourse.torch: the CTC recognizer and its decoder,
scoring a language model on whole streams, and length-bucketed batches."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from rnncourse.testing import assert_close
from rnncourse.torch.models import CharLanguageModel, CTCRecognizer, ctc_greedy_decode
from rnncourse.torch.train import LengthBuckets, batchify_stream, fit, seed_everything, stream_cross_entropy

CELLS = ["lstm", "gru", "rnn"]


def _randomize_biases(module, generator):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "bias" in name:
                p.copy_(torch.randn(p.shape, generator=generator))


# --- CTCRecognizer -----------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recognizer_outputs_log_probabilities_that_ignore_padding(cell, bidirectional):
    g = torch.Generator().manual_seed(3)
    seed_everything(3)
    model = CTCRecognizer(3, 5, 4, cell, num_layers=2, bidirectional=bidirectional).eval()
    _randomize_biases(model, g)
    seq, other = torch.randn(5, 3, generator=g), torch.randn(8, 3, generator=g)
    alone = model(seq[None])[0]
    assert alone.shape == (5, 4 + 1)  # 4 labels and the blank
    assert_close(alone.exp().sum(-1), torch.ones(5), "probabilities over blank and labels sum to 1")
    padded = torch.stack([other, torch.cat([seq, 100 * torch.randn(3, 3, generator=g)])])  # garbage padding
    out = model(padded, torch.tensor([8, 5]))
    assert out.shape == (2, 8, 5)
    assert_close(out[1, :5], alone, f"frames of a padded sequence ({cell}, bidirectional={bidirectional})")
    assert_close(out[0], model(other[None])[0], "the full-length sequence")
    if bidirectional:  # without packing, the backward direction would start in the padding
        unpacked = model(padded)[1, :5]
        assert (unpacked - alone).abs().max() > 1e-3


def test_recognizer_bad_input_is_named():
    model = CTCRecognizer(3, 4, 2)
    with pytest.raises(ValueError, match="D = 3"):
        model(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"1 <= length <= T = 5"):
        model(torch.randn(2, 5, 3), torch.tensor([6, 2]))
    with pytest.raises(ValueError, match="num_labels"):
        CTCRecognizer(3, 4, 0)


def test_recognizer_learns_unaligned_labels_with_ctc():
    """Labels 1 or 2, each held for 2-4 frames, silence between: the CTC-trained model transcribes them."""
    g = torch.Generator().manual_seed(0)

    def batch(n):
        frames, targets = [], []
        for _ in range(n):
            labels = torch.randint(1, 3, (int(torch.randint(1, 4, (), generator=g)),), generator=g)
            sounds = []
            for label in labels.tolist():
                sounds += [0] + [label] * int(torch.randint(2, 5, (), generator=g))
            x = F.one_hot(torch.tensor(sounds + [0]), 3).float() + 0.3 * torch.randn(len(sounds) + 1, 3, generator=g)
            frames.append(x)
            targets.append(labels)
        return (pad_sequence(frames, batch_first=True), torch.tensor([len(f) for f in frames]),
                torch.cat(targets), torch.tensor([len(t) for t in targets]))

    def loss_fn(model, b):
        x, lengths, targets, target_lengths = b
        return F.ctc_loss(model(x, lengths).transpose(0, 1), targets, lengths, target_lengths)

    seed_everything(0)
    model = CTCRecognizer(3, 12, 2)
    fit(model, [batch(32) for _ in range(10)], loss_fn, optimizer=torch.optim.Adam(model.parameters(), lr=0.03),
        epochs=8, device="cpu", progress=False)
    x, lengths, targets, target_lengths = batch(200)
    with torch.no_grad():
        decoded = ctc_greedy_decode(model.eval()(x, lengths), lengths)
    truth = [t.tolist() for t in torch.split(targets, target_lengths.tolist())]
    exact = sum(d == t for d, t in zip(decoded, truth)) / len(truth)
    assert exact >= 0.9, f"only {exact:.2f} of the transcripts are right"


# --- ctc_greedy_decode --------------------------------------------------------------------------


def _one_hot_scores(paths, outputs):
    return F.one_hot(torch.tensor(paths), outputs).float()


def test_greedy_decode_merges_repeats_then_drops_blanks():
    # frames: a a - a b b -   ->   a a b   (blank = 0, a = 1, b = 2)
    scores = _one_hot_scores([[1, 1, 0, 1, 2, 2, 0]], 3)
    assert ctc_greedy_decode(scores) == [[1, 1, 2]]
    assert ctc_greedy_decode(_one_hot_scores([[0, 0, 0]], 3)) == [[]]
    assert ctc_greedy_decode(_one_hot_scores([[2, 2, 2, 2]], 3)) == [[2]]  # one run, one label
    # Another blank index: here 2 is the blank.
    assert ctc_greedy_decode(scores, blank=2) == [[1, 0, 1, 0]]


def test_greedy_decode_reads_only_each_sequence_s_frames():
    scores = _one_hot_scores([[1, 0, 2, 2], [2, 0, 1, 1]], 3)
    assert ctc_greedy_decode(scores, torch.tensor([2, 4])) == [[1], [2, 1]]
    assert ctc_greedy_decode(scores, [0, 1]) == [[], [2]]


def test_greedy_decode_agrees_with_the_collapse_rule_on_every_short_path():
    for path in itertools.product(range(3), repeat=4):
        merged = [k for k, _ in itertools.groupby(path)]
        assert ctc_greedy_decode(_one_hot_scores([list(path)], 3)) == [[k for k in merged if k != 0]], path


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(log_probs=torch.zeros(2, 3)), r"\(N, T, C \+ 1\)"),
        (dict(log_probs=torch.zeros(1, 3, 4), blank=4), r"blank.*\[0, 4\)"),
        (dict(log_probs=torch.zeros(1, 3, 4), lengths=[4]), r"\[0, T = 3\]"),
        (dict(log_probs=torch.zeros(2, 3, 4), lengths=[1]), r"\(N,\) = \(2,\)"),
    ],
)
def test_greedy_decode_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ctc_greedy_decode(**kwargs)


# --- stream_cross_entropy ---------------------------------------------------------------------------


def _lm(cell="gru", dropout=0.0):
    seed_everything(5)
    model = CharLanguageModel(7, 6, cell, num_layers=2 if dropout else 1, dropout=dropout)
    _randomize_biases(model, torch.Generator().manual_seed(5))
    return model


def _one_pass_nats(model, data):
    model.eval()
    with torch.no_grad():
        logits, _ = model(data[:, :-1])
        return F.cross_entropy(logits.reshape(-1, 7).double(), data[:, 1:].reshape(-1)).item()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("k", [1, 3, 4, 10])
def test_stream_cross_entropy_carries_the_state_like_one_pass(cell, k):
    model = _lm(cell)
    data = torch.randint(0, 7, (3, 11), generator=torch.Generator().manual_seed(1))
    # Chunks of k = 3 leave a last chunk of 1 step: weighting by tokens, not by chunk, matters.
    assert stream_cross_entropy(model, data, k) == pytest.approx(_one_pass_nats(model, data), rel=1e-6)


def test_stream_cross_entropy_would_differ_if_the_state_were_reset():
    model = _lm()
    data = torch.randint(0, 7, (3, 11), generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():  # the wrong way: every chunk from a zero state
        reset = sum(F.cross_entropy(model(data[:, j : j + 2])[0].reshape(-1, 7), data[:, j + 1 : j + 3].reshape(-1),
                                    reduction="sum").item() for j in range(0, 10, 2)) / 30
    assert abs(stream_cross_entropy(model, data, 2) - reset) > 1e-3


def test_stream_cross_entropy_of_a_uniform_model_is_log_v_and_the_mode_is_restored():
    model = _lm(dropout=0.5)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    model.train()
    data = batchify_stream(torch.arange(60) % 7, 4)
    assert stream_cross_entropy(model, data, 5) == pytest.approx(math.log(7), rel=1e-12)
    assert model.training
    # Dropout is off while scoring: the same number twice.
    other = _lm(dropout=0.5).train()
    assert stream_cross_entropy(other, data, 5) == stream_cross_entropy(other, data, 5)


# --- LengthBuckets -----------------------------------------------------------------------------------


def test_length_buckets_group_similar_lengths_and_cover_every_sequence_once_per_pass():
    lengths = torch.tensor([5, 2, 9, 3, 7, 7, 1, 8, 4, 6])
    buckets = LengthBuckets(lengths, 3, lambda idx: idx.tolist())
    assert len(buckets) == 4
    sorted_lengths = sorted(lengths.tolist())
    torch.manual_seed(0)
    orders = []
    for _ in range(5):
        batches = list(buckets)
        assert sorted(i for b in batches for i in b) == list(range(10))
        groups = sorted(sorted(lengths[b].tolist()) for b in batches)
        assert groups == [sorted_lengths[0:3], sorted_lengths[3:6], sorted_lengths[6:9], sorted_lengths[9:]]
        orders.append([tuple(b) for b in batches])
    assert len(set(map(tuple, orders))) > 1, "the order of the batches never changed"
    torch.manual_seed(0)
    assert [tuple(b) for b in buckets] == orders[0], "the order comes from torch's global generator"
    in_order = LengthBuckets(lengths, 3, lambda idx: lengths[idx].tolist(), shuffle=False)
    assert [x for b in in_order for x in b] == sorted_lengths


@pytest.mark.parametrize(
    "args,match",
    [
        (([1.5, 2.0], 2, list), "integers"),
        (([[1, 2]], 2, list), r"\(B,\)"),
        (([1, 2], 0, list), "batch_size"),
        (([1, 2], 2, None), "collate"),
    ],
)
def test_length_buckets_bad_arguments_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        LengthBuckets(*args)
