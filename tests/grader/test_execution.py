"""The rule of a stop, without a sandbox: :func:`rnncourse.grader.execution.execute` against scripted runners.

A :class:`ScriptedSandbox` starts fake runners that answer each command as
a script says: a cell or a case either answers at once, or stops (a
timeout, a crash, a malformed reply) the way a real sandbox reports it. So
these tests pin down the rule itself, exactly and fast: what runs again
after a stop, what is skipped, what keeps its result, and which clock ends
what. The real sandbox's part (that a hang, ``os._exit`` or a memory bomb is
reported as such a stop) is tested end to end in test_stops.py.
"""

import time

import pytest

from rnncourse.grader import execution, wire
from rnncourse.grader.execution import execute
from rnncourse.grader.plan import Step
from rnncourse.grader.sandbox import Limits, Stop


class ScriptedProcess:
    """A fake runner: ``behaviour(unit, attempt)`` says what each unit does ("ok", or a Stop to raise)."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.output = b""
        self.sent = None

    def send(self, frame, deadline):
        self.sent = frame

    def receive(self, expected, deadline):
        if expected["t"] == "start":
            self.sandbox.starts.append(time.monotonic())
            return {"t": "ready"}, b""
        unit = ("code", expected["i"]) if expected["t"] == "code" else ("case", expected["check"], expected["case"])
        self.sandbox.log.append((len(self.sandbox.starts), unit))
        what = self.sandbox.behaviour(unit, len(self.sandbox.starts))
        if what == "hang":
            left = deadline - time.monotonic()
            time.sleep(max(0.0, left))
            raise Stop("timeout")
        if isinstance(what, Stop):
            raise what
        if expected["t"] == "code":
            return {"t": "done", "i": expected["i"], "error": None}, b""
        return dict(expected, t="outputs"), b"npz of " + repr(unit).encode()

    def close(self):
        pass


class ScriptedSandbox:
    def __init__(self, behaviour, limits=Limits(cell_timeout=0.2, timeout=5.0)):
        self.behaviour, self.limits = behaviour, limits
        self.starts, self.log = [], []
        self.stopping = False

    def start(self, slot):
        return ScriptedProcess(self)


STEPS = [
    Step("code", "cell 1", "import numpy as np", "imports"),
    Step("code", "cell 2", "def f(x):\n    return x", "f"),
    Step("checks", "cell 3 (test test_f)", grade_id="test_f", checks=("f",)),
    Step("code", "cell 4", "def g(x):\n    return x", "g"),
    Step("checks", "cell 5 (test test_g)", grade_id="test_g", checks=("g", "h")),
    Step("code", "cell 6", "print('the end')", ""),
]
CASES = {"f": [{}, {}], "g": [{}, {}, {}], "h": [{}]}


@pytest.fixture(autouse=True)
def no_npz(monkeypatch):
    monkeypatch.setattr(execution, "encode_cases", lambda cases: {(n, j): b"" for n, made in cases.items() for j in range(len(made))})


def units_of(sandbox, attempt):
    return [unit for a, unit in sandbox.log if a == attempt]


def test_a_run_without_a_stop_sends_every_unit_once_in_order():
    sandbox = ScriptedSandbox(lambda unit, attempt: "ok")
    ex = execute(sandbox, 0, STEPS, CASES)
    assert ex.attempts == 1 and ex.stops == [] and not ex.error
    assert units_of(sandbox, 1) == [
        ("code", 0), ("code", 1), ("case", "f", 0), ("case", "f", 1), ("code", 3),
        ("case", "g", 0), ("case", "g", 1), ("case", "g", 2), ("case", "h", 0), ("code", 5),
    ]
    assert set(ex.outputs) == {(n, j) for n, made in CASES.items() for j in range(len(made))}


def test_a_cell_that_stops_is_skipped_and_the_rest_goes_on_in_a_fresh_sandbox():
    """Fails if a stop ends the run (the old rule), or the fresh sandbox lacks the other cells, or reruns cases."""
    crash = Stop("crashed", returncode=1)
    sandbox = ScriptedSandbox(lambda unit, attempt: crash if unit == ("code", 3) else "ok")
    ex = execute(sandbox, 0, STEPS, CASES)
    assert ex.attempts == 2
    [stop] = ex.stops
    assert (stop.step, stop.status, stop.check, stop.attempt) == (3, "crashed", None, 1)
    # The second sandbox: the student's other cells again (their definitions), the stopped cell skipped,
    # the cases already answered not asked again, then the rest.
    assert units_of(sandbox, 2) == [("code", 0), ("code", 1), ("case", "g", 0), ("case", "g", 1), ("case", "g", 2),
                                    ("case", "h", 0), ("code", 5)]
    assert ex.answered_in[("f", 0)] == 1 and ex.answered_in[("g", 0)] == 2
    assert ex.skipped_steps == {3}


def test_a_case_that_stops_fails_its_check_only():
    sandbox = ScriptedSandbox(lambda unit, attempt: "hang" if unit == ("case", "g", 1) else "ok")
    ex = execute(sandbox, 0, STEPS, CASES)
    [stop] = ex.stops
    assert (stop.step, stop.check, stop.case, stop.status, stop.detail) == (4, "g", 1, "timeout", "cell")
    assert units_of(sandbox, 2) == [("code", 0), ("code", 1), ("code", 3), ("case", "h", 0), ("code", 5)]
    assert ("g", 2) not in ex.outputs and ("h", 0) in ex.outputs
    assert set(ex.failed_checks) == {"g"}


def test_a_cell_that_stops_when_it_runs_again_is_skipped_too():
    def behaviour(unit, attempt):
        if unit == ("code", 3):
            return Stop("crashed")
        if unit == ("code", 1) and attempt == 2:
            return Stop("memory")
        return "ok"

    sandbox = ScriptedSandbox(behaviour)
    ex = execute(sandbox, 0, STEPS, CASES)
    assert [(s.step, s.status, s.replay) for s in ex.stops] == [(3, "crashed", False), (1, "memory", True)]
    assert units_of(sandbox, 3)[:2] == [("code", 0), ("case", "g", 0)]
    assert ex.outputs[("f", 0)]  # answered in the first sandbox: kept


def test_the_notebook_clock_covers_every_restart():
    """Everything stops: the run ends when the notebook's limit passes, not after (restarts included)."""
    limits = Limits(cell_timeout=0.3, timeout=1.0)
    sandbox = ScriptedSandbox(lambda unit, attempt: "hang", limits)
    start = time.monotonic()
    ex = execute(sandbox, 0, STEPS, CASES)
    assert time.monotonic() - start < limits.timeout + 0.3
    assert ex.out_of_time is not None and ex.out_of_time.detail == "notebook"
    assert 2 <= ex.attempts <= 4 and ex.outputs == {}


