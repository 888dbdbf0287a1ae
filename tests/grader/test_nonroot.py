"""The sandbox's non-root mode: the hostile and malformed corpora graded by an unprivileged user.

``rnncourse grade`` runs as the user ``rnncourse-nonroot`` (:mod:`nonroot`; these tests run as
root and create it), so its sandbox is bubblewrap in an unprivileged user namespace, without
cgroups. Each batch is the one the root tests grade (:mod:`test_hostile_submissions`,
:mod:`test_malformed_submissions`), built the same way; the root run's observations are shared
with those modules (computed once per test session). Then:

- every submission gets the verdict (status and score) it gets from the root grader, except
  where a guarantee is stated off in this mode (:data:`OFF_HERE`: a memory bomb is an error in
  its cell, not a memory kill);
- everything the hostile tests check of the root run holds here too (instructor files, other
  students' files, no survivor, nothing written outside, no network, safe feedback), but the
  uid: student code runs as the grader's uid, so here every process below the grader is that user's;
- the grader printed, once, the mode and which guarantees hold.
"""

import os
import shutil
import tempfile
import time

import pytest

import corpus
import nonroot
import test_hostile_submissions as hostile
import test_malformed_submissions as malformed

pytestmark = pytest.mark.slow  # whole grading batches in the sandbox

# Attacks whose verdict may differ from the root run's, and the guarantee that is off here.
OFF_HERE = {
    "memory_bomb": "oom",  # MemoryError in the cell (RLIMIT_AS), not a memory cgroup kill: status error, not memory
    "memory_bomb_in_check": "oom",
}


def _graded_as_user(tmp_path_factory, name, grade):
    def compute(_folder):
        work = tempfile.mkdtemp(prefix=f"rnncourse-{name}-", dir="/tmp")  # pytest's own folders are root's only
        os.chmod(work, 0o755)
        try:
            user = nonroot.Unprivileged(work)
            return grade(user.work, user)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return corpus.computed_once(tmp_path_factory, name, compute)


@pytest.fixture(scope="session")
def root_hostile(tmp_path_factory):
    return corpus.computed_once(tmp_path_factory, "hostile-batch", hostile.grade_everything)


@pytest.fixture(scope="session")
def user_hostile(tmp_path_factory):
    data = _graded_as_user(tmp_path_factory, "nonroot-hostile-batch", hostile.grade_everything)
    if data["returncode"] != 0 or not data["rows"]:
        pytest.fail(f"the non-root batch failed (exit {data['returncode']}):\n{data['stderr']}")
    return data


@pytest.fixture(scope="session")
def root_malformed(tmp_path_factory):
    return corpus.computed_once(tmp_path_factory, "malformed-batch", malformed.grade_malformed)


@pytest.fixture(scope="session")
def user_malformed(tmp_path_factory):
    return _graded_as_user(tmp_path_factory, "nonroot-malformed-batch", malformed.grade_malformed)


def verdicts(rows):
    return {r["student_id"]: (r["status"], r["score"], r["max_score"]) for r in rows}


def test_the_grader_says_once_which_guarantees_hold(user_hostile):
    err = user_hostile["stderr"]
    assert err.count("sandbox mode:") == 1, err
    assert "sandbox mode: non-root" in err, err
    assert "[OFF  ] student code runs as a uid of its own" in err, err
    assert "[holds] no network" in err and "[holds] no process outlives its run" in err, err


@pytest.mark.parametrize("student", sorted(hostile.ATTACK_STUDENTS) + sorted(corpus.HONEST_STUDENTS))
def test_hostile_verdicts_match_the_root_run(root_hostile, user_hostile, student):
    root, user = verdicts(root_hostile["rows"]), verdicts(user_hostile["rows"])
    attack = hostile.ATTACK_STUDENTS.get(student)
    if attack is not None and attack.name in OFF_HERE:
        base = verdicts(user_hostile["rows"])[{v: k for k, v in corpus.HONEST_STUDENTS.items()}[attack.base]]
        assert user[student][1:] == (base[1], base[2]), (
            f"{attack.name}: {user[student]} as a user, {root[student]} as root; base {base}")
        return
    assert user.get(student) == root.get(student), (
        f"{student}: {user.get(student)} as a user, {root.get(student)} as root")


def test_every_submission_has_one_row(user_hostile):
    students = sorted(r["student_id"] for r in user_hostile["rows"])
    assert students == sorted([*hostile.ATTACK_STUDENTS, *corpus.HONEST_STUDENTS])


def test_instructor_and_other_students_files_unchanged(user_hostile):
    changed = [name for name in user_hostile["before"] if user_hostile["before"][name] != user_hostile["after"][name]]
    assert not changed, f"changed by the batch: {changed}"
    assert user_hostile["honest_before"] == user_hostile["honest_after"]


def test_no_process_survives_and_nothing_is_written_outside(user_hostile):
    assert not user_hostile["survivors"], f"still running after the batch: {user_hostile['survivors']}"
    assert not user_hostile["markers"], f"files written by submissions: {user_hostile['markers']}"


