"""Hostile submissions, graded in one batch with honest ones: none gains, none harms anything outside itself.

One run of ``rnncourse grade`` (the command line, as an instructor runs it)
grades every attack of :data:`corpus.ATTACKS` together with three honest
submissions (full, half, blank), with small limits so that the batch stays
fast. Then:

- each attack scores no more than the honest notebook it was built on (the
  same score, for an attack that runs after the points it could earn were
  earned), with the instructor's maximum;
- the honest submissions score what they score when graded alone;
- the instructor's files (the course's solutions/, rnncourse/, gradebook and
  secret) are unchanged, byte for byte;
- no process started for the batch outlives it, and no file an attack would
  write outside its sandbox (a marker, a daemon's mark) appears;
- nothing connects to a port this test listens on;
- the feedback pages are bounded in size, escape what the student's code
  printed, and hold neither the secret nor the hidden tests.

The batch runs once per test session (with pytest-xdist, once in all: the
first worker grades and writes the observations, the others read them).
"""

import fcntl
import json
import os
import re
import socket
import sysconfig
import threading
import time
from pathlib import Path

import pytest

import corpus

pytestmark = pytest.mark.slow  # one whole grading batch in the sandbox

ATTACK_STUDENTS = {corpus.attack_student(a): a for a in corpus.ATTACKS}


class Listener:
    """A TCP server on every address of this machine that records who connects."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except OSError:
                continue
            self.connections.append(list(peer))
            conn.close()

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


def host_addresses():
    import psutil

    return sorted({a.address for addrs in psutil.net_if_addrs().values() for a in addrs
                   if a.family == socket.AF_INET and not a.address.startswith("127.")})


def make_decoy_gradebook(path):
    """A gradebook in the course's default place that this batch does not use: it must not change."""
    with corpus.open_gradebook(path) as gb:
        gb.update_or_create_assignment(corpus.ASSIGNMENT)
        gb.update_or_create_student("decoy")


def instructor_files(course):
    return {name: corpus.tree_digest(course / name)
            for name in ("solutions", "rnncourse", "gradebook.db", ".rnncourse-secret", "nbgrader_config.py")}


def grade_everything(work, as_user=None):
    """Grade the hostile batch and the honest-alone batch; return what was observed (plain data).

    ``as_user`` (a :class:`nonroot.Unprivileged`): the batch is the user's and graded as the user; no
    honest-alone batch.
    """
    course = corpus.make_course(work / "course")
    secret = (course / ".rnncourse-secret").read_bytes()
    make_decoy_gradebook(course / "gradebook.db")
    listener = Listener()
    targets = corpus.Targets(
        course=course, submissions=work / "submissions", out=work / "out", db=work / "gradebooks" / "hostile.db",
        markers=work / "markers", port=listener.port, host_ips=tuple(host_addresses()),
        purelib=Path(sysconfig.get_paths()["purelib"]),
    )
    targets.markers.mkdir()
    targets.db.parent.mkdir()
    corpus.build_honest(targets.submissions)
    corpus.build_hostile(targets.submissions, targets)
    before = instructor_files(course)
    honest_before = {s: corpus.tree_digest(targets.submissions / s) for s in corpus.HONEST_STUDENTS}

    started = time.time()
    autograded = work / "autograded"
    if as_user is not None:
        as_user.give(work)
    batch = corpus.run_grade(targets.submissions, targets.out, course=course, db=targets.db,
                             secret=course / ".rnncourse-secret", watch=True,
                             limits=(*corpus.FAST_LIMITS, "--autograded", str(autograded)),
                             as_user=as_user)
    time.sleep(2)  # a daemon that survived would mark its presence within half a second
    survivors = batch.watcher.survivors(token=targets.token, since=started)
    uids = sorted({uid for uid, _ in batch.watcher.seen.values()})
    listener.stop()
    markers = [str(p) for p in targets.marker_paths() if p.exists() or p.is_symlink()]
    for pid in survivors:  # clean up after a grader that failed: only what this batch started
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    for path in markers:
        Path(path).unlink(missing_ok=True)

    # The honest ones alone, against another copy of the course (with the same secret).
    alone = corpus.Batch(None, "", "", [], 0.0)
    if as_user is None:
        alone_course = corpus.make_course(work / "alone" / "course")
        corpus.build_honest(work / "alone" / "submissions")
        alone = corpus.run_grade(work / "alone" / "submissions", work / "alone" / "out", course=alone_course,
                                 db=work / "alone" / "gradebook.db", secret=alone_course / ".rnncourse-secret")

    feedback = {}
    for page in sorted((targets.out / "feedback").rglob("*")) if (targets.out / "feedback").is_dir() else []:
        if page.is_file():
            text = page.read_bytes()
            feedback[str(page.relative_to(targets.out / "feedback"))] = {
                "size": len(text),
                "script": b'<script id="rnncourse-xss' in text,
                "secret": secret.hex().encode() in text or secret in text,
                "leak": b"LEAK:" in text,
                "hidden": b"hidden=True" in text or b"BEGIN HIDDEN TESTS" in text or b"BEGIN SOLUTION" in text,
                "model_answer": b"stationarity" in text,
            }
    return {
        "returncode": batch.returncode, "stderr": batch.stderr[-3000:], "seconds": batch.seconds,
        "rows": batch.rows, "alone_returncode": alone.returncode, "alone_stderr": alone.stderr[-3000:],
        "alone_rows": alone.rows,
        "before": before, "after": instructor_files(course),
        "honest_before": honest_before,
        "honest_after": {s: corpus.tree_digest(targets.submissions / s) for s in corpus.HONEST_STUDENTS},
        "survivors": {str(k): v for k, v in survivors.items()}, "uids": uids,
        "markers": markers, "connections": listener.connections, "feedback": feedback,
        "gradebook": gradebook_scores(targets.db),
        "autograded": autograded_pages(autograded, secret),
        "out": str(targets.out),
    }


