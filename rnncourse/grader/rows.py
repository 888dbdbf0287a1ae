"""The row of grades.csv: built here, from one result, and written here.

A row is a dict with the keys of ``rnncourse.grader.COLUMNS``. Its text
fields are bounded (``LIMITS``) and hold no control characters, so that a
row reads the same in a terminal, a spreadsheet and a log. When the CSV is
written, a text field that a spreadsheet would take for a formula (it starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading
``'``: the cell then shows the text, and runs nothing.
"""

import csv
import io
import os
from pathlib import Path

from . import COLUMNS, GradeError

LIMITS = {"student_id": 128, "notebook": 128, "status": 32, "reason": 1000}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def number(x):
    """A score as an int when it is whole (``16``, not ``16.0``), else rounded to 6 decimals."""
    return int(x) if float(x).is_integer() else round(float(x), 6)


def bounded(text, limit):
    """``text`` with its control characters as spaces, cut to ``limit`` characters (``...`` at the end)."""
    text = "".join(c if c.isprintable() else " " for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def submission_time_text(when):
    """A submission time (a naive datetime in UTC) as grades.csv and the feedback write it: ``2024-05-01 14:38:12 UTC``."""
    return f"{when.isoformat(sep=' ')} UTC" if when is not None else ""


def make_row(result, manual_given=0, manual_pending=0, note="", submitted_at=None, late_by=None, late_penalty=0):
    """The row of one result (a dict of :func:`rnncourse.grader.core.grade`'s results).

    ``manual_given``: points given by hand so far (they count in ``score``);
    ``manual_pending``: points of written answers not graded yet; ``note``: a
    remark appended to the reason (the gradebook's, say). ``submitted_at``:
    the submission time (UTC) or None; ``late_by``: seconds past the due date
    (0 on time; None, an empty field, without a due date or a submission
    time); ``late_penalty``: the points nbgrader's late submission plugin
    takes off (not subtracted from ``score``, as nbgrader's ``raw_score``).
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
        "submitted_at": submission_time_text(submitted_at),
        "late_by": "" if late_by is None else number(late_by),
        "late_penalty": number(late_penalty),
    }


def spreadsheet_safe(value):
    """A CSV field that no spreadsheet runs as a formula: text starting like one gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _line(values):
    """One CSV record as written (fields quoted as needed, ``\\r\\n`` at the end)."""
    text = io.StringIO()
    csv.writer(text).writerow(values)
    return text.getvalue()


def _row_line(row):
    return _line([spreadsheet_safe(row[key]) for key in COLUMNS])


def _atomic_write(path, text):
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_csv(path, rows):
    """Write ``rows`` to ``path`` (atomically: a reader sees the old file or the new one)."""
    _atomic_write(path, _line(COLUMNS) + "".join(_row_line(row) for row in rows))


def spreadsheet_text(field):
    """The text :func:`spreadsheet_safe` was given (a field of grades.csv, read back)."""
    return field[1:] if field.startswith("'") and field[1:].startswith(FORMULA_STARTS) else field


def update_csv(path, rows, students):
    """Replace the rows of ``students`` in the grades.csv at ``path`` with ``rows``; return the whole table.

    Every other line stays as it was, byte for byte; the file stays sorted
    by student and notebook. Without a grades.csv at ``path``, the file gets
    ``rows`` alone. The table returned holds the rows of the others as read.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:  # the line ends as written
            text = f.read()
    except FileNotFoundError:
        write_csv(path, rows)
        return list(rows)
    except (OSError, UnicodeDecodeError) as err:
        raise GradeError(f"cannot read {path} to update its rows: {err}") from None
    header, *lines = text.splitlines(keepends=True)
    if next(csv.reader([header]), None) != list(COLUMNS):
        raise GradeError(f"{path} does not have the columns {', '.join(COLUMNS)}: grade the whole class again")
    # A row has no line break in a field (bounded() makes them spaces): one line is one record.
    kept = {}
    for line in lines:
        fields = next(csv.reader([line]), None)
        if not fields or len(fields) != len(COLUMNS):
            raise GradeError(f"{path} has a line that is not a row of grades.csv: grade the whole class again")
        record = dict(zip(COLUMNS, map(spreadsheet_text, fields)))
        if record["student_id"] not in students:
            kept[(record["student_id"], record["notebook"])] = (line, record)
    for row in rows:
        kept[(row["student_id"], row["notebook"])] = (_row_line(row), row)
    ordered = [kept[key] for key in sorted(kept)]
    _atomic_write(path, header + "".join(line for line, _ in ordered))
    return [record for _, record in ordered]
