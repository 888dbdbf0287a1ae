"""The engine behind every graded check: declarations, cases, the runner and the judge.

A check is declared once, as data and functions (:class:`Check`), and used
in two ways that share every step:

1. **In the learner's process**, from a notebook test cell:
   ``check("rnn_step_forward", rnn_step_forward)`` builds the cases, runs the
   learner's function on them and judges the outputs, raising
   :class:`CheckFailure` with a short message that names the mistake.
2. **Out of the learner's process**, for a grader: the trusted side builds
   ``cases = make_cases(name, seed)``, sends each case (plain arrays) to a
   sandbox that calls ``run_case(name, case, namespace)`` on the learner's
   code and sends back the outputs (plain arrays again), and the trusted
   side calls ``judge(name, case, outputs)``.

Only plain data crosses between the two sides: a case and the outputs are
dicts ``str -> numpy.ndarray`` of numbers or fixed-width strings, which
:func:`save_arrays` writes to NPZ and :func:`load_arrays` reads back with
``allow_pickle=False``. The judge never trusts the outputs: any key, shape or
dtype may come back, and it answers with a verdict rather than an exception.

Nothing here looks inside a learner's cache: a backward check calls the
learner's forward to get the cache and passes it, unopened, to the learner's
backward. Nor does anything depend on how a learner draws random numbers:
the learner's functions get every input, and the cases are drawn on our side
from a seed.
"""

import io
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from rnncourse.testing import assert_close, tolerance

__all__ = [
    "Case",
    "Mistake",
    "Check",
    "Written",
    "CheckFailure",
    "OutputError",
    "register",
    "get_check",
    "checks_of",
    "written_of",
    "assignments",
    "make_cases",
    "run_case",
    "judge",
    "check",
    "assignment_points",
    "AssignmentPoints",
    "save_arrays",
    "load_arrays",
]

# Keys of a case (and of outputs) that carry metadata rather than data.
_META_PREFIX = "_"
ERROR_KEY = "_error"
EXCEPTION_KEY = "_exception"


# --- declarations ---------------------------------------------------------------------


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
    """The declaration of one graded check.

    Attributes
    ----------
    name : the check's name, also the name of the function the learner writes.
    assignment : e.g. ``"02_rnn"``.
    points : points of the notebook test cell that runs this check.
    functions : names of the learner's functions the check calls, in the
        order ``check(name, *functions)`` takes them (a backward check takes
        the forward too).
    outputs : output name -> its axes (``"N T H"``; ``""`` for a scalar), in
        the order they are compared and reported.
    run : ``run(fns, inputs, out)``, the untrusted side: calls the learner's
        functions (``fns``, a dict name -> callable) on the inputs and puts
        what they gave into the dict ``out`` as soon as it has it (use
        :func:`call` and :func:`unpack`), so that a forward's output is
        kept even when the backward then raises. Never sees expected values.
    reference : ``reference(inputs) -> outputs``, the trusted side: the right
        outputs, from :mod:`rnncourse.numpy`; ``{RAISES: "ValueError"}`` for
        a case where the function must raise.
    visible : the visible cases, in the order they are tried: isolating
        cases first, the general one last.
    hidden : ``hidden(rng) -> [(description, inputs), ...]``, random shapes
        and non-zero biases.
    mistakes : known wrong answers, tried in order when an output is wrong.
    precheck : optional ``precheck(inputs, outputs, expected) -> message or
        None``, run before the comparison, for what is not an array
        comparison (how often a callback was called, the number of updates).
    forward : outputs that come from the learner's *forward* under a backward
        check; compared first, and when wrong the message says to fix the
        forward (whose cache the backward got) before the backward.
    output_hints : output name -> what to look at when that output alone is
        wrong; the key ``"*"`` when every output is wrong.
    seed, hidden_seed : default seeds of the visible and hidden cases.
    """

    name: str
    assignment: str
    points: int
    functions: tuple
    outputs: dict
    run: Callable
    reference: Callable
    visible: tuple
    hidden: Callable
    mistakes: tuple = ()
    precheck: Callable = None
    forward: tuple = ()
    output_hints: dict = field(default_factory=dict)
    seed: int = 0
    hidden_seed: int = 1


@dataclass(frozen=True)
class Written:
    """A manually graded written question: its nbgrader ``grade_id`` and points."""

    grade_id: str
    assignment: str
    points: int
    summary: str


