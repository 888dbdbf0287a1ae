"""Malformed submissions: the batch completes, with one row per submission and a status that says why.

One run of ``rnncourse grade`` over :data:`corpus.MALFORMED` (invalid JSON, an
empty file, a 100 MB file made here, a folder without the notebook, a wrong
file name, duplicated or stripped metadata, an unknown kernel, a kernel that
kills itself after earning points, nbformat 3, JSON that is not a notebook...)
and one honest full solution as a control. The batch runs once per test
session, shared between pytest-xdist workers like the hostile batch.
"""

import fcntl
import json

import pytest

import corpus

pytestmark = pytest.mark.slow  # one whole grading batch in the sandbox

MALFORMED = {corpus.malformed_student(m): m for m in corpus.MALFORMED}
CONTROL = "zz_full"


def grade_malformed(work, as_user=None):
    """Grade the malformed batch (as ``as_user``, a :class:`nonroot.Unprivileged`, when given)."""
    course = corpus.make_course(work / "course")
    submissions = work / "submissions"
    corpus.build_malformed(submissions)
    corpus.write_student(submissions / CONTROL, corpus.honest("full"))
    if as_user is not None:
        as_user.give(work)
    batch = corpus.run_grade(submissions, work / "out", course=course, db=work / "gradebook.db",
                             secret=course / ".rnncourse-secret", as_user=as_user)
    huge = submissions / corpus.malformed_student(next(m for m in corpus.MALFORMED if m.name == "huge_file"))
    for path in huge.rglob("*.ipynb"):
        path.unlink()  # 100 MB: do not keep it in the temporary folder
    return {"returncode": batch.returncode, "stderr": batch.stderr[-3000:], "rows": batch.rows,
            "seconds": batch.seconds}


@pytest.fixture(scope="session")
def observed(tmp_path_factory):
    shared = corpus.session_folder(tmp_path_factory)
    result = shared / "malformed-batch.json"
    with open(shared / "malformed-batch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            result.write_text(json.dumps(grade_malformed(tmp_path_factory.mktemp("malformed"))))
        fcntl.flock(lock, fcntl.LOCK_UN)
    return json.loads(result.read_text())


def test_the_batch_completes(observed):
    assert observed["returncode"] == 0, observed["stderr"]


def test_one_row_per_submission(observed):
    students = sorted(row["student_id"] for row in observed["rows"])
    assert students == sorted([*MALFORMED, CONTROL])


def test_the_control_gets_full_marks(observed):
    [row] = [r for r in observed["rows"] if r["student_id"] == CONTROL]
    assert (row["status"], row["score"]) == ("graded", corpus.BASE_POINTS["full"]), row


@pytest.mark.parametrize("student", sorted(MALFORMED), ids=lambda s: MALFORMED[s].name)
def test_status_and_reason(observed, student):
    m = MALFORMED[student]
    rows = [r for r in observed["rows"] if r["student_id"] == student]
    assert len(rows) == 1, f"{m.name}: {len(rows)} rows"
    row = rows[0]
    context = f"{m.name} ({m.what}): {row}"
    assert row["status"], context
    if m.statuses is not None:
        assert row["status"] in m.statuses, context
    if row["status"] != "graded":
        assert row["reason"], f"a status other than graded needs a reason; {context}"
    low, high = m.points
    assert row["score"] is not None and low <= row["score"] <= high, context
    [control] = [r for r in observed["rows"] if r["student_id"] == CONTROL]
    assert row["max_score"] == control["max_score"], f"the maximum comes from the instructor's source; {context}"


def test_a_dead_kernel_costs_only_its_cell(observed):
    """The kernel killed itself in a cell of its own, after the forwards' tests: the right backwards, which
    come after, are graded in a fresh sandbox; the status and the reason say what happened."""
    [row] = [r for r in observed["rows"] if r["student_id"] == "m_kernel_kills_itself"]
    assert row["score"] == corpus.BASE_POINTS["full"], row
    assert row["status"] == "crashed" and "the kernel stopped in cell 9" in row["reason"], row
    assert "killed by SIGKILL" in row["reason"], row
