"""A batch graded on a Dask distributed cluster: the sandboxes run on the workers, everything else stays here.

``rnncourse grade ... --scheduler tcp://HOST:8786`` takes the same straight
line as a local batch (:mod:`rnncourse.grader.core`), cut in one place:

- **here, the single writer** (the grader's process): the jobs, reading each
  notebook, the cache, the plan, the hidden cases (from the secret, which
  never leaves this process), then, when a run comes back, judging it
  against the references, the cache again, the gradebook, grades.csv and the
  feedback;
- **on a worker**: :func:`run_notebook`, which receives a prepared case (the
  plan's steps and the cases' inputs, nothing else) and returns what the
  sandbox sent back (an :class:`~rnncourse.grader.execution.Execution`: the
  frames' contents and the stops, nothing judged). Each worker runs the same
  sandbox as a local batch, on its own machine.

What the cluster may do to a batch, and what happens then:

- **A worker dies mid-task** (killed, its machine lost): the scheduler gives
  the task to another worker. A task has one result and this process writes
  one row per submission, so a retry never loses or doubles a row.
- **A submission that kills its worker every time** (a bug of ours or of the
  machine: the sandbox is made so that student code cannot) is given up by
  the scheduler after ``distributed.scheduler.allowed-failures`` deaths
  (Dask's default: 3) and becomes an ``error`` row; the batch goes on.
- **Workers that differ** from this process (another version of rnncourse,
  or a sandbox without isolation where this batch's first workers had it)
  are refused: the batch stops before grading when they are there at the
  start; a submission run by one that joined later becomes an ``error`` row.
- **Two workers on one host** (or two threads of one worker) never share a
  sandbox uid: a run takes its worker slot (uid ``UID_BASE + slot``) from
  :func:`slot_lease`, a lock held on a file of the host for the run's
  length and released by the kernel if the worker dies. Cgroup folders are
  named after the worker's pid and a random token (:mod:`~rnncourse.grader.sandbox`).

The cache is this process's, so it works whichever worker ran a submission,
and a cached submission is never sent. Progress counts the submissions done
across the cluster, as they come back. The workers' sandbox modes (which
guarantees hold there) are printed at the start, once per distinct mode,
with their hosts.
"""

import contextlib
import fcntl
import os
import socket
import stat
import tempfile
import threading
from dataclasses import dataclass

from . import GradeError

__all__ = ["grade_on_cluster", "run_notebook", "worker_report", "slot_lease", "WorkerSpec", "MAX_SLOTS"]

WORKERS_TIMEOUT = 60  # seconds to wait for a first worker
MAX_SLOTS = 4096  # sandbox slots (uids UID_BASE ... UID_BASE + MAX_SLOTS - 1) a host can lease


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker must agree on with the grader's process to run a batch's sandboxes."""

    assignment: str
    package_digest: str
    limits: object  # rnncourse.grader.sandbox.Limits
    isolate: bool


# --- the worker's side ------------------------------------------------------------------

_SANDBOXES = {}  # WorkerSpec -> Sandbox, for the life of the worker process
_SANDBOXES_LOCK = threading.Lock()
_DIGEST = []


def _own_digest():
    from .core import package_digest

    if not _DIGEST:
        _DIGEST.append(package_digest())
    return _DIGEST[0]


def _sandbox(spec):
    """This worker process's sandbox for ``spec``: built once (the stripped package, the bubblewrap probe)."""
    with _SANDBOXES_LOCK:
        if spec not in _SANDBOXES:
            import atexit

            from .core import stripped_package
            from .sandbox import Sandbox

            sandbox = Sandbox(stripped_package(spec.assignment, spec.package_digest), spec.limits, isolate=spec.isolate)
            if not _SANDBOXES:
                atexit.register(lambda: [s.close() for s in _SANDBOXES.values()])
            _SANDBOXES[spec] = sandbox
        return _SANDBOXES[spec]


class WorkerMismatch(Exception):
    """This worker cannot run the batch's sandboxes as the grader's process expects (the message says why)."""


def worker_report(spec):
    """What this worker is for ``spec``: its host, package digest, whether its sandbox isolates, its warnings."""
    report = {"host": socket.gethostname(), "pid": os.getpid(), "digest": _own_digest()}
    if report["digest"] != spec.package_digest:
        return {**report, "isolated": None, "warnings": []}
    sandbox = _sandbox(spec)
    return {**report, "isolated": sandbox.isolated, "mode": sandbox.mode.report(), "warnings": list(sandbox.warnings)}


def run_notebook(spec, isolated, steps, cases):
    """The Dask task: run one prepared notebook (``steps``, ``cases``) in this worker's sandbox.

    Returns the :class:`~rnncourse.grader.execution.Execution`; raises :class:`WorkerMismatch` when
    this worker is not what the grader's process expects (``isolated``: whether its sandboxes must be).
    """
    from . import execution

    if _own_digest() != spec.package_digest:
        raise WorkerMismatch(f"the worker on {socket.gethostname()} runs another version of rnncourse")
    sandbox = _sandbox(spec)
    if sandbox.isolated != isolated:
        raise WorkerMismatch(
            f"the worker on {socket.gethostname()} has {'a' if sandbox.isolated else 'no'} bubblewrap sandbox, "
            f"unlike the batch's first workers"
        )
    with slot_lease() as slot:
        return execution.execute(sandbox, slot, steps, cases)


