"""Everything from a submission folder is untrusted: its name, its files, its listing.

Units: the student ids (one-to-one with folders, safe as file names, a
derived id with a hash when the name cannot be used as it is), the files of a
folder (timestamp.txt a FIFO, a link to /dev/zero, 50 MB), a folder that
cannot be read. End to end: one ``rnncourse grade`` run, in a subprocess with
a time limit (a grader that opens a FIFO hangs; one that reads /dev/zero
fills its memory), over folders with all of these; every student gets one
row, the honest notebooks in them full marks, and grades.csv runs nothing in
a spreadsheet.
"""

import csv
import os
import stat
from pathlib import Path

import pytest

import corpus
from rnncourse.grader import jobs
from rnncourse.grader.jobs import find_jobs, id_problem, student_ids
from rnncourse.grader.source import load_assignment

ROOT = Path(__file__).resolve().parents[2]

ODD_NAMES = {
    "latin1": os.fsdecode(b"caf\xe9"),  # not UTF-8: the old rule wrote it as caf\xe9 ...
    "backslash": "caf\\xe9",  # ... which is this name: two folders, one id
    "newline": "new\nline",
    "control": "bell\x07",
    "bidi": "evil\u202egpj.exe",
    "long": "x" * 200,
    "space": " padded ",
    "formula": '=SUM(1+2)*cmd',
    "at": "@SUM(A1:A2)",
    "minus": "-2+3",
    "chinese": "张伟 <b>",
}


def test_ids_are_one_to_one_and_safe_as_file_names(tmp_path):
    names = [*ODD_NAMES.values(), "alice", "bob"]
    ids = student_ids(names)
    assert len({i for i, _ in ids.values()}) == len(names)  # two folders never share an id
    for name, (sid, note) in ids.items():
        if id_problem(name):
            assert note.startswith(f"the folder {ascii(name)} cannot be a student id as it is (") and repr(sid) in note
            assert "~" in sid and len(sid) <= 50
        else:
            assert (sid, note) == (name, "")
        assert sid.isprintable() and "/" not in sid and "\\" not in sid and sid not in (".", "..")
        (tmp_path / sid).mkdir()  # a file name, as it is
    assert ids["alice"] == ("alice", "") and ids["张伟 <b>"] == ("张伟 <b>", "")
    assert ids[ODD_NAMES["latin1"]][0] != ids[ODD_NAMES["backslash"]][0]


def test_a_derived_id_never_takes_an_existing_name():
    """A folder named like the id another folder would get: the hash grows until the ids differ."""
    odd = os.fsdecode(b"caf\xe9")
    squatter = student_ids([odd])[odd][0]
    ids = student_ids([odd, squatter])
    assert ids[squatter] == (squatter, "")
    assert ids[odd][0] != squatter and ids[odd][0].startswith(squatter)
    assert student_ids([odd, squatter]) == ids  # the same ids on every run


def test_timestamp_files_that_are_not_plain_files_are_not_read(tmp_path):
    """A FIFO would block a grader that opens it; /dev/zero would fill its memory; 50 MB is not a date."""
    cases = {"fifo": lambda p: os.mkfifo(p), "zero": lambda p: p.symlink_to("/dev/zero"),
             "huge": lambda p: os.truncate(p.open("w").name, 50 << 20), "dir": lambda p: p.mkdir()}
    for name, make in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        make(folder / "timestamp.txt")
        timestamp, note = jobs._read_timestamp(folder)
        assert timestamp is None and note.startswith("timestamp.txt ignored ("), (name, note)
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "timestamp.txt").write_text("2024-05-01 10:00:00 UTC\n\x1b[2Jsecond line")
    assert jobs._read_timestamp(tmp_path / "good") == ("2024-05-01 10:00:00 UTC", "")


def test_a_folder_that_cannot_be_read_is_that_students_row(tmp_path, monkeypatch):
    rnn = load_assignment(ROOT, "02_rnn")
    for student in ("alice", "bob", "carol"):
        corpus.write_student(tmp_path / student, {"cells": []})
    real = jobs._jobs_of_folder

    def unreadable(path, student, note, assignment):
        if student == "bob":
            raise PermissionError(13, "Permission denied")
        return real(path, student, note, assignment)

    monkeypatch.setattr(jobs, "_jobs_of_folder", unreadable)
    found = {job.student: job for job in find_jobs(tmp_path, rnn)}
    assert sorted(found) == ["alice", "bob", "carol"]
    assert found["bob"].status == "error" and "cannot be read (Permission denied)" in found["bob"].note
    assert found["alice"].status is None


