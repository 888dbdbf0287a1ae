"""Tests for the number translation task of rnncourse.torch.data (numbers in English words -> digits)."""

import collections
import re

import numpy as np
import pytest

from rnncourse.torch.data import number_alignment, number_to_words, number_translation_pairs, number_words

# Written out by hand, independently of the code: every rule of the spelling is here at least once.
KNOWN = {
    0: "zero",
    7: "seven",
    13: "thirteen",
    20: "twenty",
    42: "forty-two",
    100: "one hundred",
    101: "one hundred and one",
    110: "one hundred and ten",
    999: "nine hundred and ninety-nine",
    1000: "one thousand",
    1005: "one thousand and five",
    1100: "one thousand one hundred",
    12040: "twelve thousand and forty",
    312405: "three hundred and twelve thousand four hundred and five",
    1000007: "one million and seven",
    1200005: "one million two hundred thousand and five",
    40000040: "forty million and forty",
    508030017: "five hundred and eight million thirty thousand and seventeen",
    999999999: "nine hundred and ninety-nine million nine hundred and ninety-nine thousand nine hundred and ninety-nine",
    10**9: "one billion",
    100000000001: "one hundred billion and one",
}


@pytest.mark.parametrize("n, words", KNOWN.items())
def test_number_to_words_known_values(n, words):
    assert number_to_words(n) == words


def words_to_number(text):
    """An independent parser of the spelling (the inverse of number_to_words), to test it at scale."""
    units = {w: i for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split())}
    tens = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())}
    scales = {"thousand": 10**3, "million": 10**6, "billion": 10**9}
    total = group = 0
    for word in number_words(text):
        if word in units:
            group += units[word]
        elif word in tens:
            group += tens[word]
        elif word == "hundred":
            group *= 100
        elif word in scales:
            total += group * scales[word]
            group = 0
        else:
            assert word == "and", word
    return total + group


def test_number_to_words_round_trips_and_is_well_formed():
    rng = np.random.default_rng(0)
    numbers = list(range(0, 2100)) + [int(x) for x in rng.integers(0, 10**12, 3000)]
    numbers += [int(x) * 10**k for x in rng.integers(1, 1000, 200) for k in (3, 6, 9)]  # zero groups
    for n in numbers:
        text = number_to_words(n)
        assert words_to_number(text) == n, (n, text)
        assert re.fullmatch(r"[a-z]+([ -][a-z]+)*", text), text
        words = number_words(text)
        # "and" only after "hundred" or a scale word, and never at the start or the end
        for i, w in enumerate(words):
            if w == "and":
                assert 0 < i < len(words) - 1 and words[i - 1] in ("hundred", "thousand", "million", "billion"), text
        # hyphens join exactly the compounds 21..99 that are not multiples of ten
        for compound in re.findall(r"[a-z]+-[a-z]+", text):
            tens_word, unit_word = compound.split("-")
            assert tens_word.endswith("ty") and unit_word in "one two three four five six seven eight nine".split()


@pytest.mark.parametrize("bad", [-1, 10**12, 1.0, "5", True, None])
def test_number_to_words_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="expected an int in"):
        number_to_words(bad)


def test_number_words_splits_at_spaces_and_hyphens():
    assert number_words("forty-two thousand and six") == ["forty", "two", "thousand", "and", "six"]


@pytest.mark.parametrize(
    "n, named",
    [
        (0, ["zero"]),
        (10, ["ten", "ten"]),
        (20, ["twenty", None]),
        (115, ["one", "fifteen", "fifteen"]),
        (1005, ["one", None, None, "five"]),
        (312405, ["three", "twelve", "twelve", "four", None, "five"]),
        (1200005, ["one", "two", None, None, None, None, "five"]),
        (7000040, ["seven", None, None, None, None, "forty", None]),
        (42000, ["forty", "two", None, None, None]),
    ],
)
def test_number_alignment_names_the_right_words(n, named):
    words, names = number_alignment(n)
    assert words == number_words(number_to_words(n))
    assert len(names) == len(str(n))
    assert [words[i] if i >= 0 else None for i in names] == named


def test_number_alignment_at_scale():
    """Every named digit is named by a word that says it; only zeros go unnamed; positions are monotone."""
    digit_words = {
        str(d): w for d, w in enumerate("zero one two three four five six seven eight nine".split())
    }
    rng = np.random.default_rng(1)
    for n in [int(x) for x in rng.integers(0, 10**12, 2000)] + list(range(1000)):
        words, names = number_alignment(n)
        digits = str(n)
        assert len(names) == len(digits)
        named = [i for i in names if i >= 0]
        assert named == sorted(named), (n, names)  # the digits are said in order
        for digit, i in zip(digits, names):
            if i < 0:
                assert digit == "0", (n, names)
            elif words[i] in digit_words.values() and words[i] != "zero":
                # a plain digit word names exactly its own digit (a units digit or a hundreds digit)
                assert words[i] == digit_words[digit], (n, words, names)


def test_pairs_are_seeded_disjoint_and_correct():
    train, test = number_translation_pairs(3000, 500, seed=3, max_digits=9)
    assert len(train) == 3000 and len(test) == 500
    assert (train, test) == number_translation_pairs(3000, 500, seed=3, max_digits=9)
    assert train != number_translation_pairs(3000, 500, seed=4, max_digits=9)[0]
    targets = [t for _, t in train + test]
    assert len(set(targets)) == len(targets), "every pair is a different number"
    for source, target in train + test:
        assert source == number_to_words(int(target)) and target == str(int(target))
    counts = collections.Counter(len(t) for t in targets)
    assert set(counts) == set(range(1, 10))
    # The number of digits is drawn uniformly. There are few short numbers, so repeats of those are
    # drawn again; among the lengths 4 to 9, where repeats are rare, each gets about 1/6 of the pairs
    # (binomial sd about 0.007 here: 0.03 is over 4 sd, and a skew towards long numbers, which
    # drawing uniformly from 1..10**9 would give, puts 9 digits near 0.9).
    long_total = sum(counts[d] for d in range(4, 10))
    for d in range(4, 10):
        assert abs(counts[d] / long_total - 1 / 6) < 0.03, counts


def test_pairs_respect_min_and_max_digits():
    train, test = number_translation_pairs(200, 50, seed=0, max_digits=6, min_digits=5)
    assert {len(t) for _, t in train + test} == {5, 6}


def test_pairs_reject_bad_arguments():
    with pytest.raises(ValueError, match="n_train is -1"):
        number_translation_pairs(-1, 5)
    with pytest.raises(ValueError, match="max_digits is 13"):
        number_translation_pairs(5, 5, max_digits=13)
    with pytest.raises(ValueError, match="min_digits is 4"):
        number_translation_pairs(5, 5, max_digits=3, min_digits=4)
    with pytest.raises(ValueError, match="n_train \\+ n_test is 30"):
        number_translation_pairs(20, 10, max_digits=1)
