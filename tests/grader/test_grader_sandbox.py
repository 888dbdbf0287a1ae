"""The sandbox itself: what student code can see and do, probed from inside with ``Sandbox.run_python``.

Skipped when bubblewrap is missing or does not work on this machine (the
grader then grades without isolation, and says so). The uid, pids-cgroup and
leftover-process checks need root (as on the course's machines).
"""

import json
import os
import random
import shutil
import textwrap
import time
from pathlib import Path

import pytest

from rnncourse.grader.core import _stripped_package, package_digest
from rnncourse.grader.sandbox import PACKAGE_MOUNT, UID_BASE, Limits, Sandbox

ROOT = Path(__file__).resolve().parents[2]
ROOT_USER = os.geteuid() == 0

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bwrap (Debian's bubblewrap) is not installed: the sandbox's isolation cannot be tested",
)


@pytest.fixture(scope="module")
def sandbox():
    package = _stripped_package("02_rnn", package_digest())
    with Sandbox(package, Limits(cell_timeout=30, timeout=60, max_processes=24)) as sb:
        if not sb.isolated:
            pytest.skip("bubblewrap does not work on this machine: " + "; ".join(sb.warnings))
        yield sb


def inside(sandbox, code, slot=0):
    """Run ``code`` in the sandbox; the JSON it prints last."""
    returncode, output = sandbox.run_python(textwrap.dedent(code), slot=slot, timeout=60)
    assert returncode == 0, output.decode(errors="replace")
    return json.loads(output.decode().splitlines()[-1])


def test_the_course_the_gradebook_and_root_are_not_there(sandbox, tmp_path):
    gradebook = tmp_path / "gradebook.db"
    gradebook.write_text("grades")
    paths = [
        str(ROOT), str(ROOT / "solutions"), str(ROOT / "rnncourse"), str(ROOT / "gradebook.db"),
        str(ROOT / ".rnncourse-secret"), str(gradebook), str(tmp_path), "/root", "/home", "/work", "/etc/passwd",
        sandbox.package_dir,
    ]
    seen = inside(sandbox, f"""
        import json, os
        import rnncourse.numpy as rn
        try:
            reference = repr(rn.rnn_forward)  # not in the sandbox's package for 02_rnn
        except ImportError as err:
            reference = str(err)
        paths = {paths!r}
        writable = []
        for where in ("/usr/x", "/opt/rnncourse/package/x", "/opt/rnncourse/site/x", "/x"):
            try:
                open(where, "w").close()
                writable.append(where)
            except OSError:
                pass
        print(json.dumps({{
            "exists": [p for p in paths if os.path.exists(p)],
            "top": sorted(os.listdir("/")),
            "etc": sorted(os.listdir("/etc")),
            "writable": writable,
            "package": rn.__file__,
            "reference": reference,
        }}))
    """)
    assert seen["exists"] == []
    assert set(seen["top"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "opt", "proc", "sbin", "tmp", "usr"}
    assert set(seen["etc"]) <= {"alternatives", "fonts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d"}
    assert seen["writable"] == []
    assert seen["package"].startswith(PACKAGE_MOUNT)
    assert "np.tanh" not in seen["reference"] and "not available while grading" in seen["reference"]


def test_there_is_no_network(sandbox):
    seen = inside(sandbox, """
        import json, socket
        errors = []
        for host, port in (("1.1.1.1", 53), ("127.0.0.1", 22), ("::1", 22)):
            try:
                socket.create_connection((host, port), timeout=3).close()
                errors.append(None)
            except OSError as err:
                errors.append(type(err).__name__)
        print(json.dumps({"errors": errors, "interfaces": [name for _, name in socket.if_nameindex()]}))
    """)
    assert None not in seen["errors"]
    assert seen["interfaces"] == ["lo"]  # a fresh network namespace: only a loopback, and it is down


@pytest.mark.skipif(not ROOT_USER, reason="only root can run student code as another uid")
def test_student_code_runs_as_an_unprivileged_uid_without_capabilities(sandbox):
    seen = inside(sandbox, """
        import json, os
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        print(json.dumps({"ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()], "groups": os.getgroups(),
                          "caps": [status[k].strip() for k in ("CapEff", "CapPrm", "CapBnd")],
                          "nnp": status["NoNewPrivs"].strip()}))
    """, slot=3)
    assert seen["ids"] == [UID_BASE + 3] * 4 and seen["groups"] == []
    assert seen["caps"] == ["0000000000000000"] * 3 and seen["nnp"] == "1"


def _processes_with(marker):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


@pytest.mark.skipif(not ROOT_USER, reason="the per-run cgroups need root")
def test_no_process_survives_its_run_and_its_cgroups_are_removed(sandbox):
    marker = f"{random.randrange(10**6, 10**7)}.25"
    seen = inside(sandbox, f"""
        import json, os, subprocess
        subprocess.Popen(["sleep", "{marker}"], start_new_session=True)  # a daemon of its own session
        if os.fork() == 0:  # and a double fork
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "{marker}"])
            os._exit(0)
        print(json.dumps({{"started": True}}))
    """)
    assert seen["started"]
    deadline = time.monotonic() + 10
    while _processes_with(marker.encode()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker.encode()) == []
    for base in sandbox.cgroups.base.values():
        assert [p for p in base.iterdir() if p.is_dir()] == []


@pytest.mark.skipif(not ROOT_USER, reason="the pids cgroup needs root")
def test_a_fork_bomb_stops_at_the_process_limit(sandbox):
    seen = inside(sandbox, """
        import json, os, time
        children = 0
        for _ in range(200):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            children += 1
        print(json.dumps({"children": children}))
    """)
    assert 0 < seen["children"] < 24  # max_processes=24 counts bwrap and the python too
