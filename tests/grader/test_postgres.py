"""The gradebook in a real PostgreSQL server, as the instructor guide sets it up: ``--db postgresql://...``.

The slow test starts Debian's PostgreSQL 15 (``/usr/lib/postgresql/15/bin``;
scripts/install-test-deps.sh installs it) in a temporary folder, listening on
a local socket only, with password authentication, as an unprivileged user
(``nobody`` when the tests run as root: PostgreSQL refuses root). It grades
one assignment into it while a second process (a second teaching assistant)
grades another, for the same students, at the same time; then it runs
``nbgrader export`` against it. The server is stopped after.

The quick tests check that no message shows the database's password.
"""

import csv
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rnncourse.grader import GradeError
from rnncourse.grader.gradebook import redacted, scrubbed

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "s3cret/pw@with:odd chars"  # URL-encoded in the URL; neither form may appear in a message
USER = "teacher"
TEST_SECRET = b"the fixed secret of the grader's tests, 2\n"


def url(password=PASSWORD, host="127.0.0.1:1", database="gradebook", driver="postgresql"):
    from urllib.parse import quote

    return f"{driver}://{USER}:{quote(password, safe='')}@{host}/{database}"


# --- no message shows a password (quick) ------------------------------------------------


def test_redacted_and_scrubbed_hide_the_password():
    """Fails if the password (raw or URL-encoded) survives in the text every message is built from."""
    from urllib.parse import quote

    assert PASSWORD not in redacted(url()) and quote(PASSWORD, safe="") not in redacted(url())
    assert redacted(url()).startswith("postgresql://teacher:***@127.0.0.1:1/gradebook")
    assert redacted("sqlite:////tmp/gradebook.db") == "sqlite:////tmp/gradebook.db"
    text = f"could not connect to {url()} as teacher with {PASSWORD} ({quote(PASSWORD, safe='')})"
    assert "s3cret" not in scrubbed(text, url())
    assert "teacher" in scrubbed(text, url())
    # a URL SQLAlchemy cannot parse still loses its password
    assert "hunter2" not in redacted("postgresql://teacher:hunter2@[::1:5432/db")


def _assignment(name="02_rnn"):
    from rnncourse.grader.source import load_assignment

    return load_assignment(ROOT, name)


@pytest.mark.parametrize(
    "db",
    [
        url(),  # psycopg installed: no server listens on port 1
        url(driver="postgresql+nosuchdriver"),  # SQLAlchemy has no such driver
        url(host="nowhere.invalid"),  # a host that does not resolve
    ],
    ids=["refused", "no-driver", "no-host"],
)
def test_a_gradebook_that_cannot_be_opened_says_so_without_the_password(db):
    from urllib.parse import quote

    from rnncourse.grader.gradebook import Recorder

    with pytest.raises(GradeError) as caught:
        Recorder(db, _assignment())
    message = str(caught.value)
    assert "cannot use the gradebook postgresql" in message and "teacher:***@" in message
    assert PASSWORD not in message and quote(PASSWORD, safe="") not in message and "s3cret" not in message


def test_a_missing_driver_says_so_without_the_password(monkeypatch):
    """The guide's plain postgresql:// URL on a machine without psycopg: the error names the module only."""
    from rnncourse.grader.gradebook import Recorder

    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    with pytest.raises(GradeError) as caught:
        Recorder(url(), _assignment())
    assert "psycopg" in str(caught.value) and "s3cret" not in str(caught.value)


