"""The class report (report.html) and the LMS CSV, from hand-made results: no grading, no sandbox.

The failed checks' messages are the real judge's (:func:`rnncourse.checks.judge`
on outputs made with a known mistake, or plainly wrong), so that the report's
reading of the named mistakes follows the judge's wording.
"""

import csv
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnncourse.checks
from guide import guide_block

from rnncourse.checks import get_check, judge, make_cases
from rnncourse.checks._core import inputs_of
from rnncourse.grader import GradeError, core, lms, report, rows

ROOT = Path(__file__).resolve().parents[2]
CHECK = "rnn_step_forward"
PRE_ACTIVATION = "next_h is the pre-activation: apply tanh to it."
TRANSPOSED_WH = "Wh is used transposed: with row vectors the recurrent term is prev_h @ Wh."
FORMULA_ID = "=HYPERLINK(\"http://x\")"
SCRIPT_ID = "<script>alert(1)</script>"


def failed_message(mistake=None):
    """The judge's message for rnn_step_forward's last visible case: outputs with ``mistake`` (a message), or zeros."""
    spec = get_check(CHECK)
    case = make_cases(CHECK)[-1]
    if mistake is None:
        right = spec.reference(inputs_of(case))
        outputs = {"next_h": np.zeros_like(np.asarray(right["next_h"]))}
    else:
        known = next(m for m in spec.mistakes if m.message == mistake)
        outputs = {k: np.asarray(v) for k, v in known.outputs(inputs_of(case)).items()}
    passed, message = judge(CHECK, case, outputs)
    assert not passed
    return message


def result(student, status, step_passed, message="", earned=None, notebook="rnn", reason=""):
    """A hand-made grading result: two test cells (rnn_step_forward: 2 points, rnn_forward: 3), a written answer."""
    step_points = 2 if step_passed else 0
    cells = [
        {"grade_id": "test_rnn_step_forward", "points": 2, "auto": True, "earned": step_points,
         "checks": [{"name": CHECK, "passed": step_passed, "message": "" if step_passed else message}]},
        {"grade_id": "test_rnn_forward", "points": 3, "auto": True, "earned": 3 if status == "graded" else 0,
         "checks": [{"name": "rnn_forward", "passed": status == "graded", "message": "" if status == "graded" else "rnn_forward: not run"}]},
        {"grade_id": "written", "points": 1, "auto": False, "earned": 0, "checks": []},
    ]
    auto = sum(c["earned"] for c in cells) if earned is None else earned
    return {"student_id": student, "notebook": notebook, "status": status, "reason": reason, "auto_score": auto,
            "max_score": 6, "cells": cells, "errors": [], "stops": [], "attempts": 1, "seconds": 1.0}


def class_results():
    pre = failed_message(PRE_ACTIVATION)
    return [
        result("ada", "graded", True),                                   # 5 of 6
        result("bob", "graded", False, pre),                             # 3
        result("cyd", "graded", False, pre),                             # 3
        result("dee", "graded", False, failed_message(TRANSPOSED_WH)),   # 3
        result("eve", "graded", False, failed_message()),                # 3: wrong, no known mistake
        result("fay", "timeout", False, pre),                            # 0: ran, stopped
        result("gus", "missing", False, "rnn_step_forward: not run"),    # 0: never ran (no rate)
        result("hal", "error", False, "rnn_step_forward: not run"),      # grader's failure: not in the histogram
        result(FORMULA_ID, "graded", True),                              # 5
        result(SCRIPT_ID, "output limit", True, reason="<img src=x onerror=alert(2)>"),  # 2: rnn_forward not run
    ]


