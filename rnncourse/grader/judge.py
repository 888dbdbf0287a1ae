"""Judging what came back from the sandbox: the graded cells' points, and the words for every stop.

Runs on the trusted side, after :func:`rnncourse.grader.execution.execute`.
Each case's outputs (an NPZ, read without pickle and refused when it would
unpack to more than ``MB_RESULTS``) go to :func:`rnncourse.checks.judge`
with the case as the grader made it; a test cell earns its points (from the
instructor's source) when every case of every check it calls passes.

A check whose case stopped the sandbox fails with the stop's description; a
check that was not run because the notebook's time ran out says so; a check
that fails because its function was defined in a cell that stopped says
that too, so that the student knows which cell to fix.
"""

import io
import re
import signal
import zipfile

MB = 1024 * 1024
MB_RESULTS = 64  # MB of results one case's NPZ may unpack to
MAX_ERRORS_SHOWN = 20
MAX_STOPS_IN_REASON = 4

_DEFINED = re.compile(r"^(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)|^([A-Za-z_]\w*)[ \t]*=(?!=)", re.M)


def load_outputs(body):
    """The arrays of one case's outputs, read without pickle, refusing zip bombs; or None."""
    from rnncourse.checks import load_arrays

    try:
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            infos = zf.infolist()
            if len(infos) > 256 or sum(i.file_size for i in infos) > MB_RESULTS * MB:
                return None
        return load_arrays(io.BytesIO(body))
    except Exception:  # noqa: BLE001 - anything unreadable is no output
        return None


def _case_label(cases, name, j):
    try:
        return str(cases[name][j]["_label"]).replace("_", " ")
    except (KeyError, IndexError, TypeError):
        return f"case {j}"


def step_label(steps, k):
    return steps[k].label if k is not None and 0 <= k < len(steps) else "before the first cell"


def describe_stop(stop, steps, cases, limits):
    """What stopped, in words: ``"cell 7 ran longer than 2 s, the limit per cell"``."""
    if stop.check is not None:
        test = steps[stop.step].grade_id if stop.step is not None and 0 <= stop.step < len(steps) else ""
        where = f"{stop.check}, called by the test {test} on the case '{_case_label(cases, stop.check, stop.case)}',"
        clock = "the limit per test cell"
    else:
        where = step_label(steps, stop.step)
        if stop.replay:
            where += ", when it ran again in a fresh sandbox,"
        clock = "the limit per cell"
    if stop.status == "timeout":
        if stop.detail == "notebook":
            return f"the notebook ran longer than {limits.timeout:g} s, the limit per notebook (stopped in {where.rstrip(',')})"
        return f"{where} ran longer than {limits.cell_timeout:g} s ({clock})"
    if stop.status == "memory":
        return f"{where} used more than {limits.memory // MB} MB of memory (the limit)"
    if stop.status == "output limit":
        if stop.detail == "results":
            return f"{where} sent back more than {MB_RESULTS} MB of results"
        return f"{where} wrote more than {limits.max_output} bytes of output (the limit)"
    if stop.status == "crashed":
        how = _how_it_ended(stop.returncode)
        if stop.check is not None:
            return f"{where} ended the kernel ({how})"
        return f"the kernel stopped in {where.rstrip(',')} ({how})"
    if stop.status == "malformed results":
        return f"{where} garbled the grader's channel ({stop.detail})"
    return f"{where} stopped ({stop.status})"


def _how_it_ended(code):
    """An exit status in words; bubblewrap reports a child killed by signal N as exit code 128 + N."""
    if code is None:
        return "it ended"
    if code < 0:
        return f"killed by {_signal_name(-code)}"
    if 128 < code < 160:
        return f"exit code {code}: killed by {_signal_name(code - 128)}?"
    return f"exit code {code}"


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def defined_in(steps):
    """name -> the code steps whose cell defines it at top level (``def name`` or ``name = ...``)."""
    where = {}
    for k, step in enumerate(steps):
        if step.kind == "code":
            for match in _DEFINED.finditer(step.source):
                where.setdefault(match.group(1) or match.group(2), []).append(k)
    return where


