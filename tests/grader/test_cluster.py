"""``rnncourse grade --scheduler``: a batch graded on a real Dask cluster of 127.0.0.1, a worker killed mid-batch.

The module starts one scheduler and two worker processes (``dask scheduler``
and ``dask worker``, each worker under its nanny, one thread each), shared by
its tests, and stops them after. The scheduler gives a task up after its
worker died twice (``allowed-failures`` 1), so that the test of a submission
that kills its worker every time stays short.

- One batch of honest, hostile and malformed submissions, graded through the
  cluster by the command line while one worker is killed (SIGKILL) in the
  middle of a submission: every row is present exactly once and equals the
  row of the same batch graded locally (``--workers 2``); then the batch
  again: every row from the cache, none sent to a worker.
- A task that kills its worker every time ends as one ``error`` row, and
  the batch's other rows are graded.
- The two workers, holding their sandbox slots at the same time, run
  student code under different uids and in different cgroup folders.
"""

import csv
import os
import signal
import threading
import time

import pytest

import corpus
from dask_cluster import LocalDaskCluster

# A Dask cluster and two grading batches; one cluster for the module: with pytest-xdist, the slow stage's
# --dist loadgroup keeps the module's tests on one xdist worker (so one scheduler).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask_cluster")]

HOSTILE = ("os_exit", "kill_all", "fork_bomb", "memory_bomb", "infinite_loop", "read_course", "forge_results")
# corpus.FAST_LIMITS but 15 s a cell: at 5 s the memory bomb (1 GB filled in 128 MB blocks) sometimes hits the
# cell's time limit before the memory limit on a loaded machine, and its status ('timeout' or 'memory') would
# then differ between the two runs for a reason that is not the cluster's.
LIMITS = ("--cell-timeout", "15", "--timeout", "60", "--memory", "1000", "--max-output", "262144")
MALFORMED = ("invalid_json", "empty_file", "missing_notebook", "wrong_file_name", "not_utf8")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalDaskCluster(tmp_path_factory.mktemp("dask"), workers=2,
                         env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"})
    try:
        yield c
    finally:
        c.close()


def build_batch(folder, course):
    targets = corpus.Targets(course=course, submissions=folder, out=folder.parent / "out", db=folder.parent / "db",
                             markers=folder.parent / "markers", port=9)
    corpus.build_honest(folder)
    corpus.build_hostile(folder, targets, [a for a in corpus.ATTACKS if a.name in HOSTILE])
    corpus.build_malformed(folder, [m for m in corpus.MALFORMED if m.name in MALFORMED])


def read_rows(out):
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_batch_on_the_cluster_with_a_worker_killed_equals_the_local_batch(cluster, tmp_path):
    """Fails if a killed worker loses or doubles a row, or if a row graded on the cluster differs from local grading.

    (Mutations tried: no retry after the death, i.e. the cluster path treating every task error as final:
    the killed submission becomes an ``error`` row; a second yield of a finished task: a doubled row in
    grades.csv; the local slots in place of the leases: two runs of one host under one uid.)
    """
    course = corpus.make_course(tmp_path / "course")
    build_batch(tmp_path / "submissions", course)
    expected = {"honest": len(corpus.HONEST_STUDENTS), "hostile": len(HOSTILE), "malformed": len(MALFORMED)}
    local = corpus.run_grade(tmp_path / "submissions", tmp_path / "local", course=course, db=tmp_path / "local.db",
                             secret=course / ".rnncourse-secret", limits=LIMITS)
    assert local.returncode == 0, local.stderr[-2000:]

    # The cluster: kill the worker that has been running a submission for a second.
    before = cluster.worker_pids()
    done = []
    runner = threading.Thread(target=lambda: done.append(corpus.run_grade(
        tmp_path / "submissions", tmp_path / "remote", course=course, db=tmp_path / "remote.db",
        secret=course / ".rnncourse-secret", limits=(*LIMITS, "--scheduler", cluster.address))))
    runner.start()
    killed, seen = None, {}
    while killed is None and runner.is_alive():
        for address, keys in cluster.client.processing().items():
            for key in keys:
                first = seen.setdefault((address, key), time.monotonic())
                if time.monotonic() - first > 1.0 and killed is None:
                    killed = (address, key)
        time.sleep(0.1)
    if killed is not None:
        os.kill(before[killed[0]], signal.SIGKILL)
    runner.join(timeout=900)
    assert not runner.is_alive()
    [remote] = done
    assert remote.returncode == 0, remote.stderr[-2000:]
    assert killed is not None, "the batch ended before a worker could be killed mid-task"
    # The workers' sandbox mode, said once (both workers are of this host, in one mode).
    assert remote.stderr.count("sandbox mode: ") == 1 and "on the workers of " in remote.stderr, remote.stderr[-2000:]

    remote_rows = read_rows(tmp_path / "remote")
    local_rows = read_rows(tmp_path / "local")
    students = [r["student_id"] for r in remote_rows]
    assert len(students) == len(set(students)) == sum(expected.values())
    assert remote_rows == local_rows
    statuses = {r["student_id"]: r["status"] for r in remote_rows}
    assert statuses["zz_full"] == "graded" and statuses["zz_blank"] == "graded"
    assert "error" not in statuses.values(), statuses

    # The nanny restarted the killed worker; the task it held was run again elsewhere or there.
    cluster.client.wait_for_workers(2, timeout=120)
    after = cluster.worker_pids()
    assert before[killed[0]] not in after.values()

    def notebook_tasks(dask_scheduler):  # local: Dask sends it by value
        """How many ``run_notebook`` tasks the scheduler finished, and saw a worker die under (``suspicious``)."""
        prefix = dask_scheduler.task_prefixes.get("run_notebook")
        if prefix is None:
            return {"memory": 0, "suspicious": 0}
        return {"memory": prefix.state_counts["memory"], "suspicious": prefix.suspicious}

    # The scheduler saw the killed task as suspicious (its worker died while running it) and ran it again.
    tasks = cluster.client.run_on_scheduler(notebook_tasks)
    assert tasks["suspicious"] >= 1, tasks

    # Again: every row from the cache of the grader's process, no task sent to the cluster.
    again = corpus.run_grade(tmp_path / "submissions", tmp_path / "remote", course=course, db=tmp_path / "remote.db",
                             secret=course / ".rnncourse-secret", limits=(*LIMITS, "--scheduler", cluster.address))
    assert again.returncode == 0, again.stderr[-2000:]
    assert read_rows(tmp_path / "remote") == remote_rows
    assert cluster.client.run_on_scheduler(notebook_tasks) == tasks


DEADLY = "# this notebook kills the worker that runs it (test_cluster.py)"


def test_a_submission_that_kills_its_worker_every_time_is_an_error_row(cluster, tmp_path, grade_in, monkeypatch):
    """Fails if a task that kills every worker it runs on hangs or stops the batch, or its row is not ``error``.

    (Mutation tried: KilledWorker not caught per task: the batch stops with a traceback.)
    """
    from rnncourse.grader import cluster as grader_cluster

    deadly_line = DEADLY

    def run_notebook_or_die(spec, isolated, steps, cases):
        """In place of run_notebook (a local function: Dask sends it by value, not by this module's name)."""
        from rnncourse.grader.cluster import run_notebook

        if any(deadly_line in step.source for step in steps):
            os._exit(3)
        return run_notebook(spec, isolated, steps, cases)

    notebook = corpus.honest("full")
    notebook["cells"].append(corpus.new_code_cell(DEADLY))
    corpus.write_student(tmp_path / "submissions" / "deadly", notebook)
    corpus.write_student(tmp_path / "submissions" / "zz_full", corpus.honest("full"))
    monkeypatch.setattr(grader_cluster, "run_notebook", run_notebook_or_die)
    rows = grade_in(corpus.ASSIGNMENT, tmp_path / "submissions", scheduler=cluster.address,
                    cell_timeout=5, timeout=40, memory=1000)
    statuses = {r["student_id"]: (r["status"], float(r["score"])) for r in rows}
    assert statuses == {"deadly": ("error", 0.0), "zz_full": ("graded", corpus.BASE_POINTS["full"])}, [r["reason"] for r in rows]
    [deadly] = [r for r in rows if r["student_id"] == "deadly"]
    assert "died each time" in deadly["reason"]
    cluster.client.wait_for_workers(2, timeout=120)  # the nannies restarted them, for the tests after


def test_two_workers_of_one_host_never_share_a_sandbox_uid_or_cgroup(cluster, tmp_path):
    """Fails if two worker processes of one host, running at the same time, get one sandbox uid or one cgroup folder.

    Each worker holds a slot lease (as :func:`~rnncourse.grader.cluster.run_notebook` does) until both
    hold one, runs ``os.getuid()`` in its sandbox under that slot, and says its cgroup folder.
    (Mutation tried: ``slot_lease`` yielding 0 always: both sandboxes run as uid 60001.)
    """
    from rnncourse.grader.cluster import WorkerSpec
    from rnncourse.grader.core import package_digest
    from rnncourse.grader.sandbox import Limits

    spec = WorkerSpec(corpus.ASSIGNMENT, package_digest(), Limits(cell_timeout=30, timeout=60), True)
    meeting = str(tmp_path)

    def hold_a_slot(spec):  # local: Dask sends it by value
        import os
        import time
        from pathlib import Path

        from rnncourse.grader.cluster import _sandbox, slot_lease

        sandbox = _sandbox(spec)
        with slot_lease() as slot:
            Path(meeting, str(os.getpid())).touch()
            deadline = time.monotonic() + 60
            while len(os.listdir(meeting)) < 2 and time.monotonic() < deadline:  # both leases held at once
                time.sleep(0.05)
            together = len(os.listdir(meeting)) >= 2
            code, out = sandbox.run_python("import os; print(os.getuid())", slot=slot)
            cgroups = sandbox.cgroups
            folders = None if cgroups is None or not sandbox.use_cgroups else (
                sorted(map(str, cgroups.base.values())) if isinstance(cgroups.base, dict) else [str(cgroups.base)])
            return {"together": together, "slot": slot, "uid": out.decode().strip(), "code": code,
                    "root": sandbox.root, "isolated": sandbox.isolated, "cgroups": folders}

    workers = sorted(cluster.client.scheduler_info()["workers"])
    assert len(workers) == 2
    futures = [cluster.client.submit(hold_a_slot, spec, workers=[w], allow_other_workers=False, pure=False)
               for w in workers]
    a, b = cluster.client.gather(futures, errors="raise")
    assert a["together"] and b["together"], (a, b)
    assert a["code"] == b["code"] == 0, (a, b)
    assert a["slot"] != b["slot"], (a, b)
    if a["root"] and a["isolated"]:  # root with bubblewrap: uid UID_BASE + slot (the non-root mode keeps the grader's)
        assert a["uid"] != b["uid"] and {a["uid"], b["uid"]} <= {str(60001 + s) for s in range(8)}, (a, b)
    if a["cgroups"] is not None or b["cgroups"] is not None:
        assert not set(a["cgroups"] or ()) & set(b["cgroups"] or ()), (a, b)
