"""``rnncourse grade ASSIGNMENT --check-solutions``: a dry run on the instructor's own notebooks.

Before releasing or grading, the course's two versions of each notebook are
graded like any submission, in the sandbox, with a throw-away gradebook,
secret and output folder (nothing of the course's is written):

- the source notebook (``solutions/<assignment>/``, answers in place) must
  get every automatic point: ``score + manual_pending == max_score``, the
  written answers being pending;
- the released notebook (``exercises/<assignment>/``, nbgrader's release
  directory) must get no point at all.

Anything else (a check that fails the model answer, a released notebook that
passes a test with no answer written, a notebook missing) is a problem,
reported notebook by notebook with the row's reason.
"""

import shutil
import tempfile
from pathlib import Path

from . import GradeError

__all__ = ["check_solutions"]

SOLUTION, RELEASED = "solutions", "released"


def release_directory(course):
    """nbgrader's release directory of the course (its ``nbgrader_config.py``; nbgrader's default ``release``)."""
    config_file = Path(course) / "nbgrader_config.py"
    if not config_file.is_file():
        return "release"
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(config_file.name, path=str(course)).load_config()
    return config.CourseDirectory.get("release_directory", "release")


def check_solutions(assignment, *, course=None, log=None, **options):
    """Grade the source and the released notebooks of ``assignment``; return ``(rows, problems)``.

    ``rows``: the two students' rows (``solutions`` and ``released``);
    ``problems``: one line per notebook that does not score full marks
    (source) or zero (released). ``options`` go to
    :func:`rnncourse.grader.core.grade` (limits, workers, progress).
    Raises :class:`GradeError` for a course that cannot be checked.
    """
    from .core import default_course, grade
    from .source import load_assignment

    course = Path(course) if course is not None else default_course()
    the_assignment = load_assignment(course, assignment)
    released = course / release_directory(course) / assignment
    problems = []
    with tempfile.TemporaryDirectory(prefix="rnncourse-check-solutions-") as tmp:
        tmp = Path(tmp)
        for student in (SOLUTION, RELEASED):
            (tmp / "submissions" / student).mkdir(parents=True)
        for notebook in the_assignment.notebooks:
            name = notebook.filename
            shutil.copyfile(notebook.path, tmp / "submissions" / SOLUTION / name)
            if (released / name).is_file():
                shutil.copyfile(released / name, tmp / "submissions" / RELEASED / name)
            else:
                problems.append(f"{released / name}: no released notebook (run `make exercises`)")
        table = grade(
            assignment, tmp / "submissions", tmp / "out", course=course, db=f"sqlite:///{tmp / 'gradebook.db'}",
            secret_file=tmp / "secret", log=log, **options,
        )
    for row in table:
        score, pending, top = (float(row[k]) for k in ("score", "manual_pending", "max_score"))
        folder = released if row["student_id"] == RELEASED else the_assignment.folder
        where = folder / f"{row['notebook']}.ipynb"
        reason = f" ({row['reason']})" if row["reason"] else ""
        if row["student_id"] == SOLUTION and (row["status"] != "graded" or score + pending != top):
            problems.append(f"{where}: the source notebook scores {score:g} of {top:g} automatic and pending points, "
                            f"not full marks; status {row['status']}{reason}")
        elif row["student_id"] == RELEASED and score != 0:
            problems.append(f"{where}: the released notebook scores {score:g}, not 0, with no answer written{reason}")
    if not table:
        raise GradeError(f"nothing of {assignment} was graded")
    return table, problems
