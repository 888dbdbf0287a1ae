"""An unprivileged user to grade as: the tests of the sandbox's non-root mode run ``rnncourse grade`` as it.

The tests run as root (as CI does); :class:`Unprivileged` creates the system user
``rnncourse-nonroot`` once (``useradd``; it is kept for later runs) and wraps a command
so that it runs as that user, with no groups of root's and no capabilities.

What that user must reach, it reaches without any change to this machine: the Python of
the virtual environment may live in a folder only root may enter (pyenv under
``/root``, as on the course's CI machine). The wrapped command therefore starts in a
mount namespace of its own (``unshare --mount``, gone when the command ends) where each
such folder is covered by an empty tmpfs holding bind mounts of only what is needed
(the Python, the repository, the test's work folder), every file with its own owner
and mode. Nothing else of ``/root`` is visible to the grader there.
"""

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

USER = "rnncourse-nonroot"
ROOT = Path(__file__).resolve().parents[2]


def _other_may_enter(path):
    return bool(path.stat().st_mode & 0o001)


class Unprivileged:
    """The user ``USER`` (created when missing) and the wrapping of commands to run as it."""

    #: The programs that a wrapped command's process runs, as root, before it execs ``setpriv`` and the command.
    WRAPPER = ("unshare", "sh")

    def __init__(self, work):
        if os.geteuid() != 0:
            pytest.skip("these tests create a user and switch to it: they need root (CI runs them as root)")
        for tool in ("useradd", "unshare", "setpriv", "bwrap"):
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} is not installed")
        try:
            entry = pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", USER], check=True, capture_output=True)
            entry = pwd.getpwnam(USER)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        self.work = Path(work)
        self.home = self.work / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.covers = self._covers([Path(sys.base_prefix), Path(sys.prefix), ROOT,
                                    Path(sysconfig.get_paths()["purelib"]), self.work])

    @staticmethod
    def _covers(needed):
        """{folder only root may enter: the names in it that the user must reach}; skips where that cannot work."""
        covers = {}
        for path in needed:
            path = path.resolve()
            chain = [*reversed(path.parents), path]
            for k, folder in enumerate(chain[:-1]):
                if not _other_may_enter(folder):
                    if any(not _other_may_enter(inner) for inner in chain[k + 1:-1]) or \
                            any(str(folder).startswith(str(c) + "/") for c in covers):
                        pytest.skip(f"{path} lies in more than one folder an unprivileged user may not enter")
                    covers.setdefault(folder, set()).add(chain[k + 1].name)
                    break
        return covers

    def give(self, path):
        """Make ``path`` (a folder the test built as root) the user's, as an instructor's course is theirs."""
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)
        os.chmod(path, 0o755)

    def wrap(self, cmd):
        """``cmd`` as the user: a private mount namespace (see the module's docstring), then setpriv."""
        script = ["set -e"]
        stage = self.work / ".stage"
        for k, (folder, names) in enumerate(sorted(self.covers.items())):
            for j, name in enumerate(sorted(names)):
                kind = "-d" if (folder / name).is_dir() else "-f"
                held = stage / f"{k}-{j}"
                make = f"mkdir -p '{held}'" if kind == "-d" else f"mkdir -p '{stage}' && touch '{held}'"
                script += [make, f"mount --bind '{folder / name}' '{held}'"]
            script.append(f"mount -t tmpfs -o mode=0755,size=1m tmpfs '{folder}'")
            for j, name in enumerate(sorted(names)):
                target = folder / name
                script.append(f"mkdir -p '{target}'" if (stage / f"{k}-{j}").is_dir() or (folder / name).is_dir()
                              else f"touch '{target}'")
                script.append(f"mount --bind '{stage}/{k}-{j}' '{target}'")
        script.append(f'exec setpriv --reuid={self.uid} --regid={self.gid} --clear-groups '
                      f'--inh-caps=-all --bounding-set=-all -- env HOME=\'{self.home}\' USER={USER} LOGNAME={USER} "$@"')
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", "\n".join(script), "sh", *cmd]
