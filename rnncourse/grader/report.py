"""The class report: ``DIR/report.html``, built from ``DIR/grades.csv`` and ``DIR/checks.json``.

After a batch, :func:`~rnncourse.grader.core.grade` writes ``DIR/checks.json``
(:func:`write_outcomes`: each graded notebook's status and, per test cell,
each check's outcome and message, as plain JSON), then the report
(:func:`write_report`) and ``DIR/lms.csv`` (:mod:`rnncourse.grader.lms`);
``rnncourse report DIR`` builds the report again from those two files alone
(after hand grading and ``--student``, say).

The report is one self-contained HTML file, to open offline: no script, no
remote asset, plots as inline SVG drawn here. It shows

- the statuses (how many notebooks ``graded``, ``timeout``, ``missing``, ...)
  and the rows not graded in full, with their reasons;
- the distribution of the students' total scores (a histogram of
  ``HISTOGRAM_BINS`` equal bins from 0 to the total of the maximum scores);
- each check's pass rate (a bar chart and a table), over the notebooks that
  ran (statuses ``missing``, ``invalid notebook`` and ``error`` ran nothing:
  they are left out of the rates);
- each check's most frequent mistakes (:func:`mistake_of`): a known mistake
  that the check recognised and named in its message, else the kind of
  failure.

grades.csv is read by its columns' names (extra columns are fine). Every
text in the page is HTML-escaped: student ids (as the grader made them),
reasons and messages may come from a submission.
"""

import csv
import html
import json
import os
import re
from pathlib import Path

from . import GradeError
from .rows import spreadsheet_text

OUTCOMES = "checks.json"
REPORT = "report.html"
OUTCOMES_FORMAT = 1
MESSAGE_LIMIT = 2000  # characters of one check's message kept in checks.json
HISTOGRAM_BINS = 10
MISTAKES_SHOWN = 3  # the most frequent mistakes shown per check
NOT_RUN = ("missing", "invalid notebook", "error")  # statuses of notebooks whose checks never ran
NEEDED_COLUMNS = ("student_id", "notebook", "score", "max_score", "status", "reason")

# The kinds of failure that are not a named mistake.
NOT_WRITTEN = "not written yet (raises NotImplementedError)"
STOPPED = "stopped the sandbox (see the reasons)"
NOT_RUN_LABEL = "not run"
OTHER = "another error (no known mistake recognised)"
#: the judge's line when a check's function calls another that fails its own test (or is not defined)
_CALLS_FAILING = re.compile(r"calls (\w+), which (fails its own test|is not defined)")
_WRONG_OUTPUTS = re.compile(r"^[A-Za-z_][\w]*(?:(?:, | and )[A-Za-z_][\w]*)* (?:is|are) wrong")


# --- checks.json ------------------------------------------------------------------------


def outcome(result):
    """The part of one grading result (:func:`rnncourse.grader.core.grade`'s) that goes to checks.json."""
    cells = []
    for cell in result["cells"]:
        checks = [{"name": c["name"], "passed": bool(c["passed"]), "message": str(c["message"])[:MESSAGE_LIMIT]}
                  for c in cell["checks"]]
        cells.append({"grade_id": cell["grade_id"], "points": cell["points"], "earned": cell["earned"],
                      "auto": bool(cell["auto"]), "checks": checks})
    return {"student_id": result["student_id"], "notebook": result["notebook"], "status": result["status"], "cells": cells}


