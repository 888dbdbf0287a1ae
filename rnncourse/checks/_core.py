"""The trusted side of every graded check: declarations, cases, the judge and the in-process ``check``.

A check is declared once, as data and functions (:class:`Check`), beside its
:class:`~rnncourse.checks.calls.Call` (how it calls the learner's function,
the only part that runs next to the learner's code), and used in two ways
that share every step:

1. **In the learner's process**, from a notebook test cell:
   ``check("rnn_step_forward", rnn_step_forward)`` makes the cases, runs the
   learner's function on them and judges the outputs, raising
   :class:`CheckFailure` with a short message that names the mistake.
2. **Out of the learner's process**, for a grader: the trusted side makes
   ``cases = make_cases(name, seed)``, sends each case (plain arrays) to a
   sandbox that calls :func:`~rnncourse.checks.calls.run_case` on the
   learner's code and sends back the outputs (plain arrays again), and the
   trusted side calls ``judge(name, case, outputs)``.

**Each function is judged on its own.** A backward gets the cache its
forward would give, as arrays computed here with the reference (the check's
``given``) in the layout the notebook states, never the learner's own
forward's cache; so a mistake in a forward costs the forward's points only.
A function that calls another graded function declares it (``depends`` of
its call): when it fails and the learner's dependency fails the
dependency's own visible cases, the message says to fix the dependency
first. Nothing here depends on how a learner draws random numbers: the
learner's functions get every input, and the cases are drawn here from a seed.

**The tolerance belongs to the case.** A case whose floating-point inputs
are float32 is judged at float32's tolerance, any other at float64's; an
answer in a lower precision than its case's is judged at the case's
tolerance, and told to compute in the inputs' dtype.

The judge never trusts the outputs: any key, shape or dtype may come back,
and it answers with a verdict rather than an exception.
"""

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from rnncourse.testing import assert_close, tolerance

from .calls import (
    ERROR_KEY,
    EXCEPTION_KEY,
    MISSING_KEY,
    PROBE_SEP,
    RAISED_IN_KEY,
    bind,
    calls_of,
    get_call,
    inputs_of,
    probe_cases,
    probe_outputs,
    read_text,
    run,
    shape_message,
    shorten,
    text,
)

__all__ = [
    "Case",
    "Mistake",
    "Check",
    "CheckFailure",
    "register",
    "get_check",
    "checks_of",
    "make_cases",
    "judge",
    "check",
    "case_dtype",
]

RAISES = "_raises"  # key of a reference output: the function must raise this exception


# --- declarations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One visible case: small fixed shapes, inputs chosen to isolate one term.

    ``build(rng)`` returns the inputs (dict name -> ndarray); ``description``
    says what is special about them ("only the bias is non-zero") and
    ``hint`` what to look at when this case fails ("check the bias term").
    """

    label: str
    description: str
    hint: str
    build: Callable
    shape_hint: str = ""


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer, recognised by its outputs.

    ``outputs(inputs)`` computes, on the trusted side, what a function with
    this mistake returns (only the outputs the mistake changes). When a
    learner's wrong outputs equal these, the judge says ``message``.
    ``applies(inputs)`` (optional) limits the cases where it is tried.
    """

    message: str
    outputs: Callable
    applies: Callable = None


@dataclass(frozen=True)
class Check:
    """The trusted side of one graded check (its call: :func:`~rnncourse.checks.calls.get_call`).

    Attributes
    ----------
    name : the check's name, also the name of the function the learner writes.
    reference : ``reference(inputs) -> outputs``: the right outputs, from
        :mod:`rnncourse.numpy` (or ``torch.nn``); ``{RAISES: "ValueError"}``
        for a case where the function must raise.
    visible : the visible cases, in the order they are tried: isolating
        cases first, the general one last.
    hidden : ``hidden(rng) -> [(description, inputs), ...]``, random shapes
        and non-zero biases.
    given : ``given(inputs) -> arrays``: what the function receives that
        another function computes (a backward's cache), computed with the
        reference in float64 from the inputs and added to the case in the
        case's dtype.
    mistakes : known wrong answers, tried in order when an output is wrong.
    precheck : optional ``precheck(inputs, outputs, expected) -> message or
        None``, run before the comparison, for what is not an array
        comparison (how often a callback was called, the number of updates).
    output_hints : output name -> what to look at when that output alone is
        wrong; the key ``"*"`` when every output is wrong.
    seed, hidden_seed : default seeds of the visible and hidden cases.
    """

    name: str
    reference: Callable
    visible: tuple
    hidden: Callable
    given: Callable = None
    mistakes: tuple = ()
    precheck: Callable = None
    output_hints: dict = field(default_factory=dict)
    seed: int = 0
    hidden_seed: int = 1

    @property
    def call(self):
        """How this check calls the learner's function: its :class:`~rnncourse.checks.calls.Call`."""
        return get_call(self.name)

    def __getattr__(self, name):
        """``assignment``, ``points``, ``functions`` and ``outputs``: the call's."""
        if name in ("assignment", "points", "functions", "outputs"):
            return getattr(self.call, name)
        raise AttributeError(name)


