"""Every known wrong answer, graded as a class is: it costs its own function's points, nothing else.

For the entries of ``MISTAKES`` in test_grading_mistakes.py and the
test_mistakes_<topic>.py files, notebooks: the solution notebook with the
cells of an entry's functions replaced by the learner's (a cell holds the
learner's function and the helpers it uses). Entries that replace different
functions, none calling another, share a notebook, so that a few dozen
notebooks hold them all; the cells that call no graded function and define
none (the notebooks' experiments) are left out. Each assignment's notebooks
are graded as one batch with ``rnncourse grade``, in the sandbox, with
hidden cases.

A notebook must lose the points of every function with a mistake, and no
other points but those of the graded functions that call one of them, the
declared dependencies (``depends`` of :mod:`rnncourse.checks.calls`):

- ``rnn_forward``, ``lstm_forward`` and ``gru_forward`` call their step
  function, and the backward functions of the sequences their step
  backward: the notebooks ask for it (a sequence function is its step in a
  loop), so a wrong step makes the sequence wrong wherever its mistake shows;
- ``attention_forward`` calls ``masked_softmax_forward`` and
  ``attention_backward`` ``masked_softmax_backward``, for the same reason (a
  softmax wrong only on huge scores or empty sequences leaves attention's
  cases right: then attention keeps its points).
- ``parallel_scan`` calls ``compose_affine`` and ``min_gru_forward``
  ``parallel_scan`` (08): the scan combines with the learner's operator, and
  minGRU runs on the learner's scan; ``linear_attention_rnn_forward``
  (09) calls ``linear_attention_rnn_step``, a sequence being its step in a loop.

No other function calls a graded one. A backward's points never depend on a
forward: its test gives it the cache a right forward returns.

"The function with the mistake" is the function of an entry that fails
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

from exercisetools import ROOT, SOLUTIONS, calling, in_process, learner_cell, notebook, read_notebook, right_answers
from rnncourse.checks import assignment_points, assignments, checks_of, get_check

pytestmark = pytest.mark.slow

SECRET = b"the fixed secret of the mistakes batch\n"


def _all_mistakes():
    import test_grading_mistakes

    return test_grading_mistakes.all_mistakes()


def dependents(name):
    """The graded functions that call ``name``, directly or through another (08: ``min_gru_forward`` calls
    ``parallel_scan``, which calls ``compose_affine``): its declared dependents."""
    found, todo = set(), [name]
    while todo:
        callee = todo.pop()
        for spec in (spec for a in assignments() for spec in checks_of(a) if callee in spec.call.depends):
            if spec.name not in found:
                found.add(spec.name)
                todo.append(spec.name)
    return found


def wrong_functions(functions, right):
    """The functions of an entry that fail their own visible test, everything they call being right."""
    wrong = set()
    for name, fn in functions.items():
        original = getattr(fn, "unbound", fn)
        namespace = {**right, name: calling(original, **{d: right[d] for d in get_check(name).call.depends})}
        if in_process(name, namespace)[0] is False:
            wrong.add(name)
    return wrong


def _submission(assignment, functions):
    """The solution notebook with the cells of ``functions`` replaced by the learner's, its experiments left out."""
    nb = read_notebook(notebook(SOLUTIONS, assignment))
    graded = {f for spec in checks_of(assignment) for f in spec.functions}
    cells = []
    for cell in nb["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell["cell_type"] == "code" and grade_id is None:
            continue  # an experiment: it costs time and earns no points
        if grade_id in functions:
            cell["source"] = learner_cell(grade_id, functions[grade_id], graded)
        cells.append(cell)
    nb["cells"] = cells
    return nb


def _related(a, b):
    """Whether the functions ``a`` and ``b`` are one, or one calls the other."""
    return a == b or b in get_check(a).call.depends or a in get_check(b).call.depends


def pack(entries):
    """The entries in groups whose functions differ and do not call one another: one notebook per group."""
    groups = []
    for entry in entries:
        names = set(entry[1])
        for group in groups:
            if not any(_related(a, b) for other in group for a in other[1] for b in names):
                group.append(entry)
                break
        else:
            groups.append([entry])
    return groups


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every mistake graded, one ``rnncourse grade`` batch per assignment: [(entries, row, grades)]."""
    from nbgrader.api import Gradebook

    base = tmp_path_factory.mktemp("mistakes")
    (base / "secret").write_bytes(SECRET)
    by_assignment = {}
    for entry in _all_mistakes():
        by_assignment.setdefault(get_check(entry[0]).assignment, []).append(entry)
    results = []
    for assignment, entries in sorted(by_assignment.items()):
        notebooks = {}
        for k, group in enumerate(pack(entries)):
            functions = {name: fn for _, fns, _ in group for name, fn in fns.items()}
            student = f"m{k:03d}"
            (base / assignment / student).mkdir(parents=True)
            (base / assignment / student / f"{assignment}.ipynb").write_text(json.dumps(_submission(assignment, functions)))
            notebooks[student] = group
        db = f"sqlite:///{base / f'{assignment}.db'}"
        out = base / f"out_{assignment}"
        command = [
            sys.executable, "-m", "rnncourse", "grade", assignment, str(base / assignment), "--out", str(out),
            "--db", db, "--secret-file", str(base / "secret"), "--workers", "2", "--no-progress",
        ]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        with open(out / "grades.csv") as f:
            rows = {r["student_id"]: r for r in csv.DictReader(f)}
        with Gradebook(db, course_id="rnncourse") as gb:
            for student, group in notebooks.items():
                found = gb.find_submission_notebook(assignment, assignment, student).grades
                grades = {g.name: g.auto_score for g in found if g.auto_score is not None}
                results.append((assignment, group, rows[student], grades))
    return results


def test_every_mistake_costs_its_functions_points_and_at_most_those_of_its_declared_dependents(graded):
    right = right_answers()
    problems, seen = [], 0
    for assignment, group, row, grades in graded:
        points = assignment_points(assignment).auto
        wrong = set()
        for name, functions, _ in group:
            found = wrong_functions(functions, right)
            assert found, f"{name}: no function of the entry fails its own test"
            wrong |= found
        may_lose = wrong | {d for w in wrong for d in dependents(w)}
        lost = {f for f in points if grades.get(f"test_{f}") != points[f]}
        seen += len(group)
        if row["status"] != "graded" or not wrong <= lost <= may_lose:
            says = [entry[2] for entry in group]
            problems.append(f"{assignment} {says}: {row['status']} {row['reason'][:200]}; lost {sorted(lost)}, "
                            f"the mistakes are in {sorted(wrong)}, their dependents {sorted(may_lose - wrong)}")  # fmt: skip
    assert seen == len(_all_mistakes())
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
        "parallel_scan": {"compose_affine"},
        "min_gru_forward": {"parallel_scan"},
        "linear_attention_rnn_forward": {"linear_attention_rnn_step"},
    }
