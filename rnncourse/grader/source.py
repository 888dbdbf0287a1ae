"""The instructor's side of an assignment: its source notebooks, graded cells and points.

Everything the grader knows about points comes from here, never from a
submission: the source notebooks in ``<course>/<source_directory>/<assignment>/``
(``solutions/`` in this course, as ``nbgrader_config.py`` says), read with
their nbgrader metadata.

A graded cell of a source notebook is either

- **auto-graded**: a locked test cell whose code calls ``check("<name>", ...)``
  once or more; it earns its points when every case (visible and hidden) of
  every check it calls passes, as nbgrader gives a test cell its points when it
  runs without error. Nothing else in the cell runs while grading: the checks
  are run from the trusted side;
- **graded by hand**: a markdown answer, a task, or a graded answer cell
  without checks. The grader leaves it to the instructor (``manual_pending``).

Locked cells that are not graded (the import cell) run in the sandbox in the
source's version, whatever the submission holds in their place.
"""

import ast
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .notebook import cell_source, nbgrader_meta, read_notebook_bytes

_CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""")
_HIDDEN_TESTS = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)


class CourseError(Exception):
    """A problem on the instructor's side (unknown assignment, a source notebook the grader cannot use)."""


@dataclass(frozen=True)
class GradedCell:
    """A graded cell of a source notebook."""

    grade_id: str
    points: float
    cell_type: str  # "code" or "markdown"
    checks: tuple  # check names; empty for a cell graded by hand

    @property
    def auto(self):
        return bool(self.checks)


@dataclass(frozen=True)
class SourceCell:
    """A cell of a source notebook that carries nbgrader metadata."""

    grade_id: str
    cell_type: str
    source: str
    locked: bool
    graded: bool
    solution: bool
    task: bool
    metadata: dict  # the cell's whole metadata, for nbgrader's checksum in the gradebook


@dataclass(frozen=True)
class SourceNotebook:
    """One source notebook of an assignment."""

    name: str  # without .ipynb, as nbgrader names notebooks
    path: Path
    digest: str  # sha256 of the file
    cells: tuple  # SourceCell, in order
    graded: tuple  # GradedCell, in order

    @property
    def filename(self):
        return f"{self.name}.ipynb"

    @property
    def auto_cells(self):
        return tuple(c for c in self.graded if c.auto)

    @property
    def manual_cells(self):
        return tuple(c for c in self.graded if not c.auto)

    @property
    def max_score(self):
        return sum(c.points for c in self.graded)

    def locked_code(self):
        """grade_id -> source of the locked code cells that are not graded (run in the source's version)."""
        return {
            c.grade_id: _HIDDEN_TESTS.sub("", c.source)
            for c in self.cells
            if c.locked and not c.graded and not c.solution and c.cell_type == "code"
        }


@dataclass(frozen=True)
class Assignment:
    """An assignment as the instructor's source defines it."""

    name: str
    course_id: str
    folder: Path
    notebooks: tuple  # SourceNotebook

    @property
    def checks(self):
        return tuple(dict.fromkeys(n for nb in self.notebooks for c in nb.auto_cells for n in c.checks))


def course_config(course):
    """The traitlets config of the course's ``nbgrader_config.py`` (empty without one): nbgrader's settings."""
    from traitlets.config import Config

    course = Path(course)
    config_file = course / "nbgrader_config.py"
    if not config_file.is_file():
        return Config()
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(config_file.name, path=str(course)).load_config()


def course_settings(course):
    """``(source_directory, course_id)`` from the course's ``nbgrader_config.py`` (nbgrader's defaults without one)."""
    directory = course_config(course).CourseDirectory
    source_directory = directory.get("source_directory", "source")
    course_id = directory.get("course_id", "default_course") or "default_course"
    return source_directory, course_id


def load_assignment(course, assignment):
    """The :class:`~rnncourse.grader.source.Assignment` ``assignment`` of the course in ``course``; :class:`~rnncourse.grader.source.CourseError` if unusable."""
    from rnncourse.checks import assignments, get_check

    course = Path(course)
    source_directory, course_id = course_settings(course)
    folder = course / source_directory / assignment
    if assignment in ("", ".", "..") or "/" in assignment:
        raise CourseError(f"{assignment!r} is not an assignment name")
    if not folder.is_dir():
        known = sorted(p.name for p in (course / source_directory).iterdir() if p.is_dir()) if (course / source_directory).is_dir() else []
        raise CourseError(f"no assignment {assignment!r}: {folder} does not exist (the assignments are {known})")
    paths = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not paths:
        raise CourseError(f"the assignment {assignment!r} has no source notebook in {folder}")
    notebooks = []
    for path in paths:
        data = path.read_bytes()
        try:
            nb = read_notebook_bytes(data)
        except ValueError as err:
            raise CourseError(f"the source notebook {path} cannot be read: {err}") from None
        cells, graded = [], []
        for cell in nb["cells"]:
            meta = nbgrader_meta(cell)
            grade_id = meta.get("grade_id")
            if not isinstance(grade_id, str) or not grade_id:
                continue
            text = cell_source(cell)
            cell_type = cell.get("cell_type")
            cells.append(
                SourceCell(
                    grade_id=grade_id,
                    cell_type=cell_type,
                    source=text,
                    locked=bool(meta.get("locked")),
                    graded=bool(meta.get("grade")),
                    solution=bool(meta.get("solution")),
                    task=bool(meta.get("task")),
                    metadata=cell.get("metadata", {}),
                )
            )
            if not (meta.get("grade") or meta.get("task")):
                continue
            points = meta.get("points", 0)
            if not isinstance(points, (int, float)) or points < 0:
                raise CourseError(f"{path.name}: the graded cell {grade_id!r} has points {points!r}")
            checks = ()
            if cell_type == "code" and not meta.get("solution") and not meta.get("task"):
                checks = _checks_called(text)
                if not checks:
                    raise CourseError(
                        f"{path.name}: the graded test cell {grade_id!r} calls no check(...); "
                        "the grader runs the checks of rnncourse.checks, not a cell's own code"
                    )
                for name in checks:
                    try:
                        get_check(name)
                    except KeyError as err:
                        raise CourseError(f"{path.name}: the cell {grade_id!r} calls {err.args[0]}") from None
            graded.append(GradedCell(grade_id, points, cell_type, checks))
        ids = [c.grade_id for c in cells]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise CourseError(f"{path.name}: grade_id used twice: {duplicated}")
        notebooks.append(SourceNotebook(path.stem, path, hashlib.sha256(data).hexdigest(), tuple(cells), tuple(graded)))
    if assignment not in assignments():
        # The points come from the source; the checks module should exist too,
        # so that the stripped package knows the functions to remove.
        raise CourseError(f"{assignment!r} has source notebooks but no checks in rnncourse.checks (known: {list(assignments())})")
    return Assignment(assignment, course_id, folder, tuple(notebooks))


def _checks_called(text):
    """The check names a test cell calls (``check("name", ...)``), in order, each once."""
    names = []
    try:
        tree = ast.parse(text)
    except SyntaxError:
        names = _CHECK_CALL.findall(text)
    else:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            first = node.args[0]
            if called == "check" and isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.append(first.value)
        # ast.walk is breadth-first; keep the order of the text
        names.sort(key=lambda n: text.find(f'"{n}"') if f'"{n}"' in text else text.find(f"'{n}'"))
    return tuple(dict.fromkeys(names))

