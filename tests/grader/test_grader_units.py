"""The grader's parts without a sandbox: the plan's rules, reading notebooks, the stripped package, seeds, feedback."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnncourse.grader import core, feedback, plan, strip
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


# --- the stripped package ---------------------------------------------------------------


def test_the_stripped_package_raises_for_assigned_functions_and_keeps_helpers(tmp_path):
    stripped = strip.build("02_rnn", tmp_path, mount_point=str(tmp_path))
    assert stripped == ["rnn_backward", "rnn_forward", "rnn_step_backward", "rnn_step_forward"]
    probe = """
import numpy as np, rnncourse, rnncourse.numpy as rn
from rnncourse.checks import get_check, make_cases, run_case
assert rnncourse.__file__.startswith(ROOT), rnncourse.__file__
x = np.ones((2, 3)); h = np.zeros((2, 4)); Wx = np.ones((3, 4)); Wh = np.eye(4); b = np.ones(4)
for call in (lambda: rn.rnn_step_forward(x, h, Wx, Wh, b), lambda: rn.rnn_forward(x[:, None], h, Wx, Wh, b),
             lambda: get_check("rnn_forward").reference({}), lambda: get_check("rnn_forward").hidden(np.random.default_rng())):
    try:
        call()
    except NotImplementedError as err:
        print("raises:", err)
    else:
        print("WORKS")
print("sigmoid", rn.sigmoid(np.zeros(1))[0], "rel_error", rn.rel_error(np.ones(2), np.ones(2)))
print("lstm kept", rn.lstm_step_forward is not None)
out = run_case("rnn_step_forward", {"x": x, "prev_h": h, "Wx": Wx, "Wh": Wh, "b": b},
               {"rnn_step_forward": lambda *a: (np.tanh(a[0] @ a[2] + a[1] @ a[3] + a[4]), None)})
print("run_case", sorted(out))
""".replace("ROOT", repr(str(tmp_path)))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "WORKS" not in done.stdout
    assert lines[0] == "raises: rnncourse.numpy.rnn.rnn_step_forward is not available while grading: the assignment asks you to write it"
    assert lines[2] == lines[3] == "raises: this part of the check runs only on the grader's side"
    assert "sigmoid 0.5 rel_error 0.0" in done.stdout and "lstm kept True" in done.stdout
    assert "run_case ['next_h']" in done.stdout  # the untrusted side of a check still works


def _probe_stripped(folder, code):
    env = {**os.environ, "PYTHONPATH": str(folder), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


_TRY = """
def attempt(name, call):
    try:
        call()
        print(name, "WORKS")
    except NotImplementedError:
        print(name, "raises")
"""


def test_twins_in_rnncourse_torch_and_wrappers_of_assigned_functions_are_stripped(tmp_path):
    """02 asks for the RNN: rnncourse.torch.RNN and stacked_rnn_forward (which calls rnn_forward) must not do it either."""
    strip.build("02_rnn", tmp_path, mount_point=str(tmp_path))
    out = _probe_stripped(tmp_path, _TRY + """
import numpy as np, torch, rnncourse.torch as rt, rnncourse.numpy as rn
attempt("torch.RNN", lambda: rt.RNN(3, 4))
attempt("torch.RNNCell", lambda: rt.RNNCell(3, 4))
attempt("torch.LSTM", lambda: rt.LSTM(3, 4)(torch.zeros(2, 5, 3)))
x, h0 = np.zeros((2, 5, 3)), np.zeros((1, 2, 4))
params = rn.init_params("rnn", 3, 4, rng=np.random.default_rng(0))
attempt("stacked_rnn_forward", lambda: rn.stacked_rnn_forward(x, h0, params, cell="rnn"))
lstm = rn.init_params("lstm", 3, 4, rng=np.random.default_rng(0))
attempt("stacked lstm", lambda: rn.stacked_rnn_forward(x, h0, lstm, cell="lstm", c0=np.zeros((1, 2, 4))))
""")
    assert out.split("\n")[:5] == [
        "torch.RNN raises", "torch.RNNCell raises", "torch.LSTM WORKS", "stacked_rnn_forward raises", "stacked lstm WORKS"
    ]


def test_declared_references_of_check_modules_are_stripped_and_given_helpers_kept(tmp_path):
    """07's check module holds its right answers (REFERENCES) and helpers the notebook imports (decode, char_lm_data)."""
    strip.build("07_applications", tmp_path, mount_point=str(tmp_path))
    out = _probe_stripped(tmp_path, _TRY + """
import numpy as np
import rnncourse.checks.applications as app
attempt("pad_sequences", lambda: app.pad_sequences([np.array([1, 2]), np.array([3])]))
attempt("REFERENCES", lambda: app.REFERENCES["seasonal_naive"](np.arange(8.0), 4, 2))
attempt("decode", lambda: app.decode(np.array([1, 2, 3])))
attempt("char_lm_data", lambda: app.char_lm_data(0, 3000))
""")
    assert out.split("\n")[:4] == ["pad_sequences raises", "REFERENCES raises", "decode WORKS", "char_lm_data WORKS"]


def test_check_modules_keep_only_what_their_run_functions_need():
    import ast

    tree = ast.parse((ROOT / "rnncourse" / "checks" / "sequence_modeling.py").read_text())
    strip.strip_check_module(tree, "rnncourse.checks.sequence_modeling")
    bodies = {n.name: ast.unparse(n) for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "runs only on the grader's side" in bodies["_perplexity_reference"]
    assert "runs only on the grader's side" in bodies["_one_hot_reference"]
    assert "runs only on the grader's side" not in bodies["_one_hot_run"]
    assert "embedding_forward(np.clip" not in ast.unparse(tree)  # a known mistake's code is gone


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