def test_no_network(user_hostile):
    assert not user_hostile["connections"], f"submissions reached this machine from: {user_hostile['connections']}"


def test_every_process_ran_as_the_user(user_hostile):
    """Nothing below the grader ran as root (or as any uid but the user's): the mode is really non-root."""
    import pwd

    assert user_hostile["uids"] == [pwd.getpwnam(nonroot.USER).pw_uid], user_hostile["uids"]


def test_feedback_is_bounded_escaped_and_confidential(user_hostile):
    problems = [f"{name}: {key}" for name, page in user_hostile["feedback"].items()
                for key in ("script", "secret", "leak", "hidden", "model_answer") if page[key]]
    problems += [f"{name}: {page['size']} bytes" for name, page in user_hostile["feedback"].items()
                 if page["size"] > 2_000_000]
    assert user_hostile["feedback"] and not problems, problems


def test_malformed_verdicts_match_the_root_run(root_malformed, user_malformed):
    assert user_malformed["returncode"] == 0, user_malformed["stderr"]
    root, user = verdicts(root_malformed["rows"]), verdicts(user_malformed["rows"])
    assert sorted(user) == sorted(root)
    differ = {s: (user[s], root[s]) for s in root if user[s] != root[s]}
    assert not differ, f"(as a user, as root): {differ}"
    reasons = {r["student_id"]: r["reason"] for r in user_malformed["rows"]}
    assert "the kernel stopped in cell 9" in reasons["m_kernel_kills_itself"], reasons["m_kernel_kills_itself"]


PROBE = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
from rnncourse.grader import wire
from rnncourse.grader.sandbox import MB, Limits, Sandbox, Stop

CELLS = {
    "fork": """
import os, time
n = 0
try:
    for _ in range(400):
        if os.fork() == 0:
            os.execv("/bin/sleep", ["/bin/sleep", "30", "--", TOKEN])
        n += 1
except OSError:
    pass
raise Exception(f"forked {n}")
""",
    "memory": "block = bytearray(600 * 1024 * 1024)",
    "daemon": """
import os, subprocess
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["/bin/sleep", "300", "--", TOKEN])
    os._exit(0)
subprocess.Popen(["/bin/sleep", "301", "--", TOKEN], start_new_session=True)
""",
}
CELLS["hang"] = CELLS["daemon"] + "while True:\n    pass\n"  # killed at the deadline, not ended by itself
found = {}
with Sandbox(sys.argv[1], Limits(memory=300 * MB, max_processes=32)) as sandbox:
    found["mode"] = sandbox.mode.name
    for k, (name, source) in enumerate(CELLS.items()):
        process = sandbox.start(0)
        try:
            deadline = time.monotonic() + 60
            process.receive({"t": "start"}, deadline)
            source = source.replace("TOKEN", repr(sys.argv[2]))
            deadline = time.monotonic() + (5 if name == "hang" else 60)
            process.send(wire.code_command(k, source), deadline)
            header, _ = process.receive({"t": "code", "i": k}, deadline)
            found[name] = header["error"]
        except Stop as stop:
            found[name] = f"stop: {stop.status}"
        finally:
            process.close()
print(json.dumps(found))
'''


def test_the_sandbox_of_a_user_caps_processes_and_memory_and_leaves_nothing():
    """As the user: a fork loop stops at max_processes (counted in the run's user namespace, not with
    the user's other processes), an allocation past --memory fails, daemons die with the run."""
    import json
    import subprocess
    import sys
    import uuid

    import psutil

    work = tempfile.mkdtemp(prefix="rnncourse-nonroot-probe-", dir="/tmp")
    os.chmod(work, 0o755)
    try:
        user = nonroot.Unprivileged(work)
        (user.work / "probe.py").write_text(PROBE)
        # A package folder of its own: its path in every bwrap command line marks this test's sandboxes.
        package = user.work / "package"
        shutil.copytree(nonroot.ROOT / "rnncourse", package / "rnncourse",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        user.give(work)
        token = uuid.uuid4().hex
        done = subprocess.run(user.wrap([sys.executable, str(user.work / "probe.py"), str(package), token]),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        found = json.loads(done.stdout.strip().splitlines()[-1])
        time.sleep(1)
        marked = [p for p in psutil.process_iter(["pid", "cmdline"])
                  if token in " ".join(p.info["cmdline"] or []) or str(package) in " ".join(p.info["cmdline"] or [])]
        alive = {}
        for p in marked:
            try:
                for q in [p, *p.children(recursive=True)]:
                    alive[q.pid] = " ".join(q.cmdline())[-120:]
            except psutil.Error:
                pass
        for pid in alive:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert found["mode"] == "non-root, no delegated cgroup v2 subtree", found
    forked = int(found["fork"].split()[-1])
    assert 20 <= forked <= 30, found  # 32 tasks in the namespace: the runner, bwrap's init and the children
    assert found["memory"].startswith("MemoryError"), found
    assert found["daemon"] is None and found["hang"] == "stop: timeout", found
    assert not alive, f"outlived the run: {alive}"
