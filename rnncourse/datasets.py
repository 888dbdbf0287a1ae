"""Real data for the applications chapter, read from installed packages (nothing is downloaded).

- :func:`python_docs_text`: English prose (with some code) that ships with
  Python itself: ``pydoc_data.topics``, the text behind ``help()``. For
  character-level language models.
- :func:`bach_chorale_melodies`: the soprano melodies of J. S. Bach's
  chorales in music21's corpus, each with the key (tonic and mode) written
  in its score. For classifying variable-length sequences.
- :func:`co2_monthly`: the Mauna Loa CO2 record (statsmodels), as monthly
  means. For forecasting a seasonal series.
- :func:`sunspots_yearly`: yearly sunspot numbers, 1700-2008 (statsmodels).

Each loader imports its package only when called, so importing this module
costs nothing, and raises :class:`ModuleNotFoundError` that names the
missing package (and how to install it) when the package is not there.
The text and the corpus are versioned with their packages: the Python
documentation changes a little between Python releases, music21's corpus
between music21 releases.
"""

import dataclasses
import importlib

import numpy as np

__all__ = [
    "python_docs_text",
    "Melody",
    "bach_chorale_melodies",
    "MonthlySeries",
    "co2_monthly",
    "sunspots_yearly",
]


def _require(module, what, install):
    """Import ``module``, or raise ModuleNotFoundError that says what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ModuleNotFoundError(
            f"{what} needs the module {module!r}, which cannot be imported ({e}); {install}",
            name=module,
        ) from e


def _pip(package):
    return f"install it with `pip install {package}`, or set up the environment from requirements.txt"


# --- text ----------------------------------------------------------------------------------


def python_docs_text():
    """The documentation topics that ship with Python, as one string.

    ``pydoc_data.topics.topics`` maps about 80 topic names ("assert",
    "types", ...) to the text ``help()`` shows for them: English prose with
    code examples and indentation, about 465,000 characters and 100
    distinct characters in Python 3.11. The topics are joined with a newline
    in sorted order of their names, so the text is the same on every call
    (for one Python release).

    Returns
    -------
    str
    """
    topics = _require("pydoc_data.topics", "python_docs_text()",
                      "it is part of Python's standard library: this Python was installed "
                      "without it; use a complete Python installation").topics
    return "\n".join(topics[key] for key in sorted(topics))


# --- melodies --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Melody:
    """One melody: its notes in order and the key of the piece.

    L: number of notes (rests are left out; tied notes are merged into one).

    Attributes
    ----------
    name : str, the score's file name without extension, e.g. ``"bwv10.7"``.
    pitches : tuple of L ints, MIDI note numbers (60 is middle C).
    durations : tuple of L floats, in quarter notes.
    tonic : str, the key's tonic as music21 writes it, e.g. ``"G"``, ``"B-"``.
    tonic_pitch_class : int in ``[0, 12)``, the tonic's pitch class (C = 0).
    mode : ``"major"`` or ``"minor"``.
    sharps : int, the key signature: the number of sharps, negative for
        flats (G minor, two flats: -2). A major key and its relative minor
        (C major and A minor) have the same signature.
    """

    name: str
    pitches: tuple
    durations: tuple
    tonic: str
    tonic_pitch_class: int
    mode: str
    sharps: int


def bach_chorale_melodies(limit=None):
    """The soprano melodies of Bach's chorales in music21's corpus, with their keys.

    Reads every MusicXML score (``.mxl``, ``.xml``) of the ``bach`` corpus
    that ships inside the music21 package (no network), in order of file
    name, and keeps those that have a part named "Soprano..." and a key
    with a mode in that part's first key signature (the mode is what the
    score's encoder wrote, e.g. ``<mode>minor</mode>``; music21 reads it into
    a ``music21.key.Key``). With music21 10.5 that is 404 of 410 scores:
    222 major and 182 minor. The same chorale melody appears in several
    scores (Bach harmonised many tunes more than once), so a split into
    training and test data should keep the copies of a tune together.

    Each score is parsed from its source (music21's pickle cache is neither
    read nor written): about 0.06 s of CPU per score, some 25 s for all.

    Parameters
    ----------
    limit : int >= 1, optional: read only the first ``limit`` scores (for
        quick tests); the result then has at most that many melodies.

    Returns
    -------
    list of :class:`Melody`.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit is {limit!r}; expected None or an integer >= 1")
    _require("music21", "bach_chorale_melodies()", _pip("music21"))
    from music21 import converter, corpus

    paths = sorted((p for p in corpus.getComposer("bach") if p.suffix in (".mxl", ".xml")),
                   key=lambda p: p.name)
    melodies = []
    for path in paths[:limit]:
        score = converter.parse(path, forceSource=True, storePickle=False)
        melody = _soprano_melody(score, path.stem)
        if melody is not None:
            melodies.append(melody)
    return melodies


