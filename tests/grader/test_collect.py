"""Collecting from a learning platform's downloads as the instructor guide says: ``nbgrader zip_collect``.

The guide's own configuration block and commands (book/instructor_guide.md,
section "Collecting", marked ``% guide-walk: collect-config`` and
``collect``) are read from the guide and run in a temporary course
folder: the submission time is kept to the second, and a resubmission is
collected by the guide's second command.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guide import guide_block
from rnncourse.grader.collect import normalized_timestamp

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, expected", [
    ("2024-05-01-14-38-12", "2024-05-01 14:38:12"),
    ("20240501143812", "2024-05-01 14:38:12"),
    ("2024_05_01T14:38:12", "2024-05-01 14:38:12"),
    ("2024-05-01-14h38", "2024-05-01 14:38:00"),
    (" 2024-05-01 14:38:12 ", "2024-05-01 14:38:12"),
])
def test_a_timestamp_written_as_its_numbers_is_read_to_the_second(text, expected):
    assert normalized_timestamp(text) == expected


@pytest.mark.parametrize("text", [
    "2024-13-01-14-38-12",  # a 13th month
    "2024-05-01-25-38-12",  # a 25th hour
    "2024-05-01",  # no time: nbgrader's to read
    "2024-05-01 14:38:12 +0200",  # a zone: nbgrader's to read
    "1" * 10_000,
    "２０２４-05-01-14-38-12",  # full-width digits are not ASCII digits
])
def test_any_other_text_is_passed_on_as_it_is(text):
    assert normalized_timestamp(text) == text


def _zip_collect(course, command):
    """Run one of the guide's ``.venv/bin/nbgrader zip_collect ...`` lines in ``course``."""
    words = command.split("#")[0].split()
    assert words[:2] == [".venv/bin/nbgrader", "zip_collect"], command
    return subprocess.run([sys.executable, "-m", "nbgrader", *words[1:]], cwd=course, capture_output=True, text=True,
                          timeout=300)


def _download(course, name, marker):
    """A platform's download of the released 02_rnn notebook, with ``marker`` in a new cell."""
    nb = json.loads((ROOT / "exercises" / "02_rnn" / "02_rnn.ipynb").read_text(encoding="utf-8"))
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": marker})
    archive = course / "downloaded" / "02_rnn" / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    (archive / name).write_text(json.dumps(nb), encoding="utf-8")


@pytest.mark.slow  # three runs of nbgrader
def test_the_guides_zip_collect_keeps_the_time_to_the_second_and_collects_a_resubmission(tmp_path):
    """Fails if the guide's configuration loses the seconds (nbgrader's own collector: 14:38:12 becomes 02:00 of
    the next day), or if its commands do not collect a resubmission (the newest file)."""
    course = tmp_path / "course"
    (course / "exercises").mkdir(parents=True)
    shutil.copytree(ROOT / "exercises" / "02_rnn", course / "exercises" / "02_rnn")
    config = (ROOT / "nbgrader_config.py").read_text(encoding="utf-8")
    (course / "nbgrader_config.py").write_text(config + "\n" + guide_block("collect-config", "python"), encoding="utf-8")
    first, again = [line for line in guide_block("collect", "bash").splitlines() if "zip_collect" in line]
    assert "--force" in again

    _download(course, "hw2_alice_attempt_2024-05-01-14-38-12_02_rnn.ipynb", "alice, first")
    _download(course, "hw2_bob_attempt_2024-05-02-09-05-59_02_rnn.ipynb", "bob")
    done = _zip_collect(course, first)
    assert done.returncode == 0, done.stderr[-3000:]
    alice = course / "submitted" / "alice" / "02_rnn"
    assert (alice / "timestamp.txt").read_text().strip() == "2024-05-01 14:38:12"
    assert (course / "submitted" / "bob" / "02_rnn" / "timestamp.txt").read_text().strip() == "2024-05-02 09:05:59"

    # alice submits again, 30 s later (same minute): the guide's first command refuses, its second collects it
    _download(course, "hw2_alice_attempt_2024-05-01-14-38-42_02_rnn.ipynb", "alice, second")
    assert _zip_collect(course, first).returncode != 0
    done = _zip_collect(course, again)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (alice / "timestamp.txt").read_text().strip() == "2024-05-01 14:38:42"
    assert "alice, second" in (alice / "02_rnn.ipynb").read_text(encoding="utf-8")


STUDENT_FILES = [
    "downloaded/02_rnn/archive/hw2_alice_attempt_2024-05-01-14-38-12_02_rnn.ipynb",
    "downloaded/02_rnn/extracted/hw2_alice_attempt_2024-05-01-14-38-12_02_rnn.ipynb",
    "submitted/alice/02_rnn/02_rnn.ipynb",
    "submitted/alice/02_rnn/timestamp.txt",
    "submissions/alice/02_rnn.ipynb",
    "autograded/alice/02_rnn/02_rnn.ipynb",
    "feedback/alice/02_rnn/02_rnn.html",
    "graded/02_rnn/grades.csv",
    "graded/02_rnn/feedback/alice/02_rnn.html",
    "graded/02_rnn/.cache/ab/cd.json",
    "grades.csv",
    "course-grades.csv",
    "exports/term.csv",
    "gradebook.db",
    ".rnncourse-secret",
]


def test_the_course_gitignore_keeps_students_work_grades_and_the_secret_out_of_git():
    """Fails if a path the guide's workflow writes (collected work, grades, feedback, exports, the secret) would show
    in `git status` of the course repository, or if the ignore rules swallow the course's own exercises."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "check-ignore", "--no-index", "--stdin", "-v", "-n"], cwd=ROOT, text=True,
                          input="\n".join(STUDENT_FILES + ["exercises/02_rnn/02_rnn.ipynb", "solutions/02_rnn/02_rnn.ipynb"]),
                          capture_output=True, timeout=60)
    matched = {}
    for line in done.stdout.splitlines():
        rule, path = line.split("\t")
        matched[path] = rule != "::"
    assert [p for p in STUDENT_FILES if not matched.get(p)] == []
    assert not matched["exercises/02_rnn/02_rnn.ipynb"] and not matched["solutions/02_rnn/02_rnn.ipynb"]