def autograded_pages(folder, secret):
    """{student: what formgrader would show of the autograded notebook} (rendered as formgrader renders it).

    Only for the honest students and the attacks that carry HTML: rendering is not free.
    """
    import nbformat
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    exporter = HTMLExporter(config=config)
    pages = {}
    for student_folder in sorted(folder.iterdir()) if folder.is_dir() else []:
        path = student_folder / corpus.ASSIGNMENT / corpus.NOTEBOOK
        page = {"exists": path.is_file()}
        if path.is_file() and (student_folder.name in corpus.HONEST_STUDENTS or "injection" in student_folder.name):
            resources = {"assignment_id": corpus.ASSIGNMENT, "notebook_id": corpus.ASSIGNMENT, "submission_id": "x",
                         "index": 0, "total": 1, "base_url": "", "student": student_folder.name, "last_name": "",
                         "first_name": "", "notebook_path": str(path)}
            try:
                html, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4), resources=resources)
            except Exception as err:  # noqa: BLE001 - reported by the test
                page["error"] = f"{type(err).__name__}: {err}"
            else:
                data = html.encode()
                page["script"] = b'<script id="rnncourse-xss' in data or b'<img src=x onerror' in data
                page["script"] |= re.search(rb"href\s*=\s*[\"']?\s*javascript:", data, re.I) is not None
                page["secret"] = secret.hex().encode() in data
        pages[student_folder.name] = page
    return pages


def gradebook_scores(path):
    """{student: auto-graded score} as nbgrader's gradebook holds it (None when it cannot be read)."""
    try:
        with corpus.open_gradebook(path) as gb:
            return {s.student.id: s.code_score for s in gb.assignment_submissions(corpus.ASSIGNMENT)}
    except Exception as err:  # noqa: BLE001 - reported by the test that reads it
        return {"_error": f"{type(err).__name__}: {err}"}