def test_only_so_many_entries_of_a_folder_are_looked_at(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_ENTRIES", 20)
    rnn = load_assignment(ROOT, "02_rnn")
    folder = tmp_path / "crowded"
    folder.mkdir()
    for i in range(50):
        (folder / f"junk{i:03d}.txt").touch()
    (folder / "my answers.ipynb").touch()
    [job] = find_jobs(tmp_path, rnn)
    assert job.status == "missing" and "among the first 20 entries" in job.note


def test_links_and_plain_files_in_the_submissions_folder(tmp_path):
    rnn = load_assignment(ROOT, "02_rnn")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / os.fsdecode(b"notes\xff.txt")).write_text("not a student")
    logged = []
    found = {job.student: job for job in find_jobs(tmp_path, rnn, log=logged.append)}
    assert found["link"].status == "invalid notebook" and "symbolic link" in found["link"].note
    assert found["real"].status == "missing"
    assert logged == [f"{ascii(str(tmp_path / os.fsdecode(b'notes' + bytes([255]) + b'.txt')))} is not a folder: "
                      "not a student's submission, ignored"]


# --- end to end --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return corpus.computed_once(tmp_path_factory, "folders-batch", grade_folders)


def grade_folders(work):
    course = corpus.make_course(work / "course")
    subs = work / "submissions"
    full = corpus.honest("full")
    folders = {"honest": "honest", **ODD_NAMES}
    for name in folders.values():
        corpus.write_student(subs / name, full)
    for name, make in {"ts_fifo": lambda p: os.mkfifo(p), "ts_zero": lambda p: p.symlink_to("/dev/zero"),
                       "ts_huge": lambda p: os.truncate(p.open("w").name, 50 << 20)}.items():
        corpus.write_student(subs / name, full)
        make(subs / name / "timestamp.txt")
        folders[name] = name
    (subs / "nb_fifo").mkdir()
    os.mkfifo(subs / "nb_fifo" / corpus.NOTEBOOK)
    folders["nb_fifo"] = "nb_fifo"
    batch = corpus.run_grade(subs, work / "out", course=course, db=work / "gradebook.db",
                             secret=course / ".rnncourse-secret", timeout=300)
    with open(work / "out" / "grades.csv", newline="", encoding="utf-8") as f:
        raw = list(csv.reader(f))
    ids = student_ids(list(folders.values()))
    return {"returncode": batch.returncode, "stderr": batch.stderr[-3000:], "rows": batch.rows, "folders": folders,
            "ids": {key: ids[name] for key, name in folders.items()}, "raw": raw, "out": str(work / "out")}


@pytest.mark.slow
def test_the_batch_completes_with_one_row_per_folder(graded):
    assert graded["returncode"] == 0, graded["stderr"]
    ids = graded["ids"]  # folder key -> (student id, note)
    by_id = {row["student_id"].removeprefix("'"): row for row in graded["rows"]}
    assert sorted(by_id) == sorted(sid for sid, _ in ids.values())
    for key in graded["folders"]:
        sid, note = ids[key]
        row = by_id[sid]
        if key == "nb_fifo":
            assert row["status"] == "invalid notebook" and "not a plain file" in row["reason"], row
            continue
        assert (row["status"], row["score"]) == ("graded", 16), (key, row)
        if note:
            assert note in row["reason"], (key, row)
        if key.startswith("ts_"):
            assert "timestamp.txt ignored" in row["reason"], (key, row)
        page = Path(graded["out"]) / "feedback" / sid / "02_rnn.html"
        assert stat.S_ISREG(page.lstat().st_mode), key


@pytest.mark.slow
def test_grades_csv_runs_nothing_in_a_spreadsheet(graded):
    cells = [cell for row in graded["raw"][1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c.startswith("-") and not c[1:].isdigit())]
    formula = graded["ids"]["formula"][0]
    assert ["'" + formula] == [row[0] for row in graded["raw"] if row[0].endswith(formula)]
    assert all(len(c) <= 1000 and c.isprintable() for c in cells)
