"""The cluster path's parts that need no cluster: the host's sandbox slots, and the check of the workers.

The cluster itself (a scheduler, two workers, a worker killed mid-batch) is in test_cluster.py.
"""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rnncourse.grader import GradeError, cluster
from rnncourse.grader.sandbox import Limits


@pytest.fixture
def slots(tmp_path, monkeypatch):
    """Leases in a folder of this test's: the host's own leases are not disturbed."""
    monkeypatch.setattr(cluster.tempfile, "gettempdir", lambda: str(tmp_path))
    return tmp_path / f"rnncourse-grade-slots-{os.geteuid()}"


def test_leases_held_at_once_are_different_slots_and_a_freed_slot_is_reused(slots):
    """Fails if two threads of a worker can hold one slot (so one uid), or a slot is never given back."""
    held, ready, release = [], threading.Barrier(5), threading.Event()

    def hold():
        with cluster.slot_lease() as slot:
            held.append(slot)
            ready.wait()
            release.wait()

    threads = [threading.Thread(target=hold, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=30)
        assert sorted(held) == [0, 1, 2, 3]
    finally:
        release.set()
        for t in threads:
            t.join()
    with cluster.slot_lease() as slot:
        assert slot == 0


def test_a_slot_held_by_another_process_is_skipped_and_freed_when_it_dies(slots):
    """Fails if two worker processes of one host can take one slot, or a dead worker's slot stays taken."""
    code = (
        "import sys, time; from rnncourse.grader import cluster; cluster.tempfile.gettempdir = lambda: sys.argv[1]\n"
        "with cluster.slot_lease() as slot:\n    print(slot, flush=True); time.sleep(60)\n"
    )
    other = subprocess.Popen([sys.executable, "-c", code, str(slots.parent)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "0"
        with cluster.slot_lease() as slot:
            assert slot == 1
    finally:
        other.kill()
        other.wait()
    with cluster.slot_lease() as slot:
        assert slot == 0


def test_a_slot_folder_that_others_can_write_is_refused(slots):
    """Fails if the lock files may live in a folder another user could fill with links or locks of theirs."""
    slots.mkdir(mode=0o777)
    os.chmod(slots, 0o777)
    with pytest.raises(OSError, match="only it can write"):
        with cluster.slot_lease():
            pass


class FakeClient:
    """What _check_workers asks of a distributed.Client, with the workers' reports given."""

    def __init__(self, reports):
        self.reports = reports

    def wait_for_workers(self, n, timeout):
        if not self.reports:
            raise TimeoutError

    def run(self, function, spec):
        return self.reports


SPEC = cluster.WorkerSpec("02_rnn", "digest-of-this-grader", Limits(), True)


def report(host, digest="digest-of-this-grader", isolated=True, warnings=(), mode=("sandbox mode: m",)):
    return {"host": host, "pid": 1, "digest": digest, "isolated": isolated, "mode": list(mode), "warnings": list(warnings)}


def test_workers_of_another_version_or_isolation_are_refused_before_grading():
    """Fails if a worker with another rnncourse (other checks, other references) or without bubblewrap grades,
    or if the workers' sandbox modes are not printed, once each."""
    logged = []
    same = {"tcp://a:1": report("a"), "tcp://b:1": report("b", warnings=["w"]),
            "tcp://e:1": report("e", mode=("sandbox mode: other",))}
    assert cluster._check_workers(FakeClient(same), SPEC, logged.append) is True
    assert logged == ["on the workers of a, b:\nsandbox mode: m", "warning: on the workers (e.g. b): w",
                      "on the workers of e:\nsandbox mode: other"]
    other = {**same, "tcp://c:1": report("c", digest="older")}
    with pytest.raises(GradeError, match=r"another version of rnncourse than this grader: c \(tcp://c:1\)"):
        cluster._check_workers(FakeClient(other), SPEC, logged.append)
    mixed = {**same, "tcp://d:1": report("d", isolated=False)}
    with pytest.raises(GradeError, match=r"no bubblewrap sandbox, unlike the others: d \(tcp://d:1\)"):
        cluster._check_workers(FakeClient(mixed), SPEC, logged.append)
    with pytest.raises(GradeError, match="no worker"):
        cluster._check_workers(FakeClient({}), SPEC, logged.append)


def test_an_unreachable_scheduler_is_an_instructor_error(tmp_path):
    """Fails if a wrong --scheduler address hangs or ends in a traceback instead of a message (exit status 2)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    (tmp_path / "submissions").mkdir()
    script = Path(sys.executable).with_name("rnncourse")
    proc = subprocess.run(
        [str(script), "grade", "02_rnn", str(tmp_path / "submissions"), "--out", str(tmp_path / "out"),
         "--db", f"sqlite:///{tmp_path / 'gb.db'}", "--secret-file", str(tmp_path / "secret"),
         "--scheduler", f"tcp://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="3s"),
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in proc.stderr
