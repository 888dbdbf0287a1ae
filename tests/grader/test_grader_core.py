"""``rnncourse grade`` end to end: full and zero marks, grades.csv, feedback, the cache, the gradebook, the CLI.

One batch of 02_rnn (the module's fixture ``batch``) holds the cases most
tests read: the model solution, the released notebook, the nbgrader folder
layout, a notebook that calls the course's own implementation, one whose
error message is hostile HTML, one whose kernel dies half-way, one that
writes warnings to stderr, a folder without the notebook and a file that is
not JSON. The hostile and malformed corpus proper is in
test_hostile_submissions.py and test_malformed_submissions.py.
"""

import copy
import csv
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import corpus
from guide import guide_block
from rnncourse.checks import assignment_points, assignments
from rnncourse.grader import COLUMNS, core, report

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
FIXED_DIGEST = "the package as it is during this test module"
TEST_SECRET = b"the fixed secret of the grader's tests, 2\n"  # as conftest's: the same hidden cases on every run


def notebook_of(folder, assignment, name=None):
    return json.loads((folder / assignment / (name or f"{assignment}.ipynb")).read_text())


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def replace_cell(notebook, gid, source):
    notebook = copy.deepcopy(notebook)
    [cell] = [c for c in notebook["cells"] if grade_id(c) == gid]
    cell["source"] = source
    return notebook


def insert_after(notebook, gid, source):
    notebook = copy.deepcopy(notebook)
    i = next(i for i, c in enumerate(notebook["cells"]) if grade_id(c) == gid)
    notebook["cells"].insert(i + 1, {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None})
    return notebook


def write_submission(submissions, student, assignment, notebook, *, name=None, folder=None):
    target = Path(submissions) / student / (folder or "")
    target.mkdir(parents=True, exist_ok=True)
    path = target / (name or f"{assignment}.ipynb")
    path.write_bytes(notebook if isinstance(notebook, bytes) else json.dumps(notebook).encode())
    return path


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


# --- every assignment: full marks and zero ----------------------------------------------


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory):
    """One gradebook for the assignments' batches: nbgrader creates a database only once."""
    return f"sqlite:///{tmp_path_factory.mktemp('gradebook') / 'gradebook.db'}"


@pytest.mark.parametrize("assignment", assignments())
def test_solution_scores_full_marks_and_release_zero(assignment, tmp_path, grade_in, shared_db):
    """Fails if a right answer loses a point (a check, the plan, the sandbox) or a stub earns one."""
    subs = tmp_path / "subs"
    names = sorted(p.name for p in (SOLUTIONS / assignment).glob("*.ipynb"))
    for name in names:
        write_submission(subs, "solution", assignment, notebook_of(SOLUTIONS, assignment, name), name=name)
        write_submission(subs, "release", assignment, notebook_of(EXERCISES, assignment, name), name=name)
    rows = grade_in(assignment, subs, db=shared_db)
    assert len(rows) == 2 * len(names)
    points = assignment_points(assignment)
    for student in ("solution", "release"):
        mine = [r for r in rows if r["student_id"] == student]
        for row in mine:
            assert row["status"] == "graded", (student, row["reason"])
        assert sum(r["max_score"] for r in mine) == points.total
        assert sum(r["manual_pending"] for r in mine) == points.manual_total
    assert sum(r["score"] for r in rows if r["student_id"] == "solution") == points.auto_total
    assert sum(r["score"] for r in rows if r["student_id"] == "release") == 0
    # Every cell of a model solution runs without error in the sandbox: the helpers the assignment
    # gives survive the stripping of the package.
    for name in names:
        page = (tmp_path / "out" / "feedback" / "solution" / name.replace(".ipynb", ".html")).read_text()
        assert "Errors raised by your cells" not in page, page[page.find("Errors raised"):][:2000]


# --- one batch of 02_rnn ----------------------------------------------------------------

