"""Running untrusted code: bubblewrap, an unprivileged uid, cgroups, limits enforced from outside.

What a sandboxed run rests on (when the grader runs as root, with ``bwrap``
and writable cgroup v1 hierarchies, as on the course's machines):

- **file system**: ``bwrap`` builds a new mount namespace holding only
  ``/usr`` (and the ``/bin``, ``/lib*`` links), ``/proc`` of a new pid
  namespace, a minimal ``/dev``, a private size-capped ``/tmp``, and,
  read-only under ``/opt``: the Python installation, the virtual
  environment's ``site-packages`` and the stripped copy of the package. The
  course folder, the gradebook, the secret, the solutions, ``/root`` and the
  other submissions are not in it; a copy of ``rnncourse`` installed in
  ``site-packages`` is covered by the stripped one.
- **no network**: a new, empty network namespace (also new IPC and UTS
  namespaces, and a new session, so no terminal injection).
- **an unprivileged user**: ``bwrap`` runs as root without a user namespace
  (so it can mount what root can read) and executes ``setpriv``, which
  drops to uid/gid ``60001 + worker`` with no groups, no capabilities (also
  in the bounding set) and ``no_new_privs`` before the runner starts.
- **processes**: a pids cgroup per run (``pids.max``), which a fork bomb
  cannot leave; ``RLIMIT_NPROC`` on top. Nothing survives a run: the
  sandbox's pid namespace dies with its first process, and afterwards every
  process left in the run's cgroups is frozen (freezer cgroup), killed,
  and the cgroups removed.
- **memory**: a memory cgroup per run (``memory.limit_in_bytes``, and
  ``memory.memsw.limit_in_bytes`` where swap is accounted); ``/tmp`` is a
  tmpfs of at most that size.
- **time**: every wait for the runner (:class:`Process`) has a deadline on
  the grader's clock (:mod:`rnncourse.grader.execution` sets them: a cell's
  starts when it is sent), and the run's processes are killed when it
  passes; nothing inside can stop that or move it.
- **output**: the grader reads at most ``max_output`` bytes of the sandbox's
  stdout and stderr and at most ``MAX_RESULTS`` bytes of replies, killing
  the run beyond; ``RLIMIT_FSIZE`` caps any file written. Replies are read
  as frames of :mod:`rnncourse.grader.wire` and believed only when each is
  the reply due.

**Not root** (a teaching assistant on a JupyterHub, a Slurm job, a
Kubernetes pod): ``bwrap`` makes an unprivileged user namespace and, inside
it, the same mount, pid, network, IPC and UTS namespaces and the same file
system as above. Student code then runs as the grader's own uid (mapped into
the namespace): no uid of its own, but it sees none of the grader's files
but the read-only ones above and none of its processes. Processes are
capped by ``RLIMIT_NPROC``, which Linux (5.14 and later) counts per user
namespace, so it counts the run's own processes only; memory by
``RLIMIT_AS``, per process; and a run ends whole because its pid
namespace's first process dies with the grader's handle on it
(``--die-with-parent``), which kills every process in the namespace.

:func:`mode_of` names the mode a sandbox runs in and which guarantees hold
there (``GUARANTEES``); ``rnncourse grade`` prints that once. Where a
guarantee is off the grader still grades, rather than refusing: the
instructor reads what holds. ``Sandbox.warnings`` lists what is off.
"""

import itertools
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from . import wire

MB = 1024 * 1024
MAX_RESULTS = 64 * MB  # bytes of results a run may send back
UID_BASE = 60001  # worker k runs student code as uid/gid UID_BASE + k

_OPT = "/opt/rnncourse"
PACKAGE_MOUNT = f"{_OPT}/package"  # the stripped package: PACKAGE_MOUNT/rnncourse
PYTHON_MOUNT = f"{_OPT}/python"
SITE_MOUNT = f"{_OPT}/site"

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CONTROLLERS = ("pids", "memory", "freezer")
# Joins the cgroups given as arguments, then becomes the sandbox: nothing runs
# outside the cgroups, and no preexec_fn is needed in a threaded parent.
_JOIN_CGROUPS = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"'


