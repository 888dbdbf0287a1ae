"""The program that runs inside the sandbox: one submission's cells, then its checks' cases, in order.

Started by the grader as ``python -m rnncourse.grader.runner --fd N [limits]``
with the stripped package on ``PYTHONPATH``. It

1. lowers its resource limits (core files, file size, open files, and the
   fallbacks for address space and process count) before anything else;
2. reads the whole job from stdin before any student code runs: a JSON plan
   (the steps) and the cases of every check, as NPZ (no pickle);
3. executes the steps in one in-process IPython shell (so magics work; no
   Jupyter kernel, no ZMQ): a ``code`` step runs one cell, a ``checks`` step
   calls :func:`rnncourse.checks.run_case` on each prepared case with the
   shell's namespace, and sends the outputs as soon as it has them;
4. reports on file descriptor N, in frames (8-byte big-endian length, then a
   JSON header line, then an optional NPZ body): ``ready``, ``step`` (a step
   starts; the grader times each step from outside), ``step_end`` (with the
   error the cell raised, if any, truncated), ``case`` (one case's outputs),
   and ``done``.

Everything here is untrusted as soon as the first student cell has run: the
student's code shares this process and may rewrite any of it. That is why
nothing from here is believed: outputs are judged on the trusted side,
against inputs and references the sandbox never decides, the time limits are
enforced from outside, and a frame that does not parse ends the reading.
Student text (stdout, stderr, tracebacks) is kept in memory, capped, and
only an error's first characters travel back.
"""

import io
import json
import os
import sys

TEXT_LIMIT = 500  # characters of an error message sent back


def _set_limits(args):
    import resource

    wanted = {
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_FSIZE: args.get("fsize"),
        resource.RLIMIT_NOFILE: args.get("nofile"),
        resource.RLIMIT_AS: args.get("as"),
        resource.RLIMIT_NPROC: args.get("nproc"),
    }
    for which, value in wanted.items():
        if value is None:
            continue
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def _parse_args(argv):
    args = {}
    it = iter(argv)
    for flag in it:
        args[flag.lstrip("-")] = int(next(it))
    return args


def _read_exact(stream, n):
    data = stream.read(n)
    if len(data) != n:
        raise EOFError("the job on stdin ended early")
    return data


def _read_job(stream):
    """The plan (a dict) and the cases, as {check: [case, ...]}."""
    from rnncourse.checks import load_arrays

    size = int.from_bytes(_read_exact(stream, 8), "big")
    plan = json.loads(_read_exact(stream, size))
    cases = {}
    for entry in plan["cases"]:
        size = int.from_bytes(_read_exact(stream, 8), "big")
        cases.setdefault(entry["check"], []).append(load_arrays(io.BytesIO(_read_exact(stream, size))))
    return plan, cases


class _Channel:
    """Frames to the grader on one file descriptor."""

    def __init__(self, fd):
        self.fd = fd
        self.write = os.write  # kept: a student may replace os.write later

    def send(self, header, body=b""):
        head = json.dumps(header).encode() + b"\n"
        frame = (len(head) + len(body)).to_bytes(8, "big") + head + body
        view = memoryview(frame)
        while view:
            view = view[self.write(self.fd, view) :]


class _Capped(io.TextIOBase):
    """A text stream that keeps its first ``limit`` characters and drops the rest."""

    def __init__(self, limit):
        self.limit, self.parts, self.size = limit, [], 0

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        if self.size < self.limit:
            self.parts.append(text[: self.limit - self.size])
        self.size += len(text)
        return len(text)

    def isatty(self):
        return False

    def fileno(self):  # some libraries ask; there is no descriptor for them
        raise io.UnsupportedOperation("fileno")


def _safe_text(err, limit=TEXT_LIMIT):
    """``"Name: message"`` of an exception, whatever its ``__str__`` does, truncated."""
    try:
        name = type(err).__name__
    except BaseException:  # noqa: BLE001
        name = "Exception"
    try:
        message = str(err)
    except BaseException:  # noqa: BLE001 - a hostile __str__
        message = "(the message could not be read)"
    text = f"{name}: {message}" if message else name
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _make_shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):
            """No GUI event loop here: ``%matplotlib inline`` (or any backend) must not fail the cell."""

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "NoColor"
    config.InteractiveShell.autocall = 0
    return Shell.instance(config=config)


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    _set_limits(args)
    channel = _Channel(args["fd"])
    stdin = sys.stdin.buffer
    plan, cases = _read_job(stdin)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # nothing more comes on stdin; a shell command (!cmd) still finds one
    os.close(null)

    import numpy as np

    from rnncourse.checks import run_case, save_arrays

    work = os.path.join(os.environ.get("HOME", "/tmp"), "work")
    os.makedirs(work, exist_ok=True)
    os.chdir(work)
    shell = _make_shell()
    limit = int(plan.get("text_limit", 10_000))

    def outputs_of(name, case):
        try:
            out = run_case(name, case, shell.user_ns)
            body = io.BytesIO()
            save_arrays(body, out)
        except BaseException as err:  # noqa: BLE001 - SystemExit, a missing function, unreadable outputs
            body = io.BytesIO()
            save_arrays(body, {"_error": np.array(f"{name} could not run: {_safe_text(err)}")})
        return body.getvalue()

    channel.send({"t": "ready"})
    for k, step in enumerate(plan["steps"]):
        channel.send({"t": "step", "i": k})
        sys.stdout = sys.stderr = _Capped(limit)
        error = None
        if step["kind"] == "code":
            try:
                result = shell.run_cell(step["source"], store_history=True)
                err = result.error_before_exec or result.error_in_exec
                error = _safe_text(err) if err is not None else None
            except BaseException as err:  # noqa: BLE001 - IPython itself gave up on the cell
                error = _safe_text(err)
        else:
            for name in step["checks"]:
                for j, case in enumerate(cases.get(name, [])):
                    channel.send({"t": "case", "check": name, "case": j}, outputs_of(name, case))
        channel.send({"t": "step_end", "i": k, "error": error})
    channel.send({"t": "done"})
    os._exit(0)  # no atexit handler, no thread of the student's delays the end


if __name__ == "__main__":
    main()
