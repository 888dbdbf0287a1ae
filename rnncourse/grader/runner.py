"""The program that runs inside the sandbox: the student's cells and the checks' cases, one command at a time.

Started by the grader as ``python -m rnncourse.grader.runner --in N --out M [limits]``
with the sandbox's package on ``PYTHONPATH`` and ``/dev/null`` on stdin. It

1. lowers its resource limits (core files, file size, open files, and the
   fallbacks for address space and process count) before anything else;
2. imports what it needs, starts one in-process IPython shell (so magics
   work; no Jupyter kernel, no ZMQ) and says ``ready``;
3. then answers the grader's commands, one at a time, on descriptor M
   (:mod:`rnncourse.grader.wire` says the format): a ``code`` command runs
   one cell and answers ``done`` with the error the cell raised, if any; a
   ``case`` command calls :func:`rnncourse.checks.run_case` on one case
   with the shell's namespace and answers its ``outputs``; ``end`` ends.

Everything here is untrusted as soon as the first student cell has run: the
student's code shares this process and may rewrite any of it, read the
commands or write replies of its own. That is why nothing from here is
believed: outputs are judged on the trusted side, against inputs and
references the sandbox never decides; the grader accepts only the exact
reply to the command it sent; and every time limit is a clock of the
grader's. Student text (stdout, stderr, tracebacks) is kept in memory,
capped, and only an error's first characters travel back.
"""

import io
import os
import sys

from rnncourse.grader import wire

TEXT_LIMIT = 10_000  # characters of a cell's stdout and stderr kept (in memory, never sent)


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


class _Channel:
    """The commands from the grader (descriptor ``fd_in``) and the replies to it (``fd_out``)."""

    def __init__(self, fd_in, fd_out):
        self.fd_in, self.fd_out = fd_in, fd_out
        self.read, self.write = os.read, os.write  # kept: a student may replace os.read and os.write later

    def receive(self):
        return wire.read_frame(lambda n: self.read(self.fd_in, n))

    def send(self, frame):
        view = memoryview(frame)
        while view:
            view = view[self.write(self.fd_out, view) :]


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


def _safe_text(err, limit=wire.ERROR_LIMIT):
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
    channel = _Channel(args["in"], args["out"])

    import numpy as np

    from rnncourse.checks import load_arrays, run_case, save_arrays

    work = os.path.join(os.environ.get("HOME", "/tmp"), "work")
    os.makedirs(work, exist_ok=True)
    os.chdir(work)
    shell = _make_shell()

    def run_cell(source):
        try:
            result = shell.run_cell(source, store_history=True)
            err = result.error_before_exec or result.error_in_exec
            return _safe_text(err) if err is not None else None
        except BaseException as err:  # noqa: BLE001 - IPython itself gave up on the cell
            return _safe_text(err)

    def outputs_of(name, body):
        try:
            out = run_case(name, load_arrays(io.BytesIO(body)), shell.user_ns)
            npz = io.BytesIO()
            save_arrays(npz, out)
        except BaseException as err:  # noqa: BLE001 - SystemExit, a missing function, unreadable outputs
            npz = io.BytesIO()
            save_arrays(npz, {"_error": np.array(f"{name} could not run: {_safe_text(err)}")})
        return npz.getvalue()

    channel.send(wire.ready_reply())
    while True:
        try:
            command, body = channel.receive()
        except EOFError:
            break
        kind = command.get("t")
        if kind == "end":
            break
        sys.stdout = sys.stderr = _Capped(TEXT_LIMIT)
        if kind == "code":
            error = run_cell(body.decode("utf-8", "surrogatepass"))
            channel.send(wire.done_reply(command["i"], error))
        elif kind == "case":
            npz = outputs_of(command["check"], body)
            channel.send(wire.outputs_reply(command["i"], command["check"], command["case"], npz))
    os._exit(0)  # no atexit handler, no thread of the student's delays the end


if __name__ == "__main__":
    main()
