"""``grade()``: one batch of submissions, from the folders to grades.csv, feedback and the gradebook.

One submission's way, on the trusted side (the grading process), each step
in its own module:

1. folder -> job: :func:`~rnncourse.grader.jobs.find_jobs` (a safe student
   id per folder; the only files read there are read safely);
2. the notebook file, read safely (:func:`~rnncourse.grader.notebook.read_notebook_file`),
   and its plan (:func:`~rnncourse.grader.plan.plan_steps`); each check's
   hidden seed from the instructor's secret, the assignment, the student and
   the check (HMAC-SHA256), and the cases, visible and hidden;
3. the cache (keyed on the submission's bytes, the source notebook, the
   package's sources, the grader's version, the seeds and the limits); on a
   miss,
4. job -> sandbox -> frames: :func:`~rnncourse.grader.execution.execute`
   sends the plan to the runner one unit at a time, on the grader's clocks,
   and goes on in a fresh sandbox after a stop;
5. frames -> judge: :func:`~rnncourse.grader.judge.judge_cells` judges every
   case's outputs with :func:`rnncourse.checks.judge`; a test cell earns its
   points (from the source) when all its cases pass;
6. the result goes to the cache; then, in the main thread: the gradebook
   (:class:`~rnncourse.grader.gradebook.Recorder`), the row
   (:func:`~rnncourse.grader.rows.make_row`) and the feedback page
   (:mod:`~rnncourse.grader.feedback`). grades.csv comes last, sorted;
   then checks.json, report.html and lms.csv (:mod:`~rnncourse.grader.report`,
   :mod:`~rnncourse.grader.lms`).

Nothing a submission does can stop the batch: every failure becomes that
submission's row, with a status and a reason.
"""

import atexit
import concurrent.futures
import hashlib
import hmac
import json
import os
import queue
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import GradeError, execution, judge, rows
from .jobs import Job, find_jobs, parse_submission_time
from .notebook import MB, read_notebook_file, valid_text
from .plan import plan_steps
from .source import course_config, load_assignment

__all__ = ["grade", "GradeError", "Job", "find_jobs", "hidden_seed", "load_secret", "package_digest"]

GRADER_VERSION = "2"
CACHE_DIR = ".cache"

REPOSITORY = Path(__file__).resolve().parents[2]


# --- the instructor's secret and the seeds ------------------------------------------------


def load_secret(path):
    """The secret's bytes; a new random secret (mode 0600) when the file does not exist."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        data = path.read_bytes()
        if not data.strip():
            raise GradeError(f"the secret file {path} is empty") from None
        return data
    except OSError as err:
        raise GradeError(f"cannot create the secret file {path}: {err.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path.read_bytes()


def hidden_seed(secret, assignment, student, check):
    """The seed of a student's hidden cases of one check: HMAC-SHA256(secret, assignment, student, check)."""
    message = "\0".join((assignment, student, check)).encode()
    return int.from_bytes(hmac.new(secret, message, hashlib.sha256).digest()[:8], "big")


# --- results --------------------------------------------------------------------------


def _result(job, status, reason, cells=(), errors=(), stops=(), ex=None):
    """The result of one submitted notebook: plain data (it goes to the cache as JSON).

    ``attempts`` is how many sandboxes the notebook took (1 without a stop), ``seconds`` their time.
    Its text is valid Unicode: a lone surrogate (from bytes that are not UTF-8, in a message from the
    sandbox) becomes '?', so that every page and file it goes to can be written.
    """
    nb = job.notebook
    return valid_text({
        "student_id": job.student,
        "notebook": nb.name,
        "status": status,
        "reason": reason,
        "auto_score": sum(c["earned"] for c in cells),
        "max_score": nb.max_score,
        "cells": list(cells),
        "errors": list(errors),
        "stops": list(stops),
        "attempts": ex.attempts if ex is not None else 0,
        "seconds": round(ex.seconds, 3) if ex is not None else 0.0,
    })


def _unrun_cells(notebook, message):
    """Every graded cell of the source with nothing earned (a submission that could not run)."""
    cells = []
    for cell in notebook.graded:
        checks = [{"name": n, "passed": False, "message": message} for n in cell.checks]
        cells.append({"grade_id": cell.grade_id, "points": cell.points, "auto": cell.auto, "earned": 0, "checks": checks})
    return cells


