"""The sandbox's package (rnncourse.grader.strip): for each assignment, only what its notebook needs.

Each package is built into a folder and used by a plain Python with that
folder first on its path, as the sandbox uses it; the last test runs the
real sandbox (bubblewrap), where the modules an assignment may not use are
covered in site-packages too.
"""

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rnncourse.checks import assignments, checks_of, judge, load_arrays, make_cases, save_arrays
from rnncourse.checks.calls import needs_of
from rnncourse.grader import strip

ROOT = Path(__file__).resolve().parents[2]

# What each notebook needs of rnncourse.numpy (and, for 07, the data of its training problem).
COURSE = {
    "01_sequence_modeling": set(),
    "02_rnn": {"rnncourse.numpy", "rnncourse.numpy.gradcheck"},
    "03_bptt": {"rnncourse.numpy", "rnncourse.numpy._checks", "rnncourse.numpy.gradcheck", "rnncourse.numpy.rnn",
                "rnncourse.validation"},  # check_choice, which numpy._checks uses: argument checks, no model
    "04_lstm": {"rnncourse.numpy", "rnncourse.numpy.activations"},
    "05_gru": {"rnncourse.numpy", "rnncourse.numpy.activations"},
    "06_attention": set(),
    "07_applications": {
        "rnncourse.checks.char_lm", "rnncourse.datasets", "rnncourse.numpy", "rnncourse.numpy._checks",
        "rnncourse.numpy.activations", "rnncourse.numpy.charlm", "rnncourse.numpy.clip", "rnncourse.numpy.gru",
        "rnncourse.numpy.layers", "rnncourse.numpy.losses", "rnncourse.numpy.lstm", "rnncourse.numpy.multilayer",
        "rnncourse.numpy.optim", "rnncourse.numpy.rnn",
        "rnncourse.validation",  # check_int, which rnncourse.datasets uses: argument checks, no model
    },
    "08_scan": set(),  # nothing of rnncourse.numpy: its scan and minGRU would answer the exercises
    "09_ssm": set(),  # nor its SSM and linear attention
}  # fmt: skip


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    built = {}
    for assignment in assignments():
        folder = tmp_path_factory.mktemp(assignment)
        built[assignment] = (folder, strip.build(assignment, folder, mount_point=str(folder)))
    return built