@pytest.fixture(scope="session")
def observed(tmp_path_factory):
    """The observations of the batch, computed by one test process and shared with the others."""
    shared = corpus.session_folder(tmp_path_factory)
    result = shared / "hostile-batch.json"
    with open(shared / "hostile-batch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            work = tmp_path_factory.mktemp("hostile")
            result.write_text(json.dumps(grade_everything(work), default=str))
        fcntl.flock(lock, fcntl.LOCK_UN)
    data = json.loads(result.read_text())
    if data["returncode"] != 0 or not data["rows"]:
        pytest.fail(f"the batch failed (exit {data['returncode']}):\n{data['stderr']}")
    return data


def rows_of(rows, student):
    return [r for r in rows if r["student_id"] == student]


def one_row(data, student, key="rows"):
    found = rows_of(data[key], student)
    assert len(found) == 1, f"{student}: {len(found)} rows in grades.csv; expected 1"
    return found[0]


def test_honest_submissions_get_their_points(observed):
    """The baselines are what they should be: otherwise "no more than the baseline" proves nothing."""
    for student, base in corpus.HONEST_STUDENTS.items():
        row = one_row(observed, student)
        assert row["status"] == "graded", row
        assert row["score"] == corpus.BASE_POINTS[base], row


def test_honest_scores_equal_grading_them_alone(observed):
    assert observed["alone_returncode"] == 0, observed["alone_stderr"]
    for student in corpus.HONEST_STUDENTS:
        together, alone = one_row(observed, student), one_row(observed, student, "alone_rows")
        for key in ("score", "max_score", "manual_pending", "status"):
            assert together[key] == alone[key], (
                f"{student}: {key} is {together[key]} with the attacks, {alone[key]} alone")


@pytest.mark.parametrize("student", sorted(ATTACK_STUDENTS), ids=lambda s: ATTACK_STUDENTS[s].name)
def test_attack_gains_nothing(observed, student):
    attack = ATTACK_STUDENTS[student]
    row = one_row(observed, student)
    base = one_row(observed, {v: k for k, v in corpus.HONEST_STUDENTS.items()}[attack.base])
    context = f"{attack.name} ({attack.what}): {row}"
    assert row["max_score"] == base["max_score"], f"the maximum must come from the instructor's source; {context}"
    assert row["manual_pending"] == base["manual_pending"], context
    assert row["status"], context
    if attack.expect == "same":
        assert row["score"] == base["score"], f"expected the base's {base['score']}; {context}"
    else:
        assert row["score"] <= base["score"], f"expected at most the base's {base['score']}; {context}"
    if row["status"] != "graded":
        assert row["reason"], f"a status other than graded needs a reason; {context}"


def test_every_submission_has_one_row(observed):
    students = sorted(observed["rows"][i]["student_id"] for i in range(len(observed["rows"])))
    assert students == sorted([*ATTACK_STUDENTS, *corpus.HONEST_STUDENTS])


def test_instructor_files_unchanged(observed):
    changed = [name for name in observed["before"] if observed["before"][name] != observed["after"][name]]
    assert not changed, f"changed by the batch: {changed}"


def test_other_students_files_unchanged(observed):
    assert observed["honest_before"] == observed["honest_after"]


def test_no_process_survives(observed):
    assert not observed["survivors"], f"still running after the batch: {observed['survivors']}"


def test_student_code_runs_as_another_user(observed):
    """Below the grader, the watcher saw processes of a uid other than the grader's (the sandbox's)."""
    assert any(uid != os.getuid() for uid in observed["uids"]), f"uids seen below the grader: {observed['uids']}"


def test_nothing_written_outside_the_sandbox(observed):
    assert not observed["markers"], f"files written by submissions: {observed['markers']}"


def test_no_network(observed):
    assert not observed["connections"], f"submissions reached this machine from: {observed['connections']}"


def test_gradebook_holds_the_batch(observed):
    scores = observed["gradebook"]
    assert "_error" not in scores, scores
    for student in corpus.HONEST_STUDENTS:
        assert scores.get(student) == one_row(observed, student)["score"], (student, scores.get(student))


def test_formgrader_can_show_every_graded_submission(observed):
    """--autograded wrote nbgrader's autograded notebook of every student whose notebook was read."""
    pages = observed["autograded"]
    unread = {"missing", "invalid notebook"}
    lacking = [r["student_id"] for r in observed["rows"]
               if r["status"] not in unread and not pages.get(r["student_id"], {}).get("exists")]
    assert not lacking, f"no autograded notebook for {lacking}"


def test_autograded_notebooks_are_safe_to_open_in_formgrader(observed):
    """What a student wrote (a written answer, a markdown cell, an error message) runs no script in the
    instructor's formgrader, which renders the autograded notebook without sanitizing it."""
    rendered = {s: p for s, p in observed["autograded"].items() if "script" in p or "error" in p}
    assert set(corpus.HONEST_STUDENTS) <= set(rendered), sorted(rendered)
    problems = [f"{s}: {p}" for s, p in rendered.items() if p.get("error") or p.get("script") or p.get("secret")]
    assert not problems, problems


def test_feedback_is_bounded_escaped_and_confidential(observed):
    pages = observed["feedback"]
    students = {name.split("/")[0] for name in pages}
    assert set(corpus.HONEST_STUDENTS) <= students, f"feedback pages: {sorted(pages)[:10]}"
    problems = []
    for name, page in pages.items():
        if page["size"] > 2_000_000:
            problems.append(f"{name}: {page['size']} bytes")
        for key in ("script", "secret", "leak", "hidden", "model_answer"):
            if page[key]:
                problems.append(f"{name}: {key}")
    assert not problems, problems


NAIVE = [a for a in corpus.ATTACKS if a.name in corpus.NAIVE_CHEATS]


@pytest.fixture(scope="module")
def naive_batch(tmp_path_factory):
    """The naive-cheat attacks and the honest notebooks in a folder of their own (no grader involved)."""
    work = tmp_path_factory.mktemp("naive")
    targets = corpus.Targets(course=corpus.make_course(work / "course"), submissions=work / "submissions",
                             out=work / "out", db=work / "gradebook.db", markers=work / "markers", port=9)
    corpus.build_honest(targets.submissions)
    corpus.build_hostile(targets.submissions, targets, NAIVE)
    return targets.submissions


@pytest.mark.parametrize("attack", NAIVE, ids=lambda a: a.name)
def test_the_attack_cheats_a_naive_grader(naive_batch, attack):
    """The corpus has teeth: run in the student's own process, with points read from the notebook,
    this attack scores more than its base; so the grader's "no more than the base" is a real result."""
    score = corpus.naive_score(naive_batch / corpus.attack_student(attack) / corpus.NOTEBOOK)
    assert score > corpus.BASE_POINTS[attack.base], f"{attack.name}: {score}"


def test_the_naive_grader_scores_the_honest_ones_right(naive_batch):
    for student, base in corpus.HONEST_STUDENTS.items():
        assert corpus.naive_score(naive_batch / student / corpus.NOTEBOOK) == corpus.BASE_POINTS[base], student
