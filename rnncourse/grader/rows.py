"""The row of grades.csv: built here, from one result, and written here.

A row is a dict with the keys of ``rnncourse.grader.COLUMNS``. Its text
fields are bounded (``LIMITS``) and hold no control characters, so that a
row reads the same in a terminal, a spreadsheet and a log. When the CSV is
written, a text field that a spreadsheet would take for a formula (it starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading
``'``: the cell then shows the text, and runs nothing.
"""

import csv
import os
from pathlib import Path

from . import COLUMNS

LIMITS = {"student_id": 128, "notebook": 128, "status": 32, "reason": 1000}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def number(x):
    """A score as an int when it is whole (``16``, not ``16.0``), else rounded to 6 decimals."""
    return int(x) if float(x).is_integer() else round(float(x), 6)


def bounded(text, limit):
    """``text`` with its control characters as spaces, cut to ``limit`` characters (``...`` at the end)."""
    text = "".join(c if c.isprintable() else " " for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def make_row(result, manual_given=0, manual_pending=0, note=""):
    """The row of one result (a dict of :func:`rnncourse.grader.core.grade`'s results).

    ``manual_given``: points given by hand so far (they count in ``score``);
    ``manual_pending``: points of written answers not graded yet; ``note``: a
    remark appended to the reason (the gradebook's, say).
    """
    reason = "; ".join(filter(None, [result["reason"], note]))
    return {
        "student_id": bounded(result["student_id"], LIMITS["student_id"]),
        "notebook": bounded(result["notebook"], LIMITS["notebook"]),
        "score": number(result["auto_score"] + manual_given),
        "max_score": number(result["max_score"]),
        "manual_pending": number(manual_pending),
        "status": bounded(result["status"], LIMITS["status"]),
        "reason": bounded(reason, LIMITS["reason"]),
    }


def spreadsheet_safe(value):
    """A CSV field that no spreadsheet runs as a formula: text starting like one gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(path, rows):
    """Write ``rows`` to ``path`` (atomically: a reader sees the old file or the new one)."""
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: spreadsheet_safe(row[key]) for key in COLUMNS})
    os.replace(tmp, path)