def read_outcomes(out):
    """``(assignment, [outcome, ...])`` from ``out/checks.json``; ``(None, [])`` when it is missing or unreadable."""
    try:
        data = json.loads((Path(out) / OUTCOMES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, []
    if not isinstance(data, dict) or data.get("format") != OUTCOMES_FORMAT or not isinstance(data.get("results"), list):
        return None, []
    return data.get("assignment"), [r for r in data["results"] if isinstance(r, dict)]


def write_outcomes(out, assignment, results, students=None):
    """Write ``out/checks.json`` (atomically) from the batch's ``results``; return the outcomes written.

    With ``students`` (a re-grading of those students alone), the outcomes
    of every other student already in the file are kept.
    """
    fresh = [outcome(r) for r in results]
    if students is not None:
        known, kept = read_outcomes(out)
        if known == assignment:
            fresh = [r for r in kept if r.get("student_id") not in students] + fresh
    fresh.sort(key=lambda r: (str(r.get("student_id")), str(r.get("notebook"))))
    data = {"format": OUTCOMES_FORMAT, "assignment": assignment, "results": fresh}
    _atomic_write(Path(out) / OUTCOMES, json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    return fresh


def _atomic_write(path, text):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --- grades.csv, read back ----------------------------------------------------------------


def read_grades(path):
    """The rows of a grades.csv as dicts (text as the grader gave it, scores as floats), read by column name."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in NEEDED_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise GradeError(f"{path} has no column {', '.join(missing)}: is it a grades.csv of rnncourse grade?")
            table = []
            for row in reader:
                record = {k: spreadsheet_text(v) if isinstance(v, str) else "" for k, v in row.items() if k is not None}
                try:
                    record["score"], record["max_score"] = float(record["score"]), float(record["max_score"])
                except ValueError:
                    raise GradeError(f"{path}, line {reader.line_num}: the score is not a number") from None
                table.append(record)
            return table
    except FileNotFoundError:
        raise GradeError(f"there is no {path}: grade the class first (rnncourse grade)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise GradeError(f"cannot read {path}: {err}") from None


# --- the numbers ----------------------------------------------------------------------------


def status_counts(grades):
    """``{status: number of rows}``, in the order of ``rnncourse.grader.STATUSES`` (then any other)."""
    from . import STATUSES

    counts = {}
    for row in grades:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    order = {s: k for k, s in enumerate(STATUSES)}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def student_totals(grades):
    """``{student: (score, max_score)}`` summed over the student's notebooks, for students with no ``error`` row."""
    totals, broken = {}, set()
    for row in grades:
        if row["status"] == "error":
            broken.add(row["student_id"])
        score, top = totals.get(row["student_id"], (0.0, 0.0))
        totals[row["student_id"]] = (score + row["score"], top + row["max_score"])
    return {s: t for s, t in sorted(totals.items()) if s not in broken}


def histogram(totals, bins=HISTOGRAM_BINS):
    """``(edges, counts)``: ``bins`` equal bins from 0 to the largest maximum total; the last bin holds its right edge."""
    top = max((t for _, t in totals.values()), default=0.0) or 1.0
    edges = [top * k / bins for k in range(bins + 1)]
    counts = [0] * bins
    for score, _ in totals.values():
        counts[min(bins - 1, max(0, int(score / top * bins)))] += 1
    return edges, counts


def mistake_of(check, message):
    """The mistake a failed check's message names: the known mistake the check recognised, else the kind of failure.

    A known mistake is one of the check's ``mistakes`` (``rnncourse.checks``),
    whose message the judge puts on a line of its own; otherwise: not written
    yet, a stop of the sandbox, not run, which outputs are wrong, a call of
    another function that fails its own test, or another error (the
    learner's exception: its text is not used as a label).
    """
    lines = [line.strip() for line in str(message).splitlines()]
    try:
        from rnncourse.checks import get_check

        known = [m.message for m in get_check(check).mistakes]
    except Exception:  # noqa: BLE001 - an unknown check (a course of another version): no named mistakes
        known = []
    for text in known:
        if text in lines[1:]:
            return text
    first = lines[0] if lines else ""
    if first.startswith(f"{check}: no points for this test"):
        return STOPPED
    if first.startswith(f"{check}: not run") or first.startswith(f"{check}: the outputs could not be read"):
        return NOT_RUN_LABEL
    body = lines[1] if len(lines) > 1 else ""
    if "is not written yet" in body or "which is not written yet" in first:
        return NOT_WRITTEN
    if _WRONG_OUTPUTS.match(body):
        return body.split(" (")[0]
    calls = _CALLS_FAILING.search(body)
    if calls:
        return f"calls {calls.group(1)}, which {calls.group(2)}"
    return OTHER


def check_stats(outcomes):
    """Per check, in the order met: ``{check: {"cell", "ran", "passed", "mistakes": {label: n}}}``.

    Counts the notebooks that ran (a status not in ``NOT_RUN``); a check
    called by several test cells counts once per cell.
    """
    stats = {}
    for result in outcomes:
        if result.get("status") in NOT_RUN:
            continue
        for cell in result.get("cells", ()):
            for check in cell.get("checks", ()):
                key = (check["name"], cell["grade_id"])
                entry = stats.setdefault(key, {"check": check["name"], "cell": cell["grade_id"], "ran": 0, "passed": 0, "mistakes": {}})
                entry["ran"] += 1
                if check["passed"]:
                    entry["passed"] += 1
                else:
                    label = mistake_of(check["name"], check["message"])
                    entry["mistakes"][label] = entry["mistakes"].get(label, 0) + 1
    return list(stats.values())


def top_mistakes(entry, n=MISTAKES_SHOWN):
    """The ``n`` most frequent mistakes of one check's stats: ``[(label, count), ...]``, most frequent first."""
    return sorted(entry["mistakes"].items(), key=lambda kv: (-kv[1], kv[0]))[:n]


# --- the plots (inline SVG) -----------------------------------------------------------------


def _f(x):
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _points(x):
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}".rstrip("0").rstrip(".")


def histogram_svg(edges, counts):
    """The histogram as an inline SVG: one ``rect`` per bin (``data-count``), counts above, edges below."""
    e = html.escape
    width, height, left, bottom, top_pad = 640, 260, 40, 40, 20
    bar_w = (width - left - 10) / len(counts)
    scale = (height - bottom - top_pad) / max(max(counts, default=0), 1)
    parts = [f'<svg class="plot" id="histogram" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Distribution of the students\' total scores">']
    base = height - bottom
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#444"/>')
    for k, n in enumerate(counts):
        x, h = left + k * bar_w, n * scale
        label = f"{_points(edges[k])} to {_points(edges[k + 1])} points: {n} student{'s' if n != 1 else ''}"
        parts.append(f'<rect x="{_f(x + 2)}" y="{_f(base - h)}" width="{_f(bar_w - 4)}" height="{_f(h)}" fill="#3a7bd5" '
                     f'data-count="{n}"><title>{e(label)}</title></rect>')
        parts.append(f'<text x="{_f(x + bar_w / 2)}" y="{_f(base - h - 4)}" text-anchor="middle" font-size="12">{n}</text>')
    for k, edge in enumerate(edges):
        parts.append(f'<text x="{_f(left + k * bar_w)}" y="{base + 16}" text-anchor="middle" font-size="11">{_points(edge)}</text>')
    parts.append(f'<text x="{_f(left + (width - left) / 2)}" y="{height - 6}" text-anchor="middle" font-size="12">total score (points)</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def pass_rate_svg(stats):
    """Each check's pass rate as horizontal bars (``data-rate``, in %), one row per check and test cell."""
    e = html.escape
    row_h, label_w, bar_max, pad = 22, 260, 340, 10
    width, height = label_w + bar_max + 60, pad * 2 + row_h * max(len(stats), 1)
    parts = [f'<svg class="plot" id="pass-rates" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Pass rate of each check">']
    for k, entry in enumerate(stats):
        rate = 100.0 * entry["passed"] / entry["ran"] if entry["ran"] else 0.0
        y = pad + k * row_h
        name = entry["check"] if len(entry["check"]) <= 36 else entry["check"][:33] + "..."
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12">{e(name)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_max}" height="{row_h - 6}" fill="#eee"/>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{_f(bar_max * rate / 100)}" height="{row_h - 6}" fill="#2a7" '
                     f'data-rate="{_f(rate)}"><title>{e(entry["check"])} ({e(entry["cell"])}): '
                     f'{entry["passed"]} of {entry["ran"]} pass</title></rect>')
        parts.append(f'<text x="{label_w + bar_max + 6}" y="{y + 15}" font-size="12">{rate:.0f}%</text>')
    parts.append("</svg>")
    return "\n".join(parts)


# --- the page -------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
td { overflow-wrap: anywhere; }  /* long ids, reasons and messages wrap on a phone */
td.n, td.short { white-space: nowrap; }
td.n { text-align: right; }
svg.plot { max-width: 100%; height: auto; display: block; margin: 0.5rem 0; }
.note { color: #555; }
"""


def render(assignment, grades, outcomes):
    """The report's HTML (a string) from grades.csv's rows and checks.json's outcomes; the same input gives the same page."""
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    title = f"Class report: {assignment}" if assignment else "Class report"
    students = sorted({row["student_id"] for row in grades})
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{len(students)} student{'s' if len(students) != 1 else ''}, {len(grades)} notebook"
        f"{'s' if len(grades) != 1 else ''} (rows of grades.csv).</p>",
    ]

    lines += ["<h2>Statuses</h2>", "<table>", "<tr><th>Status</th><th>Notebooks</th></tr>"]
    lines += [f'<tr><td>{e(s)}</td><td class="n">{n}</td></tr>' for s, n in status_counts(grades).items()]
    lines.append("</table>")
    unfinished = [row for row in grades if row["status"] != "graded"]
    if unfinished:
        lines += ["<p>Not graded in full:</p>", "<table>", "<tr><th>Student</th><th>Notebook</th><th>Status</th><th>Reason</th></tr>"]
        lines += [f"<tr><td>{e(r['student_id'])}</td><td>{e(r['notebook'])}</td><td class='short'>{e(r['status'])}</td><td>{e(r['reason'])}</td></tr>"
                  for r in unfinished]
        lines.append("</table>")

    totals = student_totals(grades)
    lines.append("<h2>Distribution of scores</h2>")
    if totals:
        edges, counts = histogram(totals)
        scores = sorted(s for s, _ in totals.values())
        mid = len(scores) // 2
        median = scores[mid] if len(scores) % 2 else (scores[mid - 1] + scores[mid]) / 2
        lines.append(histogram_svg(edges, counts))
        lines.append(f"<p>Total score of each student (every notebook, hand grades given so far included), out of "
                     f"{_points(edges[-1])}: mean {_points(round(sum(scores) / len(scores), 2))}, median "
                     f"{_points(median)}, lowest {_points(scores[0])}, highest {_points(scores[-1])}.</p>")
    skipped = len(students) - len(totals)
    if skipped:
        lines.append(f'<p class="note">{skipped} student{"s" if skipped != 1 else ""} with a notebook the grader failed on '
                     "(status error) left out: grade them again.</p>")

    lines.append("<h2>Checks</h2>")
    stats = check_stats(outcomes)
    if not stats:
        lines.append(f'<p class="note">No per-check outcomes ({OUTCOMES} is missing, or no notebook ran).</p>')
    else:
        lines.append("<p>Pass rate of each check over the notebooks that ran (statuses missing, invalid notebook and "
                     "error are left out), and its most frequent mistakes: a mistake the check recognises and names, "
                     "else the kind of failure.</p>")
        lines.append(pass_rate_svg(stats))
        lines += ["<table>", "<tr><th>Check</th><th>Test cell</th><th>Pass</th><th>Most frequent mistakes</th></tr>"]
        for entry in stats:
            mistakes = "<br>".join(f"{n} &times; {e(label)}" for label, n in top_mistakes(entry)) or "&ndash;"
            lines.append(f"<tr><td>{e(entry['check'])}</td><td>{e(entry['cell'])}</td>"
                         f'<td class="n">{entry["passed"]} / {entry["ran"]}</td><td>{mistakes}</td></tr>')
        lines.append("</table>")
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def write_report(out):
    """Build ``out/report.html`` (atomically) from ``out/grades.csv`` and ``out/checks.json``; return its path."""
    out = Path(out)
    grades = read_grades(out / "grades.csv")
    assignment, outcomes = read_outcomes(out)
    path = out / REPORT
    _atomic_write(path, render(assignment, grades, outcomes))
    return path

