"""The features the applications chapter reads from melodies, and the synthetic CTC utterances (rnncourse.datasets)."""

import itertools

import numpy as np
import pytest

from rnncourse.datasets import (
    Melody,
    ctc_utterances,
    melody_bag_of_features,
    note_features,
    relative_pitch_classes,
    tune_groups,
)


def melody(pitches, durations=None, sharps=0, mode="major"):
    durations = durations or [1.0] * len(pitches)
    return Melody(name="m", pitches=tuple(pitches), durations=tuple(durations), tonic="?", tonic_pitch_class=0,
                  mode=mode, sharps=sharps)


# G major (one sharp) G A B C D, and E minor (one sharp) E F# G: transposed to C major and A minor.
@pytest.mark.parametrize("pitches, sharps, expected", [
    ([67, 69, 71, 72, 74], 1, [0, 2, 4, 5, 7]),
    ([64, 66, 67], 1, [9, 11, 0]),
    ([65, 67, 69, 70], -1, [0, 2, 4, 5]),  # F major, one flat: F -> C
    ([62, 64, 65], -1, [9, 11, 0]),  # D minor, one flat: D -> A
    ([60, 62], 0, [0, 2]),
])
def test_transposition_moves_the_signature_to_no_sharps_or_flats(pitches, sharps, expected):
    assert relative_pitch_classes(melody(pitches, sharps=sharps)).tolist() == expected


def test_note_features_hold_the_pitch_class_duration_and_interval():
    x = note_features(melody([67, 71, 67], [2.0, 0.5, 1.0], sharps=1))
    assert x.shape == (3, 14) and x.dtype == np.float32
    assert x[:, :12].argmax(1).tolist() == [0, 4, 0] and (x[:, :12].sum(1) == 1).all()
    assert x[:, 12].tolist() == [1.0, -1.0, 0.0]  # log2 of 2, 1/2, 1 quarter notes
    assert x[:, 13].tolist() == pytest.approx([0.0, 4 / 12, -4 / 12])


def test_the_bag_of_features_counts_and_forgets_the_order():
    m = melody([60, 62, 64, 60, 79], sharps=0)  # C D E C, then a leap of a major sixth up (clipped to a fifth)
    bag = melody_bag_of_features(m)
    assert bag.shape == (27,)
    assert bag[:12].tolist() == pytest.approx([0.4, 0, 0.2, 0, 0.2, 0, 0, 0.2, 0, 0, 0, 0])
    intervals = bag[12:]  # index 7 is the unison, 7 + k an interval of k semitones up
    assert intervals[7 + 2] == pytest.approx(0.5) and intervals[7 - 4] == pytest.approx(0.25)
    assert intervals[14] == pytest.approx(0.25), "a leap wider than a fifth counts as a fifth"
    reordered = melody([64, 60, 62, 60, 79])
    assert melody_bag_of_features(reordered)[:12].tolist() == bag[:12].tolist()
    with_last = melody_bag_of_features(m, with_last_note=True)
    assert with_last.shape == (39,) and with_last[27:].argmax() == 7  # ends on G


def test_tune_groups_join_the_copies_of_a_tune_in_any_key():
    tune = [60, 62, 64, 65, 67, 65, 64, 62, 60, 62, 64, 60, 59]
    in_g = [p + 7 for p in tune]
    other = [60, 60, 67, 67, 69, 69, 67, 65, 65, 64, 64, 62, 60]
    groups = tune_groups([melody(tune), melody(in_g, sharps=1), melody(other), melody(tune[:12] + [72])])
    assert groups[0] == groups[1] == groups[3] != groups[2]


# --- CTC utterances -----------------------------------------------------------------------------------


def _collapse(path):
    return [label for label, _ in itertools.groupby(path) if label != 0]


def test_utterances_spell_their_labels_and_pause_between_equal_ones():
    frames, labels, sounds = ctc_utterances(300, np.random.default_rng(0))
    for x, said, truth in zip(frames, labels, sounds):
        assert 3 <= len(said) <= 6 and set(said.tolist()) <= {1, 2, 3, 4}
        assert _collapse(truth.tolist()) == said.tolist(), "the frames' sounds, read as CTC reads them, are the labels"
        assert x.shape == (len(truth), 5)
        runs = [(label, len(list(group))) for label, group in itertools.groupby(truth.tolist())]
        assert all(2 <= n <= 5 for label, n in runs if label), "each label is held 2 to 5 frames"
    noise = np.concatenate([x - np.eye(5)[s] for x, s in zip(frames, sounds)])
    assert noise.std() == pytest.approx(0.5, rel=0.03) and abs(noise.mean()) < 0.02


def test_utterances_are_seeded_and_checked():
    a = ctc_utterances(5, np.random.default_rng(3))
    b = ctc_utterances(5, np.random.default_rng(3))
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
    with pytest.raises(ValueError, match="numpy.random.Generator"):
        ctc_utterances(5, 3)
    with pytest.raises(ValueError, match="n is 0"):
        ctc_utterances(0, np.random.default_rng(0))
