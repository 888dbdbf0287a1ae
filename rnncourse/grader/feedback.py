"""The feedback page of one submitted notebook: ``<out>/feedback/<student>/<notebook>.html``.

It shows each test's name, its points and the course's message (from
:func:`rnncourse.checks.judge`: which output is wrong, on which kind of
input, and the known mistake when recognised), the submission time and
lateness (with the late penalty, when one applies), the written answers (the
points and the comment given by hand, or that they await grading, or grading
again when the answer changed since), the errors the student's own cells raised, and every stop:
which cell (or which check) stopped the sandbox, why, and which tests were
still graded after it in a fresh sandbox. It never
holds a test cell's source, a hidden test or a solution: nothing of the
instructor's notebook but cell names and points goes into it. Every text is
HTML-escaped, and text that comes from the student's code (error messages,
file names) is truncated. The page is the same for the same result and hand grades (no
date in it), so a re-run rewrites it identically.
"""

import html
import os
from pathlib import Path

TEXT_LIMIT = 2000

_STYLE = """
body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.4rem 0.6rem; text-align: left; vertical-align: top; }
tr.pass td:first-child { border-left: 4px solid #2a7; }
tr.fail td:first-child { border-left: 4px solid #c33; }
pre { white-space: pre-wrap; margin: 0; font-size: 0.9rem; }
.status { color: #555; }
"""


def _text(value, limit=TEXT_LIMIT):
    value = str(value)
    if len(value) > limit:
        value = value[: limit - 3] + "..."
    return html.escape(value, quote=True)


def _points(x):
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:g}"


def duration(seconds):
    """``seconds`` in words for a person: ``1 day 2 h 3 min 4 s`` (whole seconds; the parts that are not zero)."""
    left = int(round(float(seconds)))
    days, left = divmod(left, 86400)
    hours, left = divmod(left, 3600)
    minutes, secs = divmod(left, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(filter(None, parts)) or "0 s"


def _lateness(row):
    """The sentence on the submission time and lateness, from the row ("" when the time is unknown)."""
    if not row.get("submitted_at"):
        return ""
    text = f"Submitted {row['submitted_at']}"
    late_by = row.get("late_by", "")
    if late_by == "":
        return text + "."
    if float(late_by) <= 0:
        return text + ", on time."
    text += f", {duration(late_by)} after the due date"
    penalty = float(row.get("late_penalty") or 0)
    if penalty:
        left = float(row["score"]) - penalty
        return text + f": a late penalty of {_points(penalty)} points, so {_points(left)} points count."
    return text + " (no late penalty)."


def render(assignment, notebook, result, row, hand=None):
    """The page as a string; ``hand``: ``{grade_id: (points, comment)}`` of the written answers graded by hand."""
    e = _text
    student = result["student_id"]
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Feedback: {e(assignment.name)} / {e(notebook.filename)} ({e(student, 200)})</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(assignment.name)}: {e(notebook.filename)}</h1>",
        f"<p>Student: <b>{e(student, 200)}</b></p>",
    ]
    pending = float(row.get("manual_pending", 0))
    score_line = f"Score: <b>{_points(row['score'])}</b> of {_points(row['max_score'])} points"
    if pending:
        score_line += f"; {_points(pending)} points of written answers await grading by hand"
    lines.append(f"<p>{score_line}.</p>")
    lateness = _lateness(row)
    if lateness:
        lines.append(f'<p class="lateness">{e(lateness)}</p>')
    status = f"Status: {e(result['status'])}."
    if result["reason"]:
        status += f" {e(result['reason'])}"
    lines.append(f'<p class="status">{status}</p>')

    stops = result.get("stops") or []
    if stops:
        lines += ["<h2>Where the notebook stopped</h2>", "<ul>"]
        for stop in stops:
            after = stop.get("graded_after") or []
            graded = f" Graded after it: {e(', '.join(after))}." if after else ""
            lines.append(f"<li>{e(stop['what'])}: {e(stop['then'])}.{graded}</li>")
        lines.append("</ul>")

    auto = [c for c in result["cells"] if c["auto"]]
    if auto:
        lines += ["<h2>Tests</h2>", "<table>", "<tr><th>Test</th><th>Points</th><th>Result</th></tr>"]
        for cell in auto:
            passed = cell["earned"] == cell["points"] and all(c["passed"] for c in cell["checks"])
            messages = [c["message"] for c in cell["checks"] if not c["passed"] and c["message"]]
            verdict = "passed" if passed else "\n\n".join(messages) or "failed"
            checks = ", ".join(c["name"] for c in cell["checks"])
            lines.append(
                f'<tr class="{"pass" if passed else "fail"}"><td>{e(cell["grade_id"])}<br><small>{e(checks)}</small></td>'
                f"<td>{_points(cell['earned'])} / {_points(cell['points'])}</td><td><pre>{e(verdict)}</pre></td></tr>"
            )
        lines.append("</table>")
    manual = [c for c in result["cells"] if not c["auto"]]
    if manual:
        lines += ["<h2>Written answers</h2>", "<ul>"]
        for cell in manual:
            given = (hand or {}).get(cell["grade_id"])
            if given is None:
                lines.append(f"<li>{e(cell['grade_id'])} ({_points(cell['points'])} points): to be graded by hand.</li>")
                continue
            points, comment = given
            if points is None:
                lines.append(f"<li>{e(cell['grade_id'])} ({_points(cell['points'])} points): your answer changed since it "
                             "was graded by hand; to be graded again.</li>")
                continue
            remark = f'<br>Comment: <pre class="comment">{e(comment)}</pre>' if comment else ""
            lines.append(f"<li>{e(cell['grade_id'])}: {_points(points)} / {_points(cell['points'])}, graded by hand.{remark}</li>")
        lines.append("</ul>")
    if result.get("errors"):
        lines += ["<h2>Errors raised by your cells</h2>", "<ul>"]
        for label, error in result["errors"]:
            lines.append(f"<li>{e(label, 200)}: <code>{e(error, 500)}</code></li>")
        lines.append("</ul>")
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def write(out, assignment, notebook, result, row, hand=None):
    """Write the page of ``result`` (``hand``: see :func:`render`); returns its path."""
    folder = Path(out) / "feedback" / result["student_id"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{notebook.name}.html"
    tmp = folder / f".{notebook.name}.html.tmp"
    tmp.write_text(render(assignment, notebook, result, row, hand), encoding="utf-8")
    os.replace(tmp, path)
    return path
