"""From the submissions folder to jobs: one per (student folder, source notebook), with a safe student id.

Everything in a submissions folder is untrusted: the folders' names, what
they hold, every byte of every file. So:

- **Names.** Each student folder gets one student id, used for grades.csv,
  the gradebook, the feedback and autograded folders and the hidden seeds.
  A folder name is the id as it is when it is UTF-8 text of at most
  ``ID_LIMIT`` characters, with no control, format or separator
  character, no backslash and no space at either end. Any other name gets a
  derived id: its letters and digits, then ``~`` and a short hash of the
  raw name (``caf_~1f0c2a9e``), and the row says so. Two folders never
  share an id: the hash grows when a derived id would meet another id.
- **Files.** The grader reads two files of a student's folder, the notebook
  and nbgrader's ``timestamp.txt``, both through
  :func:`rnncourse.grader.notebook.read_regular_file` (no link, no special
  file, no blocking, size-capped). It looks at no more than
  ``MAX_ENTRIES`` entries of a folder. Nothing else is opened.
- **Failures.** Whatever goes wrong with one folder (it cannot be read, it
  is a link) becomes that student's rows, never a stopped batch.
- **The submission time.** ``timestamp.txt``'s first line is read as nbgrader
  reads it (:func:`parse_submission_time`); text that is not a date and time
  gives that student's rows no submission time, and their reason says why.

Hidden entries (``.name``) and the folders in ``skip`` (the output folder)
are not students; neither is a plain file, which the log mentions.
"""

import datetime
import hashlib
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .notebook import read_regular_file

ID_LIMIT = 64  # characters of a folder name used as it is
MAX_ENTRIES = 10_000  # entries of a student's folder looked at
TIMESTAMP_LIMIT = 256  # bytes of timestamp.txt read
_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


@dataclass(frozen=True)
class Job:
    """One student's notebook to grade, or the reason it cannot be.

    ``status`` is None for a job to run; otherwise the row's status
    (``missing``, ``invalid notebook``, ``error``) and ``note`` says why.
    ``note`` also carries remarks on a job that runs (a derived id, a
    notebook graded under another name).
    """

    student: str
    notebook: object  # SourceNotebook
    path: Path = None
    note: str = ""
    timestamp: str = None
    status: str = None


# --- student ids ----------------------------------------------------------------------


