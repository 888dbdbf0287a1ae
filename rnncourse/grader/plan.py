"""What runs in the sandbox for one submitted notebook, in which order: the stated rules.

The submission's cells are matched to the instructor's source by their
nbgrader ``grade_id``; nothing else of the submission's metadata (points,
``locked``, ``grade``) is believed.

1. A code cell runs as the student wrote it, in the notebook's order, errors
   or not (as ``nbgrader autograde`` does).
2. A cell whose ``grade_id`` is a **locked cell** of the source (the import
   cell) runs in the source's version, whatever the submission holds.
3. A cell whose ``grade_id`` is an **auto-graded test cell** of the source
   does not run: in its place the grader runs that cell's checks on the
   cases it prepared (a ``checks`` step).
4. **Duplicated** ``grade_id`` (of a locked or a test cell): the first one
   counts; the others are skipped, and the reason says so.
5. **Missing** cells (deleted, or metadata stripped): a missing locked cell
   runs first, before the submission's cells; a missing test cell's checks
   run after the last cell. A notebook with no nbgrader metadata at all thus
   runs every code cell, then every check.
6. A kernel other than Python's: the notebook runs with the course's Python,
   and the reason says so.
"""

from dataclasses import dataclass

from .notebook import cell_source, kernel_name, nbgrader_meta

PYTHON_KERNELS = {"", "python", "python3", "ipykernel", "python3-ipykernel"}


@dataclass(frozen=True)
class Step:
    """One step of a run: a ``code`` cell, or the ``checks`` of a test cell."""

    kind: str
    label: str
    source: str = ""
    grade_id: str = ""
    checks: tuple = ()

    def to_json(self):
        return {"kind": self.kind, "source": self.source, "checks": list(self.checks)}


def plan_steps(source_notebook, notebook):
    """``(steps, notes)`` for the submitted ``notebook`` (plain data) of ``source_notebook``."""
    locked = source_notebook.locked_code()
    tests = {c.grade_id: c for c in source_notebook.auto_cells}
    steps, notes, seen = [], [], {}
    for number, cell in enumerate(notebook["cells"], start=1):
        grade_id = nbgrader_meta(cell).get("grade_id")
        grade_id = grade_id if isinstance(grade_id, str) else None
        if grade_id in tests or grade_id in locked:
            if grade_id in seen:
                seen[grade_id] += 1
                continue
            seen[grade_id] = 1
            if grade_id in tests:
                steps.append(Step("checks", f"cell {number} (test {grade_id})", grade_id=grade_id, checks=tests[grade_id].checks))
            else:
                steps.append(Step("code", f"cell {number} ({grade_id}, run in the course's version)", locked[grade_id], grade_id))
        elif cell.get("cell_type") == "code":
            steps.append(Step("code", f"cell {number}", cell_source(cell), grade_id or ""))
    for grade_id, count in seen.items():
        if count > 1:
            notes.append(f"the cell {grade_id} appears {count} times: the first one counted")
    missing_locked = [g for g in locked if g not in seen]
    if missing_locked:
        steps[:0] = [Step("code", f"{g} (missing, run first in the course's version)", locked[g], g) for g in missing_locked]
    missing_tests = [g for g in tests if g not in seen]
    for grade_id in missing_tests:
        steps.append(Step("checks", f"test {grade_id} (missing, run after the last cell)", grade_id=grade_id, checks=tests[grade_id].checks))
    if missing_tests:
        if len(missing_tests) == len(tests) and tests:
            notes.append("no test cell was found (nbgrader metadata missing?): every check ran after the last cell")
        else:
            notes.append(f"test cell{'s' if len(missing_tests) > 1 else ''} {', '.join(missing_tests)} not found: checked after the last cell")
    name, language = kernel_name(notebook)
    if name.lower() not in PYTHON_KERNELS or (language and language.lower() != "python"):
        notes.append(f"the notebook's kernel is {name or language!r}: it ran with the course's Python")
    return steps, notes