def judge_cells(notebook, steps, cases, ex, limits):
    """The graded cells' results (plain data) from an :class:`~rnncourse.grader.execution.Execution`."""
    from rnncourse.checks import get_check, judge

    failed = ex.failed_checks
    skipped = ex.skipped_steps
    definitions = defined_in(steps)
    if ex.out_of_time is not None:
        unrun = f"not run: {describe_stop(ex.out_of_time, steps, cases, limits)}"
    elif ex.error:
        unrun = f"not run: {ex.error}"
    else:
        unrun = "not run"
    cells = []
    for cell in notebook.graded:
        results = []
        for name in cell.checks:
            passed, message = True, ""
            if name in failed and failed[name] is not ex.out_of_time:
                passed, message = False, f"{name}: no points for this test: {describe_stop(failed[name], steps, cases, limits)}"
            else:
                for j, case in enumerate(cases.get(name, ())):
                    body = ex.outputs.get((name, j))
                    if body is None:
                        passed, message = False, f"{name}: {unrun}"
                        break
                    outputs = load_outputs(body)
                    if outputs is None:
                        passed, message = False, f"{name}: the outputs could not be read"
                        break
                    ok, text = judge(name, case, outputs)
                    if not ok:
                        passed, message = False, text + _lost_definition(name, get_check, definitions, skipped, ex, steps, cases, limits)
                        break
            results.append({"name": name, "passed": passed, "message": message})
        earned = cell.points if cell.auto and all(r["passed"] for r in results) else 0
        cells.append({"grade_id": cell.grade_id, "points": cell.points, "auto": cell.auto, "earned": earned, "checks": results})
    return cells


def _lost_definition(name, get_check, definitions, skipped, ex, steps, cases, limits):
    """A note when a function the check calls was defined only in cells that stopped (and were skipped)."""
    try:
        functions = tuple(get_check(name).functions)
    except Exception:  # noqa: BLE001 - a check without declared functions
        functions = (name,)
    for function in functions:
        places = definitions.get(function, [])
        if places and all(k in skipped for k in places):
            stop = next(s for s in ex.stops if s.check is None and s.step == places[-1])
            return (
                f"\n({function} is defined in {step_label(steps, places[-1])}, which stopped: "
                f"{describe_stop(stop, steps, cases, limits)}; it was skipped, so {function} was not defined. Fix that cell first.)"
            )
    return ""


def stop_reports(ex, steps, cases, limits, notebook):
    """For the feedback and the reason: each stop, in words, and the test cells graded after it."""
    graded_in = {}
    for cell in notebook.auto_cells:
        attempts = [ex.answered_in[(n, j)] for n in cell.checks for j in range(len(cases.get(n, ()))) if (n, j) in ex.answered_in]
        if attempts:
            graded_in[cell.grade_id] = max(attempts)
    reports = []
    for stop in ex.stops:
        what = describe_stop(stop, steps, cases, limits)
        if stop is ex.out_of_time:
            then = "the time of the notebook was used up: nothing after it ran"
        elif stop.check is not None:
            then = f"{stop.check} earns nothing; the grader went on in a fresh sandbox"
        else:
            then = "the cell was skipped; the grader went on in a fresh sandbox with the student's other cells"
        after = [g for g, attempt in graded_in.items() if attempt > stop.attempt]
        reports.append({"what": what, "then": then, "graded_after": after})
    return reports


def status_and_reason(ex, reports, notes):
    """The row's status (``graded``, or the first stop's) and its reason (the stops, then the notes)."""
    status = ex.stops[0].status if ex.stops else "graded"
    said = [r["what"] for r in reports[:MAX_STOPS_IN_REASON]]
    if len(reports) > MAX_STOPS_IN_REASON:
        said.append(f"and {len(reports) - MAX_STOPS_IN_REASON} more stops")
    if reports and ex.out_of_time is None:
        said.append("every other test was graded in a fresh sandbox" if len(reports) == 1 else
                    "after each stop the grader went on in a fresh sandbox")
    return status, "; ".join([*said, *notes])


def step_errors(ex, steps):
    """``[[cell label, error text], ...]``: the errors the student's cells raised (their last run)."""
    errors = []
    for k in sorted(ex.errors):
        if isinstance(ex.errors[k], str) and 0 <= k < len(steps) and steps[k].kind == "code":
            errors.append([steps[k].label, ex.errors[k][:500]])
    return errors[:MAX_ERRORS_SHOWN]
