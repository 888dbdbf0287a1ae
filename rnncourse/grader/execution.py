"""One notebook in the sandbox: the commands of its plan, the grader's clocks, and the restarts after a stop.

The plan (:mod:`rnncourse.grader.plan`) is a list of steps. Here each step
becomes *units*, sent to the runner one at a time (lock-step, see
:mod:`rnncourse.grader.wire`): a ``code`` step is one unit (a cell); a
``checks`` step is one unit per case of each check it calls.

**The clocks are the grader's.** A cell's clock starts when its command is
sent, and the cell has ``cell_timeout`` seconds to answer; the cases of one
test cell share one such clock, started when the first is sent. The
notebook's clock starts with the first sandbox and covers everything after:
starts, cells, cases and every restart. Nothing the sandbox writes moves a
clock; a reply is believed only if it is exactly the reply due.

**A stop is local.** A stop is anything that ends a run before the reply
due: a timeout, a memory kill, a crash (``os._exit``, a signal), too much
output, a malformed reply. It costs the unit it happened in, and nothing
else:

- a cell that stops is skipped from then on: the grader starts a fresh
  sandbox, runs the student's other cells again (in order, up to where it
  was), and goes on with the units after the stopped one;
- a case that stops fails its check (the check's other cases are not run);
  the grader goes on in a fresh sandbox with the next check;
- a cell that stops when it runs again in a fresh sandbox is skipped too;
  results already received stay.

Each stop skips one more unit, so the restarts end; and when the notebook's
clock passes, the run ends there: the units left are not run, and a
notebook that stops in every function thus costs at most ``timeout``
seconds. A sandbox that cannot start, or a batch that is interrupted, is
the grader's problem, not the student's: ``Execution.error`` says so.
"""

import io
import time
from dataclasses import dataclass, field

from . import wire
from .sandbox import Stop

START_LIMIT = 60.0  # seconds the runner may take to start (the grader's code: imports), within the notebook's clock


@dataclass
class StopRecord:
    """One stop: where (``step``, and for a case its ``check`` and ``case``), what (``status``, ``detail``), when."""

    step: int
    status: str
    detail: str = ""
    check: str = None
    case: int = None
    attempt: int = 1
    replay: bool = False  # a cell that had run in an earlier sandbox and stopped when it ran again
    returncode: int = None


@dataclass
class Execution:
    """What came out of one notebook's run, every restart included (plain data; nothing judged yet)."""

    outputs: dict = field(default_factory=dict)  # (check, case) -> the NPZ bytes of the outputs
    answered_in: dict = field(default_factory=dict)  # (check, case) -> the attempt that answered it
    errors: dict = field(default_factory=dict)  # code step -> the error its cell raised (None: none)
    stops: list = field(default_factory=list)  # StopRecord, in order
    out_of_time: StopRecord = None  # the stop at which the notebook's clock passed; the units after it did not run
    error: str = ""  # the grader's own problem: the sandbox did not start, or the batch was interrupted
    attempts: int = 0
    seconds: float = 0.0

    @property
    def skipped_steps(self):
        return {s.step for s in self.stops if s.check is None}

    @property
    def failed_checks(self):
        return {s.check: s for s in self.stops if s.check is not None}


def encode_cases(cases):
    """The NPZ bytes of every case: ``{(check, index): bytes}``."""
    from rnncourse.checks import save_arrays

    blobs = {}
    for name, made in cases.items():
        for j, case in enumerate(made):
            buf = io.BytesIO()
            save_arrays(buf, case)
            blobs[(name, j)] = buf.getvalue()
    return blobs


def execute(sandbox, slot, steps, cases):
    """Run the ``steps`` of one notebook as worker ``slot``, restarting after each stop: an :class:`Execution`.

    ``cases`` is ``{check: [case, ...]}`` for every check the steps call.
    """
    limits = sandbox.limits
    blobs = encode_cases(cases)
    counts = {name: len(made) for name, made in cases.items()}
    ex = Execution()
    start = time.monotonic()
    notebook_deadline = start + limits.timeout
    ran = set()  # code steps that ran to their end in some sandbox
    units = sum(1 for s in steps if s.kind == "code") + sum(counts.values())
    while True:
        ex.attempts += 1
        if ex.attempts > units + 1:  # each stop skips a unit: more sandboxes than units is a bug of ours
            ex.error = f"the grader started more sandboxes ({units + 1}) than the notebook has cells and cases"
            break
        try:
            process = sandbox.start(slot)
        except Stop as stop:
            ex.error = stop.detail
            break
        try:
            finished = _attempt(process, ex, steps, blobs, counts, ran, limits, notebook_deadline)
        finally:
            process.close()
        if finished or ex.error or ex.out_of_time is not None:
            break
    ex.seconds = time.monotonic() - start
    return ex


def _attempt(process, ex, steps, blobs, counts, ran, limits, notebook_deadline):
    """One sandbox: start it, send every unit still to do. True when all are done; False after a stop."""
    try:
        process.receive({"t": "start"}, min(notebook_deadline, time.monotonic() + START_LIMIT))
    except Stop as stop:
        if stop.status == "timeout" and time.monotonic() >= notebook_deadline:
            ex.out_of_time = StopRecord(step=None, status="timeout", detail="notebook", attempt=ex.attempts)
            ex.stops.append(ex.out_of_time)
        elif stop.detail == "stopped":
            ex.error = "the batch was interrupted"
        else:
            tail = " ".join(bytes(process.output).decode(errors="replace").split())[-300:]
            ex.error = f"the sandbox did not start ({stop.status}{': ' + tail if tail else ''})"
        return False
    skipped, failed = ex.skipped_steps, ex.failed_checks
    for k, step in enumerate(steps):
        if step.kind == "code":
            if k in skipped:
                continue
            command = {"t": "code", "i": k}
            deadline = min(notebook_deadline, time.monotonic() + limits.cell_timeout)
            try:
                process.send(wire.code_command(k, step.source), deadline)
                header, _ = process.receive(command, deadline)
            except Stop as stop:
                return _stopped(ex, stop, deadline >= notebook_deadline, step=k, replay=k in ran)
            ex.errors[k] = header["error"]
            ran.add(k)
            continue
        step_deadline = None  # the cases of one test cell share one clock
        for name in step.checks:
            if name in failed:
                continue
            for j in range(counts.get(name, 0)):
                if (name, j) in ex.outputs:
                    continue
                if step_deadline is None:
                    step_deadline = time.monotonic() + limits.cell_timeout
                deadline = min(notebook_deadline, step_deadline)
                command = {"t": "case", "i": k, "check": name, "case": j}
                try:
                    process.send(wire.case_command(k, name, j, blobs[(name, j)]), deadline)
                    _, body = process.receive(command, deadline)
                except Stop as stop:
                    return _stopped(ex, stop, deadline >= notebook_deadline, step=k, check=name, case=j)
                ex.outputs[(name, j)] = body
                ex.answered_in[(name, j)] = ex.attempts
    return True


def _stopped(ex, stop, notebook_clock, **where):
    """Record a stop; False (the caller restarts, unless the notebook is out of time or the batch stops)."""
    if stop.detail == "stopped":
        ex.error = "the batch was interrupted"
        return False
    detail = stop.detail
    if stop.status == "timeout":
        detail = "notebook" if notebook_clock else "cell"
    record = StopRecord(status=stop.status, detail=detail, attempt=ex.attempts, returncode=stop.returncode, **where)
    ex.stops.append(record)
    if detail == "notebook":
        ex.out_of_time = record
    return False
