"""The grader's parts without a sandbox: the plan's rules, reading notebooks, seeds, feedback."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnncourse.grader import core, feedback, plan
from rnncourse.grader.notebook import read_notebook_bytes, read_notebook_file
from rnncourse.grader.source import CourseError, load_assignment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rnn():
    return load_assignment(ROOT, "02_rnn")


def _notebook(folder="solutions"):
    data = (ROOT / folder / "02_rnn" / "02_rnn.ipynb").read_bytes()
    return read_notebook_bytes(data)


def _gid(cell):
    return cell["metadata"].get("nbgrader", {}).get("grade_id")


def _kinds(steps):
    return [(s.kind, s.grade_id) for s in steps]


# --- the instructor's source ------------------------------------------------------------


def test_points_and_checks_come_from_the_source(rnn):
    [nb] = rnn.notebooks
    auto = {c.grade_id: (c.points, c.checks) for c in nb.auto_cells}
    assert auto == {
        "test_rnn_step_forward": (3, ("rnn_step_forward",)),
        "test_rnn_forward": (3, ("rnn_forward",)),
        "test_rnn_step_backward": (4, ("rnn_step_backward",)),
        "test_rnn_backward": (6, ("rnn_backward",)),
    }
    assert {c.grade_id: c.points for c in nb.manual_cells} == {"q_gradcheck": 2, "q_parameter_sharing": 2}
    assert nb.max_score == 20
    assert list(nb.locked_code()) == ["imports"]


def test_an_unknown_assignment_is_an_instructor_error():
    with pytest.raises(CourseError, match="no assignment 'nope'"):
        load_assignment(ROOT, "nope")
    with pytest.raises(CourseError):
        load_assignment(ROOT, "../solutions")


# --- the plan ---------------------------------------------------------------------------


def test_test_cells_become_checks_and_locked_cells_the_course_version(rnn):
    nb = _notebook("exercises")
    for cell in nb["cells"]:
        if _gid(cell) == "imports":
            cell["source"] = "import numpy as np  # the student's edit"
        if _gid(cell) == "test_rnn_forward":
            cell["source"] = "pass  # a test cell the student emptied"
    steps, notes = plan.plan_steps(rnn.notebooks[0], nb)
    assert notes == []
    checks = [s for s in steps if s.kind == "checks"]
    assert [s.checks for s in checks] == [("rnn_step_forward",), ("rnn_forward",), ("rnn_step_backward",), ("rnn_backward",)]
    [imports] = [s for s in steps if s.grade_id == "imports"]
    assert imports.source == rnn.notebooks[0].locked_code()["imports"] and "student" not in imports.source
    # test cells never run as code, whatever they hold
    assert not any("emptied" in s.source or "check(" in s.source for s in steps)
    # the order is the notebook's: a test comes after the cell defining its function
    order = [s.grade_id for s in steps]
    assert order.index("rnn_forward") < order.index("test_rnn_forward") < order.index("rnn_step_backward")


def test_duplicated_cells_count_once_and_are_noted(rnn):
    nb = _notebook()
    i = next(i for i, c in enumerate(nb["cells"]) if _gid(c) == "test_rnn_forward")
    nb["cells"].insert(i, copy.deepcopy(nb["cells"][i]))
    nb["cells"].append(copy.deepcopy(nb["cells"][1]))  # imports again, at the end
    steps, notes = plan.plan_steps(rnn.notebooks[0], nb)
    assert [s.grade_id for s in steps].count("test_rnn_forward") == 1
    assert [s.grade_id for s in steps].count("imports") == 1
    assert any("test_rnn_forward appears 2 times" in n for n in notes)


def test_missing_cells_run_first_or_last_and_stripped_metadata_runs_everything(rnn):
    nb = _notebook()
    nb["cells"] = [c for c in nb["cells"] if _gid(c) not in ("imports", "test_rnn_backward")]
    steps, notes = plan.plan_steps(rnn.notebooks[0], nb)
    assert steps[0].grade_id == "imports" and steps[-1].grade_id == "test_rnn_backward"
    assert any("test_rnn_backward not found" in n for n in notes)
    for cell in nb["cells"]:
        cell["metadata"] = {}
    steps, notes = plan.plan_steps(rnn.notebooks[0], nb)
    assert [s.kind for s in steps[-4:]] == ["checks"] * 4 and all(s.kind == "code" for s in steps[:-4])
    assert any("every check ran after the last cell" in n for n in notes)


def test_points_claimed_by_a_submission_are_ignored(rnn):
    nb = _notebook()
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader")
        if meta:
            meta["points"] = 1000
        if _gid(cell) == "rnn_forward":
            meta.update(grade=True, locked=True, grade_id="rnn_forward")
    steps, _ = plan.plan_steps(rnn.notebooks[0], nb)
    assert [s.kind for s in steps if s.grade_id == "rnn_forward"] == ["code"]
    assert rnn.notebooks[0].max_score == 20


def test_an_unknown_kernel_is_noted(rnn):
    nb = _notebook()
    nb["metadata"]["kernelspec"] = {"name": "ir", "language": "R", "display_name": "R"}
    _, notes = plan.plan_steps(rnn.notebooks[0], nb)
    assert notes == ["the notebook's kernel is 'ir': it ran with the course's Python"]


# --- reading a file that should be a notebook ----------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a notebook"),
        (b'{"cells": 3}', "not a notebook"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    ],
)
def test_unreadable_notebooks_get_a_reason(data, message):
    with pytest.raises(ValueError, match=message):
        read_notebook_bytes(data)


def test_cells_that_cannot_be_read_are_skipped_with_a_note():
    nb, notes = read_notebook_bytes(json.dumps({"cells": [1, {"cell_type": "code", "source": 5}, {"cell_type": "code", "source": ["a", "b"]}]}).encode(), with_notes=True)
    assert nb["cells"] == [{"cell_type": "code", "source": "ab", "metadata": {}}]
    assert notes == ["2 cells could not be read and were skipped"]


def test_files_over_the_limit_links_and_fifos_are_refused(tmp_path):
    big = tmp_path / "big.ipynb"
    big.write_bytes(b" " * 2048)
    with pytest.raises(ValueError, match="the limit is 1000 bytes"):
        read_notebook_file(big, 1000)
    link = tmp_path / "link.ipynb"
    link.symlink_to(ROOT / "solutions" / "02_rnn" / "02_rnn.ipynb")
    with pytest.raises(ValueError, match="symbolic link"):
        read_notebook_file(link, 10**7)
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a plain file"):
        read_notebook_file(fifo, 10**7)  # would block forever if opened for reading without O_NONBLOCK


# --- the hidden seed --------------------------------------------------------------------


def test_hidden_seeds_depend_on_secret_assignment_student_and_check():
    seed = core.hidden_seed(b"s", "02_rnn", "alice", "rnn_forward")
    assert seed == core.hidden_seed(b"s", "02_rnn", "alice", "rnn_forward")  # re-grading: the same cases
    others = [
        core.hidden_seed(b"t", "02_rnn", "alice", "rnn_forward"),
        core.hidden_seed(b"s", "03_bptt", "alice", "rnn_forward"),
        core.hidden_seed(b"s", "02_rnn", "bob", "rnn_forward"),
        core.hidden_seed(b"s", "02_rnn", "alice", "rnn_backward"),
        core.hidden_seed(b"s", "02_rnn\0alice", "", "rnn_forward"),
    ]
    assert seed not in others and len(set(others)) == len(others)


def test_a_missing_secret_is_created_private(tmp_path):
    path = tmp_path / "secret"
    first = core.load_secret(path)
    assert len(first.strip()) == 64 and path.stat().st_mode & 0o777 == 0o600
    assert core.load_secret(path) == first


# --- the stripped package: tests/grader/test_sandbox_package.py -------------------------


# --- feedback ---------------------------------------------------------------------------


def test_feedback_escapes_and_truncates_student_text(rnn):
    hostile = '<img src=x onerror="alert(1)">' + "B" * 10000
    result = {
        "student_id": "<b>eve</b>",
        "notebook": "02_rnn",
        "status": "graded",
        "reason": hostile,
        "auto_score": 0,
        "max_score": 20,
        "cells": [{"grade_id": "test_rnn_forward", "points": 3, "auto": True, "earned": 0,
                   "checks": [{"name": "rnn_forward", "passed": False, "message": f"rnn_forward raised ValueError: {hostile}"}]}],
        "errors": [["cell 3", hostile]],
    }
    page = feedback.render(rnn, rnn.notebooks[0], result, {"score": 0, "max_score": 20, "manual_pending": 4})
    assert "<img" not in page and "<b>eve" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "B" * 2100 not in page and "0 / 3" in page and "4 points of written answers await grading by hand" in page


# --- autograded notebooks ---------------------------------------------------------------


def test_autograded_notebooks_take_metadata_from_the_source(rnn):
    from rnncourse.grader import autograded

    nb = _notebook("exercises")
    for cell in nb["cells"]:
        if _gid(cell) == "test_rnn_forward":
            cell["metadata"]["nbgrader"]["points"] = 99
            cell["metadata"]["custom"] = {"anything": "the student wrote"}
    result = {"cells": [
        {"grade_id": c.grade_id, "points": c.points, "auto": c.auto, "earned": c.points if c.grade_id == "test_rnn_forward" else 0,
         "checks": [{"name": n, "passed": c.grade_id == "test_rnn_forward", "message": "wrong <b>" if c.grade_id != "test_rnn_forward" else ""}
                    for n in c.checks]}
        for c in rnn.notebooks[0].graded]}
    built = autograded.build(rnn.notebooks[0], nb, result)
    [test] = [c for c in built["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_rnn_forward"]
    assert test["metadata"] == {"nbgrader": rnn.notebooks[0].cells[[c.grade_id for c in rnn.notebooks[0].cells].index("test_rnn_forward")].metadata["nbgrader"]}
    assert test["metadata"]["nbgrader"]["points"] == 3 and "BEGIN HIDDEN TESTS" in test["source"]  # the instructor's cell
    assert test["outputs"][0]["output_type"] == "stream"
    [failed] = [c for c in built["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_rnn_backward"]
    assert failed["outputs"][0]["output_type"] == "error"
