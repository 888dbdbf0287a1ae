"""The CSV for a learning-management system: one row per student, each assignment's points and the total.

``DIR/lms.csv`` is written after each batch (one assignment: the columns
``student_id``, the assignment's name, ``total``, ``max_total``), and
``rnncourse lms DIR... --out FILE`` joins the grades of several assignments
(one graded folder each) into one file, one column per assignment.

An assignment's points for a student are the sum over the student's
notebooks of grades.csv's ``score`` (hand grades given so far included)
less its ``late_penalty`` (nbgrader's late penalty, which ``score`` does not
take off; a grades.csv without the column has none); a student with no row in a folder has an empty cell there (not
0), and the total adds what there is. ``max_total`` is the sum of the
maximum scores of the assignments joined. Ids are written as grades.csv
holds them, with the same spreadsheet-formula safety
(``rnncourse.grader.rows.spreadsheet_safe``).
"""

import csv
import io
import os
from pathlib import Path

from . import GradeError
from .report import read_grades, read_outcomes
from .rows import number, spreadsheet_safe

LMS = "lms.csv"


def late_penalty(row, folder):
    """The ``late_penalty`` of a row of grades.csv as a float (0 when the column is missing or empty)."""
    text = row.get("late_penalty") or "0"
    try:
        return float(text)
    except ValueError:
        raise GradeError(f"{folder}/grades.csv: student {row['student_id']}: the late penalty {text[:40]!r} "
                         "is not a number") from None


def assignment_points(folder):
    """``(assignment name, {student: points}, max points)`` of one graded folder (its grades.csv and checks.json)."""
    folder = Path(folder)
    grades = read_grades(folder / "grades.csv")
    name, _ = read_outcomes(folder)
    points, top = {}, {}
    for row in grades:
        points[row["student_id"]] = points.get(row["student_id"], 0.0) + row["score"] - late_penalty(row, folder)
        top[row["notebook"]] = max(top.get(row["notebook"], 0.0), row["max_score"])
    return str(name or folder.name), points, sum(top.values())


def table(folders):
    """``(header, rows)`` of the LMS CSV for the graded ``folders`` (one per assignment)."""
    columns = [assignment_points(f) for f in folders]
    names = [name for name, _, _ in columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise GradeError(f"the assignment {', '.join(repeated)} is given twice: one graded folder per assignment")
    max_total = number(sum(top for _, _, top in columns))
    students = sorted({s for _, points, _ in columns for s in points})
    rows = []
    for student in students:
        got = [points.get(student) for _, points, _ in columns]
        rows.append([student, *("" if p is None else number(p) for p in got),
                     number(sum(p for p in got if p is not None)), max_total])
    return ["student_id", *names, "total", "max_total"], rows


def write(path, folders):
    """Write the LMS CSV of ``folders`` to ``path`` (atomically); return its rows."""
    header, rows = table(folders)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([spreadsheet_safe(h) for h in header])
    for row in rows:
        writer.writerow([spreadsheet_safe(v) for v in row])
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(text.getvalue())
    os.replace(tmp, path)
    return rows
