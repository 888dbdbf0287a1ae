"""The data sets of the book: real data read from installed packages, synthetic data made by code.

Nothing is downloaded, and this module imports neither PyTorch nor any
package it does not need: each loader imports its package only when called.

Real data, for the applications chapter:

- :func:`python_docs_text`: English prose (with some code) that ships with
  Python itself: ``pydoc_data.topics``, the text behind ``help()``. For
  character-level language models.
- :func:`bach_chorale_melodies`: the soprano melodies of J. S. Bach's
  chorales in music21's corpus, each with the key (tonic and mode) written
  in its score. For classifying variable-length sequences; with the features
  the book reads from them (:func:`relative_pitch_classes`,
  :func:`note_features`, :func:`melody_bag_of_features`) and the groups of
  copies of one tune (:func:`tune_groups`).
- :func:`co2_monthly`: the Mauna Loa CO2 record (statsmodels), as monthly
  means. For forecasting a seasonal series.
- :func:`sunspots_yearly`: yearly sunspot numbers, 1700-2008 (statsmodels).

A loader whose package is missing raises :class:`ModuleNotFoundError` that
names the package (and how to install it). The text and the corpus are
versioned with their packages: the Python documentation changes a little
between Python releases, music21's corpus between music21 releases.

Synthetic data, generated from a seed by our own code:

- The **date translation task** (:func:`date_translation_pairs`): a date
  written the way people write it, in one of several formats, to its ISO
  8601 form::

      "march 5 2021"      -> "2021-03-05"
      "5 march 2021"      -> "2021-03-05"
      "mar 5, 2021"       -> "2021-03-05"
      "march 5th, 2021"   -> "2021-03-05"
      "2021年3月5日"       -> "2021-03-05"

  A small translation problem with what makes translation hard: the order
  of the parts changes between formats, month names become numbers, and the
  output is not aligned with the input, which is what attention learns. It
  is also an easy one: the output is short and mostly copied, and an
  encoder-decoder *without* attention learns it almost perfectly.

- The **number translation task** (:func:`number_translation_pairs`): a
  whole number written in English words (British style, with "and" after
  "hundred") to its digits::

      "three hundred and twelve thousand four hundred and five" -> "312405"
      "one million and seven"                                    -> "1000007"
      "forty-two"                                                -> "42"

  Harder in the way that matters for attention: the source is long (up to
  17 words for nine digits, counting "ninety-nine" as two), every digit of
  the output must be copied from the right word in the right order, and the
  zeros are never spoken, so the decoder must know where it is in the
  number. :func:`number_alignment` says which word names each digit, to
  compare with the attention a model learns.

- **Utterances for CTC** (:func:`ctc_utterances`): noisy frames of held
  sounds and the labels they spell, without the alignment.

The translation tasks were first published in ``rnncourse.torch.data``,
where their names still work.
"""

import dataclasses
import datetime
import importlib

import numpy as np

from .validation import check_int, check_rng

# The names of the translation tasks, which rnncourse.torch.data (their first home) also exports.
TRANSLATION_TASKS = (
    "MONTHS",
    "DATE_FORMATS",
    "format_date",
    "date_translation_pairs",
    "number_to_words",
    "number_words",
    "number_alignment",
    "number_translation_pairs",
)