def graded_folder(tmp, results, assignment="02_rnn", extra_columns=False, penalties=None):
    """``tmp`` as ``rnncourse grade`` leaves it: grades.csv (rows.write_csv), checks.json, report.html, lms.csv.

    ``penalties``: {student: late penalty in points} of their rows.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    penalties = penalties or {}
    table = sorted((rows.make_row(r, late_penalty=penalties.get(r["student_id"], 0)) for r in results),
                   key=lambda r: (r["student_id"], r["notebook"]))
    rows.write_csv(tmp / "grades.csv", table)
    if extra_columns:  # another part of issue 14 adds late-work columns: read by name, extra ones ignored
        lines = (tmp / "grades.csv").read_text().splitlines()
        text = "\r\n".join([lines[0].replace("student_id,", "submitted_at,student_id,") + ",late_by"]
                           + [f"2026-01-01 10:00:00,{line},0" for line in lines[1:]]) + "\r\n"
        (tmp / "grades.csv").write_text(text)
    core._class_report(tmp, assignment, results, None, pytest.fail)
    return tmp


def stats_of(results):
    return {(s["check"], s["cell"]): s for s in report.check_stats([report.outcome(r) for r in results])}


def test_pass_rates_count_the_notebooks_that_ran():
    stats = stats_of(class_results())
    step = stats[(CHECK, "test_rnn_step_forward")]
    # ran: everyone but gus (missing) and hal (error) = 8; passed: ada and the two odd ids.
    assert (step["passed"], step["ran"]) == (3, 8)
    forward = stats[("rnn_forward", "test_rnn_forward")]
    assert (forward["passed"], forward["ran"]) == (6, 8)  # fay's timeout, the output limit: not run


def test_the_most_frequent_mistake_is_the_named_one():
    step = stats_of(class_results())[(CHECK, "test_rnn_step_forward")]
    assert report.top_mistakes(step) == [(PRE_ACTIVATION, 3), (TRANSPOSED_WH, 1), ("next_h is wrong", 1)]
    forward = stats_of(class_results())[("rnn_forward", "test_rnn_forward")]
    assert report.top_mistakes(forward) == [(report.NOT_RUN_LABEL, 2)]


def test_mistake_of_reads_the_judges_kinds_of_failure():
    assert report.mistake_of(CHECK, failed_message(PRE_ACTIVATION)) == PRE_ACTIVATION
    assert report.mistake_of(CHECK, f"{CHECK}, case 'x':\n  {CHECK} is not written yet: it raises NotImplementedError.\n  Write it.") == report.NOT_WRITTEN
    assert report.mistake_of(CHECK, f"{CHECK}: no points for this test: cell 3 ran longer than 1 s") == report.STOPPED
    # A learner's exception text is not a label (it could say anything), even when it names a mistake on its first line.
    assert report.mistake_of(CHECK, f"{CHECK}, case 'x':\n  ValueError: {PRE_ACTIVATION}") == report.OTHER
    assert report.mistake_of("no_such_check", "no_such_check, case 'x':\n  y is wrong\n  z") == "y is wrong"


def test_histogram_counts_each_students_total_in_its_bin():
    totals = {"a": (0.0, 10.0), "b": (1.0, 10.0), "c": (9.99, 10.0), "d": (10.0, 10.0), "e": (5.0, 10.0), "f": (4.99, 10.0)}
    edges, counts = report.histogram(totals)
    assert edges[0] == 0 and edges[-1] == 10 and len(counts) == report.HISTOGRAM_BINS
    assert counts == [1, 1, 0, 0, 1, 1, 0, 0, 0, 2]  # a bin holds its left edge (4.99 is not in [5, 6)); full marks in the last


def test_student_totals_sum_the_notebooks_and_leave_out_the_graders_failures():
    grades = [
        {"student_id": "a", "notebook": "n1", "score": 2.0, "max_score": 4.0, "status": "graded"},
        {"student_id": "a", "notebook": "n2", "score": 3.0, "max_score": 5.0, "status": "graded"},
        {"student_id": "b", "notebook": "n1", "score": 0.0, "max_score": 4.0, "status": "missing"},
        {"student_id": "b", "notebook": "n2", "score": 1.0, "max_score": 5.0, "status": "graded"},
        {"student_id": "c", "notebook": "n1", "score": 0.0, "max_score": 4.0, "status": "error"},
    ]
    assert report.student_totals(grades) == {"a": (5.0, 9.0), "b": (1.0, 9.0)}


def test_the_report_shows_the_numbers_and_escapes_every_id(tmp_path):
    out = graded_folder(tmp_path / "out", class_results())
    page = (out / "report.html").read_text()
    # the histogram: totals ada 5, bob/cyd/dee/eve 3, fay 0, gus 0, the ids 5 and 2 (hal left out); 6 points in 10 bins
    counts = [int(n) for n in re.findall(r'<rect [^>]*data-count="(\d+)"', page)]
    assert counts == [2, 0, 0, 1, 0, 4, 0, 0, 2, 0]
    assert 'data-rate="37.5"' in page  # rnn_step_forward: 3 of 8
    assert f"3 &times; {PRE_ACTIVATION}" in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # no remote asset
    # ids are read back as the grader gave them (without the CSV's leading ')
    assert FORMULA_ID in {row["student_id"] for row in report.read_grades(out / "grades.csv")}
    assert "1 student with a notebook the grader failed on" in page
    # the same files give the same page (no date in it)
    before = page
    report.write_report(out)
    assert (out / "report.html").read_text() == before


def test_the_report_reads_grades_csv_by_column_name(tmp_path):
    plain = graded_folder(tmp_path / "plain", class_results())
    wider = graded_folder(tmp_path / "wider", class_results(), extra_columns=True)
    assert (wider / "report.html").read_text() == (plain / "report.html").read_text()
    (plain / "grades.csv").write_text("student,points\r\na,1\r\n")
    with pytest.raises(GradeError, match="no column student_id, notebook, score, max_score, status, reason"):
        report.write_report(plain)


def test_write_outcomes_for_some_students_keeps_the_others(tmp_path):
    results = class_results()
    report.write_outcomes(tmp_path, "02_rnn", results)
    again = result("bob", "graded", True)
    report.write_outcomes(tmp_path, "02_rnn", [again], students={"bob"})
    assignment, outcomes = report.read_outcomes(tmp_path)
    assert assignment == "02_rnn"
    by_id = {o["student_id"]: o for o in outcomes}
    assert sorted(by_id) == sorted(r["student_id"] for r in results)
    assert by_id["bob"]["cells"][0]["checks"][0]["passed"] is True
    assert by_id["cyd"]["cells"][0]["checks"][0]["message"] == failed_message(PRE_ACTIVATION)
    assert not list(tmp_path.glob(".*.tmp"))


def read_lms(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_the_lms_csv_has_one_row_per_student_with_each_assignments_points(tmp_path):
    one = graded_folder(tmp_path / "rnn", class_results())
    two = graded_folder(tmp_path / "lstm", [result("ada", "graded", True, notebook="lstm"),
                                            result("ada", "graded", False, "x", notebook="lstm_2"),
                                            result("zed", "graded", True, notebook="lstm")], assignment="04_lstm")
    lines = read_lms(one / "lms.csv")
    assert lines[0] == ["student_id", "02_rnn", "total", "max_total"]
    assert ["ada", "5", "5", "6"] in lines and ["hal", "0", "0", "6"] in lines
    assert len(lines) == 1 + 10
    joined = lms.write(tmp_path / "lms.csv", [one, two])
    lines = read_lms(tmp_path / "lms.csv")
    assert lines[0] == ["student_id", "02_rnn", "04_lstm", "total", "max_total"]
    by_id = {line[0]: line for line in lines[1:]}
    assert by_id["ada"] == ["ada", "5", "8", "13", "18"]  # 04_lstm: 5 + 3 of two notebooks of 6
    assert by_id["bob"] == ["bob", "3", "", "3", "18"]    # no row in 04_lstm: empty, not 0
    assert by_id["zed"] == ["zed", "", "5", "5", "18"]
    assert len(joined) == 11
    with pytest.raises(GradeError, match="02_rnn is given twice"):
        lms.write(tmp_path / "twice.csv", [one, one])


def test_the_lms_csv_takes_the_late_penalty_off(tmp_path):
    """grades.csv's score is nbgrader's raw score; the points a learning-management system gets are less the penalty."""
    out = graded_folder(tmp_path / "rnn", class_results(), penalties={"ada": 2, "bob": 3})
    by_id = {line[0]: line for line in read_lms(out / "lms.csv")[1:]}
    assert by_id["ada"] == ["ada", "3", "3", "6"]  # 5 - 2
    assert by_id["bob"] == ["bob", "0", "0", "6"]  # 3 - 3
    assert by_id["cyd"] == ["cyd", "3", "3", "6"]  # on time


def test_formula_looking_ids_are_written_as_text_in_the_lms_csv(tmp_path):
    out = graded_folder(tmp_path / "out", class_results())
    text = (out / "lms.csv").read_text()
    assert "\n'=HYPERLINK" in text.replace('"', "")
    assert not any(line.startswith("=") for line in text.replace('"', "").splitlines())
    ids = [line[0] for line in read_lms(out / "lms.csv")[1:]]
    assert "'" + FORMULA_ID in ids and SCRIPT_ID in ids


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "rnncourse", *map(str, args)], cwd=cwd, capture_output=True, text=True)


def test_cli_report_rebuilds_the_report_and_lms_join_writes_the_csv(tmp_path):
    out = graded_folder(tmp_path / "out", class_results())
    expected = (out / "report.html").read_bytes()
    (out / "report.html").unlink()
    (out / "lms.csv").unlink()
    done = _cli("report", out)
    assert done.returncode == 0, done.stderr
    assert (out / "report.html").read_bytes() == expected and (out / "lms.csv").is_file()
    done = _cli("lms", out, "--out", tmp_path / "all.csv")
    assert done.returncode == 0, done.stderr
    assert read_lms(tmp_path / "all.csv")[0] == ["student_id", "02_rnn", "total", "max_total"]
    done = _cli("report", tmp_path / "nothing")
    assert done.returncode == 2 and "grade the class first" in done.stderr


def test_checks_json_is_plain_json_of_the_outcomes(tmp_path):
    out = graded_folder(tmp_path / "out", class_results())
    data = json.loads((out / "checks.json").read_text())
    assert data["format"] == report.OUTCOMES_FORMAT and data["assignment"] == "02_rnn"
    first = next(r for r in data["results"] if r["student_id"] == "bob")
    assert first["status"] == "graded"
    assert [c["grade_id"] for c in first["cells"]] == ["test_rnn_step_forward", "test_rnn_forward", "written"]


def test_the_guides_report_commands_work_as_written(tmp_path):
    """Runs the guide's block with ``rnncourse report`` (book/instructor_guide.md) in a course folder with two graded folders."""
    block = guide_block("report", "bash")
    graded_folder(tmp_path / "graded" / "02_rnn", class_results())
    graded_folder(tmp_path / "graded" / "04_lstm", [result("ada", "graded", True, notebook="lstm")], assignment="04_lstm")
    (tmp_path / "graded" / "02_rnn" / "report.html").unlink()
    commands = [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.strip()]
    assert [words[:2] for words in commands] == [[".venv/bin/rnncourse", "report"], [".venv/bin/rnncourse", "lms"]]
    for words in commands:
        done = _cli(*words[1:], cwd=tmp_path)
        assert done.returncode == 0, (words, done.stderr)
    assert (tmp_path / "graded" / "02_rnn" / "report.html").is_file()
    assert read_lms(tmp_path / "lms.csv")[0] == ["student_id", "02_rnn", "04_lstm", "total", "max_total"]


def test_a_call_of_a_failing_function_is_labelled_by_the_function_it_calls():
    """rnn_forward failing because rnn_step_forward does is not "another error": the label names the callee."""
    message = ("rnn_forward, case 'one time step (T = 1)':\n"
               "  rnn_forward calls rnn_step_forward, which fails its own test: fix rnn_step_forward first.\n"
               "  rnn_step_forward, case 'only the input term': next_h is wrong\n"
               "  next_h is the pre-activation: apply tanh to it.")
    assert report.mistake_of("rnn_forward", message) == "calls rnn_step_forward, which fails its own test"
    # the judge's own wording (rnncourse/checks/_core.py), so that the label follows it if it changes
    core_source = (Path(rnncourse.checks.__file__).parent / "_core.py").read_text()
    assert "which fails its own test: fix {dependency} first." in core_source
    assert "which is not defined: define {dependency} first." in core_source