HOSTILE_TEXT = "<script>alert('owned')</script>" + "A" * 5000


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade the batch once (per session, shared by the xdist workers); the tests read its rows, files and
    gradebook (and copy them before changing any)."""
    shared = corpus.computed_once(tmp_path_factory, "core-batch", grade_batch)
    return {**shared, **{key: Path(shared[key]) for key in ("subs", "out", "secret", "autograded")}}


def grade_batch(base):
    subs = base / "subs"
    solution, release = notebook_of(SOLUTIONS, "02_rnn"), notebook_of(EXERCISES, "02_rnn")
    write_submission(subs, "honest", "02_rnn", solution)
    write_submission(subs, "release", "02_rnn", release)
    write_submission(subs, "layout", "02_rnn", solution, folder="02_rnn")
    (subs / "layout" / "02_rnn" / "timestamp.txt").write_text("2024-05-01 10:00:00.000000 UTC")
    calls_course = replace_cell(
        solution,
        "rnn_step_forward",
        "from rnncourse.numpy import rnn_step_forward as course_step\n\n"
        "def rnn_step_forward(x, prev_h, Wx, Wh, b):\n    return course_step(x, prev_h, Wx, Wh, b)\n",
    )
    write_submission(subs, "calls_course", "02_rnn", calls_course)
    hostile = replace_cell(release, "rnn_step_forward", f"def rnn_step_forward(*args):\n    raise ValueError({HOSTILE_TEXT!r})\n")
    hostile = insert_after(hostile, "rnn_step_forward", f"raise RuntimeError({HOSTILE_TEXT!r})")
    write_submission(subs, "hostile_text", "02_rnn", hostile)
    # Text that is not valid Unicode (a lone surrogate) in an error and in a check's message.
    surrogate = replace_cell(release, "rnn_step_forward", 'def rnn_step_forward(*args):\n    raise ValueError("caf\\udce9")\n')
    surrogate = insert_after(surrogate, "rnn_step_forward", 'raise RuntimeError("\\udcff")')
    surrogate["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "a lone \udcff surrogate"})  # JSON: "\\udcff"
    write_submission(subs, "surrogates", "02_rnn", surrogate)
    write_submission(subs, "dies", "02_rnn", insert_after(solution, "test_rnn_forward", "import os\nos._exit(3)"))
    noisy = "import sys, warnings\nwarnings.warn('a warning')\nprint('noise on stderr', file=sys.stderr)"
    write_submission(subs, "warns", "02_rnn", insert_after(solution, "imports", noisy))
    (subs / "no_notebook").mkdir()
    write_submission(subs, "garbage", "02_rnn", b"{this is not json")
    paths = {"subs": subs, "out": base / "out", "db": f"sqlite:///{base / 'gradebook.db'}", "secret": base / "secret"}
    paths["secret"].write_bytes(TEST_SECRET)  # the hidden cases are the same on every run
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(core, "package_digest", lambda: FIXED_DIGEST)
        rows = core.grade(
            "02_rnn", subs, paths["out"], db=paths["db"], secret_file=paths["secret"], workers=2, progress=False,
            autograded=base / "autograded", log=lambda message: None,
        )
    paths["autograded"] = base / "autograded"
    return {"rows": {r["student_id"]: r for r in rows}, "list": rows, **paths}


def test_rows_say_what_happened(batch):
    rows = batch["rows"]
    assert set(rows) == {"honest", "release", "layout", "calls_course", "hostile_text", "surrogates", "dies", "warns",
                         "no_notebook", "garbage"}
    for student in ("honest", "layout", "warns"):
        assert (rows[student]["status"], rows[student]["score"]) == ("graded", 16), rows[student]
    assert (rows["release"]["status"], rows["release"]["score"]) == ("graded", 0)
    assert (rows["hostile_text"]["status"], rows["hostile_text"]["score"]) == ("graded", 0)
    assert (rows["surrogates"]["status"], rows["surrogates"]["score"], rows["surrogates"]["reason"]) == ("graded", 0, "")
    # The kernel died in a cell of its own, after the two forward tests: that cell is skipped, the rest is
    # graded in a fresh sandbox, and only what needed that cell (nothing) is lost.
    assert (rows["dies"]["status"], rows["dies"]["score"]) == ("crashed", 16)
    assert "the kernel stopped in cell 9 (exit code 3)" in rows["dies"]["reason"]
    assert rows["no_notebook"]["status"] == "missing" and rows["no_notebook"]["score"] == 0
    assert rows["garbage"]["status"] == "invalid notebook" and "JSON" in rows["garbage"]["reason"]
    for row in rows.values():
        assert row["max_score"] == 20 and row["manual_pending"] == 4


def test_calling_the_course_implementation_earns_nothing_for_it(batch):
    """The sandbox has no rnncourse.numpy.rnn_step_forward: that test, and rnn_forward's (which calls it), earn 0.

    The backward functions are judged on their own (the reference's cache, not the learner's forward's):
    they keep their 4 + 6 points.
    """
    from nbgrader.api import Gradebook

    with Gradebook(batch["db"], course_id="rnncourse") as gb:
        grades = {g.name: g.auto_score for g in gb.find_submission_notebook("02_rnn", "02_rnn", "calls_course").grades}
    assert grades == {"test_rnn_step_forward": 0, "test_rnn_forward": 0, "test_rnn_step_backward": 4,
                      "test_rnn_backward": 6, "q_gradcheck": None, "q_parameter_sharing": None}  # fmt: skip
    assert batch["rows"]["calls_course"]["score"] == 10
    page = (batch["out"] / "feedback" / "calls_course" / "02_rnn.html").read_text()
    assert "rnncourse.numpy.rnn_step_forward is not available while grading 02_rnn" in page


def test_grades_csv_has_the_columns_and_one_row_per_student_and_notebook(batch):
    table = read_csv(batch["out"] / "grades.csv")
    assert tuple(table[0]) == COLUMNS
    body = table[1:]
    assert [r[0] for r in body] == sorted(batch["rows"])  # sorted by student
    assert all(r[1] == "02_rnn" for r in body)
    by_student = {r[0]: dict(zip(COLUMNS, r)) for r in body}
    assert by_student["honest"]["score"] == "16" and by_student["honest"]["max_score"] == "20"
    assert by_student["honest"]["manual_pending"] == "4" and by_student["dies"]["status"] == "crashed"
    assert [dict(zip(COLUMNS, map(str, (r[c] for c in COLUMNS)))) for r in batch["list"]] == [dict(zip(COLUMNS, r)) for r in body]



def test_the_batch_writes_its_per_check_outcomes_the_class_report_and_the_lms_csv(batch):
    out = batch["out"]
    assignment, outcomes = report.read_outcomes(out)
    assert assignment == "02_rnn"
    assert sorted((o["student_id"], o["status"]) for o in outcomes) == sorted((s, r["status"]) for s, r in batch["rows"].items())
    release = next(o for o in outcomes if o["student_id"] == "release")
    assert not any(c["passed"] for cell in release["cells"] for c in cell["checks"])
    step = next(s for s in report.check_stats(outcomes) if s["check"] == "rnn_step_forward")
    assert step["mistakes"][report.NOT_WRITTEN] >= 1  # the release's stub
    page = (out / "report.html").read_text()
    assert 'id="histogram"' in page and 'id="pass-rates"' in page and "rnn_step_forward" in page
    assert "<script" not in page and "A" * 1000 not in page  # the hostile message is escaped (and not a label)
    lms_rows = {line[0]: line for line in read_csv(out / "lms.csv")[1:]}
    grades = {r[0]: r[2] for r in read_csv(out / "grades.csv")[1:]}
    assert {s: line[1] for s, line in lms_rows.items()} == grades and lms_rows["honest"][1:] == ["16", "16", "20"]


def _solution_lines():
    """The lines of the model solutions and hidden tests of 02_rnn that no feedback may show."""
    lines = set()
    for cell in notebook_of(SOLUTIONS, "02_rnn")["cells"]:
        text = "".join(cell["source"])
        for block in re.findall(r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END", text, re.S):
            lines |= {line.strip() for line in block.splitlines() if len(line.strip()) > 12}
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and cell["cell_type"] == "markdown":
            lines |= {line.strip() for line in text.splitlines() if len(line.strip()) > 30}  # model written answers
    return lines


def test_feedback_shows_checks_and_points_escapes_and_hides_the_tests(batch):
    feedback = batch["out"] / "feedback"
    assert sorted(p.name for p in feedback.iterdir()) == sorted(batch["rows"])
    secret_lines = _solution_lines()
    assert len(secret_lines) > 10
    for student in batch["rows"]:
        page = (feedback / student / "02_rnn.html").read_text()
        for marker in ("BEGIN HIDDEN TESTS", "hidden=True", "BEGIN SOLUTION", "check(\""):
            assert marker not in page, (student, marker)
        leaked = [line for line in secret_lines if line in page]
        assert not leaked, (student, leaked[:3])
    release = (feedback / "release" / "02_rnn.html").read_text()
    for name in ("test_rnn_step_forward", "test_rnn_forward", "test_rnn_step_backward", "test_rnn_backward"):
        assert name in release
    assert "0 / 6" in release and "q_gradcheck" in release
    assert "rnn_step_forward is not written yet: it raises NotImplementedError." in release  # a stub, not a hint
    honest = (feedback / "honest" / "02_rnn.html").read_text()
    assert "6 / 6" in honest and "<b>16</b> of 20" in honest
    hostile = (feedback / "hostile_text" / "02_rnn.html").read_text()
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile
    assert "A" * 1000 not in hostile  # text from the student's code is truncated


def test_gradebook_holds_the_scores_and_nbgrader_export_works(batch, tmp_path):
    from nbgrader.api import Gradebook

    with Gradebook(batch["db"], course_id="rnncourse") as gb:
        for student, row in batch["rows"].items():
            submission = gb.find_submission_notebook("02_rnn", "02_rnn", student)
            grades = {g.name: g for g in submission.grades}
            assert sum(g.auto_score or 0 for g in grades.values()) == row["score"], student
            for written in ("q_gradcheck", "q_parameter_sharing"):
                assert grades[written].auto_score is None and grades[written].needs_manual_grade
        assert gb.find_grade_cell("test_rnn_backward", "02_rnn", "02_rnn").max_score == 6
        assert gb.find_submission("02_rnn", "layout").timestamp is not None
    target = tmp_path / "export.csv"
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", f"--db={batch['db']}", f"--to={target}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with open(target, newline="") as f:
        exported = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == "02_rnn"}
    assert set(exported) == set(batch["rows"])
    for student, row in batch["rows"].items():
        assert float(exported[student]["raw_score"]) == row["score"], student
        assert float(exported[student]["max_score"]) == 20


def test_autograded_notebooks_give_nbgrader_the_same_scores(batch):
    """formgrader reads these: nbgrader's own determine_grade must agree with the grader, cell by cell."""
    import nbformat
    from nbgrader.utils import determine_grade, is_grade

    source_points = {
        c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"].get("points")
        for c in notebook_of(SOLUTIONS, "02_rnn")["cells"] if c["metadata"].get("nbgrader")
    }
    written = sorted(p.parent.parent.name for p in batch["autograded"].glob("*/02_rnn/02_rnn.ipynb"))
    assert written == sorted(s for s, r in batch["rows"].items() if r["status"] not in ("missing", "invalid notebook"))
    for student in written:
        nb = nbformat.read(batch["autograded"] / student / "02_rnn" / "02_rnn.ipynb", as_version=4)
        nbformat.validate(nb)
        auto = 0
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if meta:
                assert meta.get("points") == source_points[meta["grade_id"]]
            if meta and is_grade(cell) and cell.cell_type == "code":
                auto += determine_grade(cell)[0]
        assert auto == batch["rows"][student]["score"], student


def _copy_batch(batch, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(batch["out"], out)
    shutil.copy(batch["db"].removeprefix("sqlite:///"), tmp_path / "gradebook.db")
    subs = tmp_path / "subs"
    shutil.copytree(batch["subs"], subs, symlinks=True)
    return subs, out, f"sqlite:///{tmp_path / 'gradebook.db'}"


def test_rerun_grades_only_what_changed_and_gives_identical_rows(batch, tmp_path, monkeypatch):
    from rnncourse.grader.sandbox import Sandbox

    subs, out, db = _copy_batch(batch, tmp_path)
    pages = {p: p.read_bytes() for p in (out / "feedback").rglob("*.html")}
    (out / "grades.csv").unlink()
    runs = []
    real_start = Sandbox.start

    def counting(self, slot):
        runs.append(slot)
        return real_start(self, slot)

    monkeypatch.setattr(core, "package_digest", lambda: FIXED_DIGEST)
    monkeypatch.setattr(Sandbox, "start", counting)
    grade = lambda: core.grade(  # noqa: E731
        "02_rnn", subs, out, db=db, secret_file=batch["secret"], workers=2, progress=False, log=lambda m: None
    )
    assert grade() == batch["list"]
    assert runs == []  # every notebook came from the cache (the missing and the invalid one need no run)
    assert {p: p.read_bytes() for p in (out / "feedback").rglob("*.html")} == pages
    assert read_csv(out / "grades.csv") == read_csv(batch["out"] / "grades.csv")
    # A changed submission is graded again, and only it.
    write_submission(subs, "release", "02_rnn", notebook_of(SOLUTIONS, "02_rnn"))
    rows = {r["student_id"]: r for r in grade()}
    assert len(runs) == 1
    assert rows["release"]["score"] == 16
    assert {k: v for k, v in rows.items() if k != "release"} == {k: v for k, v in batch["rows"].items() if k != "release"}


def test_a_new_secret_or_a_new_limit_grades_again(batch, tmp_path, monkeypatch):
    """The cache key holds the seeds (from the secret) and the limits: changing either is a miss."""
    from rnncourse.grader.sandbox import Sandbox

    subs, out, db = _copy_batch(batch, tmp_path)
    for student in list(batch["rows"]):
        if student != "honest":
            shutil.rmtree(subs / student)
    calls = []
    monkeypatch.setattr(core, "package_digest", lambda: FIXED_DIGEST)
    monkeypatch.setattr(Sandbox, "start", lambda self, *a, **k: calls.append(1) or pytest.fail("not cached"))
    options = dict(db=db, workers=1, progress=False, log=lambda m: None)
    core.grade("02_rnn", subs, out, secret_file=batch["secret"], **options)  # cached
    for changed in ({"secret_file": tmp_path / "another secret"}, {"secret_file": batch["secret"], "memory": 1000}):
        with pytest.raises(pytest.fail.Exception):
            core.grade("02_rnn", subs, out, **{**options, **changed})
    assert len(calls) == 2


def test_manual_scores_given_in_the_gradebook_count_and_are_no_longer_pending(batch, tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    subs, out, db = _copy_batch(batch, tmp_path)
    with Gradebook(db, course_id="rnncourse") as gb:
        gb.find_grade("q_gradcheck", "02_rnn", "02_rnn", "honest").manual_score = 1.5
        gb.db.commit()
    monkeypatch.setattr(core, "package_digest", lambda: FIXED_DIGEST)
    rows = {r["student_id"]: r for r in core.grade(
        "02_rnn", subs, out, db=db, secret_file=batch["secret"], workers=2, progress=False, log=lambda m: None
    )}
    assert (rows["honest"]["score"], rows["honest"]["manual_pending"]) == (17.5, 2)
    with Gradebook(db, course_id="rnncourse") as gb:  # the manual score survives the re-grade
        assert gb.find_grade("q_gradcheck", "02_rnn", "02_rnn", "honest").manual_score == 1.5


def test_the_feedback_page_shows_the_points_and_comment_given_by_hand(batch, tmp_path, monkeypatch):
    """Fails if the page says only "graded by hand" for an answer a person graded, loses the grader's comment,
    shows it unescaped, or claims points for an answer still waiting."""
    from nbgrader.api import Comment, Gradebook, MissingEntry

    from rnncourse.grader.source import load_assignment

    subs, out, db = _copy_batch(batch, tmp_path)
    with Gradebook(db, course_id="rnncourse") as gb:
        gb.find_grade("q_gradcheck", "02_rnn", "02_rnn", "honest").manual_score = 1.5
        try:
            comment = gb.find_comment("q_gradcheck", "02_rnn", "02_rnn", "honest")
        except MissingEntry:  # as formgrader would make it
            cell = gb.find_solution_cell("q_gradcheck", "02_rnn", "02_rnn")
            comment = Comment(cell_id=cell.id, notebook=gb.find_submission_notebook("02_rnn", "02_rnn", "honest"))
            gb.db.add(comment)
        comment.manual_comment = "Right, but <b>why</b> does the error grow with h?"
        gb.db.commit()
    monkeypatch.setattr(core, "package_digest", lambda: FIXED_DIGEST)
    core.grade("02_rnn", subs, out, db=db, secret_file=batch["secret"], workers=2, progress=False, log=lambda m: None)
    page = (out / "feedback" / "honest" / "02_rnn.html").read_text(encoding="utf-8")
    assert "q_gradcheck: 1.5 / 2, graded by hand." in page, page
    assert "Right, but &lt;b&gt;why&lt;/b&gt; does the error grow with h?" in page and "<b>why</b>" not in page
    written = [c for c in load_assignment(ROOT, "02_rnn").notebooks[0].graded if not c.auto and c.grade_id != "q_gradcheck"]
    assert written and all(f"{c.grade_id} ({c.points:g} points): to be graded by hand." in page for c in written), page
    other = (out / "feedback" / "release" / "02_rnn.html").read_text(encoding="utf-8")
    assert "graded by hand." not in other.replace("to be graded by hand.", "")  # nobody graded release's answers


def test_a_resubmission_whose_written_answer_changed_is_to_be_graded_again(batch, tmp_path, monkeypatch):
    """Fails if a resubmission keeps the hand grade of a changed written answer (the issue's finding), or drops the
    grade of an unchanged one: the batch's gradebook remembers the answers; hand grades as formgrader saves them."""
    from nbgrader.api import Gradebook

    subs, out, db = _copy_batch(batch, tmp_path)
    with Gradebook(db, course_id="rnncourse") as gb:
        for grade_id in ("q_gradcheck", "q_parameter_sharing"):
            grade = gb.find_grade(grade_id, "02_rnn", "02_rnn", "honest")
            grade.manual_score, grade.needs_manual_grade = 2.0, False
        gb.db.commit()
    _set_answer(subs / "honest" / "02_rnn.ipynb", "q_gradcheck", lambda text: text + "\n\nAdded after the grade.")
    monkeypatch.setattr(core, "package_digest", lambda: FIXED_DIGEST)
    options = dict(db=db, secret_file=batch["secret"], workers=2, progress=False, log=lambda m: None)
    honest = next(r for r in core.grade("02_rnn", subs, out, students=["honest"], **options) if r["student_id"] == "honest")
    assert (honest["score"], honest["manual_pending"]) == (18, 2)  # 16 auto + 2 kept; q_gradcheck's 2 pending
    with Gradebook(db, course_id="rnncourse") as gb:
        assert gb.find_grade("q_gradcheck", "02_rnn", "02_rnn", "honest").needs_manual_grade is True
        assert gb.find_grade("q_parameter_sharing", "02_rnn", "02_rnn", "honest").needs_manual_grade is False
    page = (out / "feedback" / "honest" / "02_rnn.html").read_text(encoding="utf-8")
    assert "q_gradcheck (2 points): your answer changed since it was graded by hand; to be graded again." in page


def test_student_option_grades_those_students_again_and_leaves_every_other_row_byte_identical(batch, tmp_path, monkeypatch):
    """Fails if --student rewrites grades.csv with its rows alone, changes another line, or grades anyone else."""
    from rnncourse.grader import GradeError

    subs, out, db = _copy_batch(batch, tmp_path)
    before = (out / "grades.csv").read_bytes().splitlines(keepends=True)
    write_submission(subs, "release", "02_rnn", notebook_of(SOLUTIONS, "02_rnn"))  # a resubmission, now right
    write_submission(subs, "honest", "02_rnn", notebook_of(EXERCISES, "02_rnn"))  # changed, but not asked for
    graded = []
    real_grade = core._Batch.grade
    monkeypatch.setattr(core._Batch, "grade", lambda self, job: graded.append(job.student) or real_grade(self, job))
    monkeypatch.setattr(core, "package_digest", lambda: FIXED_DIGEST)
    options = dict(db=db, secret_file=batch["secret"], workers=2, progress=False, log=lambda m: None)
    table = core.grade("02_rnn", subs, out, students=["release", "garbage"], **options)
    assert sorted(graded) == ["garbage", "release"]
    after = (out / "grades.csv").read_bytes().splitlines(keepends=True)
    assert len(after) == len(before) and after[0] == before[0]
    changed = [(b, a) for b, a in zip(before, after) if b != a]
    assert len(changed) == 1 and changed[0][0].startswith(b"release,") and changed[0][1].startswith(b"release,02_rnn,16,")
    assert [r["student_id"] for r in table] == [line.split(b",")[0].decode() for line in after[1:]]
    assert (out / "feedback" / "release" / "02_rnn.html").read_text().count("6 / 6") >= 1
    # checks.json and lms.csv: the two students' outcomes and points replaced, every other student's kept
    _, outcomes = report.read_outcomes(out)
    assert sorted(o["student_id"] for o in outcomes) == sorted(batch["rows"])
    release = next(o for o in outcomes if o["student_id"] == "release")
    assert all(c["passed"] for cell in release["cells"] if cell["auto"] for c in cell["checks"])
    assert {line[0]: line[1] for line in read_csv(out / "lms.csv")[1:]} == {line[0]: line[2] for line in read_csv(out / "grades.csv")[1:]}
    with pytest.raises(GradeError, match="no submission of 'nobody_here'"):
        core.grade("02_rnn", subs, out, students=["release", "nobody_here"], **options)
    assert (out / "grades.csv").read_bytes().splitlines(keepends=True) == after  # an error changes nothing
    done = _cli("grade", "02_rnn", subs, "--out", out, "--db", db, "--secret-file", batch["secret"], "--student", "release",
                "--workers", "1", "--no-progress")
    assert done.returncode == 0 and "graded again: release" in done.stderr, done.stderr


def test_the_guides_export_commands_export_the_graded_rows(batch, tmp_path):
    """Fails if a command of the guide's "Exporting" block writes fewer rows than the gradebook holds (its
    `--assignment "[02_rnn]"` exported the header alone: nbgrader read it as an assignment named "[02_rnn]")."""
    block = guide_block("export", "bash")
    db = tmp_path / "gradebook.db"
    shutil.copy(batch["db"].removeprefix("sqlite:///"), db)
    commands = [shlex.split(line.split("#")[0]) for line in block.splitlines() if "nbgrader export" in line]
    assert len(commands) == 2
    for words in commands:
        assert words[:2] == [".venv/bin/nbgrader", "export"], words
        done = subprocess.run([sys.executable, "-m", "nbgrader", *words[1:], f"--db=sqlite:///{db}"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        to = words[words.index("--to") + 1] if "--to" in words else "grades.csv"
        with open(tmp_path / to, newline="", encoding="utf-8") as f:
            exported = list(csv.DictReader(f))
        assert {(r["assignment"], r["student_id"]) for r in exported} >= {("02_rnn", "honest"), ("02_rnn", "release")}, words


def _set_answer(path, grade_id, edit):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    cell["source"] = edit("".join(cell["source"]))
    path.write_text(json.dumps(nb), encoding="utf-8")
    return cell["source"]


@pytest.mark.slow  # two gradings in the sandbox (about a minute)
def test_check_solutions_passes_the_course_and_fails_loudly_on_a_wrong_solution_or_a_scoring_release(tmp_path):
    """Fails if --check-solutions fails the course's own 02_rnn, or passes (exit 0) a source notebook whose model
    answer a check fails (Wh transposed) or a released notebook that scores with an answer left in it."""
    from rnncourse.grader.solutions_check import check_solutions

    table, problems = check_solutions("02_rnn", workers=2, progress=False, log=lambda m: None)
    assert problems == [] and sorted(r["student_id"] for r in table) == ["released", "solutions"], problems
    solution = next(r for r in table if r["student_id"] == "solutions")
    assert solution["score"] + solution["manual_pending"] == solution["max_score"] > 0
    assert next(r for r in table if r["student_id"] == "released")["score"] == 0

    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(SOLUTIONS / "02_rnn", course / "solutions" / "02_rnn")
    shutil.copytree(EXERCISES / "02_rnn", course / "exercises" / "02_rnn")
    model = _set_answer(course / "solutions" / "02_rnn" / "02_rnn.ipynb", "rnn_step_forward",
                        lambda text: text.replace("prev_h @ Wh + b", "prev_h @ Wh.T + b"))
    assert "Wh.T" in model
    _set_answer(course / "exercises" / "02_rnn" / "02_rnn.ipynb", "rnn_step_forward", lambda text: model.replace("Wh.T", "Wh"))
    done = _cli("grade", "02_rnn", "--check-solutions", "--course", course, "--workers", "2", "--no-progress")
    failed = [line for line in done.stderr.splitlines() if "FAILED" in line]
    assert done.returncode == 1 and len(failed) == 2, done.stderr
    assert any("solutions/02_rnn/02_rnn.ipynb: the source notebook scores" in line for line in failed), failed
    assert any("exercises/02_rnn/02_rnn.ipynb: the released notebook scores" in line for line in failed), failed
    assert sorted(p.name for p in course.iterdir()) == ["exercises", "nbgrader_config.py", "solutions"]  # wrote nothing


# --- the command ------------------------------------------------------------------------


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "rnncourse", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_instructor_errors_exit_2_with_a_message(tmp_path):
    done = _cli("grade", "99_no_such_assignment", tmp_path, "--db", f"sqlite:///{tmp_path}/gb.db", "--secret-file", tmp_path / "s")
    assert done.returncode == 2 and "no assignment '99_no_such_assignment'" in done.stderr
    done = _cli("grade", "02_rnn", tmp_path / "nowhere", "--db", f"sqlite:///{tmp_path}/gb.db", "--secret-file", tmp_path / "s")
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert not (tmp_path / "gb.db").exists() and not (tmp_path / "s").exists()  # nothing made before the checks


def test_cli_grades_and_creates_the_secret_0600(tmp_path):
    subs = tmp_path / "subs"
    write_submission(subs, "someone", "01_sequence_modeling", b"")
    out = tmp_path / "out"
    done = _cli(
        "grade", "01_sequence_modeling", subs, "--out", out, "--db", f"sqlite:///{tmp_path}/gb.db",
        "--secret-file", tmp_path / "secret", "--workers", "1", "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    assert read_csv(out / "grades.csv")[1][5] == "invalid notebook"
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    assert "\r" not in done.stderr  # no progress bar when asked (and when stderr is not a terminal)