class CheckFailure(AssertionError):
    """A learner's function gave a wrong answer; the message says which and why."""


# --- registry -----------------------------------------------------------------------------

_CHECKS = {}


def register(checks):
    """Add the checks of one assignment: one per call the assignment declares, in the same order."""
    assignment = checks[0].assignment
    names = [c.name for c in checks]
    calls = [c.name for c in calls_of(assignment)]
    if names != calls:
        raise ValueError(f"{assignment} declares the checks {names}; its calls are {calls}")
    for c in checks:
        if c.name in _CHECKS:
            raise ValueError(f"check {c.name!r} is declared twice")
        _CHECKS[c.name] = c


def get_check(name):
    """The :class:`Check` called ``name``."""
    get_call(name)  # an unknown name: the KeyError that lists the checks
    return _CHECKS[name]


def checks_of(assignment):
    """The checks of ``assignment``, in the order of its notebook."""
    return tuple(_CHECKS[c.name] for c in calls_of(assignment))


# --- cases --------------------------------------------------------------------------------


def case_dtype(inputs):
    """The dtype that sets a case's tolerance: float32 if a floating-point input is float32, else float64."""
    return np.float32 if any(np.asarray(v).dtype == np.float32 for v in inputs.values()) else np.float64


def _float64(inputs):
    return {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in inputs.items()}


def make_cases(name, seed=None, *, hidden=False):
    """The cases of check ``name``: a list of dicts name -> ndarray, each NPZ-serialisable.

    Visible cases (the default) are the check's fixed isolating cases, with
    values drawn from ``seed`` (default: the check's ``seed``). Hidden cases
    (``hidden=True``) have random shapes and non-zero biases drawn from
    ``seed`` (default: the check's ``hidden_seed``; a grader passes its own,
    secret one). Keys starting with ``_`` are metadata (``_check``,
    ``_label``, ``_description``); keys ``"<dependency>:<j>:<key>"`` hold the
    visible cases of the functions this one calls; the others are the inputs.
    """
    spec = get_check(name)
    if hidden:
        rng = np.random.default_rng(spec.hidden_seed if seed is None else seed)
        made = [(f"hidden_{i}", description, inputs) for i, (description, inputs) in enumerate(spec.hidden(rng))]
    else:
        rng = np.random.default_rng(spec.seed if seed is None else seed)
        made = [(c.label, c.description, c.build(rng)) for c in spec.visible]
    probes = {}
    for dependency in spec.call.depends:
        for j, probe in enumerate(make_cases(dependency)):
            probes.update({f"{dependency}{PROBE_SEP}{j}{PROBE_SEP}{k}": v for k, v in probe.items()})
    cases = []
    for label, description, inputs in made:
        inputs = {k: np.asarray(v) for k, v in inputs.items()}
        for k in inputs:
            if k.startswith("_") or PROBE_SEP in k:
                raise ValueError(f"input {k!r} of check {name!r}: names starting with '_' or holding {PROBE_SEP!r} are kept")
        if spec.given is not None:
            dtype = case_dtype(inputs)
            for k, v in spec.given(_float64(inputs)).items():
                v = np.asarray(v)
                inputs[k] = v.astype(dtype) if v.dtype.kind == "f" else v
        cases.append({"_check": text(name), "_label": text(label), "_description": text(description), **inputs, **probes})
    return cases


# --- the judge ----------------------------------------------------------------------------


_LONG_FLOAT = re.compile(r"-?\d+\.\d{7,}(?:e[-+]?\d+)?")