@dataclass(frozen=True)
class Limits:
    """The limits of one run. Times in seconds, sizes in bytes."""

    cell_timeout: float = 60.0
    timeout: float = 600.0
    memory: int = 2048 * MB
    max_output: int = 1 * MB
    max_processes: int = 64
    max_file: int = 256 * MB
    max_open_files: int = 1024


# --- the mode: which guarantees hold where ----------------------------------------------

GUARANTEES = {
    "files": "the course, the gradebook, the secret and other submissions are out of reach",
    "network": "no network",
    "uid": "student code runs as a uid of its own, not the grader's",
    "processes": "processes capped per run",
    "memory": "memory capped per run (all its processes together)",
    "oom": "a memory kill is reported as 'memory'",
    "time": "time limits on the grader's clock",
    "cleanup": "no process outlives its run",
    "output": "output and replies capped",
}


@dataclass(frozen=True)
class Mode:
    """The mode a sandbox runs in: ``name``, and ``{guarantee: (holds, how)}`` for each of ``GUARANTEES``."""

    name: str
    guarantees: dict

    @property
    def off(self):
        return [key for key, (holds, _) in self.guarantees.items() if not holds]

    def report(self):
        """The lines ``rnncourse grade`` prints once: the mode, then each guarantee, held or off, and how."""
        lines = [f"sandbox mode: {self.name}"]
        for key, text in GUARANTEES.items():
            holds, how = self.guarantees[key]
            lines.append(f"  [{'holds' if holds else 'OFF  '}] {text}: {how}")
        return lines


def mode_of(root, isolated, cgroups, delegated=None):
    """The :class:`Mode` of a sandbox: grader ``root`` or not, bubblewrap working (``isolated``),
    ``cgroups`` in use (``"v1"``, ``"v2"`` or None), and ``delegated`` (a cgroup v2 folder this
    process may manage, or None).

    A pure function of what :class:`Sandbox` detected, so that every mode can be tested anywhere.
    """
    g = {"time": (True, "the grader's deadlines; the run's processes are killed when one passes"),
         "output": (True, "the grader reads at most --max-output bytes and 64 MB of replies, then kills the run")}
    if cgroups:
        g["processes"] = (True, f"pids.max of the run's cgroup {cgroups}")
        g["memory"] = (True, f"the memory limit of the run's cgroup {cgroups}; /tmp is a tmpfs of that size")
        g["oom"] = (True, "the memory cgroup's OOM count")
    else:
        if isolated and root:
            how = "RLIMIT_NPROC of the worker's own uid"
        elif isolated:
            how = "RLIMIT_NPROC, which Linux (5.14 and later) counts in the run's own user namespace"
        else:
            how = "RLIMIT_NPROC of your user, counted with your other processes" if not root else "none as root"
        g["processes"] = (bool(isolated), how)
        g["memory"] = (False, "RLIMIT_AS per process only: a run's processes together, and its /tmp, "
                              "may use several times --memory")
        g["oom"] = (False, "without a memory cgroup an allocation past the limit fails in the cell (MemoryError), "
                           "which is graded as the cell's error")
    if isolated:
        g["files"] = (True, "a new mount namespace: /usr, the Python and the allow-list package read-only, "
                            "a private /tmp")
        g["network"] = (True, "a new, empty network namespace")
        after = {"v1": ", after the freezer cgroup stopped it", "v2": ", and its cgroup by cgroup.kill"}
        g["cleanup"] = (True, "the run's pid namespace is killed whole" + after.get(cgroups, ""))
        if root:
            g["uid"] = (True, f"setpriv drops to uid {UID_BASE} + worker, no capabilities, no_new_privs")
        else:
            g["uid"] = (False, "the grader's own uid in a user namespace; the mount and pid namespaces keep the "
                               "grader's files and processes out of its reach")
    else:
        g["files"] = (False, "no bubblewrap: student code reads and writes whatever the grader's user can")
        g["network"] = (False, "no bubblewrap: the network is open")
        g["uid"] = (False, "no bubblewrap: student code runs as the grader's user" + (", root" if root else ""))
        g["cleanup"] = (bool(cgroups), "the run's cgroups are killed" if cgroups else
                        "only the run's process group is killed: a process that left it survives")
    if not isolated:
        name = "no bubblewrap (NO isolation)"
    elif root:
        name = f"root, cgroup {cgroups}" if cgroups else "root, no usable cgroups"
    elif cgroups:
        name = f"non-root, a delegated cgroup v2 subtree ({delegated})"
    elif delegated:
        name = f"non-root, a delegated cgroup v2 subtree ({delegated}) that could not be used: no cgroups"
    else:
        name = "non-root, no delegated cgroup v2 subtree"
    return Mode(name, g)


