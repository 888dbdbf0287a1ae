"""``rnncourse grade``: a sandboxed, tamper-proof, parallel autograder built on nbgrader.

The threat model: the course is open (solutions and reference are public), so
the grader does not keep answers secret; it keeps a grading run honest. A
submission's score is what its own code computes; a submission cannot touch
the grader, the gradebook, the course or other submissions, and cannot stop
the batch.

- :mod:`rnncourse.grader.core`: :func:`~rnncourse.grader.core.grade`, the batch: submissions -> grades.csv, feedback, gradebook.
- :mod:`rnncourse.grader.source`: the instructor's source notebooks: graded cells, points, checks.
- :mod:`rnncourse.grader.notebook`: reading any file that claims to be a notebook.
- :mod:`rnncourse.grader.plan`: which cells run in which order (the stated rules for missing,
  duplicated or stripped metadata).
- :mod:`rnncourse.grader.strip`: the copy of the package without the assigned functions.
- :mod:`rnncourse.grader.sandbox`: bubblewrap, an unprivileged uid, cgroups, limits from outside.
- :mod:`rnncourse.grader.runner`: what runs inside the sandbox.
- :mod:`rnncourse.grader.gradebook`, :mod:`rnncourse.grader.feedback`: nbgrader's gradebook; the HTML pages.

The statuses of a row: ``graded`` (every step ran), ``timeout``, ``memory``,
``output limit``, ``crashed`` (the kernel stopped by itself), ``invalid
notebook`` (not readable as a notebook, too large, a link), ``missing`` (no
such notebook in the student's folder) and ``error`` (the grader's own
failure on that submission; never cached). Points earned before a stop are
kept.

This package's ``__init__`` imports nothing heavy: the runner imports
:mod:`rnncourse.grader.runner` inside the sandbox.
"""

__all__ = ["grade", "COLUMNS", "STATUSES"]

COLUMNS = ("student_id", "notebook", "score", "max_score", "manual_pending", "status", "reason")
STATUSES = ("graded", "timeout", "memory", "output limit", "crashed", "invalid notebook", "missing", "error")


def grade(assignment, submissions, out, **options):
    """Grade a batch; see :func:`rnncourse.grader.core.grade`. Returns the rows of grades.csv (dicts)."""
    from .core import grade as _grade

    return _grade(assignment, submissions, out, **options)
