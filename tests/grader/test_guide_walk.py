"""The instructor guide, walked: its own blocks, run as written, through a term of one assignment.

The blocks of book/instructor_guide.md marked ``% guide-walk: NAME`` are
read from the guide (a block that changes is run as changed; a marker that
goes away fails the test) and run in a course folder of the test's own: the
course's ``nbgrader_config.py`` with the guide's ``collect-config`` and
``late-config`` blocks, 02_rnn's source and release, ``.venv`` as a link to
this repository's, and the grader's test secret (the hidden cases of the
model answers pass with it). Each line of a bash block runs in ``bash``
from the course folder, as an instructor would type it.

The term: the due date (``due-date``); two students' files from a learning
platform, alice's a day late, collected with their times to the second
(``collect``); grading (``grade``): alice gets the late penalty of the
guide's policy; written answers graded by hand through nbgrader's gradebook
API, as formgrader saves them; an extension for alice (``extension``); her
resubmission, one written answer changed, collected again (``collect``'s
``--force`` line); re-grading (``regrade``): she is on time now, the
changed answer is pending again and the other keeps its grade, bob's row is
unchanged; and ``nbgrader export`` (``export``), whose rows hold the
gradebook's times and penalties. The parts are tested in more detail
elsewhere (test_collect.py, test_late.py, test_hand_grades.py,
test_grader_core.py, test_postgres.py); this test checks that the guide's
commands, in the guide's order, make a term.
"""

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from guide import guide_blocks

ROOT = Path(__file__).resolve().parents[2]
TEST_SECRET = b"the fixed secret of the grader's tests, 2\n"

pytestmark = pytest.mark.slow  # two gradings in the sandbox, five nbgrader runs (about two minutes)


def _lines(block):
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _run(course, line):
    done = subprocess.run(["bash", "-c", line], cwd=course, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def _download(course, name, answer=None):
    """A platform's download: 02_rnn's model notebook, with ``answer`` as its q_gradcheck answer when given."""
    nb = json.loads((ROOT / "solutions" / "02_rnn" / "02_rnn.ipynb").read_text(encoding="utf-8"))
    if answer is not None:
        cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "q_gradcheck")
        cell["source"] = answer
    archive = course / "downloaded" / "02_rnn" / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    (archive / name).write_text(json.dumps(nb), encoding="utf-8")


def _grades(course):
    with open(course / "graded" / "02_rnn" / "grades.csv", newline="", encoding="utf-8") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def _grade_by_hand(course, student, points, comment):
    """As formgrader saves a grade: the manual score, needs_manual_grade cleared, the comment."""
    from nbgrader.api import Comment, Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="rnncourse") as gb:
        for grade_id, score in points.items():
            grade = gb.find_grade(grade_id, "02_rnn", "02_rnn", student)
            grade.manual_score, grade.needs_manual_grade = score, False
            try:
                note = gb.find_comment(grade_id, "02_rnn", "02_rnn", student)
            except MissingEntry:
                note = Comment(cell_id=gb.find_solution_cell(grade_id, "02_rnn", "02_rnn").id,
                               notebook=gb.find_submission_notebook("02_rnn", "02_rnn", student))
                gb.db.add(note)
            note.manual_comment = comment
        gb.db.commit()