def _close(actual, expected, dtype):
    """``(True, "")`` if equal within the tolerance policy for ``dtype``, else ``(False, detail)``."""
    try:
        assert_close(actual, expected, "", dtype=dtype, floor_from_largest=True)
    except AssertionError as err:
        if np.ndim(expected) == 0 and np.ndim(actual) == 0:
            return False, f"got {float(actual):.6g}, expected {float(expected):.6g}"
        detail = str(err).lstrip(": ")
        return False, _LONG_FLOAT.sub(lambda m: f"{float(m.group()):.6g}", detail)
    return True, ""


def _case_of(spec, case):
    """The visible :class:`Case` a case was made from, or None for a hidden case."""
    label = read_text(case, "_label")
    return next((c for c in spec.visible if c.label == label), None)


def judge(name, case, outputs):
    """Judge the learner's outputs on one case: ``(passed, message)``.

    Runs on the trusted side: ``case`` is the case as :func:`make_cases` made
    it, ``outputs`` whatever came back (not trusted: any key, shape or dtype).
    The expected outputs are recomputed here from the case's inputs with the
    reference. ``message`` is empty when the case passes, and otherwise a few
    lines that say which output is wrong on which kind of input and, when the
    outputs match a known mistake, which mistake; when the function calls a
    graded function that is wrong, to fix that one first.
    """
    spec = get_check(name)
    try:
        passed, message = _judge(spec, case, outputs)
        if not passed and spec.call.depends and not _not_written(spec, outputs):
            message = _blame_dependency(spec, case, outputs) or message
        return passed, message
    except Exception as err:  # noqa: BLE001 - a malformed output must give a verdict, not a crash
        return False, f"{spec.name}: the outputs could not be judged ({type(err).__name__}: {shorten(err, 120)})"


def _not_written(spec, outputs):
    """Whether the function itself (not a function it calls) raised NotImplementedError."""
    if read_text(outputs, EXCEPTION_KEY, None) != "NotImplementedError":
        return False
    return read_text(outputs, RAISED_IN_KEY, spec.name) == spec.name


def _where(spec, case):
    description = read_text(case, "_description")
    return f"{spec.name}, case '{description}'" if description else spec.name


def _lines(head, *lines):
    return "\n".join([f"{head}:", *("  " + line for line in lines if line)])


def _judge(spec, case, outputs):
    inputs = inputs_of(case)
    visible = _case_of(spec, case)
    hint = visible.hint if visible else ""

    def fail(*lines):
        return False, _lines(_where(spec, case), *lines)

    # The truth is computed in float64 whatever the inputs' dtype; the
    # tolerance is the case's: float32's when its inputs are float32.
    exact = _float64(inputs)
    expected = spec.reference(exact)
    error = read_text(outputs, ERROR_KEY, None)
    raised = read_text(outputs, EXCEPTION_KEY, None)

    if RAISES in expected:
        want = str(expected[RAISES])
        if raised == want:
            return True, ""
        if error is not None:
            return fail(f"expected {want}, but {error}", hint)
        return fail(f"expected the function to raise {want}; it returned normally", hint)
    if _not_written(spec, outputs):
        return fail(
            f"{spec.name} is not written yet: it raises NotImplementedError.",
            "Write its body in place of the `raise NotImplementedError()` line.",
        )
    if error is not None:
        # The case's hint helps with an exception in the learner's code (a
        # product of mismatched shapes), not with a return value of the wrong form.
        cache = next((a for a in spec.call.args if isinstance(a, tuple)), None)
        if cache is not None and raised and "unpack" in error:
            hint = f"The cache is ({', '.join(cache)}), in that order: the layout the notebook states."
        return fail(error, hint if raised else "")

    if spec.precheck is not None:
        message = spec.precheck(inputs, outputs, expected)
        if message:
            return fail(message)

    dtype = case_dtype(inputs)
    compared = [o for o in spec.outputs if o in expected]
    wrong = []  # (name, detail) of outputs with the right shape and dtype but wrong values
    for out in compared:
        problem, detail = _compare(out, outputs.get(out), np.asarray(expected[out]), spec.outputs[out], dtype)
        if problem == "shape":
            return fail(detail, visible.shape_hint if visible else "")
        if problem == "precision":
            return fail(f"{out} is wrong", detail)
        if problem == "value":
            wrong.append((out, detail))
        elif problem:
            return fail(detail)
    if not wrong:
        return True, ""

    names = [w[0] for w in wrong]
    right = [o for o in compared if o not in names]
    summary = f"{_join(names)} {'is' if len(names) == 1 else 'are'} wrong"
    if right:
        summary += f" ({_join(right)} {'is' if len(right) == 1 else 'are'} right)"
    advice = _recognise(spec, exact, outputs, expected, names, dtype)
    if advice is None:
        if not right and len(compared) > 1 and "*" in spec.output_hints:
            advice = spec.output_hints["*"]
        else:
            advice = " ".join(spec.output_hints[n] for n in names if n in spec.output_hints) or hint
    return fail(summary, advice, f"{wrong[0][0]}: {wrong[0][1]}")


