"""``grade()``: one batch of submissions, from the folders to grades.csv, feedback and the gradebook.

Per submitted notebook, on the trusted side (the grading process):

1. read the file (at most ``max_notebook_mb``; not a link; JSON; cells) and
   plan its steps from the instructor's source (:mod:`rnncourse.grader.plan`);
2. derive each check's hidden seed from the instructor's secret, the
   assignment, the student and the check (HMAC-SHA256), and make the cases:
   the visible ones and the hidden ones;
3. look the submission up in the cache (keyed on the submission's bytes, the
   source notebook, the package's sources, the grader's version, the seeds
   and the limits); on a miss,
4. run the runner in the sandbox (:mod:`rnncourse.grader.sandbox`) with the plan and the
   cases on stdin, and read back only frames of plain data;
5. judge every case's outputs with :func:`rnncourse.checks.judge` here; a
   test cell earns its points (from the source) when all its cases pass;
6. write the result to the cache; then, in the main thread, record it in the
   gradebook and write its feedback page. The CSV comes last, sorted.

Nothing a submission does can stop the batch: every failure becomes a row
with a status and a reason.
"""

import atexit
import concurrent.futures
import hashlib
import hmac
import io
import json
import os
import queue
import secrets
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .notebook import MB, read_notebook_file
from .plan import plan_steps
from .source import load_assignment

GRADER_VERSION = "1"
from . import COLUMNS
CACHE_DIR = ".cache"
MAX_ERRORS_SHOWN = 20
MB_RESULTS = 64  # MB of results one case's NPZ may unpack to

REPOSITORY = Path(__file__).resolve().parents[2]


class GradeError(Exception):
    """An instructor error: the batch cannot start (the message says why)."""


@dataclass(frozen=True)
class Job:
    student: str
    notebook: object  # SourceNotebook
    path: Path = None  # None: missing
    note: str = ""  # why it is missing or refused
    timestamp: str = None


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


# --- finding the submissions ----------------------------------------------------------


def find_jobs(submissions, assignment, *, skip=(), log=lambda message: None):
    """One :class:`~rnncourse.grader.core.Job` per (student folder, source notebook), sorted by student.

    ``submissions/<student>/<notebook>.ipynb``, or nbgrader's
    ``submitted/<student>/<assignment>/<notebook>.ipynb``. Hidden entries
    and the folders in ``skip`` (the output folder) are not students; a
    plain file is not either, and ``log`` says so.
    """
    jobs = []
    skip = {Path(p).resolve() for p in skip}
    for entry in sorted(os.scandir(submissions), key=lambda e: e.name):
        if entry.name.startswith(".") or Path(entry.path).resolve() in skip:
            continue
        student = student_id(entry.name)
        if entry.is_symlink():
            jobs += [Job(student, nb, None, "refused: the student folder is a symbolic link") for nb in assignment.notebooks]
            continue
        if not entry.is_dir():
            log(f"{entry.path} is not a folder: not a student's submission, ignored")
            continue
        folder = Path(entry.path)
        nested = folder / assignment.name
        if nested.is_dir() and not nested.is_symlink():
            folder = nested
        timestamp = _timestamp(folder)
        present = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        for nb in assignment.notebooks:
            if nb.filename in present:
                jobs.append(Job(student, nb, folder / nb.filename, timestamp=timestamp))
                continue
            # One notebook under another name, for an assignment of one notebook: grade it, and say so.
            others = sorted(n for n in present if n.endswith(".ipynb") and not n.startswith("."))
            if len(assignment.notebooks) == 1 and len(others) == 1:
                jobs.append(Job(student, nb, folder / others[0], f"graded {others[0]!r} as {nb.filename}", timestamp))
            else:
                jobs.append(Job(student, nb, None, f"no {nb.filename} in the submission", timestamp))
    return jobs


