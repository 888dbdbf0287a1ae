"""The grader reads as one straight line: folder -> job -> sandbox -> frames -> judge -> row -> CSV, gradebook, feedback.

Structural checks on the sources of rnncourse.grader: the wire format is
written in one module (wire.py) and nowhere else, the gradebook and the
batch do not import each other, a row of grades.csv is built in one place
(rows.py), and each stage's module imports only stages before it.
"""

import ast
from pathlib import Path

import pytest

GRADER = Path(__file__).resolve().parents[2] / "rnncourse" / "grader"
MODULES = {p.stem: ast.parse(p.read_text()) for p in GRADER.glob("*.py")}

# Each module may import these modules of the grader, and no other (None: the package's own constants only).
ALLOWED = {
    "__init__": {"core"},  # grade(), imported when called
    "wire": set(),
    "notebook": set(),
    "source": {"notebook"},
    "plan": {"notebook"},
    "jobs": {"notebook"},
    "imports": set(),  # the import rule inside the sandbox (installed by the package's sitecustomize.py)
    "strip": {"sandbox", "imports"},
    "sandbox": {"wire"},
    "runner": {"wire"},
    "execution": {"wire", "sandbox"},
    "judge": set(),
    "rows": {"__init__"},
    "gradebook": {"__init__"},
    "feedback": set(),
    "autograded": {"notebook"},
    "report": {"__init__", "rows"},  # the class report, from grades.csv and checks.json
    "lms": {"__init__", "rows", "report"},
    "core": {"__init__", "execution", "judge", "rows", "jobs", "notebook", "plan", "source", "sandbox", "gradebook",
             "feedback", "autograded", "strip", "report", "lms", "cluster"},
    # The cluster path: the grader's side is called by core.grade and calls back into the batch; the
    # worker's side builds its sandbox from core's stripped package.
    "cluster": {"__init__", "core", "execution", "sandbox"},
    "solutions_check": {"__init__", "core", "source"},
    "collect": set(),  # nbgrader's collector, configured in nbgrader_config.py
}


def grader_imports(tree):
    """The grader modules a module imports (relative or absolute), as stems; "__init__" for the package."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 or module.startswith("rnncourse.grader"):
                rest = module.removeprefix("rnncourse.grader").lstrip(".") if node.level == 0 else module
                if rest:
                    found.add(rest.split(".")[0])
                else:
                    names = {alias.name for alias in node.names}
                    found |= {n for n in names if n in MODULES} or {"__init__"}
                    if names - set(MODULES):
                        found.add("__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("rnncourse.grader."):
                    found.add(alias.name.split(".")[2])
    return found


def test_every_module_is_listed():
    assert set(MODULES) == set(ALLOWED)


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_each_stage_imports_only_the_stages_it_builds_on(module):
    """In particular core and gradebook do not import each other, nor the runner anything but the wire."""
    extra = grader_imports(MODULES[module]) - ALLOWED[module] - {module}
    assert not extra, f"{module}.py imports {sorted(extra)}"


def _source(module):
    return (GRADER / f"{module}.py").read_text()


def test_the_wire_format_is_written_in_one_module():
    """Frames are an 8-byte length, a JSON header line and a body: only wire.py builds or splits them."""
    for module in MODULES:
        if module == "wire":
            continue
        text = _source(module)
        for marker in ("to_bytes(8", "[:8]), \"big\")", 'partition(b"\\n")', "json.dumps(header", "json.dumps({\"t\""):
            assert marker not in text, f"{module}.py: {marker}"
    for module in ("runner", "sandbox", "execution", "judge"):
        assert "json." not in _source(module), f"{module}.py reads or writes JSON itself"


def _builds_a_row(tree):
    """Whether a module writes a row's ``manual_pending`` field: a dict literal's key or ``dict(manual_pending=...)``.

    Reading a row (``row["manual_pending"]``, ``row.get("manual_pending")``) is not building one, nor is
    calling the builder (``make_row(..., manual_pending=...)``).
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(
            isinstance(key, ast.Constant) and key.value == "manual_pending" for key in node.keys
        ):
            return True
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict"
                and any(keyword.arg == "manual_pending" for keyword in node.keywords)):
            return True
    return False


def test_the_row_is_built_in_one_place():
    for module in MODULES:
        if module in ("rows", "__init__"):
            continue
        assert not _builds_a_row(MODULES[module]), f"{module}.py builds a row ('manual_pending')"
        assert "DictWriter" not in _source(module), module


def test_a_row_built_outside_rows_is_caught():
    """The check above can fail: a dict literal or a keyword argument with the field is a row being built."""
    assert _builds_a_row(ast.parse('row = {"student_id": s, "manual_pending": 0}'))
    assert _builds_a_row(ast.parse("row = dict(score=1, manual_pending=0)"))
    assert not _builds_a_row(ast.parse('pending = float(row["manual_pending"])'))
    assert not _builds_a_row(ast.parse("row = make_row(result, manual_pending=2)"))
