"""The assignment notebooks: sources in solutions/, student versions in exercises/.

- exercises/ is what nbgrader generates from solutions/ now (no stale copy,
  no solution or hidden test left in it);
- each notebook's graded cells, points and header agree with rnncourse.checks;
- no notebook imports a function it asks the learner to write;
- executed top to bottom, a solution notebook scores full marks on every
  auto-graded cell, and a student notebook scores zero on every one, failing
  only with NotImplementedError and only in cells tagged ``raises-exception``;
- the student notebooks run under nbval.

Why ``--nbval-lax`` on exercises/, with ``raises-exception`` tags: a student
notebook cannot run without errors (its functions raise NotImplementedError,
so its test cells fail), and its outputs are not fixed. ``--nbval-lax``
compares no outputs; the tag, on every test cell and every cell that calls a
learner's function, lets that cell raise, and any other cell that raises
fails the run. The same tag lets a learner "Run All" in JupyterLab past a
failing test to see every result. The solutions are held to more: no error
in any cell, and full marks.
"""

import ast
import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.utils import determine_grade

from exercisetools import EXERCISES, ROOT, SOLUTIONS, load_script, nbgrader, notebook, read_notebook, source
from rnncourse.checks import assignment_points, assignments, checks_of, needs_of, written_of

SCRIPT = load_script()
ASSIGNMENTS = SCRIPT.assignments(SOLUTIONS)
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN MARK SCHEME")


def test_every_assignment_has_checks_and_a_student_version():
    assert ASSIGNMENTS == sorted(ASSIGNMENTS) and ASSIGNMENTS[:3] == ["01_sequence_modeling", "02_rnn", "03_bptt"]
    assert set(ASSIGNMENTS) == set(assignments())
    released = sorted(p.name for p in EXERCISES.iterdir() if p.is_dir())
    assert released == ASSIGNMENTS


def test_exercises_are_what_nbgrader_generates_from_solutions(tmp_path):
    generated = SCRIPT.generate(ASSIGNMENTS, release=tmp_path)
    assert SCRIPT.differences(generated, EXERCISES, ASSIGNMENTS) == [], "exercises/ is stale: run `make exercises`"


def test_the_comparison_sees_a_changed_cell(tmp_path):
    """The up-to-date test above can fail: a one-character edit is a difference."""
    import shutil

    shutil.copytree(EXERCISES / "02_rnn", tmp_path / "02_rnn")
    path = notebook(tmp_path, "02_rnn")
    text = path.read_text()
    path.write_text(text.replace("hidden size", "hidden  size", 1))
    assert SCRIPT.differences(EXERCISES, tmp_path, ["02_rnn"]) == ["differs: exercises/02_rnn/02_rnn.ipynb"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_versions_hold_no_solution_and_no_hidden_test(assignment):
    cells = read_notebook(notebook(EXERCISES, assignment))["cells"]
    for cell in cells:
        assert not any(m in source(cell) for m in MARKERS), source(cell)[:200]
        assert not cell.get("outputs"), "student notebooks are saved without outputs"
    for cell in read_notebook(notebook(SOLUTIONS, assignment))["cells"]:
        if nbgrader(cell).get("solution") and cell["cell_type"] == "code":
            solution = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", source(cell), re.S).group(1)
            body = [line.strip() for line in solution.splitlines() if line.strip() and not line.strip().startswith("#")]
            released = "\n".join(source(c) for c in cells)
            assert not all(line in released for line in body), f"a solution survived in {assignment}"


def _graded(cells):
    return [c for c in cells if nbgrader(c).get("grade")]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_graded_cells_and_points_agree_with_the_checks(assignment):
    cells = read_notebook(notebook(SOLUTIONS, assignment))["cells"]
    points = assignment_points(assignment)
    code = {nbgrader(c)["grade_id"]: c for c in _graded(cells) if c["cell_type"] == "code"}
    written = {nbgrader(c)["grade_id"]: c for c in _graded(cells) if c["cell_type"] == "markdown"}

    assert set(code) == {f"test_{c.name}" for c in checks_of(assignment)}
    for spec in checks_of(assignment):
        cell = code[f"test_{spec.name}"]
        assert nbgrader(cell)["points"] == spec.points and nbgrader(cell)["locked"]
        args = ", ".join([f'"{spec.name}"', *spec.functions])
        visible, hidden = source(cell).split("### BEGIN HIDDEN TESTS")
        assert visible.strip() == f"check({args})"
        assert f"check({args}, hidden=True)" in hidden
        assert "raises-exception" in cell["metadata"].get("tags", [])
        solutions = [c for c in cells if nbgrader(c).get("solution") and nbgrader(c)["grade_id"] == spec.name]
        assert len(solutions) == 1 and f"def {spec.name}(" in source(solutions[0])

    assert set(written) == {w.grade_id for w in written_of(assignment)}
    for w in written_of(assignment):
        assert nbgrader(written[w.grade_id])["points"] == w.points and nbgrader(written[w.grade_id])["solution"]

    header = source(cells[0])
    expected = (
        f"{points.total} points: {points.auto_total} auto-graded, "
        f"{points.manual_total} for written answers graded by hand"
    )
    assert expected in header, header[:300]
    for cell in cells:  # section headings: "## 2. `rnn_forward` (3 points...)"
        for name, n in re.findall(r"^#+ .*`(\w+)`.*\((\d+) points?", source(cell), re.M):
            assert int(n) == points.auto[name], f"heading of {name} says {n} points"


def _imported_names(code):
    """(module, name) of every ``from ... import name`` and every ``module.attr`` use of a rnncourse module."""
    tree = ast.parse(code)
    found, aliases = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rnncourse"):
            for a in node.names:
                found.add((node.module, a.name))
                if a.name == "numpy":
                    aliases[a.asname or a.name] = f"{node.module}.numpy"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("rnncourse"):
                    aliases[a.asname or a.name] = a.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = node
            parts = []
            while isinstance(base, ast.Attribute):
                parts.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                found.add((aliases[base.id], parts[0]))
    return found


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.parametrize("folder", [SOLUTIONS, EXERCISES], ids=["solutions", "exercises"])
def test_notebooks_do_not_import_what_they_ask_for(assignment, folder):
    asked = {f for spec in checks_of(assignment) for f in spec.functions}
    for cell in read_notebook(notebook(folder, assignment))["cells"]:
        if cell["cell_type"] == "code":
            names = {name for _, name in _imported_names(source(cell))}
            assert not names & asked, f"{assignment} imports {names & asked} from rnncourse"


def _imports_outside_a_guard(code):
    """Top-level module names of the imports of ``code``, but those in a ``try`` that catches ImportError."""
    tree = ast.parse(code)
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError") for h in node.handlers
        ):
            guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.parametrize("folder", [SOLUTIONS, EXERCISES], ids=["solutions", "exercises"])