__all__ = [
    "python_docs_text",
    "Melody",
    "bach_chorale_melodies",
    "relative_pitch_classes",
    "note_features",
    "melody_bag_of_features",
    "tune_groups",
    "MonthlySeries",
    "co2_monthly",
    "sunspots_yearly",
    *TRANSLATION_TASKS,
    "ctc_utterances",
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
    if limit is not None:
        limit = check_int("limit", limit)
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


def relative_pitch_classes(melody):
    """The pitch classes of a melody (0 = C) after transposing its key signature to no sharps or flats.

    Each sharp of the signature moves the major tonic a fifth up (G, D, A, ...)
    and each flat a fifth down, so the signature's major tonic is
    ``7 * sharps`` semitones above C (mod 12). Subtracting it puts every major
    melody in C major and every minor one in A minor, keys that share the
    signature: the transposition uses the signature only, never the mode.

    Returns
    -------
    (L,) int64 array of pitch classes in [0, 12).
    """
    signature_major_tonic = (7 * melody.sharps) % 12
    return (np.array(melody.pitches, dtype=np.int64) - signature_major_tonic) % 12


def note_features(melody):
    """(L, 14) float32 features per note: one-hot pitch class (12, after transposition), ``log2`` of the
    duration in quarter notes, and the interval from the previous note in octaves (0 for the first)."""
    pc = relative_pitch_classes(melody)
    x = np.zeros((len(pc), 14), dtype=np.float32)
    x[np.arange(len(pc)), pc] = 1.0
    x[:, 12] = np.log2(melody.durations)
    x[1:, 13] = np.diff(melody.pitches) / 12
    return x


def melody_bag_of_features(melody, with_last_note=False):
    """Counts that forget the order of the notes: the share of each of the 12 pitch classes (after
    transposition) and of each melodic interval from a descending to an ascending fifth (15 values;
    larger leaps count as a fifth); with ``with_last_note``, the last note's pitch class one-hot (12 more).

    Returns
    -------
    (27,) or (39,) float64 array.
    """
    pc = relative_pitch_classes(melody)
    pc_share = np.bincount(pc, minlength=12) / len(pc)
    intervals = np.clip(np.diff(melody.pitches), -7, 7) + 7
    interval_share = np.bincount(intervals, minlength=15) / max(len(intervals), 1)
    parts = [pc_share, interval_share] + ([np.eye(12)[pc[-1]]] if with_last_note else [])
    return np.concatenate(parts)


def tune_groups(melodies, notes=12):
    """A group number per melody: melodies whose first ``notes`` pitch classes (after transposition) are
    the same share it. Bach harmonised many tunes more than once; keeping a group on one side of a
    train/test split keeps the test from rewarding memory.

    Returns
    -------
    (B,) int64 array of group numbers in [0, number of groups).
    """
    keys = [str(relative_pitch_classes(m)[:notes].tolist()) for m in melodies]
    return np.unique(keys, return_inverse=True)[1].astype(np.int64)


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


# --- synthetic: dates in words ----------------------------------------------------------------

MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip


def _ordinal(day):
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


DATE_FORMATS = {
    "month_day_year": lambda d: f"{MONTHS[d.month - 1]} {d.day} {d.year}",
    "day_month_year": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    "short_month": lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    "ordinal": lambda d: f"{MONTHS[d.month - 1]} {_ordinal(d.day)}, {d.year}",
    "chinese": lambda d: f"{d.year}年{d.month}月{d.day}日",
}


def format_date(date, fmt):
    """``date`` (a :class:`datetime.date`) written in format ``fmt``, one of ``DATE_FORMATS``."""
    if fmt not in DATE_FORMATS:
        raise ValueError(f"fmt is {fmt!r}; expected one of {', '.join(map(repr, DATE_FORMATS))}")
    return DATE_FORMATS[fmt](date)


def date_translation_pairs(n_train, n_test, seed=0, first_year=1950, last_year=2049, formats=None):
    """Pairs ``(written date, ISO date)`` for training and a held-out test.

    Every pair is a different date, and no date is in both sets, so the test
    measures translating dates never seen in any format. Each date is written
    in a format drawn at random (uniformly) from ``formats``.

    Parameters
    ----------
    n_train, n_test : int >= 0: the number of pairs in each set.
    seed : int: the same seed gives the same pairs.
    first_year, last_year : int: the dates are drawn uniformly from
        January 1 of ``first_year`` to December 31 of ``last_year``.
    formats : sequence of str, optional: names from ``DATE_FORMATS``; default all.

    Returns
    -------
    train, test : lists of ``(source, target)`` pairs of str, e.g.
        ``("mar 5, 2021", "2021-03-05")``.
    """
    formats = list(DATE_FORMATS) if formats is None else list(formats)
    for fmt in formats:
        if fmt not in DATE_FORMATS:
            raise ValueError(f"formats holds {fmt!r}; expected names from {', '.join(map(repr, DATE_FORMATS))}")
    if not formats:
        raise ValueError("formats is empty; expected at least one format name")
    n_train, n_test = check_int("n_train", n_train, minimum=0), check_int("n_test", n_test, minimum=0)
    first = datetime.date(first_year, 1, 1)
    n_days = (datetime.date(last_year, 12, 31) - first).days + 1
    if n_train + n_test > n_days:
        raise ValueError(
            f"n_train + n_test is {n_train + n_test}; expected at most {n_days}, the days from "
            f"{first_year} to {last_year}"
        )
    rng = np.random.default_rng(seed)
    # Drawing without replacement is what keeps the two sets apart.
    days = rng.choice(n_days, size=n_train + n_test, replace=False)
    styles = rng.integers(len(formats), size=n_train + n_test)
    pairs = []
    for day, style in zip(days, styles):
        date = first + datetime.timedelta(days=int(day))
        pairs.append((format_date(date, formats[style]), date.isoformat()))
    return pairs[:n_train], pairs[n_train:]


# --- synthetic: numbers in words ------------------------------------------------------------

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**9, "billion"), (10**6, "million"), (10**3, "thousand"))


