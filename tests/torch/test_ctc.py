"""rnncourse.torch.ctc: the forward algorithm against enumeration and torch's ctc_loss; decoding and scoring."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from rnncourse.torch.ctc import (
    ctc_batch,
    ctc_collapse,
    ctc_forward,
    ctc_greedy_decode,
    edit_distance,
    label_error_rate,
)
from rnncourse.torch.models import ctc_greedy_decode as old_path


def test_collapse_merges_repeats_then_drops_blanks():
    assert ctc_collapse([1, 1, 0, 1, 2, 2, 0]) == [1, 1, 2]
    assert ctc_collapse([0, 0, 0]) == []
    assert ctc_collapse([3, 3, 3]) == [3]


@pytest.mark.parametrize("target, T", [([1, 1], 5), ([1, 2], 4), ([2, 1, 2], 6), ([1], 1), ([2, 2, 2], 6)])
def test_forward_algorithm_equals_the_sum_over_every_path_and_torch(target, T):
    g = torch.Generator().manual_seed(len(target) * 10 + T)
    log_probs = torch.randn(T, 3, generator=g, dtype=torch.float64).log_softmax(-1)
    log_alpha, log_likelihood = ctc_forward(log_probs, target)
    paths = [p for p in itertools.product(range(3), repeat=T) if ctc_collapse(p) == target]
    enumerated = torch.logsumexp(torch.stack([log_probs[range(T), list(p)].sum() for p in paths]), 0)
    assert log_likelihood == pytest.approx(float(enumerated), abs=1e-12)
    torch_loss = F.ctc_loss(log_probs[:, None], torch.tensor([target]), torch.tensor([T]),
                            torch.tensor([len(target)]), reduction="sum")
    assert -log_likelihood == pytest.approx(float(torch_loss), abs=1e-9)
    assert log_alpha.shape == (T, 2 * len(target) + 1)


def test_alpha_counts_the_path_prefixes():
    """With every output equally likely (p = 1/3), alpha[t, s] * 3**(t+1) counts the path prefixes to (t, s)."""
    log_probs = torch.full((5, 3), 1 / 3, dtype=torch.float64).log()
    log_alpha, log_likelihood = ctc_forward(log_probs, [1, 1])
    counts = (log_alpha.exp() * 3.0 ** torch.arange(1, 6, dtype=torch.float64)[:, None]).round()
    assert counts[0].tolist() == [1, 1, 0, 0, 0]
    assert counts[1].tolist() == [1, 2, 1, 0, 0]  # no skip from the first 1 to the second: they are equal
    assert round(float(torch.tensor(log_likelihood).exp()) * 3**5) == 15  # the 15 paths of the chapter


def test_an_impossible_target_has_probability_zero():
    # Two equal labels need a blank between them: three frames are too few for 1 1 1... with T = 2.
    _, log_likelihood = ctc_forward(torch.zeros(2, 3), [1, 1])
    assert log_likelihood == float("-inf")


def test_bad_targets_are_named():
    with pytest.raises(ValueError, match="other than the blank"):
        ctc_forward(torch.zeros(3, 3), [0, 1])
    with pytest.raises(ValueError, match=r"expected \(T, C \+ 1\)"):
        ctc_forward(torch.zeros(3), [1])


def test_greedy_decode_keeps_its_old_path():
    assert old_path is ctc_greedy_decode


@pytest.mark.parametrize("a, b, distance", [
    ("kitten", "sitting", 3), ("", "abc", 3), ("abc", "", 3), ("abc", "abc", 0), ([1, 2, 3], [3, 2, 1], 2),
])
def test_edit_distance(a, b, distance):
    assert edit_distance(a, b) == distance == edit_distance(b, a)


def test_edit_distance_against_brute_force_on_short_sequences():
    """The fewest edits found by breadth-first search over all sequences within reach."""
    def neighbours(s):
        for i in range(len(s) + 1):
            for c in "ab":
                yield s[:i] + c + s[i:]
        for i in range(len(s)):
            yield s[:i] + s[i + 1:]
            for c in "ab":
                yield s[:i] + c + s[i + 1:]

    for a, b in itertools.product(["", "a", "ab", "ba", "aab"], ["b", "ab", "bba", "aa"]):
        frontier, seen, d = {a}, {a}, 0
        while b not in frontier:
            frontier = {n for s in frontier for n in neighbours(s)} - seen
            seen |= frontier
            d += 1
        assert edit_distance(a, b) == d, (a, b)


def test_label_error_rate_is_edits_over_target_labels():
    assert label_error_rate([[1, 2], [3]], [torch.tensor([1, 2, 2]), [3]]) == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="same number"):
        label_error_rate([[1]], [[1], [2]])
    with pytest.raises(ValueError, match="no label"):
        label_error_rate([[1]], [[]])


def test_ctc_batch_pads_and_concatenates():
    x, lengths, targets, target_lengths = ctc_batch([torch.ones(3, 2), torch.ones(5, 2)], [[1, 2], [3]])
    assert x.shape == (2, 5, 2) and x.dtype == torch.float32 and x[0, 3:].abs().sum() == 0
    assert lengths.tolist() == [3, 5] and targets.tolist() == [1, 2, 3] and target_lengths.tolist() == [2, 1]
