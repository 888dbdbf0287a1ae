"""Hand grades follow the answer: a written answer that changed since it was graded by hand is to be graded again.

Quick tests, without a sandbox: 02_rnn's model notebook is the submission,
its results are made here, and they go through the gradebook's recorder
(:class:`rnncourse.grader.gradebook.Recorder`) into a SQLite gradebook of
the test's own; hand grades are given through nbgrader's gradebook API with
formgrader's rule (a saved score clears ``needs_manual_grade``). The same
through the sandbox: tests/grader/test_grader_core.py.
"""

import copy
import json
from pathlib import Path

import pytest

from rnncourse.grader import core, feedback, rows
from rnncourse.grader.autograded import answer_digests
from rnncourse.grader.gradebook import Recorder
from rnncourse.grader.jobs import Job
from rnncourse.grader.source import load_assignment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rnn():
    return load_assignment(ROOT, "02_rnn")


@pytest.fixture(scope="module")
def book(tmp_path_factory, rnn):
    """One gradebook for the module (creating one takes seconds); each test grades a student of its own."""
    recorder = Recorder(f"sqlite:///{tmp_path_factory.mktemp('hand') / 'gradebook.db'}", rnn)
    yield recorder
    recorder.close()


def _submission():
    return json.loads((ROOT / "solutions" / "02_rnn" / "02_rnn.ipynb").read_text(encoding="utf-8"))


def _edited(submission, grade_id, text):
    edited = copy.deepcopy(submission)
    cell = next(c for c in edited["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    cell["source"] = text
    return edited


def _result(job, submission):
    cells = [dict(c, earned=c["points"] if c["auto"] else 0) for c in core._unrun_cells(job.notebook, "")]
    return dict(core._result(job, "graded", "", cells), answers=answer_digests(job.notebook, submission))


def _grade_by_hand(book, rnn, student, points):
    """Save hand grades as formgrader's API handler does: the score, and needs_manual_grade cleared."""
    for grade_id, score in points.items():
        grade = book.gb.find_grade(grade_id, rnn.notebooks[0].name, rnn.name, student)
        grade.manual_score = score
        grade.needs_manual_grade = False
    book.gb.db.commit()


def test_answer_digests_cover_every_written_answer_and_change_with_its_text(rnn):
    """Fails if an answer's digest missed a written answer, or did not change with its text (or changed with another's)."""
    nb = rnn.notebooks[0]
    written = {c.grade_id for c in nb.graded if not c.auto}
    before = answer_digests(nb, _submission())
    assert set(before) == written and len(written) == 2
    after = answer_digests(nb, _edited(_submission(), "q_gradcheck", "Another answer."))
    assert {g for g in written if before[g] != after[g]} == {"q_gradcheck"}
    gone = _submission()
    gone["cells"] = [c for c in gone["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") != "q_gradcheck"]
    assert answer_digests(nb, gone)["q_gradcheck"] != before["q_gradcheck"]  # a deleted answer is a change


def test_a_changed_written_answer_becomes_pending_and_an_unchanged_one_keeps_its_grade(book, rnn):
    """Fails if a resubmission kept the old hand grade of a changed answer (the issue's finding), if it dropped the
    grade of an unchanged one, or if the flag went away before a person graded the new answer."""
    nb = rnn.notebooks[0]
    job = Job("alice", nb, None, "", None)
    first = _submission()
    assert book.record(job, _result(job, first))[:2] == (0, 4)
    _grade_by_hand(book, rnn, "alice", {"q_gradcheck": 1.5, "q_parameter_sharing": 2})
    resubmitted = _edited(first, "q_gradcheck", "A new answer, written after the grade was given.")
    for _ in range(2):  # and still so at the run after: the flag stays until a person grades again
        done = book.record(job, _result(job, resubmitted))
        assert (done.given, done.pending) == (2, 2)
        grade = book.gb.find_grade("q_gradcheck", nb.name, rnn.name, "alice")
        assert (grade.needs_manual_grade, grade.manual_score) == (True, 1.5)  # formgrader lists it; the old score kept
        assert book.gb.find_grade("q_parameter_sharing", nb.name, rnn.name, "alice").needs_manual_grade is False
    result = _result(job, resubmitted)
    hand = book.hand_grades(job, result)
    assert hand == {"q_gradcheck": (None, ""), "q_parameter_sharing": (2.0, "")}
    row = rows.make_row(result, done.given, done.pending)
    page = feedback.render(rnn, nb, result, row, hand)
    assert "q_gradcheck (2 points): your answer changed since it was graded by hand; to be graded again." in page
    assert "q_parameter_sharing: 2 / 2, graded by hand." in page and "2 points of written answers await" in page
    _grade_by_hand(book, rnn, "alice", {"q_gradcheck": 2})
    assert book.record(job, _result(job, resubmitted))[:2] == (4, 0)


def test_unchanged_answers_keep_their_hand_grades(book, rnn):
    """Fails if a run flagged an answer whose text did not change (every re-grade would undo the hand grades)."""
    job = Job("carol", rnn.notebooks[0], None, "", None)
    book.record(job, _result(job, _submission()))
    _grade_by_hand(book, rnn, "carol", {"q_gradcheck": 1, "q_parameter_sharing": 2})
    for _ in range(2):
        assert book.record(job, _result(job, _submission()))[:2] == (3, 0)
    assert book.hand_grades(job, _result(job, _submission())) == {"q_gradcheck": (1.0, ""), "q_parameter_sharing": (2.0, "")}


def test_an_answer_changed_before_it_was_graded_is_simply_pending(book, rnn):
    """Fails if a change of an answer nobody graded yet flagged it as graded before (or counted points)."""
    job = Job("bob", rnn.notebooks[0], None, "", None)
    book.record(job, _result(job, _submission()))
    done = book.record(job, _result(job, _edited(_submission(), "q_gradcheck", "Changed, never graded.")))
    assert (done.given, done.pending) == (0, 4)
    assert book.hand_grades(job, _result(job, _submission())) == {}