def _below_hundred(n):
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


def _below_thousand(n):
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _below_hundred(rest)
    words = f"{_ONES[hundreds]} hundred"
    return f"{words} and {_below_hundred(rest)}" if rest else words


def number_to_words(n):
    """A whole number in English words, British style.

    "and" joins the hundreds to the tens and units ("one hundred and five"),
    and joins a last group below one hundred to the groups before it ("one
    thousand and five", "two million and forty"); the compound numbers 21 to
    99 take a hyphen ("forty-two"). Short scale: a billion is 10**9.

    Parameters
    ----------
    n : int in [0, 10**12).

    Returns
    -------
    str, e.g. ``number_to_words(312405)`` is
    ``"three hundred and twelve thousand four hundred and five"``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n < 10**12:
        raise ValueError(f"n is {n!r}; expected an int in [0, 10**12)")
    n = int(n)
    if n == 0:
        return "zero"
    parts = []
    for scale, name in _SCALES:
        group, n = divmod(n, scale)
        if group:
            parts.append(f"{_below_thousand(group)} {name}")
    if n:
        parts.append(("and " if parts and n < 100 else "") + _below_thousand(n))
    return " ".join(parts)


def number_words(text):
    """The words of a number written by :func:`number_to_words`, split at spaces and hyphens.

    ``"forty-two thousand"`` gives ``["forty", "two", "thousand"]``: the
    tokens a word-level model reads ("forty-two" and "forty two" mean the
    same, and 28 compound words would only enlarge the vocabulary).
    """
    return text.replace("-", " ").split()


def _group_alignment(n, first):
    """Words of ``_below_thousand(n)`` (split) and, for each of its 3 digits, the naming word or -1."""
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    words, names = [], [-1, -1, -1]
    if hundreds:
        names[0] = first
        words += [_ONES[hundreds], "hundred"] + (["and"] if rest else [])
    at = first + len(words)
    if 10 <= rest < 20:
        words.append(_ONES[rest])
        names[1] = names[2] = at  # "twelve" names both the 1 and the 2
    elif rest:
        if tens:
            names[1] = at
            words.append(_TENS[tens])
        if ones:
            names[2] = first + len(words)
            words.append(_ONES[ones])
    return words, names


def number_alignment(n):
    """Which word of ``number_words(number_to_words(n))`` names each digit of ``str(n)``.

    A digit is *named* by the word that says it: in "three hundred and
    twelve", the 3 by "three", the 1 and the 2 both by "twelve". A zero
    inside a number is not said at all ("three hundred and five": no word
    says the 0), and gets -1.

    Parameters
    ----------
    n : int in [0, 10**12).

    Returns
    -------
    words : list of str, ``number_words(number_to_words(n))``.
    names : list of int, one per digit of ``str(n)``: the index in ``words``
        of the word that names the digit, or -1 for an unspoken zero.

    Examples
    --------
    >>> number_alignment(1005)
    (['one', 'thousand', 'and', 'five'], [0, -1, -1, 3])
    """
    text = number_to_words(n)  # also checks n
    if n == 0:
        return ["zero"], [0]
    words, names = [], []
    rest = int(n)
    leading = True
    for scale, name in _SCALES + ((1, None),):
        group, rest = divmod(rest, scale)
        if leading and not group:
            continue
        if group and name is None and words and group < 100:
            words.append("and")
        group_words, group_names = _group_alignment(group, len(words))
        # the leading group has only as many digits as it needs: 42 thousand is "42", not "042"
        names += group_names[-len(str(group)):] if leading else group_names
        leading = False
        words += group_words + ([name] if group and name else [])
    assert words == number_words(text), (words, text)  # one spelling, two routes to it
    return words, names


def number_translation_pairs(n_train, n_test, seed=0, max_digits=9, min_digits=1):
    """Pairs ``(number in words, its digits)`` for training and a held-out test.

    Each number is drawn by first drawing its number of digits ``d``
    uniformly from ``min_digits`` to ``max_digits``, then a ``d``-digit
    number uniformly (``0`` counts as a one-digit number). Every pair is a
    different number and no number is in both sets; since there are few
    short numbers, the short ones that exist are drawn early and most of
    them land in the training set.

    Parameters
    ----------
    n_train, n_test : int >= 0: the number of pairs in each set.
    seed : int: the same seed gives the same pairs.
    max_digits : int in [1, 12]: the most digits of a number.
    min_digits : int in [1, max_digits]: the fewest digits of a number.

    Returns
    -------
    train, test : lists of ``(source, target)`` pairs of str, e.g.
        ``("one thousand and five", "1005")``.
    """
    n_train, n_test = check_int("n_train", n_train, minimum=0), check_int("n_test", n_test, minimum=0)
    max_digits = check_int("max_digits", max_digits, maximum=12)
    min_digits = check_int("min_digits", min_digits, maximum=max_digits)
    available = 10**max_digits - (10 ** (min_digits - 1) if min_digits > 1 else 0)
    wanted = n_train + n_test
    # Rejection below stays cheap only while most draws are new numbers.
    if wanted > available // 2:
        raise ValueError(
            f"n_train + n_test is {wanted}; expected at most {available // 2}, half of the "
            f"{available} numbers with {min_digits} to {max_digits} digits"
        )
    rng = np.random.default_rng(seed)
    seen, numbers = set(), []
    while len(numbers) < wanted:
        d = int(rng.integers(min_digits, max_digits + 1))
        low = 0 if d == 1 else 10 ** (d - 1)
        n = int(rng.integers(low, 10**d))
        if n not in seen:  # drawing without replacement keeps the two sets apart
            seen.add(n)
            numbers.append(n)
    pairs = [(number_to_words(n), str(n)) for n in numbers]
    return pairs[:n_train], pairs[n_train:]


# --- synthetic: utterances for CTC -------------------------------------------------------------


def ctc_utterances(n, rng, num_labels=4, noise=0.5):
    """Synthetic "speech": noisy frames of held sounds, and the labels they spell, without alignment.

    Each utterance says 3 to 6 labels drawn from ``1 .. num_labels``; each
    label is held for 2 to 5 frames, with 0 to 2 silent frames before it (at
    least 1 between two equal labels, as a speaker pauses between two
    identical sounds) and 0 to 2 after the last. A frame is a vector of
    ``num_labels + 1`` numbers, component 0 for silence and component k for
    label k: a one at the current sound, plus Gaussian noise of standard
    deviation ``noise``.

    Parameters
    ----------
    n : int >= 1, the number of utterances.
    rng : numpy.random.Generator (every draw comes from it, in a fixed order).
    num_labels : C >= 1.
    noise : float >= 0.

    Returns
    -------
    frames : list of n float64 arrays (T_i, C + 1).
    labels : list of n int64 arrays (L_i,), in [1, C]: what each utterance says.
    sounds : list of n int64 arrays (T_i,), the true sound of each frame (0 for silence): the
        alignment, which a CTC model is never given.
    """
    n, num_labels = check_int("n", n), check_int("num_labels", num_labels)
    check_rng(rng)
    frames, labels, true_sounds = [], [], []
    for _ in range(n):
        said = rng.integers(1, num_labels + 1, size=rng.integers(3, 7))
        sounds = []
        for j, label in enumerate(said):
            gap = rng.integers(0, 3) if j == 0 or label != said[j - 1] else rng.integers(1, 3)
            sounds += [0] * gap + [int(label)] * int(rng.integers(2, 6))
        sounds += [0] * int(rng.integers(0, 3))
        frames.append(np.eye(num_labels + 1)[sounds] + noise * rng.standard_normal((len(sounds), num_labels + 1)))
        labels.append(said.astype(np.int64))
        true_sounds.append(np.array(sounds, dtype=np.int64))
    return frames, labels, true_sounds