def delegated_cgroup_v2(proc="/proc/self"):
    """This process's cgroup v2 folder when this user may manage it (systemd's user delegation), else None.

    Delegated means: the folder is writable by this user and offers the memory and pids controllers.
    ``proc`` is where ``cgroup`` and ``mountinfo`` are read (another folder in tests).
    """
    try:
        own = next(line[3:] for line in Path(proc, "cgroup").read_text().splitlines() if line.startswith("0::"))
        mounts = [line.split() for line in Path(proc, "mountinfo").read_text().splitlines()]
    except (OSError, StopIteration):
        return None
    for fields in mounts:
        sep = fields.index("-")
        if fields[sep + 1] != "cgroup2":
            continue
        folder = Path(fields[4]) / own.lstrip("/")
        try:
            controllers = set((folder / "cgroup.controllers").read_text().split())
        except OSError:
            continue
        if {"memory", "pids"} <= controllers and os.access(folder, os.W_OK) and \
                os.access(folder / "cgroup.subtree_control", os.W_OK):
            return str(folder)
    return None


def _own_cgroup(controller):
    """This process's cgroup path in the v1 hierarchy of ``controller`` ("" if none)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


class Cgroups:
    """The cgroup v1 folders of one grading process: ``<hierarchy>/<own cgroup>/rnncourse-grade/<pid>-<random>``.

    Each run gets a sub-folder, removed after the run; ``Cgroups.close()`` removes
    the process's folder. Folders left by a grader killed with SIGKILL are
    empty (the sandboxes die with their parent) and harmless.
    """

    kind = "v1"

    def __init__(self):
        self.base = {}
        self.problem = ""
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        for controller in _CONTROLLERS:
            own = _own_cgroup(controller)
            mount = _CGROUP_ROOT / controller
            if own is None or not (mount / "cgroup.procs").exists():
                if controller != "freezer":
                    self.problem = f"no cgroup v1 {controller} hierarchy at {mount}"
                continue
            base = mount / own.lstrip("/") / "rnncourse-grade" / token
            try:
                base.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                if controller != "freezer":
                    self.problem = f"{base.parent} is not writable ({err.strerror})"
                continue
            self.base[controller] = base
        if self.problem:
            self.close()

    @property
    def usable(self):
        return not self.problem and "pids" in self.base and "memory" in self.base

    def job(self, name, limits):
        return JobCgroup(self, name, limits)

    def close(self):
        for base in self.base.values():
            for child in base.iterdir() if base.exists() else ():
                if child.is_dir():
                    _kill_and_remove({"x": child})
            _rmdir(base)
        self.base = {}


def _write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def _procs(folder):
    try:
        return [int(p) for p in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _rmdir(folder):
    for _ in range(100):
        try:
            folder.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.01)
    return False


def _kill_and_remove(dirs):
    """Kill every process in the cgroups ``dirs`` (freezing them first when a freezer is there), then remove them."""
    freezer = dirs.get("freezer")
    if freezer is not None:
        try:
            _write(freezer / "freezer.state", "FROZEN")
            for _ in range(200):
                if (freezer / "freezer.state").read_text().strip() == "FROZEN":
                    break
                time.sleep(0.005)
        except OSError:
            freezer = None
    _kill_all(list(dirs.values()), freezer)
    for d in dirs.values():
        _rmdir(d)


def _kill_all(folders, freezer=None):
    """SIGKILL the processes of the cgroup ``folders`` until none is left (at most 1000 rounds, 5 ms apart).

    ``freezer``: a frozen cgroup v1 freezer, thawed after each round (a frozen process dies only once thawed).
    """
    for _ in range(1000):
        pids = sorted({p for d in folders for p in _procs(d)})
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if freezer is not None:
            try:
                _write(freezer / "freezer.state", "THAWED")
            except OSError:
                pass
        time.sleep(0.005)


class JobCgroup:
    """The cgroups of one run: pids.max, the memory limit, and a freezer to kill all at once."""

    def __init__(self, cgroups, name, limits):
        self.dirs = {}
        try:
            for controller, base in cgroups.base.items():
                folder = base / name
                folder.mkdir()
                self.dirs[controller] = folder
            _write(self.dirs["pids"] / "pids.max", limits.max_processes)
            memory = self.dirs["memory"]
            _write(memory / "memory.limit_in_bytes", limits.memory)
            if (memory / "memory.memsw.limit_in_bytes").exists():
                try:
                    _write(memory / "memory.memsw.limit_in_bytes", limits.memory)
                except OSError:
                    pass  # swap accounting is off: the limit above is all there is
        except BaseException:
            self.remove()
            raise

    @property
    def procs_files(self):
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def oom_killed(self):
        """Whether the kernel killed a process of this run for exceeding the memory limit."""
        memory = self.dirs.get("memory")
        try:
            fields = dict(line.split() for line in (memory / "memory.oom_control").read_text().splitlines())
            if "oom_kill" in fields:
                return int(fields["oom_kill"]) > 0
            return int((memory / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError, AttributeError):
            return False

    def remove(self):
        if self.dirs:
            _kill_and_remove(self.dirs)
            self.dirs = {}


class Cgroups2:
    """A cgroup v2 subtree for the runs: ``<folder>/rnncourse-grade-<pid>-<random>/<run>``, with memory and pids.

    ``folder`` is the grading process's own cgroup v2 folder, one it may manage (root's, or a
    subtree systemd delegated to the user: :func:`delegated_cgroup_v2`). Cgroup v2 lets a folder
    hand controllers to its children only when it holds no process itself, so the grader first
    moves into a leaf of its own beside the runs'; it must therefore be alone in ``folder`` (start
    it in a scope of its own: ``systemd-run --user --scope -p Delegate=yes rnncourse grade ...``).
    """

    kind = "v2"

    def __init__(self, folder):
        folder = Path(folder)
        self.base, self.problem, self.leaf = None, "", None
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        others = [pid for pid in _procs(folder) if pid != os.getpid()]
        if others:
            self.problem = (f"{folder} holds {len(others)} other process(es) besides the grader; start the grader in "
                            "a cgroup of its own (systemd-run --user --scope -p Delegate=yes rnncourse grade ...)")
            return
        try:
            leaf = folder / f"rnncourse-grader-{token}"
            leaf.mkdir()
            self.leaf = leaf
            _write(leaf / "cgroup.procs", os.getpid())
            _write(folder / "cgroup.subtree_control", "+memory +pids")
            base = folder / f"rnncourse-grade-{token}"
            base.mkdir()
            self.base = base
            _write(base / "cgroup.subtree_control", "+memory +pids")
        except OSError as err:
            self.problem = f"{folder} cannot be managed ({err.strerror})"
            self.close()

    @property
    def usable(self):
        return not self.problem and self.base is not None

    def job(self, name, limits):
        return JobCgroup2(self, name, limits)

    def close(self):
        if self.base is not None and self.base.exists():
            for child in self.base.iterdir():
                if child.is_dir():
                    _kill_and_remove_v2(child)
            _rmdir(self.base)
        self.base = None


def _kill_and_remove_v2(folder):
    """Kill every process of the cgroup v2 ``folder`` (``cgroup.kill``, or freeze and kill), then remove it."""
    try:
        _write(folder / "cgroup.kill", 1)  # Linux 5.14: the kernel kills them all at once
    except OSError:
        try:
            _write(folder / "cgroup.freeze", 1)  # a frozen process still dies of SIGKILL in v2
        except OSError:
            pass
    _kill_all([folder])
    _rmdir(folder)


class JobCgroup2:
    """The cgroup v2 of one run: ``memory.max`` (and no swap), ``pids.max``, killed whole by ``cgroup.kill``."""

    def __init__(self, cgroups, name, limits):
        self.folder = cgroups.base / name
        self.folder.mkdir()
        try:
            _write(self.folder / "pids.max", limits.max_processes)
            _write(self.folder / "memory.max", limits.memory)
            if (self.folder / "memory.swap.max").exists():
                _write(self.folder / "memory.swap.max", 0)
        except BaseException:
            self.remove()
            raise

    @property
    def procs_files(self):
        return [str(self.folder / "cgroup.procs")] if self.folder is not None else []

    def oom_killed(self):
        try:
            events = dict(line.split() for line in (self.folder / "memory.events").read_text().splitlines())
            return int(events.get("oom_kill", 0)) > 0
        except (OSError, ValueError, TypeError):
            return False

    def remove(self):
        if self.folder is not None:
            _kill_and_remove_v2(self.folder)
            self.folder = None


def _python_layout():
    """How the sandbox reaches this Python: (binds [(host, sandbox)], executable, env, site dirs in the sandbox)."""
    base = Path(sys.base_prefix).resolve()
    exe = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    if not exe.is_relative_to(base):
        exe = base / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    binds, env = [], {}
    if base.is_relative_to("/usr"):
        python = str(exe)
    else:
        binds.append((str(base), PYTHON_MOUNT))
        python = f"{PYTHON_MOUNT}/{exe.relative_to(base)}"
        env["PYTHONHOME"] = PYTHON_MOUNT
        if (base / "lib").is_dir():
            env["LD_LIBRARY_PATH"] = f"{PYTHON_MOUNT}/lib"
    sites = []
    for key in ("purelib", "platlib"):
        site = Path(sysconfig.get_paths()[key]).resolve()
        if not site.is_dir() or any(site == host for host, _ in sites):
            continue
        if site.is_relative_to(base):
            inside = f"{PYTHON_MOUNT}/{site.relative_to(base)}" if not base.is_relative_to("/usr") else str(site)
        elif site.is_relative_to("/usr"):
            inside = str(site)
        else:
            inside = f"{SITE_MOUNT}{len(sites) or ''}"
            binds.append((str(site), inside))
        sites.append((site, inside))
    return binds, python, env, sites


class Sandbox:
    """Runs the runner (or any Python) on untrusted code, isolated and limited as the module docstring says.

    ``package_dir`` holds the stripped ``rnncourse`` (see :mod:`rnncourse.grader.strip`).
    ``isolate=False`` runs without bubblewrap even where it exists (for
    comparison only). Use as a context manager, or call ``Sandbox.close()``.
    """

    def __init__(self, package_dir, limits=Limits(), *, isolate=True):
        self.package_dir = str(Path(package_dir).resolve())
        self.limits = limits
        self.root = os.geteuid() == 0
        self.bwrap = shutil.which("bwrap") if isolate else None
        self.setpriv = shutil.which("setpriv") if self.root else None
        self.cgroups = Cgroups() if self.root else None
        delegated = delegated_cgroup_v2()
        if delegated and not (self.cgroups and self.cgroups.usable):
            # Root on a cgroup v2 machine, or a user with systemd's delegation: the v2 subtree.
            if self.cgroups is not None:
                self.cgroups.close()
            self.cgroups = Cgroups2(delegated)
        self.warnings = []
        self._binds, self._python, self._python_env, self._sites = _python_layout()
        self._runs = itertools.count(1)
        self._stopping = False
        if self.root and self.setpriv is None:
            self.bwrap = None  # bwrap as root without setpriv would leave student code root
        self.isolated = False
        problem = "it is not installed (Debian's package: bubblewrap)" if isolate else "isolation was turned off"
        if self.root and self.setpriv is None:
            problem = "setpriv (util-linux) is missing, so the sandbox could not drop root"
        if self.bwrap:
            code, out = self.run_python("print('ok')", timeout=60)
            if code == 0 and out.strip() == b"ok":
                self.isolated = True
            else:
                detail = " ".join(out.decode(errors="replace").split())[:300]
                problem = f"it does not work here ({detail or f'exit code {code}'})"
                self.bwrap = None
        self.mode = mode_of(self.root, self.isolated, self.cgroups.kind if self.use_cgroups else None, delegated)
        if not self.isolated:
            self.warnings.append(
                f"no bubblewrap sandbox: {problem}. Student code runs WITHOUT isolation: it can read and write "
                f"whatever {'root' if self.root else 'your user'} can, use the network, and leave processes behind"
            )
        if not self.root:
            self.warnings.append("not running as root: student code runs as your own uid (in a user namespace)")
        if not self.use_cgroups and (not self.root or isinstance(self.cgroups, Cgroups2)):
            self.warnings.append(
                f"no cgroups ({self.cgroups.problem if self.cgroups else 'no delegated cgroup v2 subtree'}): memory "
                "is limited by RLIMIT_AS per process, processes by RLIMIT_NPROC"
            )
        elif not self.use_cgroups:
            self.warnings.append(
                f"cgroups unusable ({self.cgroups.problem}): memory is limited by RLIMIT_AS, processes by "
                "RLIMIT_NPROC of the unprivileged uid; no freezer to kill a run's processes at once"
            )

    # --- the command ---------------------------------------------------------------------

    @property
    def use_cgroups(self):
        return self.cgroups is not None and self.cgroups.usable

    def _env(self):
        package = PACKAGE_MOUNT if self.bwrap else self.package_dir
        sites = [inside if self.bwrap else str(host) for host, inside in self._sites]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp" if self.bwrap else os.environ.get("TMPDIR", "/tmp"),
            "TMPDIR": "/tmp",
            "USER": "student",
            "LOGNAME": "student",
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join([package, *sites]),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": "/tmp/.matplotlib",
            "IPYTHONDIR": "/tmp/.ipython",
        }
        if self.bwrap:
            env.update(self._python_env)
        return env

    def _bwrap_args(self, env):
        args = [self.bwrap]
        if self.root:
            # No user namespace: bwrap mounts with root's rights, setpriv then drops them.
            args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        else:
            # A user namespace first: it lets an unprivileged bwrap make the others.
            args += ["--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                     "--unshare-cgroup-try"]
        args += ["--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv"]
        args += ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        args += ["--perms", "0755", "--dir", "/etc"]  # bwrap would make it 0700: unreadable to the student's uid
        for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/fonts"):
            if os.path.exists(etc):
                args += ["--ro-bind", etc, etc]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(self.limits.memory), "--tmpfs", "/tmp"]
        args += ["--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", _OPT]
        for host, inside in self._binds:
            args += ["--ro-bind", host, inside]
        args += ["--ro-bind", self.package_dir, PACKAGE_MOUNT]
        # The package folder's top-level packages (rnncourse, and the stand-ins of modules an
        # assignment may not use, such as torch) cover those of the same name in site-packages.
        covers = [p.name for p in Path(self.package_dir).iterdir() if (p / "__init__.py").is_file()]
        for host, inside in self._sites:
            for name in sorted(covers):
                if (host / name).is_dir():
                    args += ["--ro-bind", f"{self.package_dir}/{name}", f"{inside}/{name}"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        args += ["--chdir", "/tmp"]
        return args

    def command(self, argv, slot, cgroup=None):
        """The command line that runs ``python argv`` sandboxed as worker ``slot``."""
        env = self._env()
        python = self._python if self.bwrap else sys.executable
        inner = [python, "-s", *argv]
        if self.root and self.setpriv and self.bwrap:
            uid = UID_BASE + slot
            inner = [
                self.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", "--bounding-set=-all", "--", *inner,
            ]
        cmd = [*self._bwrap_args(env), "--", *inner] if self.bwrap else inner
        if cgroup is not None:
            files = cgroup.procs_files
            cmd = ["/bin/sh", "-c", _JOIN_CGROUPS, "sh", str(len(files)), *files, *cmd]
        return cmd, env

    def _rlimit_args(self):
        args = ["--fsize", str(self.limits.max_file), "--nofile", str(self.limits.max_open_files)]
        if not self.use_cgroups:
            args += ["--as", str(max(self.limits.memory, 512 * MB))]
            if self.root and self.bwrap:
                args += ["--nproc", str(self.limits.max_processes)]  # counted per uid: the worker's own
            elif not self.root and self.bwrap and _nproc_per_user_namespace():
                args += ["--nproc", str(self.limits.max_processes)]  # counted in the run's own user namespace
            elif not self.root:
                # Counted with every process of this user: allow those that exist, plus the limit.
                args += ["--nproc", str(_tasks_of(os.getuid()) + self.limits.max_processes)]
        return args

    # --- running -------------------------------------------------------------------------

    def start(self, slot):
        """Start the runner as worker ``slot``: a :class:`~rnncourse.grader.sandbox.Process` to talk to."""
        return Process(self, ["-m", "rnncourse.grader.runner"], slot, channels=True)

    def run_python(self, code, *, slot=0, timeout=None):
        """Run ``python -c code`` in the sandbox: ``(returncode, output)`` (stdout and stderr, capped).

        For the probe at start-up and for tests of the isolation itself.
        """
        try:
            process = Process(self, ["-c", code], slot, channels=False)
        except Stop as stop:
            return None, stop.detail.encode()
        try:
            process.wait(time.monotonic() + (self.limits.timeout if timeout is None else timeout))
        except Stop:
            pass
        finally:
            process.close()
        return process.returncode, bytes(process.output)

    @property
    def stopping(self):
        return self._stopping

    def stop(self):
        """Stop every run now (the batch was interrupted): each is killed within a second."""
        self._stopping = True

    def close(self):
        if self.cgroups is not None:
            self.cgroups.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Stop(Exception):
    """A run that stopped before it answered: ``status`` is a row's status, ``detail`` says more.

    ``timeout`` (the deadline passed), ``memory`` (the memory cgroup killed a
    process), ``output limit`` (more than ``max_output`` bytes on stdout and
    stderr, or more than ``MAX_RESULTS`` of replies), ``crashed`` (the
    process ended, or closed its channel), ``malformed results`` (a frame
    that is not the reply due: ``detail`` says how), ``error`` (the batch was
    interrupted: ``detail`` is ``"stopped"``; or the sandbox could not start).
    """

    def __init__(self, status, detail="", returncode=None):
        super().__init__(status, detail)
        self.status, self.detail, self.returncode = status, detail, returncode


class Process:
    """One sandboxed Python process, supervised from outside: its pipes, its output caps, its deadlines.

    With ``channels``, it is the runner: :meth:`send` writes a command and
    :meth:`receive` waits for the reply due, checked by
    :func:`rnncourse.grader.wire.check_reply`. Each call takes a deadline (a
    ``time.monotonic()`` time, the grader's clock) and raises :class:`Stop`
    when it passes, when the process ends, when an output cap is passed or
    when a frame is not the reply due; the process is then killed.
    :meth:`close` always kills it and removes its cgroups.
    """

    def __init__(self, sandbox, argv, slot, *, channels):
        self.sandbox, self.limits = sandbox, sandbox.limits
        self.output = bytearray()
        self.output_total = self.results_total = 0
        self.returncode = None
        self.reader = wire.FrameReader()
        self.pending = memoryview(b"")
        self.commands_w = self.replies_r = None
        try:
            self.cgroup = sandbox.cgroups.job(f"w{slot}-{next(sandbox._runs)}", self.limits) if sandbox.use_cgroups else None
        except OSError as err:
            raise Stop("error", f"the sandbox's cgroups could not be made: {err}") from None
        keep = ()
        if channels:
            commands_r, self.commands_w = os.pipe()
            self.replies_r, replies_w = os.pipe()
            keep = (commands_r, replies_w)
            argv = [*argv, "--in", str(commands_r), "--out", str(replies_w), *sandbox._rlimit_args()]
        cmd, env = sandbox.command(argv, slot, self.cgroup)
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=keep, env=env, cwd="/", start_new_session=True,
            )
        except OSError as err:
            for fd in (self.commands_w, self.replies_r):
                if fd is not None:
                    os.close(fd)
            if self.cgroup is not None:
                self.cgroup.remove()
            raise Stop("error", f"the sandbox could not start: {err}") from None
        finally:
            for fd in keep:
                os.close(fd)
        self.selector = selectors.DefaultSelector()
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.selector.register(self.proc.stdout, selectors.EVENT_READ, "stdout")
        if channels:
            os.set_blocking(self.commands_w, False)
            os.set_blocking(self.replies_r, False)
            self.selector.register(self.replies_r, selectors.EVENT_READ, "replies")

    # --- the conversation --------------------------------------------------------------

    def send(self, frame, deadline):
        """Write one command, reading the process's output meanwhile."""
        self.pending = memoryview(frame)
        self.selector.register(self.commands_w, selectors.EVENT_WRITE, "commands")
        self._pump(deadline, until=lambda: not self.pending)

    def receive(self, expected, deadline):
        """``(header, body)`` of the reply due to the command ``expected`` (its header; ``{"t": "start"}`` for ``ready``)."""
        found = []

        def arrived():
            if not found:
                frame = self.reader.next()
                if frame is not None:
                    found.append(frame)
            return bool(found)

        try:
            self._pump(deadline, until=arrived)
            head, body = found[0]
            return wire.check_reply(head, body, expected), body
        except wire.FrameError as err:
            self._stop()
            raise Stop("malformed results", str(err)) from None

    def wait(self, deadline):
        """Wait for the process to end by itself (without channels), reading its output."""
        self._pump(deadline, until=lambda: False, ended_is_stop=False)

    # --- the supervision ---------------------------------------------------------------

    def _pump(self, deadline, until, ended_is_stop=True):
        """Serve the pipes until ``until()`` holds; raise :class:`Stop` for any other end."""
        exited_at = None
        while not until():
            now = time.monotonic()
            if self.sandbox.stopping:
                self._stop()
                raise Stop("error", "stopped")
            if now >= deadline:
                self._stop()
                raise Stop("timeout")
            if exited_at is None and self.proc.poll() is not None:
                exited_at = now
            if exited_at is not None and (now - exited_at > 0.2 or not self.selector.get_map()):
                # The process is gone, and what its pipes held has been read.
                if ended_is_stop:
                    raise self._ended()
                self.returncode = self.proc.poll()
                return
            wait = min(deadline - now, 0.05 if exited_at is not None else 1.0)
            if not self.selector.get_map():
                try:
                    self.proc.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    pass
                continue
            for key, _ in self.selector.select(timeout=wait):
                self._serve(key)

    def _serve(self, key):
        if key.data == "commands":
            try:
                n = os.write(self.commands_w, self.pending[: 1 << 16])
            except BlockingIOError:
                n = 0
            except OSError:  # the runner closed its end: no reply will come
                self.selector.unregister(self.commands_w)
                raise self._ended() from None
            self.pending = self.pending[n:]
            if not self.pending:
                self.selector.unregister(self.commands_w)
            return
        try:
            chunk = os.read(key.fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.selector.unregister(key.fileobj)
            if key.data == "replies":
                raise self._ended()  # the channel closed before the reply due came whole
            return
        if key.data == "stdout":
            self.output_total += len(chunk)
            room = self.limits.max_output - len(self.output)
            if room > 0:
                self.output += chunk[:room]
            if self.output_total > self.limits.max_output and self.replies_r is not None:
                self._stop()
                raise Stop("output limit", "output")
        else:
            self.results_total += len(chunk)
            if self.results_total > MAX_RESULTS:
                self._stop()
                raise Stop("output limit", "results")
            self.reader.feed(chunk)

    def _ended(self):
        """The :class:`Stop` of a process that ended (or closed its channel) before the reply due."""
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        oom = self.cgroup is not None and self.cgroup.oom_killed()
        self._stop()
        return Stop("memory" if oom else "crashed", returncode=self.returncode)

    def _stop(self):
        _kill(self.proc, self.cgroup)
        self.returncode = self.proc.poll()

    def close(self):
        """End the process (``end``, then a kill), remove its cgroups, close every pipe."""
        if self.commands_w is not None and self.proc.poll() is None:
            try:
                os.write(self.commands_w, wire.end_command())
            except OSError:
                pass
        self._stop()
        self.selector.close()
        for fd in (self.commands_w, self.replies_r):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.commands_w = self.replies_r = None


def _nproc_per_user_namespace():
    """Whether this kernel counts RLIMIT_NPROC per user namespace (Linux 5.14 and later)."""
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 14)


def _tasks_of(uid):
    """How many tasks (threads) the user ``uid`` runs now, as RLIMIT_NPROC counts them."""
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1 -1").split()[0]) == uid:
            count += int(fields.get("Threads", "1"))
    return count


def _kill(proc, cgroup):
    """Kill the run: every process of its cgroups, or (without cgroups) its process group."""
    if cgroup is not None:
        cgroup.remove()
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    for f in (proc.stdin, proc.stdout):
        try:
            if f is not None:
                f.close()
        except OSError:
            pass
