"""nbgrader's *autograded* notebooks, so that formgrader can show a submission and its written answers.

With ``--autograded DIR`` (typically ``<course>/autograded``), the grader
writes ``DIR/<student>/<assignment>/<notebook>.ipynb`` as ``nbgrader
autograde`` would: the student's cells in the student's order, with

- the nbgrader metadata of every cell matched by ``grade_id`` taken from the
  instructor's source (never the submission's: points, flags), and the
  metadata of unmatched or duplicated cells removed;
- locked cells (the import cell, the test cells) in the source's version;
- in each auto-graded test cell, one output: a stream saying it passed, or
  an error output holding the course's message, so that nbgrader's own
  ``determine_grade`` gives the cell the points this grader gave;
- graded cells the submission lacks appended at the end (an empty answer,
  or the test cell with its result).

Student cells keep no outputs and no metadata: the grader does not keep what
student code printed. Formgrader renders markdown cells (and raw cells) as
HTML without sanitizing them, so a student's markdown cell is rendered here
first, with the renderer formgrader uses (nbconvert's
``markdown2html_mistune``), and the HTML is sanitised by nh3 (the Ammonia
sanitiser: an allow-list of tags and attributes; links only to ``http``,
``https`` and ``mailto``): the cell then holds that HTML, on one line inside
one ``<div>``, which the renderer passes through unchanged (checked for each
cell: when it would not, the cell shows the student's text as escaped plain
text). Raw cells show their text the same escaped way. Code is shown escaped
by formgrader itself.
"""

import copy
import hashlib
import html
import json
import os
from pathlib import Path

import nh3

from .notebook import cell_source, nbgrader_meta

# Rendering markdown costs time on hostile input (nested brackets): a cell longer than MARKDOWN_LIMIT,
# or past MARKDOWN_BUDGET characters of one notebook, is shown as plain text instead.
MARKDOWN_LIMIT = 20_000
MARKDOWN_BUDGET = 200_000
PLAIN_LIMIT = 200_000  # characters of one cell shown as plain text
URL_SCHEMES = {"http", "https", "mailto"}
_WRAPPER = '<div class="rnncourse-student-cell">{}</div>'


def _render(markdown):
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(markdown)


def _one_block(fragment):
    """The HTML ``fragment`` as one markdown HTML block (one line in one div), or None if the renderer would change it."""
    block = _WRAPPER.format(fragment.replace("\r", "&#13;").replace("\n", "&#10;"))
    try:
        same = _render(block).strip() == block
    except Exception:  # noqa: BLE001 - whatever the renderer makes of it, it is not shown
        same = False
    return block if same else None


def _plain(text):
    if len(text) > PLAIN_LIMIT:
        text = f"{text[:PLAIN_LIMIT]}\n[... {len(text) - PLAIN_LIMIT} more characters not shown]"
    return _one_block(f"<pre>{html.escape(text, quote=True)}</pre>") or _WRAPPER.format("(this cell cannot be shown)")


def safe_markdown(text, *, markdown=True):
    """A student's markdown (or, with ``markdown=False``, raw) cell as markdown that formgrader shows safely."""
    if markdown and len(text) <= MARKDOWN_LIMIT:
        try:
            clean = nh3.clean(_render(text), url_schemes=URL_SCHEMES)
        except Exception:  # noqa: BLE001 - a renderer failure shows the text as it is
            clean = None
        if clean is not None:
            block = _one_block(clean.strip())
            if block is not None:
                return block
    return _plain(text)


def _test_output(cell_result):
    failed = [c for c in cell_result["checks"] if not c["passed"]]
    if not failed:
        names = ", ".join(c["name"] for c in cell_result["checks"])
        return {"output_type": "stream", "name": "stdout", "text": f"{names}: every case passes (graded outside the sandbox).\n"}
    message = "\n\n".join(c["message"] for c in failed if c["message"]) or "failed"
    return {"output_type": "error", "ename": "CheckFailure", "evalue": message, "traceback": message.splitlines()}


def build(source_notebook, submission, result):
    """The autograded notebook (a dict) of ``submission`` (plain data) given its ``result``."""
    source = {c.grade_id: c for c in source_notebook.cells}
    results = {c["grade_id"]: c for c in result["cells"]}
    seen = set()
    cells = []
    budget = [MARKDOWN_BUDGET]

    def make(cell_type, text, metadata, grade_id=None, trusted=False):
        if cell_type != "code" and not trusted:
            render = cell_type == "markdown" and len(text) <= budget[0]
            budget[0] -= len(text) if render else 0
            text = safe_markdown(text, markdown=render)
            cell_type = "markdown"
        cell = {"cell_type": cell_type, "metadata": metadata, "source": text}
        if cell_type == "code":
            cell["execution_count"] = None
            cell["outputs"] = [_test_output(results[grade_id])] if grade_id in results and results[grade_id]["auto"] else []
        return cell

    def from_source(grade_id, text):
        ref = source[grade_id]
        meta = {"nbgrader": copy.deepcopy(ref.metadata.get("nbgrader", {}))}
        if ref.locked:
            return make(ref.cell_type, ref.source, meta, grade_id, trusted=True)
        return make(ref.cell_type, text, meta, grade_id)

    for cell in submission["cells"]:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if isinstance(grade_id, str) and grade_id in source and grade_id not in seen:
            seen.add(grade_id)
            cells.append(from_source(grade_id, cell_source(cell) if source[grade_id].cell_type == cell.get("cell_type") else ""))
        elif cell.get("cell_type") in ("code", "markdown", "raw"):
            cells.append(make(cell["cell_type"], cell_source(cell), {}))
    for grade_id, ref in source.items():
        if grade_id not in seen and (ref.graded or ref.task):
            cells.append(from_source(grade_id, ""))
    metadata = json.loads(source_notebook.path.read_text()).get("metadata", {})
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 4}


def answer_digests(source_notebook, submission):
    """``{grade_id: sha256 hex}`` of the text of each cell graded by hand, as :func:`build` gives it to formgrader.

    The text is the submission's first cell with that ``grade_id``, when it
    has the source cell's type, else ``""`` (as for a missing cell). The
    gradebook compares these digests between runs: an answer whose text
    changed since it was graded by hand is to be graded again.
    """
    manual = {c.grade_id: c for c in source_notebook.graded if not c.auto}
    texts = dict.fromkeys(manual, "")
    seen = set()
    for cell in submission["cells"]:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if isinstance(grade_id, str) and grade_id in manual and grade_id not in seen:
            seen.add(grade_id)
            texts[grade_id] = cell_source(cell) if manual[grade_id].cell_type == cell.get("cell_type") else ""
    return {g: hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest() for g, text in texts.items()}


def write(folder, assignment, source_notebook, submission, result):
    """Write the autograded notebook under ``folder/<student>/<assignment>/``; returns its path."""
    target = Path(folder) / result["student_id"] / assignment
    target.mkdir(parents=True, exist_ok=True)
    path = target / source_notebook.filename
    tmp = target / f".{source_notebook.filename}.tmp"
    tmp.write_text(json.dumps(build(source_notebook, submission, result), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
