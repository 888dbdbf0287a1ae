"""Late work: the submission time, nbgrader's due date and extensions, and the course's late submission plugin.

Quick tests, without a sandbox: results are made here and go through the
grader's own way from a result to the gradebook, the row and the feedback
page (:func:`rnncourse.grader.core._record`), into a SQLite gradebook of
the test's own. The course is a folder whose ``nbgrader_config.py`` sets
nbgrader's ``LateSubmissionPlugin.penalty_method = "zero"`` (a late
notebook loses all its points), the assignment is 02_rnn of this repository,
due 2024-05-01 17:00:00 UTC.
"""

import datetime
import html
import subprocess
import sys
from pathlib import Path

import pytest

from rnncourse.grader import GradeError, core, gradebook
from rnncourse.grader.jobs import Job, parse_submission_time
from rnncourse.grader.source import course_config, load_assignment

ROOT = Path(__file__).resolve().parents[2]
DUE = "2024-05-01 17:00:00"
ZERO = 'c = get_config()\nc.LateSubmissionPlugin.penalty_method = "zero"\n'


@pytest.fixture(scope="module")
def rnn():
    return load_assignment(ROOT, "02_rnn")


def _course(tmp_path, config=ZERO):
    course = tmp_path / "course"
    course.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(config)
    return course


def _policy(course):
    return gradebook.late_policy(course_config(course), f"{course}/nbgrader_config.py", folder=course)


def _full_marks(job):
    """The result of a notebook whose every auto-graded test passed (the written answers wait)."""
    cells = [dict(c, earned=c["points"] if c["auto"] else 0) for c in core._unrun_cells(job.notebook, "")]
    return core._result(job, "graded", "", cells)


def _grade_one(book, out, assignment, student, timestamp=None, times=None):
    job = Job(student, assignment.notebooks[0], None, "", timestamp)
    when = core._submission_time(job, times or {})
    return core._record(book, out, assignment, job, _full_marks(job), when)


@pytest.fixture(scope="module")
def recorder(tmp_path_factory, rnn):
    """One gradebook for the module (creating one takes seconds); each test grades students of its own."""
    tmp_path = tmp_path_factory.mktemp("late")
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    book = gradebook.Recorder(db, rnn, _policy(_course(tmp_path)))
    book.gb.update_or_create_assignment(rnn.name, duedate=DUE)
    yield book, tmp_path / "out", db
    book.close()


def test_a_late_submission_gets_the_configured_penalty_and_an_on_time_one_none(recorder, rnn):
    """Fails if lateness were ignored (the issue's export showed no penalty), or counted against an on-time one."""
    from nbgrader.api import Gradebook

    book, out, db = recorder
    auto = sum(c.points for c in rnn.notebooks[0].graded if c.auto)
    on_time = _grade_one(book, out, rnn, "alice", "2024-05-01 16:59:59")
    late = _grade_one(book, out, rnn, "bob", "2024-05-01 17:00:01.500000 UTC")
    zoned = _grade_one(book, out, rnn, "carol", "2024-05-01 18:30:00 +0200")  # 16:30 UTC: on time
    assert (on_time["late_by"], on_time["late_penalty"], on_time["submitted_at"]) == (0, 0, "2024-05-01 16:59:59 UTC")
    assert (late["late_by"], late["late_penalty"], late["score"]) == (1.5, auto, auto)
    assert late["submitted_at"] == "2024-05-01 17:00:01.500000 UTC"
    assert (zoned["late_by"], zoned["late_penalty"], zoned["submitted_at"]) == (0, 0, "2024-05-01 16:30:00 UTC")
    # the gradebook holds what nbgrader export reads: the timestamp and the notebook's late_submission_penalty
    with Gradebook(db, course_id=rnn.course_id) as gb:
        bob = gb.find_submission(rnn.name, "bob")
        assert (bob.timestamp, bob.late_submission_penalty) == (datetime.datetime(2024, 5, 1, 17, 0, 1, 500000), auto)
        assert gb.find_submission(rnn.name, "alice").late_submission_penalty == 0
    page = html.unescape((out / "feedback" / "bob" / "02_rnn.html").read_text())
    assert f"Submitted 2024-05-01 17:00:01.500000 UTC, 2 s after the due date: a late penalty of {auto} points" in page
    assert "Submitted 2024-05-01 16:59:59 UTC, on time." in (out / "feedback" / "alice" / "02_rnn.html").read_text()


def test_an_extension_makes_a_late_submission_on_time(recorder, rnn):
    """Fails if the per-student extension nbgrader stores were not counted (the plain due date used)."""
    book, out, _ = recorder
    assert _grade_one(book, out, rnn, "dave", "2024-05-01 18:00:00")["late_penalty"] > 0
    book.gb.grant_extension(rnn.name, "dave", hours=2)
    again = _grade_one(book, out, rnn, "dave", "2024-05-01 18:00:00")
    assert (again["late_by"], again["late_penalty"]) == (0, 0)
    # past the extended due date, late by the time past it
    late = _grade_one(book, out, rnn, "dave", "2024-05-01 19:00:30")
    assert late["late_by"] == 30 and late["late_penalty"] > 0


def test_a_bad_timestamp_is_that_students_reason_never_a_stopped_batch(recorder, rnn):
    """Fails if a malformed timestamp.txt crashed the batch, was read as some date, or kept an older run's time."""
    book, out, _ = recorder
    assert _grade_one(book, out, rnn, "erin", "2024-05-02 09:00:00")["late_penalty"] > 0
    for text in ("yesterday", "14:38", "2024-13-45 25:61:00", "2024-05-02 09:00:00 Mars/Olympus", "9" * 60):
        row = _grade_one(book, out, rnn, "erin", text)
        assert (row["submitted_at"], row["late_by"], row["late_penalty"]) == ("", "", 0), text
        assert "timestamp.txt ignored" in row["reason"] and "is not a submission time" in row["reason"], text
        assert row["status"] == "graded"
    assert book.gb.find_submission(rnn.name, "erin").timestamp is None
    # no timestamp at all: no time, no lateness, nothing said
    row = _grade_one(book, out, rnn, "frank")
    assert (row["submitted_at"], row["late_by"], row["late_penalty"], row["reason"]) == ("", "", 0, "")


