"""Fixtures of the grader tests.

``grade_in``: ``run(assignment, submissions, **options) -> rows`` grades into
``tmp_path/out`` with a gradebook of its own in ``tmp_path`` and the fixed
secret ``TEST_SECRET`` (never the repository's ``gradebook.db`` or
``.rnncourse-secret``), two workers, no progress bar and no warnings printed;
any option of :func:`rnncourse.grader.core.grade` can be passed.

Why a fixed secret: the hidden cases come from it, and a test must see the
same cases on every run. With random secrets, the model solution of 02_rnn's
rnn_backward failed a float32 hidden case for about 1.2% of seeds when this
was written (12 of 1000), and 03_bptt's truncated_bptt for a few: a tolerance
question for rnncourse.checks, not for the grader. This secret gives every
student name these tests use full marks with the model solutions.
"""

import pytest

TEST_SECRET = b"the fixed secret of the grader's tests, 2\n"


@pytest.fixture
def grade_in(tmp_path):
    def run(assignment, submissions, **options):
        from rnncourse.grader import grade

        options.setdefault("db", f"sqlite:///{tmp_path / 'gradebook.db'}")
        if "secret_file" not in options:
            options["secret_file"] = tmp_path / "secret"
            options["secret_file"].write_bytes(TEST_SECRET)
        options.setdefault("progress", False)
        options.setdefault("workers", 2)
        options.setdefault("log", lambda message: None)
        return grade(assignment, submissions, options.pop("out", tmp_path / "out"), **options)

    return run
