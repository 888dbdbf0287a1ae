"""The sandbox's modes: which guarantees hold where, as ``rnncourse grade`` prints them, and how a mode is found.

:func:`rnncourse.grader.sandbox.mode_of` is a pure function of what the sandbox detected, so every
row of the instructor guide's table (root with cgroup v1, root without usable cgroups, non-root
with and without a delegated cgroup v2 subtree, no bubblewrap) is checked here, whatever this
machine is. The non-root mode itself runs in :mod:`test_nonroot`.
"""

import os

import pytest

from rnncourse.grader.sandbox import GUARANTEES, Sandbox, delegated_cgroup_v2, mode_of


def holding(mode):
    return {key for key, (holds, _) in mode.guarantees.items() if holds}


ALL = set(GUARANTEES)

ROWS = {
    # (root, isolated, cgroups, delegated): the guarantees that hold
    (True, True, "v1", None): ALL,
    (True, True, None, None): ALL - {"memory", "oom"},
    (False, True, None, None): ALL - {"uid", "memory", "oom"},
    (False, True, None, "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service"): ALL - {"uid", "memory", "oom"},
    (True, False, "v1", None): {"processes", "memory", "oom", "time", "cleanup", "output"},
    (False, False, None, None): {"time", "output"},
}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"root={r[0]},bwrap={r[1]},cgroups={r[2]},delegated={bool(r[3])}")
def test_each_mode_states_what_holds(row):
    assert holding(mode_of(*row)) == ROWS[row]


def test_the_report_names_the_mode_and_every_guarantee_once():
    mode = mode_of(False, True, None, None)
    lines = mode.report()
    assert lines[0] == "sandbox mode: non-root, no delegated cgroup v2 subtree"
    assert len(lines) == 1 + len(GUARANTEES)
    for key, text in GUARANTEES.items():
        [line] = [line for line in lines[1:] if text in line]
        holds, how = mode.guarantees[key]
        assert line.startswith("  [holds]" if holds else "  [OFF  ]") and how in line, line
    assert sorted(mode.off) == ["memory", "oom", "uid"]


def test_the_mode_names_say_which_row():
    assert mode_of(True, True, "v1").name == "root, cgroup v1"
    assert mode_of(True, True, None).name == "root, no usable cgroups"
    assert "delegated cgroup v2 subtree (/x)" in mode_of(False, True, None, "/x").name
    assert "NO isolation" in mode_of(True, False, "v1").name


def fake_proc(tmp_path, own, controllers):
    """A /proc/self (cgroup, mountinfo) and a cgroup2 file system under tmp_path, the process in ``own``."""
    mount = tmp_path / "cgroup2"
    folder = mount / own.lstrip("/")
    folder.mkdir(parents=True)
    (folder / "cgroup.controllers").write_text(" ".join(controllers) + "\n")
    (folder / "cgroup.subtree_control").write_text("")
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(f"4:memory:/\n0::{own}\n")
    (proc / "mountinfo").write_text(
        "25 1 0:22 / / rw,relatime - ext4 /dev/vda1 rw\n"
        f"35 25 0:30 / {mount} rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n")
    return proc, folder


def test_a_delegated_subtree_is_found(tmp_path):
    proc, folder = fake_proc(tmp_path, "/user.slice/user-1000.slice/user@1000.service/app.slice",
                             ["cpu", "memory", "pids"])
    assert delegated_cgroup_v2(proc) == str(folder)


def test_a_subtree_without_memory_and_pids_is_not_delegation(tmp_path):
    proc, _ = fake_proc(tmp_path, "/user.slice/user-1000.slice/session-1.scope", ["cpu"])
    assert delegated_cgroup_v2(proc) is None


def test_no_cgroup2_mount_no_delegation(tmp_path):
    proc, _ = fake_proc(tmp_path, "/a", ["memory", "pids"])
    (proc / "mountinfo").write_text("25 1 0:22 / / rw,relatime - ext4 /dev/vda1 rw\n")
    assert delegated_cgroup_v2(proc) is None


def test_this_machine_gets_the_mode_of_its_user():
    with Sandbox(os.path.dirname(os.path.dirname(__file__)), isolate=True) as sandbox:
        if os.geteuid() == 0:
            assert sandbox.mode.name.startswith("root") or not sandbox.isolated, sandbox.mode.name
            assert sandbox.mode.guarantees["uid"][0] == sandbox.isolated
        else:
            assert sandbox.mode.name.startswith("non-root") or not sandbox.isolated, sandbox.mode.name
            assert not sandbox.mode.guarantees["uid"][0]


def test_a_cgroup_v2_mode_holds_memory_and_processes():
    assert holding(mode_of(False, True, "v2", "/d")) == ALL - {"uid"}
    assert holding(mode_of(True, True, "v2", "/d")) == ALL
    assert mode_of(False, True, "v2", "/d").name == "non-root, a delegated cgroup v2 subtree (/d)"


# The cgroup v2 subtree, on a fake tree: the files it writes (the kernel's side is reasoned, not run here).


def fake_cgroup2(tmp_path, pids):
    folder = tmp_path / "user@1000.service" / "app.slice" / "grader.scope"
    folder.mkdir(parents=True)
    (folder / "cgroup.procs").write_text("".join(f"{p}\n" for p in pids))
    (folder / "cgroup.subtree_control").write_text("")
    return folder


def test_cgroup_v2_moves_the_grader_into_a_leaf_and_gives_the_runs_memory_and_pids(tmp_path):
    from rnncourse.grader.sandbox import Cgroups2, Limits

    folder = fake_cgroup2(tmp_path, [os.getpid()])
    cgroups = Cgroups2(folder)
    assert cgroups.usable, cgroups.problem
    [leaf] = folder.glob("rnncourse-grader-*")
    assert (leaf / "cgroup.procs").read_text() == str(os.getpid())
    assert (folder / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert cgroups.base.parent == folder and (cgroups.base / "cgroup.subtree_control").read_text() == "+memory +pids"
    job = cgroups.job("w0-1", Limits(memory=300 * 1024 * 1024, max_processes=17))
    run = cgroups.base / "w0-1"
    assert (run / "memory.max").read_text() == str(300 * 1024 * 1024)
    assert (run / "pids.max").read_text() == "17"
    assert job.procs_files == [str(run / "cgroup.procs")]
    assert not job.oom_killed()
    (run / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert job.oom_killed()
    job.remove()
    assert (run / "cgroup.kill").read_text() == "1"


def test_cgroup_v2_refuses_a_folder_shared_with_other_processes(tmp_path):
    from rnncourse.grader.sandbox import Cgroups2

    folder = fake_cgroup2(tmp_path, [1, os.getpid()])
    cgroups = Cgroups2(folder)
    assert not cgroups.usable
    assert "other process" in cgroups.problem and "systemd-run" in cgroups.problem
    assert not list(folder.glob("rnncourse-*")), "nothing is made, and the grader is not moved"