def student_id(name):
    """The student id of a folder name: the name, with bytes that are not UTF-8 written as escapes."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _timestamp(folder):
    try:
        text = (folder / "timestamp.txt").read_text(errors="replace").strip()
    except OSError:
        return None
    return text[:64] or None


# --- results --------------------------------------------------------------------------


def _result(job, status, reason, cells=(), errors=()):
    """The result of one submitted notebook: plain data (it goes to the cache as JSON)."""
    nb = job.notebook
    return {
        "student_id": job.student,
        "notebook": nb.name,
        "status": status,
        "reason": reason,
        "auto_score": sum(c["earned"] for c in cells),
        "max_score": nb.max_score,
        "cells": list(cells),
        "errors": list(errors),
    }


def _unrun_cells(notebook, message):
    """Every graded cell of the source with nothing earned (a submission that could not run)."""
    cells = []
    for cell in notebook.graded:
        checks = [{"name": n, "passed": False, "message": message} for n in cell.checks]
        cells.append({"grade_id": cell.grade_id, "points": cell.points, "auto": cell.auto, "earned": 0, "checks": checks})
    return cells


def _describe_stop(outcome, steps, limits):
    label = steps[outcome.step].label if outcome.step is not None and outcome.step < len(steps) else None
    where = label or ("before the first cell" if outcome.step is None else "the last step")
    if outcome.status == "timeout":
        if outcome.detail == "cell":
            return f"{where} ran longer than {limits.cell_timeout:g} s, the limit per cell"
        if outcome.detail == "start":
            return f"Python did not start within {limits.cell_timeout:g} s"
        return f"the notebook ran longer than {limits.timeout:g} s, the limit per notebook (stopped in {where})"
    if outcome.status == "memory":
        return f"{where} used more than {limits.memory // MB} MB of memory, the limit"
    if outcome.status == "output limit":
        if outcome.detail == "results":
            return f"{where} sent back more than {MB_RESULTS} MB of results"
        return f"{where} wrote more than {limits.max_output} bytes of output, the limit"
    if outcome.status == "crashed":
        code = outcome.returncode
        how = f"exit code {code}" if code is not None and code >= 0 else f"signal {-code}" if code is not None else "?"
        return f"the kernel stopped in {where} ({how})"
    if outcome.status == "error":
        if outcome.detail == "stopped":
            return "the batch was interrupted"
        tail = " ".join(outcome.output.decode(errors="replace").split())[-300:]
        return f"the sandbox did not start ({tail or 'no output'})"
    return ""


def _load_outputs(body):
    """The arrays of one case's outputs, read without pickle, refusing zip bombs; or None."""
    from rnncourse.checks import load_arrays

    try:
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            infos = zf.infolist()
            if len(infos) > 256 or sum(i.file_size for i in infos) > MB_RESULTS * MB:
                return None
        return load_arrays(io.BytesIO(body))
    except Exception:  # noqa: BLE001 - anything unreadable is no output
        return None


def _judge(notebook, cases, outcome, steps, stop_message):
    """The graded cells' results from what the sandbox sent back."""
    from rnncourse.checks import judge

    received = {}
    for header, body in outcome.frames:
        if header.get("t") != "case":
            continue
        name, j = header.get("check"), header.get("case")
        if name in cases and isinstance(j, int) and 0 <= j < len(cases[name]):
            received.setdefault((name, j), body)  # the first answer counts
    cells = []
    for cell in notebook.graded:
        results = []
        for name in cell.checks:
            passed, message = True, ""
            for j, case in enumerate(cases[name]):
                body = received.get((name, j))
                if body is None:
                    passed, message = False, f"{name}: not run ({stop_message or 'the notebook stopped before this test'})"
                    break
                outputs = _load_outputs(body)
                if outputs is None:
                    passed, message = False, f"{name}: the outputs could not be read"
                    break
                ok, text = judge(name, case, outputs)
                if not ok:
                    passed, message = False, text
                    break
            results.append({"name": name, "passed": passed, "message": message})
        earned = cell.points if cell.auto and all(r["passed"] for r in results) else 0
        cells.append({"grade_id": cell.grade_id, "points": cell.points, "auto": cell.auto, "earned": earned, "checks": results})
    return cells


def _step_errors(outcome, steps):
    errors = []
    for header, _ in outcome.frames:
        if header.get("t") == "step_end" and isinstance(header.get("error"), str):
            i = header.get("i")
            if isinstance(i, int) and 0 <= i < len(steps) and steps[i].kind == "code":
                errors.append([steps[i].label, header["error"][:500]])
    return errors[:MAX_ERRORS_SHOWN]


# --- the batch ------------------------------------------------------------------------