def _compare(name, got, want, symbols, dtype):
    """``(problem, detail)``: problem is None, "missing", "dtype", "shape", "precision" or "value"."""
    if got is None:
        return "missing", f"no output {name}"
    if not isinstance(got, np.ndarray) or got.dtype.kind not in "biuf":
        return "dtype", f"{name} is not an array of numbers"
    if want.dtype.kind == "f":
        if got.dtype.kind != "f":
            return "dtype", f"{name} has dtype {got.dtype}; expected a floating-point array (float32 or float64)"
        if got.dtype not in (np.float32, np.float64):
            return "dtype", f"{name} has dtype {got.dtype}; expected float32 or float64"
    if got.shape != want.shape:
        return "shape", shape_message(name, got.shape, want.shape, symbols)
    tol = dtype if want.dtype.kind == "f" else np.float64
    ok, detail = _close(got, want, tol)
    if ok:
        return None, ""
    if want.dtype.kind == "f" and got.dtype.itemsize < np.dtype(tol).itemsize:
        inputs = np.dtype(tol).name
        return "precision", f"Your answer is {got.dtype}, the inputs are {inputs}: compute in the inputs' dtype. ({detail})"
    return "value", detail


def _recognise(spec, inputs, outputs, expected, wrong, dtype):
    """The message of the first known mistake whose outputs the learner's match, or None."""
    for mistake in spec.mistakes:
        if mistake.applies is not None and not mistake.applies(inputs):
            continue
        buggy = mistake.outputs(inputs)
        # The mistake must explain a wrong output, and every output it changes
        # must look like it; an output it leaves right must not be wrong.
        if not any(name in wrong for name in buggy):
            continue
        if any(name not in buggy for name in wrong):
            continue  # a wrong output this mistake does not change: something else is wrong
        matches = True
        for name, value in buggy.items():
            got = outputs.get(name)
            value = np.asarray(value)
            if got is None or got.shape != value.shape:
                matches = False
                break
            if not _close(got, value, dtype)[0] or _close(value, np.asarray(expected[name]), dtype)[0]:
                matches = False
                break
        if matches:
            return mistake.message
    return None


def _blame_dependency(spec, case, outputs):
    """When the learner's function calls a dependency that fails its own cases: the message saying so."""
    for dependency in spec.call.depends:
        head = f"{spec.name} calls {dependency}"
        if f"{dependency}{PROBE_SEP}{MISSING_KEY}" in outputs:
            # Not in the learner's namespace: the cause only when the function looked for it.
            if f"name '{dependency}' is not defined" in read_text(outputs, ERROR_KEY):
                return _lines(_where(spec, case), f"{head}, which is not defined: define {dependency} first.")
            continue
        for j, probe in enumerate(probe_cases(case, dependency)):
            got = probe_outputs(outputs, dependency, j)
            if not got:
                continue  # not run: nothing to say about the dependency
            passed, message = judge(dependency, probe, got)
            if passed:
                continue
            if _not_written(get_check(dependency), got):
                return _lines(_where(spec, case), f"{head}, which is not written yet: write {dependency} first.")
            first = message.splitlines()
            return _lines(
                _where(spec, case),
                f"{head}, which fails its own test: fix {dependency} first.",
                f"{first[0]} {first[1].strip() if len(first) > 1 else ''}".strip(),
                first[2].strip() if len(first) > 2 else "",
            )
    return None