def id_problem(name):
    """Why the folder name ``name`` cannot be a student id as it is ("" when it can)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not UTF-8 text"
    if not name:
        return "it is empty"
    if len(name) > ID_LIMIT:
        return f"it is longer than {ID_LIMIT} characters"
    if name != name.strip():
        return "it starts or ends with a space"
    if any(unicodedata.category(c) in _BAD_CATEGORIES for c in name):
        return "it holds a control or invisible character"
    if "\\" in name:
        return "it holds a backslash"
    return ""


def _derived(raw, length):
    text = raw.decode("utf-8", "replace")
    base = re.sub(r"_+", "_", "".join(c if c.isalnum() or c in "-_." else "_" for c in text)).strip("._-")[:40]
    return f"{base or 'student'}~{hashlib.sha256(raw).hexdigest()[:length]}"


def student_ids(names):
    """``{folder name: (student id, note)}``: one-to-one; ``note`` says when the id is derived."""
    ids = {name: (name, "") for name in names if not id_problem(name)}
    taken = set(ids)
    for name in sorted(n for n in names if n not in ids):
        raw = os.fsencode(name)
        for length in (8, 16, 64):
            candidate = _derived(raw, length)
            if candidate not in taken:
                break
        taken.add(candidate)
        ids[name] = (candidate, f"the folder {ascii(name)} cannot be a student id as it is ({id_problem(name)}): its id is {candidate!r}")
    return ids


# --- the submission time -------------------------------------------------------------

_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")


def parse_submission_time(text):
    """``(time, "")``: the submission time ``text`` in UTC (a naive datetime, as nbgrader's gradebook keeps it);
    ``(None, why)`` for text that is not one.

    ``text`` begins with a date and a time (``2024-05-01 14:38:12``), then
    optional seconds' fractions and a zone, as nbgrader's collection writes
    it: a name (``UTC``, ``Europe/Paris``) or an offset (``+0200``,
    ``+02:00``). A time without a zone is UTC, as nbgrader reads it. (nbgrader's
    ``parse_utc`` reads a separate ``+0200`` as 200 seconds; here it is two hours.)
    """
    import dateutil.parser
    import dateutil.tz
    from nbgrader.utils import parse_utc

    text = str(text)
    expected = "expected a date and time such as 2024-05-01 14:38:12 (UTC unless a zone follows)"
    if not _DATE_TIME.match(text):
        return None, f"{text[:64]!r} is not a submission time: {expected}"
    parts = text.split(" ")
    try:
        if len(parts) == 3 and not re.fullmatch(r"[+-]\d{2}:?\d{2}", parts[2]):
            zone = dateutil.tz.gettz(parts[2])
            if zone is None:
                return None, f"{text[:64]!r} is not a submission time (unknown time zone {parts[2][:32]!r}): {expected}"
            when = dateutil.parser.parse(" ".join(parts[:2])).replace(tzinfo=zone)
        else:
            when = dateutil.parser.parse(text)
        when = parse_utc(when)  # to UTC, without its zone, as the gradebook keeps it
    except (ValueError, OverflowError, TypeError, AttributeError) as err:  # dateutil's ParserError is a ValueError
        return None, f"{text[:64]!r} is not a submission time ({type(err).__name__}): {expected}"
    return when, ""


# --- one student's folder -------------------------------------------------------------


def _lstat(path):
    try:
        return os.lstat(path)
    except OSError:
        return None


def _read_timestamp(folder):
    """nbgrader's timestamp.txt as text, or None; with a note when there is one that cannot be read."""
    path = folder / "timestamp.txt"
    if _lstat(path) is None:
        return None, ""
    try:
        data = read_regular_file(path, TIMESTAMP_LIMIT)
    except ValueError as err:
        return None, f"timestamp.txt ignored ({err})"
    text = data.decode("utf-8", "replace").strip().splitlines()
    text = "".join(c for c in (text[0] if text else "") if c.isprintable())[:64]
    return text or None, ""


def _listing(folder):
    """The names of at most MAX_ENTRIES entries of ``folder``, and whether there were more."""
    names = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if len(names) == MAX_ENTRIES:
                return names, True
            names.append(entry.name)
    return names, False


def _jobs_of_folder(path, student, note, assignment):
    """The jobs of one student folder (``path``)."""
    notes = [note] if note else []

    def refused(why, status="invalid notebook"):
        return [Job(student, nb, None, "; ".join([why, *notes]), status=status) for nb in assignment.notebooks]

    info = _lstat(path)
    if info is None:
        return refused("the folder disappeared while it was read", "error")
    if stat.S_ISLNK(info.st_mode):
        return refused("refused: the student folder is a symbolic link")
    folder = Path(path)
    nested = _lstat(folder / assignment.name)
    if nested is not None and stat.S_ISDIR(nested.st_mode):
        folder = folder / assignment.name  # nbgrader's submitted/<student>/<assignment>/
    timestamp, timestamp_note = _read_timestamp(folder)
    notes += [timestamp_note] if timestamp_note else []
    listing = None
    jobs = []
    for nb in assignment.notebooks:
        if _lstat(folder / nb.filename) is not None:
            jobs.append(Job(student, nb, folder / nb.filename, "; ".join(notes), timestamp))
            continue
        if listing is None:
            listing = _listing(folder)
        names, more = listing
        others = sorted(n for n in names if n.endswith(".ipynb") and not n.startswith("."))
        # One notebook under another name, for an assignment of one notebook: grade it, and say so.
        if len(assignment.notebooks) == 1 and len(others) == 1 and not more:
            jobs.append(Job(student, nb, folder / others[0], "; ".join([f"graded {others[0]!r} as {nb.filename}", *notes]), timestamp))
        else:
            crowded = f" (among the first {MAX_ENTRIES} entries of the folder)" if more else ""
            jobs.append(Job(student, nb, None, "; ".join([f"no {nb.filename} in the submission{crowded}", *notes]),
                            timestamp, status="missing"))
    return jobs


def find_jobs(submissions, assignment, *, skip=(), log=lambda message: None):
    """Every :class:`~rnncourse.grader.jobs.Job` of the batch, sorted by student id.

    ``submissions/<student>/<notebook>.ipynb``, or nbgrader's
    ``submitted/<student>/<assignment>/<notebook>.ipynb``.
    """
    skip = {Path(p).resolve() for p in skip}
    here = Path(submissions).resolve()
    folders = []
    with os.scandir(submissions) as entries:
        for entry in entries:
            if entry.name.startswith(".") or here / entry.name in skip:  # the entry itself, not where a link points
                continue
            try:
                is_folder = entry.is_dir(follow_symlinks=False) or entry.is_symlink()
            except OSError:
                is_folder = True  # it cannot even be examined: that student's row will say so
            if is_folder:
                folders.append(entry)
            else:
                log(f"{ascii(entry.path)} is not a folder: not a student's submission, ignored")
    ids = student_ids([e.name for e in folders])
    jobs = []
    for entry in folders:
        student, note = ids[entry.name]
        try:
            jobs += _jobs_of_folder(entry.path, student, note, assignment)
        except Exception as err:  # noqa: BLE001 - one folder's problem is that student's row
            detail = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
            why = f"the student folder cannot be read ({detail})"
            jobs += [Job(student, nb, None, "; ".join(filter(None, [why, note])), status="error") for nb in assignment.notebooks]
    return sorted(jobs, key=lambda job: (job.student, job.notebook.name))