def test_the_instructors_time_replaces_timestamp_txt(recorder, rnn):
    """Fails if --submitted-at were ignored (the late timestamp.txt kept) or not said in the reason."""
    book, out, _ = recorder
    times = core._instructor_times({"gina": "2024-05-01 16:00:00"})
    row = _grade_one(book, out, rnn, "gina", "2024-05-03 10:00:00", times)
    assert (row["submitted_at"], row["late_by"], row["late_penalty"]) == ("2024-05-01 16:00:00 UTC", 0, 0)
    assert "given by the instructor (--submitted-at)" in row["reason"]
    with pytest.raises(GradeError, match="--submitted-at gina=...: 'soon' is not a submission time"):
        core._instructor_times({"gina": "soon"})


def test_no_due_date_means_no_lateness(recorder, rnn):
    """Fails if a submission were called late (or on time) without a due date to compare with."""
    book, out, _ = recorder
    book.gb.update_or_create_assignment(rnn.name, duedate=None)
    try:
        row = _grade_one(book, out, rnn, "hal", "2030-01-01 00:00:00")
    finally:
        book.gb.update_or_create_assignment(rnn.name, duedate=DUE)
    assert (row["submitted_at"], row["late_by"], row["late_penalty"]) == ("2030-01-01 00:00:00 UTC", "", 0)


def test_the_plugin_is_nbgraders_as_the_course_configures_it(tmp_path):
    """Fails if the grader used its own policy: nbgrader's default ('none') gives no penalty, a custom class its own."""
    from nbgrader.plugins import LateSubmissionPlugin

    assert gradebook.late_policy(None).plugin_inst.late_submission_penalty("a", 10, 3600) is None
    course = _course(tmp_path, ZERO + "c.AssignLatePenalties.plugin_class = 'late_plugin.Half'\n")
    (course / "late_plugin.py").write_text(
        "from nbgrader.plugins import LateSubmissionPlugin\n\n"
        "class Half(LateSubmissionPlugin):\n"
        "    def late_submission_penalty(self, student_id, score, total_seconds_late):\n"
        "        return score / 2\n"
    )
    plugin = _policy(course).plugin_inst  # a module of the course folder, as nbgrader imports it
    assert str(course) not in sys.path
    assert isinstance(plugin, LateSubmissionPlugin) and plugin.late_submission_penalty("a", 10, 1) == 5
    broken = _course(tmp_path / "b", "c = get_config()\nc.AssignLatePenalties.plugin_class = 'no_such_module.Plugin'\n")
    with pytest.raises(GradeError, match="late submission plugin of .*nbgrader_config.py cannot be used"):
        _policy(broken)


def test_a_plugin_that_fails_is_that_students_reason(tmp_path, rnn):
    """Fails if the instructor's plugin raising (or answering text) stopped the batch or lost the row's other fields."""
    course = _course(tmp_path, ZERO + "c.AssignLatePenalties.plugin_class = 'late_broken.Broken'\n")
    (course / "late_broken.py").write_text(
        "from nbgrader.plugins import LateSubmissionPlugin\n\n"
        "class Broken(LateSubmissionPlugin):\n"
        "    def late_submission_penalty(self, student_id, score, total_seconds_late):\n"
        "        if student_id == 'text':\n"
        "            return 'ten'\n"
        "        raise KeyError(student_id)\n"
    )
    book = gradebook.Recorder(f"sqlite:///{tmp_path / 'gradebook.db'}", rnn, _policy(course))
    try:
        book.gb.update_or_create_assignment(rnn.name, duedate=DUE)
        for student in ("raises", "text"):
            row = _grade_one(book, tmp_path / "out", rnn, student, "2024-05-02 09:00:00")
            assert (row["late_by"], row["late_penalty"], row["status"]) == (57600, 0, "graded"), row
            assert "no late penalty: the late submission plugin failed" in row["reason"], row
        on_time = _grade_one(book, tmp_path / "out", rnn, "early", "2024-05-01 09:00:00")  # the plugin is not asked
        assert (on_time["late_penalty"], on_time["reason"]) == (0, "")
    finally:
        book.close()


@pytest.mark.parametrize("text, expected", [
    ("2024-05-01 14:38:12", datetime.datetime(2024, 5, 1, 14, 38, 12)),
    ("2024-05-01 14:38:12.250000 UTC", datetime.datetime(2024, 5, 1, 14, 38, 12, 250000)),
    ("2024-05-01 16:38:12 +0200", datetime.datetime(2024, 5, 1, 14, 38, 12)),
    ("2024-05-01T16:38:12+02:00", datetime.datetime(2024, 5, 1, 14, 38, 12)),
    ("2024-05-01 14:38", datetime.datetime(2024, 5, 1, 14, 38)),
])
def test_submission_times_are_read_as_nbgrader_reads_them(text, expected):
    assert parse_submission_time(text) == (expected, "")


def test_the_cli_takes_submitted_at_as_id_equals_time():
    """Fails if a --submitted-at without '=' were accepted (a time silently given to nobody)."""
    done = subprocess.run([sys.executable, "-m", "rnncourse", "grade", "02_rnn", "subs", "--submitted-at", "alice"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "--submitted-at takes ID=TIME" in done.stderr