def test_the_notebook_states_what_it_may_import_and_imports_only_that(assignment, folder):
    """What the grader's sandbox allows (the assignment's Needs) is what the notebook says, and all it uses."""
    needs = needs_of(assignment)
    cells = read_notebook(notebook(folder, assignment))["cells"]
    header = source(cells[0])
    assert "*What you may import*: the Python standard library" in " ".join(header.split()), header[:400]
    for library in needs.libraries:
        assert f"`{library}`" in header, library
    [imports] = [c for c in cells if nbgrader(c).get("grade_id") == "imports"]
    course = {}
    for node in ast.walk(ast.parse(source(imports))):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("rnncourse"):
            course.setdefault(node.module, set()).update(a.name for a in node.names)
    assert course == {"rnncourse.checks": {"assignment_points", "check"}, **{m: set(n) for m, n in needs.course.items()}}
    allowed = set(needs.libraries) | set(course)
    for cell in cells:
        if cell["cell_type"] == "code":
            for name in _imports_outside_a_guard(source(cell)):
                top = name.partition(".")[0]
                assert top in sys.stdlib_module_names or top in needs.libraries or name in allowed, (assignment, name)


def test_the_import_scan_sees_imports():
    code = "import rnncourse.numpy as rn\nfrom rnncourse.numpy import rnn_forward\nrn.rnn_backward\n"
    assert {name for _, name in _imported_names(code)} == {"rnn_forward", "rnn_backward"}


# --- running the notebooks ------------------------------------------------------------


def execute(path):
    nb = nbformat.read(path, as_version=4)
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits them: one BLAS thread, like the rest of the tests
    try:
        NotebookClient(
            nb, timeout=120, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
        ).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def errors(cell):
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


def auto_graded_scores(nb):
    """grade_id -> (score, max score) of every auto-graded cell, as nbgrader scores them."""
    return {
        c.metadata.nbgrader.grade_id: determine_grade(c, None)
        for c in nb.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
    }


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_solution_notebook_runs_cleanly_and_scores_full_marks(assignment):
    nb = execute(notebook(SOLUTIONS, assignment))
    failed = [(c.metadata.get("nbgrader", {}).get("grade_id", c.id), e.ename) for c in nb.cells for e in errors(c)]
    assert failed == []
    scores = auto_graded_scores(nb)
    assert all(score == top for score, top in scores.values()), scores
    assert sum(score for score, _ in scores.values()) == assignment_points(assignment).auto_total
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert f"{assignment}: {assignment_points(assignment).total} points" in printed


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_student_notebook_runs_and_scores_zero_on_every_graded_cell(assignment):
    nb = execute(notebook(EXERCISES, assignment))
    scores = auto_graded_scores(nb)
    assert len(scores) == len(checks_of(assignment))
    assert all(score == 0 for score, _ in scores.values()), scores
    for cell in nb.cells:
        for error in errors(cell):
            assert error.ename == "NotImplementedError", (cell.source[:200], error.ename, error.evalue)
            assert "raises-exception" in cell.metadata.get("tags", []), cell.source[:200]


def test_student_notebooks_run_under_nbval():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-q", "-p", "no:cacheprovider",
         "-p", "no:xdist", "exercises"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout)