# --- the batch ------------------------------------------------------------------------


class _Batch:
    """What every job of a batch shares."""

    def __init__(self, assignment, secret, sandbox, limits, out, max_bytes, package_digest, autograded=None, *, isolated=None):
        self.assignment = assignment
        self.autograded = autograded
        self.secret = secret
        self.sandbox = sandbox  # None when the sandboxes run elsewhere (rnncourse.grader.cluster)
        self.isolated = sandbox.isolated if isolated is None else isolated
        self.limits = limits
        self.cache = Path(out) / CACHE_DIR
        self.max_bytes = max_bytes
        self.package_digest = package_digest
        self.slots = queue.Queue()

    def cases(self, student, checks):
        from rnncourse.checks import make_cases

        made = {}
        for name in checks:
            seed = hidden_seed(self.secret, self.assignment.name, student, name)
            made[name] = make_cases(name) + make_cases(name, seed, hidden=True)
        return made

    def cache_key(self, job, data):
        seeds = [hidden_seed(self.secret, self.assignment.name, job.student, n) for n in self.assignment.checks]
        limits = self.limits
        material = {
            "grader": GRADER_VERSION,
            "package": self.package_digest,
            "source": job.notebook.digest,
            "assignment": self.assignment.name,
            "notebook": job.notebook.name,
            "student": job.student,
            "file": job.path.name,
            "submission": hashlib.sha256(data).hexdigest(),
            "seeds": hashlib.sha256(repr(seeds).encode()).hexdigest(),
            "limits": [limits.cell_timeout, limits.timeout, limits.memory, limits.max_output, limits.max_processes],
            "isolated": self.isolated,
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()

    def cached(self, key):
        try:
            entry = json.loads((self.cache / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None
        return entry.get("result") if isinstance(entry, dict) and entry.get("key") == key else None

    def store(self, key, result):
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = self.cache / f".{key}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps({"key": key, "result": result}, sort_keys=True))
        os.replace(tmp, self.cache / f"{key}.json")

    def grade(self, job):
        """``(result, from_cache)`` for one job; never raises for anything a submission does."""
        result, from_cache, ready = self.prepare(job)
        if result is None:
            slot = self.slots.get()
            try:
                ex = execution.execute(self.sandbox, slot, ready.steps, ready.cases)
            finally:
                self.slots.put(slot)
            result = self.judge(ready, ex)
        return self.conclude(ready, result), from_cache

    def prepare(self, job):
        """``(result, from_cache, ready)``: ``result`` is None when the job must run in a sandbox.

        ``ready`` (a :class:`Prepared`, None when the notebook could not be read) holds what the sandbox
        needs (the steps, the cases) and what judging needs afterwards.
        """
        if job.status is not None:
            message = "no notebook" if job.status == "missing" else f"not graded ({job.status})"
            return _result(job, job.status, job.note, _unrun_cells(job.notebook, message)), False, None
        try:
            data, notebook, notes = read_notebook_file(job.path, self.max_bytes)
        except ValueError as err:
            reason = "; ".join(filter(None, [str(err), job.note]))
            return _result(job, "invalid notebook", reason, _unrun_cells(job.notebook, "the notebook could not be read")), False, None
        if job.note:
            notes.insert(0, job.note)
        key = self.cache_key(job, data)
        ready = Prepared(job, notebook, notes, key)
        result = self.cached(key)
        if result is not None:
            return result, True, ready
        ready.steps, plan_notes = plan_steps(job.notebook, notebook)
        notes += plan_notes
        checks = [n for s in ready.steps if s.kind == "checks" for n in s.checks]
        ready.cases = self.cases(job.student, dict.fromkeys(checks))
        return None, False, ready

    def judge(self, ready, ex):
        """The result of a run (an :class:`~rnncourse.grader.execution.Execution`), judged; cached unless an error."""
        job, steps, cases = ready.job, ready.steps, ready.cases
        if ex.error:
            # The sandbox's own failure, not the submission's: never cached.
            return _result(job, "error", ex.error, _unrun_cells(job.notebook, f"not run: {ex.error}"), ex=ex)
        cells = judge.judge_cells(job.notebook, steps, cases, ex, self.limits)
        stops = judge.stop_reports(ex, steps, cases, self.limits, job.notebook)
        status, reason = judge.status_and_reason(ex, stops, ready.notes)
        result = _result(job, status, reason, cells, judge.step_errors(ex, steps), stops, ex)
        self.store(ready.key, result)
        return result

    def conclude(self, ready, result):
        """``result``, after nbgrader's autograded notebook (when asked for) is written, with the digests
        of the written answers for the gradebook (a hand grade follows its answer); those are not cached:
        the submission's bytes are the cache key already."""
        if ready is None:
            return result
        from . import autograded

        if self.autograded is not None and result["status"] != "error":
            autograded.write(self.autograded, self.assignment.name, ready.job.notebook, ready.notebook, result)
        return dict(result, answers=autograded.answer_digests(ready.job.notebook, ready.notebook))


@dataclass
class Prepared:
    """One submission read, keyed and planned: ``steps`` and ``cases`` go to a sandbox, the rest stays here."""

    job: Job
    notebook: dict
    notes: list
    key: str
    steps: list = None
    cases: dict = None


def package_digest():
    """sha256 of every source file of the package: the checks, the references, the grader."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def default_course():
    """The course folder the commands run from: the current folder when it is a course (has nbgrader_config.py),
    else the repository root when it is one, else the current folder."""
    here = Path.cwd()
    if (here / "nbgrader_config.py").is_file():
        return here
    return REPOSITORY if (REPOSITORY / "nbgrader_config.py").is_file() else here


def grade(
    assignment,
    submissions,
    out,
    *,
    course=None,
    workers=None,
    db=None,
    secret_file=None,
    cell_timeout=60.0,
    timeout=600.0,
    memory=2048,
    max_output=1_000_000,
    max_processes=64,
    max_notebook_mb=20,
    progress=None,
    isolate=True,
    autograded=None,
    students=None,
    submitted_at=None,
    log=None,
    scheduler=None,
):
    """Grade every submission of ``assignment`` in ``submissions``; return the rows of grades.csv.

    ``out`` receives grades.csv, feedback/<student>/<notebook>.html, the
    class report (checks.json, report.html, lms.csv) and the cache (.cache/).
    ``course`` holds the sources and nbgrader_config.py
    (default: the current folder when it holds nbgrader_config.py, else
    this repository). ``db``: the gradebook's URL (default
    sqlite:///<course>/gradebook.db). ``secret_file`` (default
    <course>/.rnncourse-secret) is created when missing. ``memory`` in MB,
    ``max_output`` in bytes, times in seconds. ``progress``: None shows a
    bar when stderr is a terminal. ``autograded``: a folder (e.g.
    <course>/autograded) to receive nbgrader's autograded notebooks, for
    formgrader (default: none). ``students``: student ids (as in
    grades.csv) to grade again, alone: their rows of an existing
    ``out/grades.csv`` are replaced and every other line stays as it was
    (:func:`~rnncourse.grader.rows.update_csv`); an id with no folder in
    ``submissions`` is an instructor error. ``submitted_at``: ``{student id:
    time}``, the instructor's submission times, in place of the students'
    ``timestamp.txt`` (text as :func:`~rnncourse.grader.jobs.parse_submission_time`
    reads it; an unreadable time or an id with no folder is an instructor
    error). The submission time, the due date and extension in the gradebook
    and the course's late submission plugin give each row's ``submitted_at``,
    ``late_by`` and ``late_penalty`` (:mod:`~rnncourse.grader.gradebook`).
    ``log(message)`` gets warnings (default:
    stderr). ``scheduler``: a Dask scheduler's address (``tcp://host:8786``, ``tls://...``) or a
    ``distributed.Client``: the sandboxes then run on its workers, ``workers`` is ignored, and this process
    stays the single writer (:mod:`rnncourse.grader.cluster`). Raises :class:`~rnncourse.grader.core.GradeError` (or :class:`~rnncourse.grader.source.CourseError`) for
    instructor errors only.
    """
    from . import gradebook
    from .sandbox import Limits, Sandbox

    log = log or (lambda message: print(f"rnncourse grade: {message}", file=sys.stderr))
    course = Path(course) if course is not None else default_course()
    if not course.is_dir():
        raise GradeError(f"the course folder {course} does not exist")
    the_assignment = load_assignment(course, assignment)
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise GradeError(f"the submissions folder {submissions} does not exist")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    secret = load_secret(secret_file if secret_file is not None else course / ".rnncourse-secret")
    db_url = db or f"sqlite:///{(course / 'gradebook.db').resolve()}"
    workers = max(1, int(workers or os.cpu_count() or 1))
    limits = Limits(
        cell_timeout=float(cell_timeout),
        timeout=float(timeout),
        memory=int(memory * MB),
        max_output=int(max_output),
        max_processes=int(max_processes),
    )
    times = _instructor_times(submitted_at or {})
    late = gradebook.late_policy(course_config(course), f"{course / 'nbgrader_config.py'}", folder=course.resolve())
    book = gradebook.Recorder(db_url, the_assignment, late)  # fails early on a bad URL
    jobs = find_jobs(submissions, the_assignment, skip=[out], log=log)
    if times:
        _jobs_of_students(jobs, list(times), submissions, "--submitted-at")  # every id given has a folder
    if students is not None:
        jobs = _jobs_of_students(jobs, students, submissions)
    digest = package_digest()
    results, outcomes = {}, []
    try:
        if scheduler is not None:
            from .cluster import grade_on_cluster

            batch = _Batch(the_assignment, secret, None, limits, out, int(max_notebook_mb * MB), digest, autograded, isolated=False)
            bar = Progress(the_assignment.name, len(jobs), enabled=progress)
            try:
                for job, result, from_cache in grade_on_cluster(scheduler, batch, jobs, isolate=isolate, log=log):
                    when = _submission_time(job, times)
                    results[(job.student, job.notebook.name)] = _record(book, out, the_assignment, job, result, when)
                    outcomes.append(result)
                    bar.update(from_cache, result["status"])
            finally:
                bar.close()
        else:
            package = stripped_package(the_assignment.name, digest)
            with Sandbox(package, limits, isolate=isolate) as sandbox:
                log("\n".join([*sandbox.mode.report(), *(f"warning: {w}" for w in sandbox.warnings)]))
                batch = _Batch(the_assignment, secret, sandbox, limits, out, int(max_notebook_mb * MB), digest, autograded)
                for slot in range(workers):
                    batch.slots.put(slot)
                bar = Progress(the_assignment.name, len(jobs), enabled=progress)
                pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grade")
                futures = {}
                try:
                    futures = {pool.submit(_safe_grade, batch, job): job for job in jobs}
                    for future in concurrent.futures.as_completed(futures):
                        job = futures[future]
                        result, from_cache = future.result()
                        when = _submission_time(job, times)
                        results[(job.student, job.notebook.name)] = _record(book, out, the_assignment, job, result, when)
                        outcomes.append(result)
                        bar.update(from_cache, result["status"])
                except BaseException:
                    sandbox.stop()
                    for f in futures:
                        f.cancel()
                    raise
                finally:
                    pool.shutdown(wait=True)
                    bar.close()
    finally:
        book.close()
    table = [results[k] for k in sorted(results)]
    if students is not None:
        table = rows.update_csv(out / "grades.csv", table, set(students))
    else:
        rows.write_csv(out / "grades.csv", table)
    _class_report(out, the_assignment.name, outcomes, None if students is None else set(students), log)
    return table


def _class_report(out, assignment, results, students, log):
    """After grades.csv: checks.json, report.html and lms.csv; a failure is a warning (the grades are saved)."""
    from . import lms, report

    try:
        report.write_outcomes(out, assignment, results, students)
        report.write_report(out)
        lms.write(Path(out) / lms.LMS, [out])
    except (OSError, GradeError) as err:
        log(f"warning: the class report was not written ({err}); build it again with: rnncourse report {out}")


def _jobs_of_students(jobs, students, submissions, option="--student"):
    """The jobs of ``students`` only; a :class:`GradeError` naming every id that has no folder."""
    students = list(dict.fromkeys(students))
    found = {job.student for job in jobs}
    unknown = [s for s in students if s not in found]
    if not students or unknown:
        names = ", ".join(ascii(s) for s in unknown) or "none given"
        raise GradeError(f"{option}: no submission of {names} in {submissions} (ids as in grades.csv's student_id)")
    return [job for job in jobs if job.student in set(students)]


def _instructor_times(texts):
    """``{student: time}`` from the instructor's ``{student: text}``; a :class:`GradeError` for a time unreadable."""
    times = {}
    for student, text in texts.items():
        when, why = parse_submission_time(text)
        if when is None:
            raise GradeError(f"--submitted-at {student}=...: {why}")
        times[student] = when
    return times


def _submission_time(job, times):
    """``(time, note)``: the instructor's time for the student, else timestamp.txt's; ``note`` says which, or why none."""
    if job.student in times:
        return times[job.student], "submission time given by the instructor (--submitted-at)"
    if job.timestamp is None:
        return None, ""
    when, why = parse_submission_time(job.timestamp)
    return when, ("" if when is not None else f"timestamp.txt ignored: {why}; no submission time, so no late penalty")


def _record(book, out, assignment, job, result, when=(None, "")):
    """The result into the gradebook, its row, and its feedback page; the row (whatever fails on the way).

    ``when``: ``(submission time or None, a note on it for the reason)``.
    """
    from . import feedback

    submitted_at, time_note = when
    done = book.record(job, result, submitted_at)

    def row_of(*notes):
        note = "; ".join(filter(None, [time_note, done.note, *notes]))
        return rows.make_row(result, done.given, done.pending, note, submitted_at, done.late_by, done.late_penalty)

    row = row_of()
    try:
        hand = book.hand_grades(job, result) if done.given or done.pending else {}
        feedback.write(out, assignment, job.notebook, result, row, hand=hand)
    except Exception as err:  # noqa: BLE001 - e.g. a full disk: this row says so, the batch goes on
        row = row_of(f"no feedback page ({type(err).__name__}: {err})")
    return row


_STRIPPED = {}  # (assignment, package digest) -> folder, for the life of this process


def stripped_package(assignment, digest):
    """The folder holding the stripped package for ``assignment``, built once per process and package version."""
    from . import strip
    from .sandbox import PACKAGE_MOUNT

    key = (assignment, digest)
    if key not in _STRIPPED:
        folder = tempfile.mkdtemp(prefix=f"rnncourse-grade-{assignment}-")
        os.chmod(folder, 0o755)
        if not _STRIPPED:
            atexit.register(lambda: [shutil.rmtree(f, ignore_errors=True) for f in _STRIPPED.values()])
        try:
            strip.build(assignment, folder, mount_point=PACKAGE_MOUNT)
        except strip.StripError as err:
            shutil.rmtree(folder, ignore_errors=True)
            raise GradeError(f"the package for the sandbox cannot be built: {err}") from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        _STRIPPED[key] = folder
    return _STRIPPED[key]


_stripped_package = stripped_package  # its name before the cluster's workers needed it (the tests use it)


def _safe_grade(batch, job):
    try:
        return batch.grade(job)
    except Exception as err:  # noqa: BLE001 - a grader bug on one submission must not stop the batch
        return error_result(job, err), False


def error_result(job, failure):
    """The ``error`` result of a job the grader failed on: ``failure`` is the exception, or the reason's text."""
    if isinstance(failure, BaseException):
        import traceback

        detail = "".join(traceback.format_exception_only(type(failure), failure)).strip()
        failure = f"the grader failed on this submission ({detail[:300]})"
    return _result(job, "error", failure, _unrun_cells(job.notebook, "not graded"))


class Progress:
    """One line on stderr: done/total, a bar, how many came from the cache. Off when stderr is not a terminal."""

    def __init__(self, name, total, *, enabled=None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else bool(enabled)
        self.name, self.total = name, total
        self.done = self.cached = self.failed = 0
        self.start = time.monotonic()
        self.last = 0.0
        self._draw(force=True)

    def update(self, from_cache, status):
        self.done += 1
        self.cached += bool(from_cache)
        self.failed += status not in ("graded",)
        self._draw(force=self.done == self.total)

    def _draw(self, force=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        elapsed = now - self.start
        rate = self.done / elapsed * 60 if elapsed > 0 and self.done else 0.0
        line = (
            f"\r{self.name}: {self.done}/{self.total} [{'#' * filled}{'.' * (width - filled)}] "
            f"{rate:.0f}/min, {self.cached} cached, {self.failed} not fully graded, {elapsed:.0f} s"
        )
        self.stream.write(line)
        self.stream.flush()

    def close(self):
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