def _slot_folder():
    """A folder of this host, owned by this user and no one else's to write, for the slots' lock files."""
    folder = os.path.join(tempfile.gettempdir(), f"rnncourse-grade-slots-{os.geteuid()}")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise OSError(f"{folder} is not a folder of this user's that only it can write")
    return folder


@contextlib.contextmanager
def slot_lease():
    """The lowest sandbox slot no other run on this host holds, held until the block ends.

    A slot is an exclusive ``flock`` on ``<tmp>/rnncourse-grade-slots-<euid>/<slot>.lock``:
    each lease opens the file anew, so two threads of one process, or two processes, never
    hold the same slot; the kernel releases it when its holder dies.
    """
    folder = _slot_folder()
    for slot in range(MAX_SLOTS):
        fd = os.open(os.path.join(folder, f"{slot}.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield slot
        finally:
            os.close(fd)  # releases the lock
        return
    raise RuntimeError(f"all {MAX_SLOTS} sandbox slots of this host are taken")


# --- the grader's side ------------------------------------------------------------------


def _connect(scheduler):
    """``(client, owned)``: a Client of the scheduler (``owned``: made here, closed here)."""
    try:
        from distributed import Client
    except ImportError:
        raise GradeError("--scheduler needs Dask's distributed package (pip install distributed)") from None
    if isinstance(scheduler, Client):
        return scheduler, False
    try:
        # How long to try: Dask's distributed.comm.timeouts.connect (30 s unless configured).
        client = Client(scheduler, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        raise GradeError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    return client, True


def _check_workers(client, spec, log):
    """Whether the workers' sandboxes isolate; GradeError when there is none, or they differ from this process."""
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
    except TimeoutError:
        raise GradeError(f"the Dask scheduler has had no worker for {WORKERS_TIMEOUT} s") from None
    reports = client.run(worker_report, spec)
    other = sorted(f"{r['host']} ({address})" for address, r in reports.items() if r["digest"] != spec.package_digest)
    if other:
        raise GradeError(f"these workers run another version of rnncourse than this grader: {', '.join(other)}")
    isolated = {r["isolated"] for r in reports.values()}
    if len(isolated) > 1:
        without = sorted(f"{r['host']} ({address})" for address, r in reports.items() if not r["isolated"])
        raise GradeError(f"these workers have no bubblewrap sandbox, unlike the others: {', '.join(without)}")
    said = set()
    for address, r in sorted(reports.items()):  # once per distinct mode, then each warning once
        mode = "\n".join(r["mode"])
        if mode not in said:
            said.add(mode)
            hosts = sorted({o["host"] for o in reports.values() if o["mode"] == r["mode"]})
            log(f"on the workers of {', '.join(hosts)}:\n{mode}")
        for warning in r["warnings"]:
            if warning not in said:
                said.add(warning)
                log(f"warning: on the workers (e.g. {r['host']}): {warning}")
    return isolated.pop()


def _failed(err):
    """The reason of a row whose task did not come back with a run."""
    from distributed import KilledWorker

    if isinstance(err, KilledWorker):
        return "the Dask workers that ran this submission died each time; not graded (the scheduler's allowed-failures)"
    if isinstance(err, WorkerMismatch):
        return f"not graded: {err}"
    return f"the cluster lost this submission ({type(err).__name__}: {str(err)[:200]})"


def grade_on_cluster(scheduler, batch, jobs, *, isolate=True, log=print):
    """Yield ``(job, result, from_cache)`` for every job of ``batch``, their sandboxes run on the Dask cluster.

    ``batch`` is the local batch (:class:`rnncourse.grader.core._Batch` without a sandbox): it prepares,
    judges and caches here. Results come in the order they are done; each job comes exactly once.
    """
    from distributed import as_completed

    from .core import error_result

    client, owned = _connect(scheduler)
    futures = {}
    try:
        spec = WorkerSpec(batch.assignment.name, batch.package_digest, batch.limits, bool(isolate))
        batch.isolated = _check_workers(client, spec, log)
        for job in jobs:
            try:
                result, from_cache, ready = batch.prepare(job)
                if result is not None:  # decided here: not a notebook, or in the cache
                    result = batch.conclude(ready, result)
            except Exception as err:  # noqa: BLE001 - a grader bug on one submission must not stop the batch
                yield job, error_result(job, err), False
                continue
            if result is not None:
                yield job, result, from_cache
                continue
            future = client.submit(run_notebook, spec, batch.isolated, ready.steps, ready.cases, pure=False)
            futures[future] = ready
        for future in as_completed(list(futures), loop=client.loop) if futures else ():
            ready = futures.pop(future)
            try:
                ex = future.result()
            except Exception as err:  # noqa: BLE001 - the task's failure is this submission's error row
                yield ready.job, error_result(ready.job, _failed(err)), False
                continue
            finally:
                future.release()
            try:
                result = batch.conclude(ready, batch.judge(ready, ex))
            except Exception as err:  # noqa: BLE001
                result = error_result(ready.job, err)
            yield ready.job, result, False
    finally:
        if futures:
            client.cancel(list(futures))
        if owned:
            client.close()