RAISES = "_raises"  # key of a reference output: the function must raise this exception


class CheckFailure(AssertionError):
    """A learner's function gave a wrong answer; the message says which and why."""


class OutputError(Exception):
    """What a learner's function returned cannot be read (wrong count, not numbers)."""


# --- registry -------------------------------------------------------------------------

_CHECKS = {}
_WRITTEN = {}
_ASSIGNMENTS = []


def register(assignment, checks, written):
    """Add an assignment's checks and written questions to the registry."""
    if assignment in _ASSIGNMENTS:
        raise ValueError(f"assignment {assignment!r} is registered twice")
    for c in checks:
        if c.assignment != assignment:
            raise ValueError(f"check {c.name!r} says assignment {c.assignment!r}; expected {assignment!r}")
        if c.name in _CHECKS:
            raise ValueError(f"check {c.name!r} is declared twice")
        _CHECKS[c.name] = c
    _WRITTEN[assignment] = tuple(written)
    _ASSIGNMENTS.append(assignment)


def get_check(name):
    """The :class:`Check` called ``name``."""
    try:
        return _CHECKS[name]
    except KeyError:
        raise KeyError(f"no check called {name!r}; the checks are {sorted(_CHECKS)}") from None


def assignments():
    """The registered assignments, in course order."""
    return tuple(_ASSIGNMENTS)


def checks_of(assignment):
    """The checks of ``assignment``, in the order they were declared."""
    _known_assignment(assignment)
    return tuple(c for c in _CHECKS.values() if c.assignment == assignment)


def written_of(assignment):
    """The written questions of ``assignment``."""
    _known_assignment(assignment)
    return _WRITTEN[assignment]


def _known_assignment(assignment):
    if assignment not in _ASSIGNMENTS:
        raise KeyError(f"no assignment called {assignment!r}; the assignments are {list(_ASSIGNMENTS)}")


@dataclass(frozen=True)
class AssignmentPoints:
    """The points of one assignment: per check (auto-graded) and per written question (by hand)."""

    assignment: str
    auto: dict = field(default_factory=dict)
    manual: dict = field(default_factory=dict)

    @property
    def auto_total(self):
        return sum(self.auto.values())

    @property
    def manual_total(self):
        return sum(self.manual.values())

    @property
    def total(self):
        return self.auto_total + self.manual_total

    def __str__(self):
        width = max(len(k) for k in [*self.auto, *self.manual, "written answers (graded by hand)"])
        lines = [f"{self.assignment}: {self.total} points"]
        lines += [f"  {name:<{width}} {p:>3}" for name, p in self.auto.items()]
        lines += [f"  {name:<{width}} {p:>3}  (graded by hand)" for name, p in self.manual.items()]
        lines.append(f"  auto-graded {self.auto_total}, graded by hand {self.manual_total}")
        return "\n".join(lines)


def assignment_points(assignment):
    """The points table of ``assignment``, for the notebook's header and for the grader."""
    return AssignmentPoints(
        assignment,
        {c.name: c.points for c in checks_of(assignment)},
        {w.grade_id: w.points for w in written_of(assignment)},
    )


# --- plain data -----------------------------------------------------------------------


def save_arrays(file, arrays):
    """Write a dict of plain arrays (a case, or outputs) to NPZ; refuses object arrays."""
    for k, v in arrays.items():
        if not isinstance(v, np.ndarray) or v.dtype.hasobject:
            raise TypeError(f"{k} is not a plain array (got {type(v).__name__})")
    np.savez(file, **arrays)