def _python(folder, code, *args, timeout=300):
    """Run ``code`` as a notebook's code would run in the package of ``folder``: its stdout."""
    env = {**os.environ, "PYTHONPATH": str(folder), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=folder, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _sandbox_side(module):
    return not module.startswith("rnncourse.checks.") or module.startswith("rnncourse.checks.calls")


def test_every_assignment_is_listed():
    assert set(COURSE) == set(assignments())


@pytest.mark.parametrize("assignment", sorted(COURSE))
def test_each_package_holds_only_what_its_notebook_needs(packages, assignment):
    folder, package = packages[assignment]
    modules = set(package.modules)
    course = {m for m in modules if not m.startswith(("rnncourse.grader", "rnncourse.checks.calls"))}
    assert course - {"rnncourse", "rnncourse.checks"} == COURSE[assignment]
    assert {m for m in modules if m.startswith("rnncourse.grader")} >= {"rnncourse.grader.runner", "rnncourse.grader.imports"}
    assert not [m for m in modules if m.startswith("rnncourse.torch")]
    assert all(_sandbox_side(m) or m == "rnncourse.checks.char_lm" for m in modules), "a trusted module of the checks"
    # No file of the copy defines a function the assignment asks for.
    assigned = set(strip.assigned_functions(assignment))
    for path in (folder / "rnncourse").rglob("*.py"):
        defined = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert not defined & assigned, (path, defined & assigned)
    torch_used = "torch" in needs_of(assignment).libraries
    assert package.hidden == (() if torch_used else strip.TORCH_FAMILY)
    assert (folder / "torch" / "__init__.py").is_file() != torch_used


def test_a_package_init_keeps_only_the_submodules_that_are_there(packages):
    folder, _ = packages["02_rnn"]
    init = (folder / "rnncourse" / "numpy" / "__init__.py").read_text()
    imports = [n.module for n in ast.parse(init).body if isinstance(n, ast.ImportFrom) and n.level]
    assert imports == ["gradcheck"]
    assert "def __getattr__(name):" in init  # a name left out says so


# --- the sandbox side works there --------------------------------------------------------

def _solution_cells(assignment):
    """The sources of the solution notebook's import cell and of the cells defining its graded functions."""
    names = {f for spec in checks_of(assignment) for f in spec.functions}
    notebook = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    cells = []
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if cell["cell_type"] == "code" and (grade_id == "imports" or grade_id in names):
            cells.append("".join(cell["source"]))
    return cells


RUN_EVERY_CASE = """
import io, json, sys
from pathlib import Path

folder = Path(sys.argv[1])
namespace = {"__name__": "__main__"}
for k, source in enumerate(json.loads((folder / "cells.json").read_text())):
    exec(compile(source, f"<ipython-input-{k}-test>", "exec"), namespace)  # as IPython names a cell

from rnncourse.checks import check, load_arrays, run_case, save_arrays

for path in sorted(folder.glob("case_*.npz")):
    case = load_arrays(path)
    save_arrays(path.with_name(path.name.replace("case_", "out_")), run_case(str(case["_check"]), case, namespace))
check("anything")
"""


@pytest.mark.slow
@pytest.mark.parametrize("assignment", sorted(COURSE))
def test_the_sandbox_side_of_every_check_runs_in_the_package(packages, assignment, tmp_path):
    """The solution notebook's imports and functions, run in the package, pass every visible case."""
    folder, _ = packages[assignment]
    cells = _solution_cells(assignment)
    (tmp_path / "cells.json").write_text(json.dumps(cells))
    cases = {}
    for spec in checks_of(assignment):
        for j, case in enumerate(make_cases(spec.name)):
            save_arrays(tmp_path / f"case_{spec.name}_{j}.npz", case)
            cases[f"{spec.name}_{j}"] = (spec.name, case)
    out = _python(folder, RUN_EVERY_CASE, str(tmp_path), timeout=600)
    assert out.splitlines()[-1] == "anything: not checked here; the grader runs the checks of this notebook itself."
    for key, (name, case) in cases.items():
        passed, message = judge(name, case, load_arrays(tmp_path / f"out_{key}.npz"))
        assert passed, message


# --- the import rule ---------------------------------------------------------------------

TRY_IMPORTS = """
import importlib
results = []
for statement in (
    "import torch", "import scipy", "import rnncourse.torch", "import rnncourse.numpy.rnn",
    "import rnncourse.checks.rnn", "importlib.import_module('sklearn')", "exec('import pandas')",
    "from rnncourse.numpy import rnn_forward",
    "import math, numpy, matplotlib.pyplot", "from rnncourse.numpy import gradcheck, rel_error",
    "from rnncourse.checks import assignment_points, check",
):
    try:
        exec(statement)
        results.append("ok")
    except ImportError as err:
        results.append(str(err))
print("\\n".join(results))
"""


def test_an_import_outside_the_list_fails_with_a_message_naming_the_allowed_modules(packages):
    folder, package = packages["02_rnn"]
    lines = _python(folder, TRY_IMPORTS).splitlines()
    refused, allowed = lines[:8], lines[8:]
    for line, name in zip(refused, ("torch", "scipy", "rnncourse.torch", "rnncourse.numpy.rnn", "rnncourse.checks.rnn",
                                    "sklearn", "pandas", "rnncourse.numpy.rnn_forward")):  # fmt: skip
        assert line.startswith(f"{name} is not available while grading 02_rnn: this notebook may import"), line
        assert "numpy, matplotlib" in line and "rnncourse.numpy (gradcheck, rel_error)" in line, line
    # The standard library, the listed libraries (matplotlib pulling in its own, unlisted ones) and the course's list.
    assert allowed == ["ok", "ok", "ok"]


def test_the_rule_is_for_the_notebook_not_for_the_libraries_it_uses():
    from rnncourse.grader.imports import ImportRule

    rule = ImportRule("02_rnn", ("numpy",), ("rnncourse", "rnncourse.numpy"), "numpy")
    assert rule.permits("json") and rule.permits("numpy.linalg") and rule.permits("rnncourse.numpy")
    assert not rule.permits("scipy") and not rule.permits("rnncourse.torch") and not rule.permits("rnncourse.numpy.rnn")
    sys.meta_path.insert(0, rule)
    try:
        sys.modules.pop("csv", None)
        import csv  # noqa: F401 - a file's import (this test's): never refused

        namespace = {"__name__": "__main__"}
        # The rule is asked for "scipy" first, or for "scipy.special" alone when an earlier test of this
        # process already imported scipy: either name is refused, with the same message.
        with pytest.raises(ModuleNotFoundError, match=r"scipy(\.special)? is not available while grading 02_rnn"):
            exec(compile("import scipy.special", "<ipython-input-1-x>", "exec"), namespace)
    finally:
        sys.meta_path.remove(rule)


# --- a build that would hold an answer ---------------------------------------------------


def test_a_package_that_would_hold_an_assigned_function_is_not_built(tmp_path, monkeypatch):
    from rnncourse.checks.calls import Needs, rnn

    monkeypatch.setattr(rnn, "NEEDS", Needs(course={"rnncourse.numpy": ("gradcheck", "stacked_rnn_forward")}))
    with pytest.raises(strip.StripError, match="rnncourse.numpy.rnn defines rnn_step_forward, which 02_rnn asks the learner to write"):
        strip.build("02_rnn", tmp_path / "a", mount_point=str(tmp_path / "a"))
    monkeypatch.setattr(rnn, "NEEDS", Needs(course={"rnncourse.numpy": ("no_such_thing",)}))
    with pytest.raises(strip.StripError, match="rnncourse.numpy has no no_such_thing"):
        strip.build("02_rnn", tmp_path / "b", mount_point=str(tmp_path / "b"))


def test_a_package_that_would_hold_the_trusted_side_of_the_checks_is_not_built(tmp_path, monkeypatch):
    imports = strip._imports

    def calls_import_the_judge(module, tree, is_package):  # as if a module of the calls imported _core
        found = imports(module, tree, is_package)
        return found | {"rnncourse.checks._core"} if module == "rnncourse.checks.calls.rnn" else found

    monkeypatch.setattr(strip, "_imports", calls_import_the_judge)
    with pytest.raises(strip.StripError, match="the trusted module rnncourse.checks._core would be in the sandbox"):
        strip.build("02_rnn", tmp_path, mount_point=str(tmp_path))


# --- in the real sandbox -----------------------------------------------------------------

TAMPER = """
import sys
sys.path[:0] = [p for p in sys.path if "site" in p]    # the site-packages first, the package folder after
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "ImportRule"]
try:
    import torch
    print("torch", torch.__file__)
except ImportError as err:
    print("refused:", err)
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_in_the_sandbox_torch_is_not_there_for_a_numpy_assignment_even_round_the_rule():
    from rnncourse.grader.core import _stripped_package, package_digest
    from rnncourse.grader.sandbox import Limits, Sandbox

    seen = {}
    for assignment in ("02_rnn", "06_attention"):
        with Sandbox(_stripped_package(assignment, package_digest()), Limits(cell_timeout=60, timeout=120)) as sandbox:
            if not sandbox.isolated:
                pytest.skip("bubblewrap does not work here: " + "; ".join(sandbox.warnings))
            code, output = sandbox.run_python(textwrap.dedent(TAMPER), slot=0, timeout=120)
            assert code == 0, output
            seen[assignment] = output.decode().strip().splitlines()[-1]
    assert seen["02_rnn"].startswith("refused: torch is not available while grading 02_rnn"), seen
    assert seen["06_attention"].startswith("torch /opt/rnncourse/site"), seen