def test_the_guides_commands_make_a_term(tmp_path):
    blocks = guide_blocks()
    names = {"collect-config", "collect", "grade", "due-date", "late-config", "extension", "regrade", "export"}
    run_elsewhere = {"report"}  # tests/grader/test_report.py (a class report needs several graded assignments)
    assert set(blocks) == names | run_elsewhere, f"the guide's marked blocks changed: {sorted(blocks)}"
    assert blocks["collect-config"][0] == blocks["late-config"][0] == "python"
    course = tmp_path / "course"
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder / "02_rnn", course / folder / "02_rnn")
    config = (ROOT / "nbgrader_config.py").read_text(encoding="utf-8")
    (course / "nbgrader_config.py").write_text("\n".join([config, blocks["collect-config"][1], blocks["late-config"][1]]))
    (course / ".venv").symlink_to(ROOT / ".venv")
    (course / ".rnncourse-secret").write_bytes(TEST_SECRET)

    # the due date; the downloads (alice's a day late); collection, to the second
    due_date, = _lines(blocks["due-date"][1])
    _run(course, due_date)
    _download(course, "hw2_alice_attempt_2024-05-02-09-05-59_02_rnn.ipynb")
    _download(course, "hw2_bob_attempt_2024-05-01-14-38-12_02_rnn.ipynb")
    collect, collect_again = _lines(blocks["collect"][1])
    _run(course, collect)
    assert (course / "submitted" / "bob" / "02_rnn" / "timestamp.txt").read_text().strip() == "2024-05-01 14:38:12"

    # grading: alice late by 16:05:59, with the guide's policy ("zero"): her 16 points taken off
    grade, = _lines(blocks["grade"][1])
    _run(course, grade)
    rows = _grades(course)
    assert set(rows) == {"alice", "bob"}
    alice, bob = rows["alice"], rows["bob"]
    assert (alice["score"], alice["manual_pending"], alice["status"]) == ("16", "4", "graded"), alice
    assert (alice["submitted_at"], alice["late_by"], alice["late_penalty"]) == ("2024-05-02 09:05:59 UTC", "57959", "16")
    assert (bob["submitted_at"], bob["late_by"], bob["late_penalty"]) == ("2024-05-01 14:38:12 UTC", "0", "0")
    assert (course / "autograded" / "alice" / "02_rnn" / "02_rnn.ipynb").is_file()  # what formgrader shows

    # the written answers graded by hand, as formgrader saves them
    for student in ("alice", "bob"):
        _grade_by_hand(course, student, {"q_gradcheck": 2, "q_parameter_sharing": 1}, "Say why.")

    # an extension for alice; her resubmission changes one written answer; collected again, graded again
    extension, = _lines(blocks["extension"][1])
    _run(course, extension)
    _download(course, "hw2_alice_attempt_2024-05-02-10-00-00_02_rnn.ipynb", answer="A new answer, after the grade.")
    _run(course, collect_again)
    assert (course / "submitted" / "alice" / "02_rnn" / "timestamp.txt").read_text().strip() == "2024-05-02 10:00:00"
    bob_line = next(line for line in (course / "graded" / "02_rnn" / "grades.csv").read_text().splitlines() if line.startswith("bob,"))
    regrade, = _lines(blocks["regrade"][1])
    _run(course, regrade)
    rows = _grades(course)
    alice = rows["alice"]
    # on time with the extension; q_gradcheck changed: pending again; q_parameter_sharing's 1 point kept
    assert (alice["submitted_at"], alice["late_by"], alice["late_penalty"]) == ("2024-05-02 10:00:00 UTC", "0", "0")
    assert (alice["score"], alice["manual_pending"]) == ("17", "2"), alice
    page = (course / "graded" / "02_rnn" / "feedback" / "alice" / "02_rnn.html").read_text(encoding="utf-8")
    assert "q_gradcheck (2 points): your answer changed since it was graded by hand; to be graded again." in page
    assert "q_parameter_sharing: 1 / 2, graded by hand." in page
    assert (rows["bob"]["score"], rows["bob"]["manual_pending"]) == ("19", "0")  # 16 + 2 + 1, by hand
    assert bob_line.replace(",16,20,4,", ",19,20,0,") in (course / "graded" / "02_rnn" / "grades.csv").read_text()

    # export: nbgrader's rows, with the gradebook's submission times and penalties
    for line in _lines(blocks["export"][1]):
        _run(course, line)
    for name in ("grades.csv", "course-grades.csv"):
        with open(course / name, newline="", encoding="utf-8") as f:
            exported = {row["student_id"]: row for row in csv.DictReader(f) if row["assignment"] == "02_rnn"}
        assert set(exported) == {"alice", "bob"}, name
        assert exported["alice"]["timestamp"].startswith("2024-05-02 10:00:00"), exported["alice"]
        assert float(exported["alice"]["late_submission_penalty"]) == 0.0
        assert float(exported["bob"]["raw_score"]) == 19.0