def test_psycopg_3_is_the_driver_of_a_plain_postgresql_url():
    """requirements.txt pins psycopg 3: the guide's ``postgresql://`` URL needs no ``+driver``."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url())
    assert engine.dialect.driver == "psycopg"
    pinned = (ROOT / "requirements.txt").read_text().split()
    assert any(p.startswith("psycopg==3.") for p in pinned) and any(p.startswith("psycopg-binary==3.") for p in pinned)


def test_cli_prints_no_password(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "rnncourse", "grade", "02_rnn", str(tmp_path), "--db", url(),
         "--secret-file", str(tmp_path / "secret"), "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2 and "cannot use the gradebook" in done.stderr
    assert "s3cret" not in done.stdout + done.stderr


# --- a real server (slow) ---------------------------------------------------------------


class PostgreSQL:
    """A PostgreSQL 15 server of its own: a data folder and a socket folder, stopped by :meth:`stop`."""

    started = False

    def start(self):
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"PostgreSQL 15 is not installed in {PG_BIN} (scripts/install-test-deps.sh installs it)")
        self.base = Path(tempfile.mkdtemp(prefix="rnncourse-pg-"))  # not under pytest's root-only tmp folder
        os.chmod(self.base, 0o755)
        self.data, self.socket = self.base / "data", self.base / "socket"
        self.socket.mkdir()
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD + "\n")
        self.owner = pwd.getpwnam("nobody") if os.getuid() == 0 else None
        if self.owner is not None:
            for path in (self.base, self.socket, pwfile):
                os.chown(path, self.owner.pw_uid, self.owner.pw_gid)
        self.run(PG_BIN / "initdb", "-D", self.data, "-U", USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                 "--encoding=UTF8", "--no-sync")
        pwfile.unlink()
        self.run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.base / "log", "-w", "-t", "60", "start",
                 "-o", f"-c listen_addresses='' -k {self.socket} -c fsync=off")
        self.started = True
        self.admin("CREATE DATABASE gradebook")

    def run(self, *command):
        command = [str(c) for c in command]
        if self.owner is not None:
            command = ["runuser", "-u", "nobody", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.base)
        if done.returncode != 0:
            log = (self.base / "log").read_text() if (self.base / "log").exists() else ""
            raise RuntimeError(f"{command} failed: {done.stdout}{done.stderr}{log}")
        return done

    def url(self, database="gradebook"):
        """The guide's form, ``postgresql://USER:PASSWORD@/DB``, with the socket folder as the host."""
        from urllib.parse import quote

        return f"postgresql://{USER}:{quote(PASSWORD, safe='')}@/{database}?host={self.socket}"

    def admin(self, sql):
        import psycopg

        with psycopg.connect(host=str(self.socket), user=USER, password=PASSWORD, dbname="postgres", autocommit=True) as c:
            c.execute(sql)

    def stop(self):
        if self.started:
            self.run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        if hasattr(self, "base"):
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def postgres():
    server = PostgreSQL()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _submissions(folder, assignment, students):
    """``students``: name -> "solution" or "release"; one folder per student with that notebook."""
    for student, which in students.items():
        source = ROOT / ("solutions" if which == "solution" else "exercises") / assignment / f"{assignment}.ipynb"
        (folder / student).mkdir(parents=True)
        shutil.copy(source, folder / student / f"{assignment}.ipynb")
    return folder


def _cli_grade(assignment, subs, out, db, secret):
    return subprocess.Popen(
        [sys.executable, "-m", "rnncourse", "grade", assignment, str(subs), "--out", str(out), "--db", db,
         "--secret-file", str(secret), "--workers", "1", "--no-progress"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_two_graders_at_once_into_postgresql_and_nbgrader_export(postgres, tmp_path):
    """Fails if psycopg is missing, if one of two concurrent graders loses rows or errs (both create the
    course and the same students in a new database), or if nbgrader export cannot read the gradebook."""
    secret = tmp_path / "secret"
    secret.write_bytes(TEST_SECRET)
    students = {"ada": "solution", "ben": "release", "cy": "solution"}
    batches = {"02_rnn": students, "05_gru": {s: w for s, w in students.items()}}
    started = {}
    for assignment, who in batches.items():
        subs = _submissions(tmp_path / f"subs-{assignment}", assignment, who)
        started[assignment] = _cli_grade(assignment, subs, tmp_path / f"out-{assignment}", postgres.url(), secret)
    for assignment, process in started.items():
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        assert "s3cret" not in stdout + stderr
        rows = _read_csv(tmp_path / f"out-{assignment}" / "grades.csv")
        assert {r["student_id"] for r in rows} == set(students)
        for row in rows:
            assert row["status"] == "graded", row
            assert "not recorded in the gradebook" not in row["reason"], row
    scores = {a: {r["student_id"]: float(r["score"]) for r in _read_csv(tmp_path / f"out-{a}" / "grades.csv")}
              for a in batches}
    assert scores["02_rnn"]["ada"] > 0 and scores["02_rnn"]["ben"] == 0

    from nbgrader.api import Gradebook

    with Gradebook(postgres.url(), course_id="rnncourse") as gb:
        for assignment, who in batches.items():
            for student in who:
                submission = gb.find_submission(assignment, student)
                assert submission.score == scores[assignment][student], (assignment, student)

    export = tmp_path / "export.csv"
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", f"--db={postgres.url()}", f"--to={export}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "s3cret" not in done.stdout + done.stderr
    exported = {(r["assignment"], r["student_id"]): float(r["raw_score"]) for r in _read_csv(export)}
    assert exported == {(a, s): scores[a][s] for a in batches for s in batches[a]}
