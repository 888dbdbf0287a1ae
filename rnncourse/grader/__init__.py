"""``rnncourse grade``: a sandboxed, tamper-proof, parallel autograder built on nbgrader.

The threat model: the course is open (solutions and reference are public), so
the grader does not keep answers secret; it keeps a grading run honest. A
submission's score is what its own code computes; a submission cannot touch
the grader, the gradebook, the course or other submissions, and cannot stop
or slow the batch for anyone else.

One submission's way through the code, module by module:

1. folder -> job: :mod:`rnncourse.grader.jobs` (the students' folders, their
   ids, the files read there) and :mod:`rnncourse.grader.notebook` (reading a
   file that claims to be a notebook); :mod:`rnncourse.grader.source` (the
   instructor's notebooks: graded cells, points, checks) and
   :mod:`rnncourse.grader.plan` (which cells run in which order);
2. job -> sandbox: :mod:`rnncourse.grader.execution` (the commands, the clocks,
   the restarts after a stop) on :mod:`rnncourse.grader.sandbox` (bubblewrap,
   an unprivileged uid, cgroups, limits from outside), which runs
   :mod:`rnncourse.grader.runner` on the package :mod:`rnncourse.grader.strip`
   builds;
3. sandbox -> frames: :mod:`rnncourse.grader.wire`, the one module that knows
   the format, and checks every reply field by field;
4. frames -> judge: :mod:`rnncourse.grader.judge` (the checks' verdicts, the
   points, the words for every stop);
5. judge -> row: :mod:`rnncourse.grader.rows` (the row, and grades.csv);
6. row -> gradebook, feedback: :mod:`rnncourse.grader.gradebook`,
   :mod:`rnncourse.grader.feedback`, and :mod:`rnncourse.grader.autograded`
   (nbgrader's autograded notebooks, for formgrader);
7. the batch -> the class: :mod:`rnncourse.grader.report` (report.html, from
   grades.csv and the per-check outcomes in checks.json) and
   :mod:`rnncourse.grader.lms` (the CSV for a learning-management system).

:mod:`rnncourse.grader.core` holds :func:`~rnncourse.grader.core.grade`, which
walks that line for every submission of a batch, and the cache;
:mod:`rnncourse.grader.cluster` runs the sandboxes of a batch on a Dask
cluster (``--scheduler``), everything else staying in the grader's process.

The statuses of a row: ``graded`` (every step ran), ``timeout``, ``memory``,
``output limit``, ``crashed`` (the kernel stopped by itself), ``malformed
results`` (something that is not a reply came back from the sandbox): a stop,
named after the first one, which cost only the checks that needed the cell
that stopped; ``invalid notebook`` (not readable as a notebook, too large, a
link), ``missing`` (no such notebook in the student's folder) and ``error``
(the grader's own failure on that submission, or a folder it cannot read;
never cached).

This package's ``__init__`` imports nothing heavy: the runner imports
:mod:`rnncourse.grader.runner` inside the sandbox.
"""

__all__ = ["grade", "GradeError", "COLUMNS", "STATUSES"]

COLUMNS = (
    "student_id", "notebook", "score", "max_score", "manual_pending", "status", "reason",
    "submitted_at", "late_by", "late_penalty",  # late work, after the columns of before (a reader by position keeps working)
)
STATUSES = (
    "graded", "timeout", "memory", "output limit", "crashed", "malformed results", "invalid notebook", "missing", "error",
)


class GradeError(Exception):
    """An instructor error: the batch cannot start (the message says why)."""


def grade(assignment, submissions, out, **options):
    """Grade a batch; see :func:`rnncourse.grader.core.grade`. Returns the rows of grades.csv (dicts)."""
    from .core import grade as _grade

    return _grade(assignment, submissions, out, **options)