def _soprano_melody(score, name):
    """The Melody of a score's first part named Soprano..., or None (no such part, no mode, no notes)."""
    part = next((p for p in score.parts if (p.partName or "").lower().startswith("soprano")), None)
    if part is None:
        return None
    key = part.recurse().getElementsByClass("KeySignature").first()
    mode = getattr(key, "mode", None)
    if mode not in ("major", "minor"):
        return None
    pitches, durations = [], []
    for note in part.recurse().notes:
        duration = float(note.quarterLength)
        if duration == 0:  # grace notes take no time
            continue
        # A chord in the soprano part (rare: a divided line) counts as its top note.
        pitch = max(note.pitches).midi if note.isChord else note.pitch.midi
        if note.tie is not None and note.tie.type in ("stop", "continue") and pitches and pitches[-1] == pitch:
            durations[-1] += duration  # one held note, written across a bar line
            continue
        pitches.append(pitch)
        durations.append(duration)
    if not pitches:
        return None
    return Melody(name=name, pitches=tuple(pitches), durations=tuple(durations), tonic=key.tonic.name,
                  tonic_pitch_class=int(key.tonic.pitchClass), mode=mode, sharps=int(key.sharps))


# --- time series -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MonthlySeries:
    """A monthly series. M: number of months.

    Attributes
    ----------
    months : (M,) ``datetime64[M]``, consecutive months.
    values : (M,) float64.
    filled : (M,) bool, True where no measurement existed and the value was
        interpolated linearly between its neighbours.
    """

    months: np.ndarray
    values: np.ndarray
    filled: np.ndarray


def co2_monthly():
    """Atmospheric CO2 at Mauna Loa, March 1958 to December 2001, monthly means in ppm.

    ``statsmodels.datasets.co2`` holds weekly measurements (in parts per
    million by volume); this is their mean over each calendar month. Five
    months have no measurement at all (June and October 1958, February to
    April 1964); their values are interpolated linearly and flagged in
    ``filled``. The series rises by about 1.5 ppm a year with a seasonal
    cycle of about 6 ppm peak to trough (a period of 12 months).

    Returns
    -------
    MonthlySeries
        526 months.
    """
    datasets = _require("statsmodels.datasets", "co2_monthly()", _pip("statsmodels"))
    weekly = datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean()
    filled = monthly.isna().to_numpy()
    values = monthly.interpolate(method="linear").to_numpy(dtype=np.float64)
    months = monthly.index.to_numpy().astype("datetime64[M]")
    return MonthlySeries(months=months, values=values, filled=filled)


def sunspots_yearly():
    """Yearly mean sunspot numbers, 1700 to 2008, from ``statsmodels.datasets.sunspots``.

    Y: 309 years. The series has a cycle of about 11 years whose length
    and height vary from cycle to cycle.

    Returns
    -------
    years : (Y,) int64.
    values : (Y,) float64, the yearly sunspot activity.
    """
    datasets = _require("statsmodels.datasets", "sunspots_yearly()", _pip("statsmodels"))
    data = datasets.sunspots.load_pandas().data
    return data["YEAR"].to_numpy().astype(np.int64), data["SUNACTIVITY"].to_numpy(dtype=np.float64)
