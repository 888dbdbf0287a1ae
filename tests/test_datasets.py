"""The real-data loaders: what they return, that they need no network, and their errors."""

import socket
import sys

import numpy as np
import pytest

from rnncourse import datasets
from rnncourse.datasets import Melody, bach_chorale_melodies, co2_monthly, python_docs_text, sunspots_yearly


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a loader tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# --- missing packages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loader,module,hint",
    [
        (python_docs_text, "pydoc_data.topics", "standard library"),
        (lambda: bach_chorale_melodies(limit=1), "music21", "pip install music21"),
        (co2_monthly, "statsmodels.datasets", "pip install statsmodels"),
        (sunspots_yearly, "statsmodels.datasets", "pip install statsmodels"),
    ],
)
def test_a_missing_package_is_named(monkeypatch, loader, module, hint):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(ModuleNotFoundError, match=module.replace(".", r"\.")) as info:
        loader()
    assert hint in str(info.value)
    assert info.value.name == module


# --- text ----------------------------------------------------------------------------------------


def test_python_docs_text_is_every_topic_in_sorted_order(no_network):
    import pydoc_data.topics

    text = python_docs_text()
    topics = pydoc_data.topics.topics
    assert text == "\n".join(topics[k] for k in sorted(topics))
    assert text == python_docs_text()  # the same on every call
    assert len(text) > 100_000 and 50 < len(set(text)) < 200  # a real corpus, about 100 characters
    assert topics["assert"] in text


# --- melodies ----------------------------------------------------------------------------------


def test_chorale_melodies_are_read_offline_with_their_keys(no_network):
    melodies = bach_chorale_melodies(limit=12)
    assert 8 <= len(melodies) <= 12 and all(isinstance(m, Melody) for m in melodies)
    names = [m.name for m in melodies]
    assert names[:2] == ["bwv1.6", "bwv10.7"] and len(set(names)) == len(names)  # in order of file name
    for m in melodies:
        assert m.mode in ("major", "minor")
        assert len(m.pitches) == len(m.durations) >= 10
        assert all(isinstance(p, int) and 40 <= p <= 90 for p in m.pitches)
        assert all(d > 0 for d in m.durations)
        # The signature and the key agree: the signature's major tonic is the tonic, or the
        # tonic a minor third up for a minor key (G minor: B-flat major, two flats).
        assert (7 * m.sharps) % 12 == (m.tonic_pitch_class + (3 if m.mode == "minor" else 0)) % 12, m.name
    g_minor = next(m for m in melodies if m.name == "bwv10.7")
    assert (g_minor.tonic, g_minor.mode, g_minor.sharps) == ("G", "minor", -2)
    assert g_minor.pitches[:4] == (74, 77, 74, 74)


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_chorale_limit_must_be_a_positive_int(limit):
    with pytest.raises(ValueError, match="limit"):
        bach_chorale_melodies(limit=limit)


def _score(part_name, key, notes):
    """A one-part music21 score; notes are (pitch name or list of names or None for a rest, quarters, tie type)."""
    from music21 import chord, note, stream, tie

    part = stream.Part()
    part.partName = part_name
    if key is not None:
        part.append(key)
    for pitch, quarters, tie_type in notes:
        if pitch is None:
            element = note.Rest(quarterLength=quarters)
        elif isinstance(pitch, list):
            element = chord.Chord(pitch, quarterLength=quarters)
        else:
            element = note.Note(pitch, quarterLength=quarters)
        if tie_type is not None:
            element.tie = tie.Tie(tie_type)
        part.append(element)
    score = stream.Score()
    score.insert(0, part)
    return score


def test_soprano_melody_merges_ties_skips_rests_and_takes_a_chord_s_top_note():
    from music21 import key

    score = _score("Soprano", key.Key("d", "minor"), [
        ("D5", 1.0, None), (None, 1.0, None), ("F5", 1.0, "start"), ("F5", 2.0, "stop"),
        (["A4", "E5"], 1.0, None), ("D5", 0.5, None),
    ])
    melody = datasets._soprano_melody(score, "test")
    assert melody.pitches == (74, 77, 76, 74)  # D5, F5 (held), the chord's E5, D5
    assert melody.durations == (1.0, 3.0, 1.0, 0.5)  # the rest is gone, the tie is one note
    assert (melody.tonic, melody.tonic_pitch_class, melody.mode, melody.sharps) == ("D", 2, "minor", -1)


def test_soprano_melody_needs_a_soprano_part_and_a_mode():
    from music21 import key

    notes = [("C5", 1.0, None)]
    assert datasets._soprano_melody(_score("Alto", key.Key("C"), notes), "x") is None
    assert datasets._soprano_melody(_score("Soprano", key.KeySignature(0), notes), "x") is None  # no mode
    assert datasets._soprano_melody(_score("Soprano", key.Key("C"), [(None, 1.0, None)]), "x") is None
    assert datasets._soprano_melody(_score("Soprano 1", key.Key("C"), notes), "x").pitches == (72,)


# --- time series -----------------------------------------------------------------------------------


def test_co2_monthly_is_consecutive_months_with_the_gaps_filled(no_network):
    series = co2_monthly()
    months, values, filled = series.months, series.values, series.filled
    assert months.dtype == np.dtype("datetime64[M]") and values.dtype == np.float64
    assert len(months) == len(values) == len(filled) == 526
    assert str(months[0]) == "1958-03" and str(months[-1]) == "2001-12"
    assert np.all(np.diff(months).astype(int) == 1)
    assert sorted(str(m) for m in months[filled]) == ["1958-06", "1958-10", "1964-02", "1964-03", "1964-04"]
    assert np.all(np.isfinite(values)) and 310 < values.min() < values.max() < 380
    # A filled month lies between its neighbours (linear interpolation), e.g. October 1958.
    i = int(np.flatnonzero(months == np.datetime64("1958-10"))[0])
    assert values[i] == pytest.approx((values[i - 1] + values[i + 1]) / 2)
    assert values[-12:].mean() - values[:12].mean() > 50  # the rise over 44 years


def test_sunspots_yearly(no_network):
    years, values = sunspots_yearly()
    assert years.dtype == np.int64 and values.dtype == np.float64
    assert years[0] == 1700 and years[-1] == 2008 and np.all(np.diff(years) == 1)
    assert len(values) == 309 and values.min() >= 0 and values.max() > 100
