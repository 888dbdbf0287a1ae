"""Every known wrong answer, graded as a class is: it costs its own function's points, nothing else.

For each entry of ``MISTAKES`` in test_grading_mistakes.py and the
test_mistakes_<topic>.py files, one notebook: the solution notebook with
the cells of the entry's functions replaced by the learner's (a cell holds
the learner's function and the helpers it uses). Each assignment's notebooks
are graded as one batch with ``rnncourse grade``, in the sandbox, with
hidden cases. The points a notebook loses must be exactly those of the
function with the mistake, and of the graded functions that call it, the
declared dependencies (``depends`` of :mod:`rnncourse.checks.calls`):

- ``rnn_forward``, ``lstm_forward`` and ``gru_forward`` call their step
  function, and the backward functions of the sequences their step
  backward: the notebooks ask for it (a sequence function is its step in a
  loop), so a wrong step makes the sequence wrong;
- ``attention_forward`` calls ``masked_softmax_forward`` and
  ``attention_backward`` ``masked_softmax_backward``, for the same reason.

No other function calls a graded one. A backward's points never depend on a
forward: its test gives it the cache a right forward returns.

"The function with the mistake" is the function of the entry that fails
its own test when everything it calls is right (most entries have one
wrong function; an entry about a dependency holds a right sequence
function calling a wrong step).
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exercisetools import ROOT, SOLUTIONS, in_process, learner_cell, notebook, read_notebook, right_answers
from rnncourse.checks import assignment_points, assignments, checks_of, get_check

pytestmark = pytest.mark.slow

SECRET = b"the fixed secret of the mistakes batch\n"


def _all_mistakes():
    import test_grading_mistakes

    return test_grading_mistakes.all_mistakes()


def dependents(name):
    """The graded functions that call ``name`` (its declared dependents)."""
    return {spec.name for a in assignments() for spec in checks_of(a) if name in spec.call.depends}


def wrong_functions(functions, right):
    """The functions of an entry that fail their own visible test, everything they call being right."""
    wrong = set()
    for name, fn in functions.items():
        original = getattr(fn, "unbound", fn)
        from exercisetools import calling

        namespace = {**right, name: calling(original, **{d: right[d] for d in get_check(name).call.depends})}
        if in_process(name, namespace)[0] is False:
            wrong.add(name)
    return wrong


def _submission(assignment, functions):
    """The solution notebook with the cells of ``functions`` replaced by the learner's."""
    nb = read_notebook(notebook(SOLUTIONS, assignment))
    graded = {f for spec in checks_of(assignment) for f in spec.functions}
    for cell in nb["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in functions:
            cell["source"] = learner_cell(grade_id, functions[grade_id], graded)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every mistake notebook graded, one ``rnncourse grade`` batch per assignment: {student: (entry, grades)}."""
    from nbgrader.api import Gradebook

    base = tmp_path_factory.mktemp("mistakes")
    (base / "secret").write_bytes(SECRET)
    entries = {}
    for k, (name, functions, says) in enumerate(_all_mistakes()):
        assignment = get_check(name).assignment
        student = f"m{k:03d}_{name}"
        folder = base / assignment / student
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_text(json.dumps(_submission(assignment, functions)))
        entries[student] = (assignment, name, functions, says)
    results = {}
    for assignment in sorted({a for a, *_ in entries.values()}):
        db = f"sqlite:///{base / f'{assignment}.db'}"
        command = [
            sys.executable, "-m", "rnncourse", "grade", assignment, str(base / assignment), "--out", str(base / f"out_{assignment}"),
            "--db", db, "--secret-file", str(base / "secret"), "--workers", "2", "--no-progress",
        ]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        rows = {r["student_id"]: r for r in csv.DictReader(open(base / f"out_{assignment}" / "grades.csv"))}
        with Gradebook(db, course_id="rnncourse") as gb:
            for student, (a, *_rest) in entries.items():
                if a != assignment:
                    continue
                grades = {g.name: g.auto_score for g in gb.find_submission_notebook(a, a, student).grades if g.auto_score is not None}
                results[student] = (entries[student], rows[student], grades)
    return results


def test_every_mistake_costs_its_functions_points_and_those_of_its_declared_dependents(graded):
    right = right_answers()
    problems = []
    for student, ((assignment, name, functions, says), row, grades) in sorted(graded.items()):
        wrong = wrong_functions(functions, right)
        assert wrong, f"{student}: no function of the entry fails its own test"
        lost = wrong | {d for w in wrong for d in dependents(w)}
        points = assignment_points(assignment).auto
        expected = {f"test_{f}": (0 if f in lost else points[f]) for f in points}
        if row["status"] != "graded" or grades != expected:
            problems.append(f"{student} ({says!r}): {row['status']} {row['reason'][:200]}; got {grades}, expected {expected}")
    assert not problems, "\n".join(problems)


def test_the_declared_dependencies_are_the_ones_the_notebooks_ask_for():
    declared = {spec.name: set(spec.call.depends) for a in assignments() for spec in checks_of(a) if spec.call.depends}
    assert declared == {
        "rnn_forward": {"rnn_step_forward"},
        "rnn_backward": {"rnn_step_backward"},
        "lstm_forward": {"lstm_step_forward"},
        "lstm_backward": {"lstm_step_backward"},
        "gru_forward": {"gru_step_forward"},
        "gru_backward": {"gru_step_backward"},
        "attention_forward": {"masked_softmax_forward"},
        "attention_backward": {"masked_softmax_backward"},
    }