class _Batch:
    """What every job of a batch shares."""

    def __init__(self, assignment, secret, sandbox, limits, out, max_bytes, package_digest, autograded=None):
        self.assignment = assignment
        self.autograded = autograded
        self.secret = secret
        self.sandbox = sandbox
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
            "isolated": self.sandbox.isolated,
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
        if job.path is None:
            status = "invalid notebook" if job.note.startswith("refused") else "missing"
            return _result(job, status, job.note, _unrun_cells(job.notebook, "no notebook")), False
        try:
            data, notebook, notes = read_notebook_file(job.path, self.max_bytes)
        except ValueError as err:
            return _result(job, "invalid notebook", str(err), _unrun_cells(job.notebook, "the notebook could not be read")), False
        if job.note:
            notes.insert(0, job.note)
        key = self.cache_key(job, data)
        result = self.cached(key)
        from_cache = result is not None
        if result is None:
            result = self._run(job, notebook, notes, key)
        if self.autograded is not None and result["status"] != "error":
            from . import autograded

            autograded.write(self.autograded, self.assignment.name, job.notebook, notebook, result)
        return result, from_cache

    def _run(self, job, notebook, notes, key):
        steps, plan_notes = plan_steps(job.notebook, notebook)
        notes += plan_notes
        checks = [n for s in steps if s.kind == "checks" for n in s.checks]
        cases = self.cases(job.student, dict.fromkeys(checks))
        payload = _payload(steps, cases)
        slot = self.slots.get()
        try:
            outcome = self.sandbox.run_job(payload, slot, steps=len(steps))
        finally:
            self.slots.put(slot)
        stop = _describe_stop(outcome, steps, self.limits) if outcome.status != "done" else ""
        status = "graded" if outcome.status == "done" else outcome.status
        if status == "error":
            # The sandbox's own failure, not the submission's: never cache it.
            return _result(job, "error", stop, _unrun_cells(job.notebook, "not run: the sandbox did not start"))
        cells = _judge(job.notebook, cases, outcome, steps, f"the notebook stopped: {stop}" if stop else "")
        reason = "; ".join([*([stop] if stop else []), *notes])
        result = _result(job, status, reason, cells, _step_errors(outcome, steps))
        self.store(key, result)
        return result


def _payload(steps, cases):
    """The runner's stdin: the plan as JSON, then each case as NPZ, each with its 8-byte length."""
    from rnncourse.checks import save_arrays

    entries, blobs = [], []
    for name, made in cases.items():
        for j, case in enumerate(made):
            buf = io.BytesIO()
            save_arrays(buf, case)
            entries.append({"check": name, "index": j})
            blobs.append(buf.getvalue())
    plan = json.dumps({"steps": [s.to_json() for s in steps], "cases": entries}).encode()
    parts = [len(plan).to_bytes(8, "big"), plan]
    for blob in blobs:
        parts += [len(blob).to_bytes(8, "big"), blob]
    return b"".join(parts)


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
    """The repository root when it is a course (has nbgrader_config.py), else the current folder."""
    return REPOSITORY if (REPOSITORY / "nbgrader_config.py").is_file() else Path.cwd()


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
    log=None,
):
    """Grade every submission of ``assignment`` in ``submissions``; return the rows of grades.csv.

    ``out`` receives grades.csv, feedback/<student>/<notebook>.html and the
    cache (.cache/). ``course`` holds the sources and nbgrader_config.py
    (default: this repository). ``db``: the gradebook's URL (default
    sqlite:///<course>/gradebook.db). ``secret_file`` (default
    <course>/.rnncourse-secret) is created when missing. ``memory`` in MB,
    ``max_output`` in bytes, times in seconds. ``progress``: None shows a
    bar when stderr is a terminal. ``autograded``: a folder (e.g.
    <course>/autograded) to receive nbgrader's autograded notebooks, for
    formgrader (default: none). ``log(message)`` gets warnings (default:
    stderr). Raises :class:`~rnncourse.grader.core.GradeError` (or :class:`~rnncourse.grader.source.CourseError`) for
    instructor errors only.
    """
    from . import feedback, gradebook
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
    book = gradebook.Recorder(db_url, the_assignment)  # fails early on a bad URL
    jobs = find_jobs(submissions, the_assignment, skip=[out], log=log)
    digest = package_digest()
    results = {}
    try:
        package = _stripped_package(the_assignment.name, digest)
        with Sandbox(package, limits, isolate=isolate) as sandbox:
            for warning in sandbox.warnings:
                log(f"warning: {warning}")
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
                    row = book.record(job, result)
                    feedback.write(out, the_assignment, job.notebook, result, row)
                    results[(job.student, job.notebook.name)] = row
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
    rows = [results[k] for k in sorted(results)]
    write_csv(out / "grades.csv", rows)
    return rows


_STRIPPED = {}  # (assignment, package digest) -> folder, for the life of this process


def _stripped_package(assignment, digest):
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


def _safe_grade(batch, job):
    try:
        return batch.grade(job)
    except Exception as err:  # noqa: BLE001 - a grader bug on one submission must not stop the batch
        import traceback

        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        message = f"the grader failed on this submission ({detail[:300]})"
        return _result(job, "error", message, _unrun_cells(job.notebook, "not graded")), False


def _number(x):
    return int(x) if float(x).is_integer() else round(float(x), 6)


def write_csv(path, rows):
    import csv

    tmp = Path(path).with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    os.replace(tmp, path)


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