def load_arrays(file):
    """Read a dict of arrays written by :func:`save_arrays`, never unpickling anything."""
    with np.load(file, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _roundtrip(arrays):
    """The arrays after a trip through NPZ: what the other side of a process boundary would see."""
    buf = io.BytesIO()
    save_arrays(buf, arrays)
    buf.seek(0)
    return load_arrays(buf)


def _text(s):
    return np.array(str(s))


def _read_text(case, key, default=""):
    v = case.get(key)
    if isinstance(v, np.ndarray) and v.dtype.kind == "U" and v.ndim == 0:
        return str(v)
    return default


# --- cases ----------------------------------------------------------------------------


def make_cases(name, seed=None, *, hidden=False):
    """The cases of check ``name``: a list of dicts name -> ndarray, each NPZ-serialisable.

    Visible cases (the default) are the check's fixed isolating cases, with
    values drawn from ``seed`` (default: the check's ``seed``). Hidden cases
    (``hidden=True``) have random shapes and non-zero biases drawn from
    ``seed`` (default: the check's ``hidden_seed``; a grader passes its own,
    secret one). Keys starting with ``_`` are metadata (``_check``, ``_label``,
    ``_description``); the others are the inputs.
    """
    spec = get_check(name)
    if hidden:
        rng = np.random.default_rng(spec.hidden_seed if seed is None else seed)
        made = [(f"hidden_{i}", description, inputs) for i, (description, inputs) in enumerate(spec.hidden(rng))]
    else:
        rng = np.random.default_rng(spec.seed if seed is None else seed)
        made = [(c.label, c.description, c.build(rng)) for c in spec.visible]
    cases = []
    for label, description, inputs in made:
        case = {"_check": _text(name), "_label": _text(label), "_description": _text(description)}
        for k, v in inputs.items():
            if k.startswith(_META_PREFIX):
                raise ValueError(f"input {k!r} of check {name!r} starts with {_META_PREFIX!r}, kept for metadata")
            case[k] = np.asarray(v)
        cases.append(case)
    return cases


def _inputs(case):
    """The inputs of a case, as fresh copies (a learner's function may write into its arguments)."""
    return {k: np.array(v, copy=True) for k, v in case.items() if not k.startswith(_META_PREFIX)}


# --- the untrusted side: running the learner's functions ------------------------------


class _LearnerError(Exception):
    """A learner's function raised; carries which function and the original exception."""

    def __init__(self, function, exc):
        super().__init__(function, exc)
        self.function, self.exc = function, exc


def call(fns, name, *args, **kwargs):
    """Call the learner's function ``name``; an exception it raises is reported as its own."""
    __tracebackhide__ = True  # noqa: F841 - the learner's traceback should show their code, not this
    try:
        return fns[name](*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - whatever the learner's code raises is reported
        raise _LearnerError(name, exc) from exc


def unpack(value, names, function):
    """``value`` as a tuple of ``len(names)`` items, or :class:`OutputError` naming what was expected."""
    want = ", ".join(names)
    if len(names) == 1:
        return (value,)
    if not isinstance(value, (tuple, list)):
        raise OutputError(f"{function} returned one {type(value).__name__}; expected {len(names)} values: {want}")
    if len(value) != len(names):
        raise OutputError(f"{function} returned {len(value)} values; expected {len(names)}: {want}")
    return tuple(value)


def as_output(value, what):
    """``value`` as a plain ndarray of numbers, or :class:`OutputError`."""
    if value is None:
        raise OutputError(f"{what} is None; expected an array (did the function forget to return it?)")
    if hasattr(value, "detach"):  # a torch tensor: read it, do not import torch
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - ragged lists and the like
        raise OutputError(f"{what} is a {type(value).__name__} that is not an array of numbers") from None
    if arr.dtype.hasobject or arr.dtype.kind not in "biuf":
        raise OutputError(f"{what} is not an array of numbers (got a {type(value).__name__} of dtype {arr.dtype})")
    return np.array(arr, copy=True)


def _bind(spec, functions):
    """The learner's functions as a dict name -> callable, from a mapping or from positional callables."""
    if len(functions) == 1 and isinstance(functions[0], Mapping):
        namespace = functions[0]
        missing = [f for f in spec.functions if not callable(namespace.get(f))]
        if missing:
            raise TypeError(f"check {spec.name!r} needs the function(s) {', '.join(missing)}; define them first")
        return {f: namespace[f] for f in spec.functions}
    usage = f"check({spec.name!r}, {', '.join(spec.functions)})"
    if len(functions) != len(spec.functions) or not all(callable(f) for f in functions):
        raise TypeError(f"check {spec.name!r} takes the functions {', '.join(spec.functions)}, in that order: {usage}")
    given = [getattr(f, "__name__", "") for f in functions]
    if sorted(given) == sorted(spec.functions) and given != list(spec.functions):
        raise TypeError(f"the functions are in the wrong order; call {usage}")
    return dict(zip(spec.functions, functions))


def _run(spec, case, fns):
    """Run the learner's functions on one case: ``(outputs, exception or None)``."""
    out = {}
    try:
        spec.run(fns, _inputs(case), out)
        outputs = {k: as_output(v, k) for k, v in out.items()}
    except _LearnerError as err:
        exc = err.exc
        text = f"{err.function} raised {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
        error, exc = {ERROR_KEY: _text(_shorten(text)), EXCEPTION_KEY: _text(type(exc).__name__)}, exc
    except OutputError as err:
        error, exc = {ERROR_KEY: _text(_shorten(err))}, None
    except Exception as err:  # noqa: BLE001 - e.g. arrays of different shapes in a returned list
        text = f"what {spec.name} returned could not be read ({type(err).__name__}: {err})"
        error, exc = {ERROR_KEY: _text(_shorten(text))}, None
    else:
        return _roundtrip(outputs), None
    # Keep what came before the failure (a forward's output under a backward check).
    kept = {}
    for k, v in out.items():
        try:
            kept[k] = as_output(v, k)
        except Exception:  # noqa: BLE001 - unreadable: leave it out
            pass
    return _roundtrip({**kept, **error}), exc


def run_case(name, case, functions):
    """The untrusted side of the out-of-process mode: the learner's outputs on one case.

    ``functions`` is a mapping holding the learner's functions by name (the
    notebook's namespace, say). Returns a dict of plain arrays, ready for
    :func:`save_arrays`; an exception in the learner's code or an unreadable
    return value is reported under the key ``_error`` (a string), never raised.
    """
    spec = get_check(name)
    fns = _bind(spec, (functions,))
    return _run(spec, case, fns)[0]


def _shorten(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- the trusted side: judging --------------------------------------------------------


def _fmt_shape(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _shape_message(name, got, expected, symbols):
    """``"dWx has shape (5, 4); expected (D, H) = (4, 5), the transpose?"``."""
    axes = symbols.split()
    if not axes:
        want = "a scalar" if not expected else _fmt_shape(expected)
    else:
        want = f"{_fmt_shape(axes)} = {_fmt_shape(expected)}"
    msg = f"{name} has shape {_fmt_shape(got)}; expected {want}"
    if len(got) == len(expected) and sorted(got) == sorted(expected):
        if len(got) == 2:
            msg += ": the transpose?"
        elif len(got) >= 2 and axes[:2] == ["N", "T"] and tuple(got[:2]) == tuple(expected[1::-1]):
            msg += ": time-major? Arrays are batch-first, (N, T, ...)"
        else:
            msg += ": axes in the wrong order?"
    elif expected and len(got) == len(expected) + 1 and tuple(expected) == tuple(got[1:]):
        msg += ": should it be summed over the first axis?"
    return msg


def _compare_dtype(dtypes):
    """float32 if any of the dtypes is float32, else float64: the tolerance the policy allows."""
    return np.float32 if any(np.dtype(d) == np.float32 for d in dtypes) else np.float64


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
    label = _read_text(case, "_label")
    return next((c for c in spec.visible if c.label == label), None)


def judge(name, case, outputs):
    """Judge the learner's outputs on one case: ``(passed, message)``.

    Runs on the trusted side: ``case`` is the case as :func:`make_cases` made
    it, ``outputs`` whatever came back (not trusted: any key, shape or dtype).
    The expected outputs are recomputed here from the case's inputs with the
    reference. ``message`` is empty when the case passes, and otherwise a few
    lines that say which output is wrong on which kind of input and, when the
    outputs match a known mistake, which mistake.
    """
    spec = get_check(name)
    try:
        return _judge(spec, case, outputs)
    except Exception as err:  # noqa: BLE001 - a malformed output must give a verdict, not a crash
        return False, f"{spec.name}: the outputs could not be judged ({type(err).__name__}: {_shorten(err, 120)})"


def _judge(spec, case, outputs):
    inputs = _inputs(case)
    visible = _case_of(spec, case)
    description = _read_text(case, "_description")
    hint = visible.hint if visible else ""
    where = f"{spec.name}, case '{description}'" if description else spec.name

    def fail(*lines):
        return False, "\n".join([f"{where}:", *("  " + line for line in lines if line)])

    # The truth is computed in float64 whatever the inputs' dtype; the
    # tolerance below is float32's when the inputs or the answer are float32.
    exact = _float64(inputs)
    expected = spec.reference(exact)
    error = _read_text(outputs, ERROR_KEY, None) if ERROR_KEY in outputs else None

    if RAISES in expected:
        want = str(expected[RAISES])
        raised = _read_text(outputs, EXCEPTION_KEY, None)
        if raised == want:
            return True, ""
        if error is not None:
            return fail(f"expected {want}, but {error}", hint)
        return fail(f"expected the function to raise {want}; it returned normally", hint)

    input_dtypes = [v.dtype for v in inputs.values() if v.dtype.kind == "f"]

    def wrong_forward():
        """The message when the learner's forward (under a backward check) gave a wrong output, else None."""
        for out in spec.forward:
            if out in outputs:
                problem, detail, _ = _compare(out, outputs[out], np.asarray(expected[out]), spec.outputs[out], input_dtypes)
                if problem:
                    forward = spec.functions[0]
                    return fail(
                        f"{forward} gives a wrong {out} here, so its cache may be wrong too.",
                        f"Make {forward} pass its own check first. ({detail if problem != 'value' else f'{out}: {detail}'})",
                    )
        return None

    if error is not None:
        # The case's hint helps with an exception in the learner's code (a
        # product of mismatched shapes), not with a return value of the wrong form.
        return wrong_forward() or fail(error, hint if EXCEPTION_KEY in outputs else "")
    verdict = wrong_forward()
    if verdict:
        return verdict

    if spec.precheck is not None:
        message = spec.precheck(inputs, outputs, expected)
        if message:
            return fail(message)

    wrong = []  # (name, detail, dtype) of outputs with the right shape and dtype but wrong values
    for out, symbols in spec.outputs.items():
        if out not in expected or out in spec.forward:
            continue
        problem, detail, dtype = _compare(out, outputs.get(out), np.asarray(expected[out]), symbols, input_dtypes)
        if problem == "shape":
            return fail(detail, visible.shape_hint if visible else "")
        if problem:
            if problem == "value":
                wrong.append((out, detail, dtype))
            else:
                return fail(detail)
    if not wrong:
        return True, ""

    names = [w[0] for w in wrong]
    compared = [o for o in spec.outputs if o in expected and o not in spec.forward]
    right = [o for o in compared if o not in names]
    summary = f"{_join(names)} {'is' if len(names) == 1 else 'are'} wrong"
    if right:
        summary += f" ({_join(right)} {'is' if len(right) == 1 else 'are'} right)"
    advice = _recognise(spec, exact, outputs, expected, wrong)
    if advice is None:
        if not right and len(compared) > 1 and "*" in spec.output_hints:
            advice = spec.output_hints["*"]
        else:
            advice = " ".join(spec.output_hints[n] for n in names if n in spec.output_hints) or hint
    return fail(summary, advice, f"{wrong[0][0]}: {wrong[0][1]}")


def _float64(inputs):
    return {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in inputs.items()}


def _compare(name, got, want, symbols, input_dtypes):
    """``(problem, detail, dtype)``: problem is None, "missing", "dtype", "shape" or "value"."""
    if got is None:
        return "missing", f"no output {name}", None
    if not isinstance(got, np.ndarray) or got.dtype.kind not in "biuf":
        return "dtype", f"{name} is not an array of numbers", None
    if want.dtype.kind == "f":
        if got.dtype.kind != "f":
            return "dtype", f"{name} has dtype {got.dtype}; expected a floating-point array (float32 or float64)", None
        if got.dtype not in (np.float32, np.float64):
            return "dtype", f"{name} has dtype {got.dtype}; expected float32 or float64", None
    if got.shape != want.shape:
        return "shape", _shape_message(name, got.shape, want.shape, symbols), None
    dtype = _compare_dtype([got.dtype, *input_dtypes]) if want.dtype.kind == "f" else np.float64
    ok, detail = _close(got, want, dtype)
    return (None if ok else "value"), detail, dtype


def _recognise(spec, inputs, outputs, expected, wrong):
    """The message of the first known mistake whose outputs the learner's match, or None."""
    dtypes = {name: dtype for name, _, dtype in wrong}
    for mistake in spec.mistakes:
        if mistake.applies is not None and not mistake.applies(inputs):
            continue
        buggy = mistake.outputs(inputs)
        # The mistake must explain a wrong output, and every output it changes
        # must look like it; an output it leaves right must not be wrong.
        if not any(name in dtypes for name in buggy):
            continue
        if any(name not in buggy for name in dtypes):
            continue  # a wrong output this mistake does not change: something else is wrong
        matches = True
        for name, value in buggy.items():
            got = outputs.get(name)
            value = np.asarray(value)
            if got is None or got.shape != value.shape:
                matches = False
                break
            dtype = dtypes.get(name, np.float64)
            if not _close(got, value, dtype)[0] or _close(value, np.asarray(expected[name]), dtype)[0]:
                matches = False
                break
        if matches:
            return mistake.message
    return None


def _join(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# --- the in-process mode --------------------------------------------------------------


def check(name, *functions, hidden=False, seed=None):
    """Run check ``name`` on the learner's functions, in this process.

    ``check("rnn_step_forward", rnn_step_forward)``; a backward check takes
    the forward too: ``check("rnn_step_backward", rnn_step_forward,
    rnn_step_backward)`` (or pass a namespace such as ``globals()``).
    Runs the visible cases (``hidden=True``: the hidden ones) through the same
    :func:`run_case` and :func:`judge` a grader uses, and stops at the first
    failing case with :class:`CheckFailure`, whose message names the mistake.
    A ``NotImplementedError`` from the learner's code is raised as it is. On
    success, prints one line.
    """
    __tracebackhide__ = True  # noqa: F841 - IPython and pytest hide this frame in tracebacks
    spec = get_check(name)
    fns = _bind(spec, functions)
    cases = make_cases(name, seed, hidden=hidden)
    for case in cases:
        outputs, exc = _run(spec, case, fns)
        passed, message = judge(name, case, outputs)
        if not passed:
            if isinstance(exc, NotImplementedError):
                raise exc
            raise CheckFailure(message) from exc
    kind = "hidden" if hidden else "visible"
    n = len(cases)
    print(f"{name}: {'the' if n == 1 else 'all'} {n} {kind} case{'s pass' if n != 1 else ' passes'}.")


# --- helpers for declaring checks -----------------------------------------------------


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


# An input of a hidden case that asks for the truth from torch.nn rather than rnncourse.numpy.
TORCH_TRUTH = "truth_from_torch"


def torch_truth(i):
    """Whether case ``i`` takes its truth from torch.nn: a hidden case, with PyTorch installed.

    PyTorch is imported only here and only for such cases, on the trusted
    side, so that ``import rnncourse.checks`` stays light.
    """
    if not bool(i.get(TORCH_TRUTH, False)):
        return False
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_twin(kind, i, *, step):
    """``torch.nn``'s LSTM or GRU (``kind``), its cell when ``step``, in float64, holding case ``i``'s weights.

    Returns ``(module, (W_ih, W_hh, b_ih, b_hh))``, the module's parameters.
    Ours are the transposes of torch's weights; the LSTM of the exercises has
    one bias ``b`` (torch's ``bias_hh`` is then zero), the GRU two, ``bx`` and
    ``bh``. Creating the module does not touch the learner's torch random state.
    """
    import torch

    D, H = i["Wx"].shape[0], i["Wh"].shape[0]
    cell, layer = {"LSTM": (torch.nn.LSTMCell, torch.nn.LSTM), "GRU": (torch.nn.GRUCell, torch.nn.GRU)}[kind]
    with torch.random.fork_rng(devices=[]):
        module = (cell(D, H) if step else layer(D, H, batch_first=True)).double()
    suffix = "" if step else "_l0"
    params = tuple(getattr(module, name + suffix) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    W_ih, W_hh, b_ih, b_hh = params
    with torch.no_grad():
        W_ih.copy_(torch.tensor(i["Wx"].T))
        W_hh.copy_(torch.tensor(i["Wh"].T))
        if kind == "LSTM":
            b_ih.copy_(torch.tensor(i["b"]))
            b_hh.zero_()
        else:
            b_ih.copy_(torch.tensor(i["bx"]))
            b_hh.copy_(torch.tensor(i["bh"]))
    return module, params


def nonzero_bias(rng, size, dtype=np.float64):
    """A bias whose entries are all at least 0.3 away from zero, so a dropped bias shows."""
    return (rng.choice([-1.0, 1.0], size) * (0.3 + 0.7 * rng.random(size))).astype(dtype)


def random_dims(rng, **ranges):
    """Draw each dimension from its inclusive ``(low, high)`` range: ``random_dims(rng, N=(1, 4))``."""
    return {k: int(rng.integers(lo, hi + 1)) for k, (lo, hi) in ranges.items()}


def describe(dims, dtype):
    """``"N=3, T=5, D=2, H=4, float32"``, the description of a hidden case."""
    return ", ".join(f"{k}={v}" for k, v in dims.items()) + f", {np.dtype(dtype).name}"


def random_cases(rng, make, dtypes, **ranges):
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