def _join(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# --- the in-process mode ------------------------------------------------------------------


def check(name, *functions, hidden=False, seed=None):
    """Run check ``name`` on the learner's functions, in this process.

    ``check("rnn_step_forward", rnn_step_forward)``; a function that calls
    another graded function takes that one too, as its test cell shows:
    ``check("rnn_forward", rnn_forward, rnn_step_forward)`` (or pass a
    namespace such as ``globals()``). Runs the visible cases
    (``hidden=True``: the hidden ones) through the same
    :func:`~rnncourse.checks.calls.run` and :func:`judge` a grader uses, and
    stops at the first failing case with :class:`CheckFailure`, whose
    message names the mistake; a function not written yet raises
    ``NotImplementedError`` saying so. On success, prints one line.
    """
    __tracebackhide__ = True  # noqa: F841 - IPython and pytest hide this frame in tracebacks
    spec = get_check(name)
    fns = bind(spec.call, functions)
    cases = make_cases(name, seed, hidden=hidden)
    for case in cases:
        outputs, exc = run(spec.call, case, fns)
        passed, message = judge(name, case, outputs)
        if not passed:
            if isinstance(exc, NotImplementedError):
                raise _for_the_learner(NotImplementedError(message)) from exc
            raise _for_the_learner(CheckFailure(message)) from exc
    kind = "hidden" if hidden else "visible"
    n = len(cases)
    print(f"{name}: {'the' if n == 1 else 'all'} {n} {kind} case{'s pass' if n != 1 else ' passes'}.")


# --- what a learner sees in JupyterLab ----------------------------------------------------


def _for_the_learner(err):
    """``err`` (raised by :func:`check`), shown by IPython as its message alone, under the learner's frames.

    IPython always shows the frame that raised, here :func:`check`'s, with
    the course's source around the ``raise``: noise to a learner, who needs
    the message. An exception whose ``_render_traceback_`` exists is shown as
    that method says (IPython's and ipykernel's protocol): here the message,
    after the traceback of the learner's own exception when the failure
    started in their code (it shows their frames only: the course's are
    hidden by ``__tracebackhide__``). Python outside IPython, pytest and the
    grader see the usual exception.
    """

    def render():
        from IPython import get_ipython

        lines = []
        cause = err.__cause__
        shell = get_ipython()
        if cause is not None and shell is not None:
            lines += shell.InteractiveTB.structured_traceback(type(cause), cause, cause.__traceback__)
            lines += ["", "The check's message about the error above:", ""]
        lines.append(f"\x1b[0;31m{type(err).__name__}\x1b[0m: {err}")
        return lines

    err._render_traceback_ = render
    return err


# --- helpers for declaring checks ---------------------------------------------------------


def changed_outputs(compute, **mistake):
    """A mistake's outputs: ``compute(i, **mistake)``, keeping only the outputs it changes on the case.

    The judge reads every output a mistake returns as one the mistake changes,
    and recognises the mistake only if each of them is wrong; an output the
    mistake leaves right on a case (``dprev_c`` when only the order of the
    gates is wrong, ``dh0`` when ``Wh = 0``, everything but ``dh0`` when
    ``T = 1``) must be left out. ``compute(i, **options)`` is a hand-written
    model of the function with switches for its mistakes.
    """

    def outputs(i):
        right = compute(i)
        wrong = compute(i, **mistake)
        return {k: v for k, v in wrong.items() if not np.allclose(v, right[k], **tolerance(np.float64))}

    return outputs


def nonzero_bias(rng, size, dtype=np.float64):
    """A bias whose entries are all at least 0.3 away from zero, so a dropped bias shows."""
    return (rng.choice([-1.0, 1.0], size) * (0.3 + 0.7 * rng.random(size))).astype(dtype)


def random_dims(rng, **ranges):
    """Draw each dimension from its inclusive ``(low, high)`` range: ``random_dims(rng, N=(1, 4))``."""
    return {k: int(rng.integers(lo, hi + 1)) for k, (lo, hi) in ranges.items()}


def describe(dims, dtype):
    """``"N=3, T=5, D=2, H=4, float32"``, the description of a hidden case."""
    return ", ".join(f"{k}={v}" for k, v in dims.items()) + f", {np.dtype(dtype).name}"


FLOATS = (np.float64, np.float64, np.float64, np.float32)
"""The dtypes of most checks' hidden cases: three float64, one float32."""


def random_cases(rng, make, dtypes=FLOATS, **ranges):
    """Hidden cases: one per dtype, with dimensions drawn from ``ranges``.

    For each dtype, draws the dimensions (:func:`random_dims`), then the
    inputs ``make(rng, dtype=dtype, **dims)``, and returns the list of
    ``(description, inputs)`` pairs that a check's ``hidden`` gives.
    """
    cases = []
    for dtype in dtypes:
        dims = random_dims(rng, **ranges)
        cases.append((describe(dims, dtype), make(rng, dtype=dtype, **dims)))
    return cases