def test_a_malformed_reply_is_a_stop_of_the_unit_it_came_in():
    bad = Stop("malformed results", "a 'step' frame where a 'done' reply was due")
    sandbox = ScriptedSandbox(lambda unit, attempt: bad if unit == ("code", 1) and attempt == 1 else "ok")
    ex = execute(sandbox, 0, STEPS, CASES)
    assert [(s.step, s.status) for s in ex.stops] == [(1, "malformed results")]
    assert ex.attempts == 2 and len(ex.outputs) == 6


def test_a_sandbox_that_cannot_start_or_an_interrupted_batch_is_the_graders_error():
    class Broken(ScriptedSandbox):
        def start(self, slot):
            raise Stop("error", "the sandbox could not start: no bwrap")

    ex = execute(Broken(lambda u, a: "ok"), 0, STEPS, CASES)
    assert ex.error == "the sandbox could not start: no bwrap" and ex.stops == []
    sandbox = ScriptedSandbox(lambda unit, attempt: Stop("error", "stopped") if unit == ("code", 1) else "ok")
    ex = execute(sandbox, 0, STEPS, CASES)
    assert ex.error == "the batch was interrupted" and ex.attempts == 1


def test_the_cases_of_one_test_cell_share_one_clock():
    """Each case takes 60% of the limit: alone each would pass, together they pass the test cell's limit."""
    limits = Limits(cell_timeout=0.25, timeout=5.0)

    def behaviour(unit, attempt):
        if unit[0] == "case" and unit[1] == "g":
            time.sleep(0.15)
        return "ok"

    sandbox = ScriptedSandbox(behaviour, limits)

    def slow_receive(self, expected, deadline, real=ScriptedProcess.receive):
        reply = real(self, expected, deadline)
        if time.monotonic() > deadline:
            raise Stop("timeout")
        return reply

    ScriptedProcess.receive, original = slow_receive, ScriptedProcess.receive
    try:
        ex = execute(sandbox, 0, STEPS, CASES)
    finally:
        ScriptedProcess.receive = original
    assert [(s.check, s.case) for s in ex.stops] == [("g", 1)]


def test_commands_are_the_wire_format():
    sandbox = ScriptedSandbox(lambda unit, attempt: "ok")
    sent = []
    original = ScriptedProcess.send
    ScriptedProcess.send = lambda self, frame, deadline: sent.append(frame)
    try:
        execute(sandbox, 0, STEPS[:3], {"f": [{}]})
    finally:
        ScriptedProcess.send = original
    assert sent[0] == wire.code_command(0, "import numpy as np")
    assert sent[2] == wire.case_command(2, "f", 0, b"")
