"""How a check calls the learner's functions: the only part of a check that runs next to the learner's code.

A graded check has two sides:

- **this package**, the side that runs where the learner's code runs (their
  kernel, or the grader's sandbox): for each check, a :class:`Call` says
  which of the case's arrays to pass to the learner's function and what to
  read back. It holds no right answer, no case, no known mistake and no
  judge, and imports nothing of the course but itself;
- **the trusted side** (:mod:`rnncourse.checks`, its modules per assignment
  and ``_core``): the cases, the references, the known mistakes and the
  judge. The grader's sandbox does not hold it (see
  :mod:`rnncourse.grader.strip`).

Between the two sides travel only plain arrays: a case (dict ``str ->
ndarray``) goes to :func:`~rnncourse.checks.run_case`, which calls the
learner's functions and returns their outputs as another such dict;
:func:`~rnncourse.checks.save_arrays` and :func:`~rnncourse.checks.load_arrays`
carry both across a process boundary as NPZ, never unpickling anything.

A function that consumes another's output (a backward consuming a forward's
cache) gets that output from the case, as arrays the trusted side computed
with the reference: each function is judged on its own. A function that
*calls* another graded function (``rnn_forward`` looping ``rnn_step_forward``)
declares it in ``Call.depends``; then every case also carries the visible
cases of that dependency (keys ``"<dependency>:<j>:<input>"``),
:func:`~rnncourse.checks.run_case` runs the learner's dependency on them as
well, and when the function fails, the judge says whether to fix the
dependency first.

Each assignment has one module here (``rnn``, ``lstm``, ...) declaring its
``ASSIGNMENT``, ``CALLS``, ``WRITTEN`` (the questions graded by hand) and
``NEEDS`` (what its notebook may import, and so what the grader's sandbox
holds).
"""

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = [
    "Call",
    "recurrent_calls",
    "Written",
    "Needs",
    "AssignmentPoints",
    "OutputError",
    "LearnerError",
    "call",
    "call_and_unpack",
    "unpack",
    "as_output",
    "run_case",
    "run",
    "bind",
    "get_call",
    "calls_of",
    "written_of",
    "needs_of",
    "assignments",
    "assignment_points",
    "save_arrays",
    "load_arrays",
    "inputs_of",
    "format_shape",
    "shape_message",
    "probe_cases",
    "probe_outputs",
    "ERROR_KEY",
    "EXCEPTION_KEY",
    "MISSING_KEY",
    "RAISED_IN_KEY",
    "PROBE_SEP",
]

# Keys of a case (and of outputs) that carry metadata rather than data.
META_PREFIX = "_"
ERROR_KEY = "_error"  # outputs: what went wrong, as text
EXCEPTION_KEY = "_exception"  # outputs: the name of the exception the learner's code raised
RAISED_IN_KEY = "_raised_in"  # outputs: the function in whose body that exception was raised
MISSING_KEY = "_missing"  # outputs of a dependency: the learner has not defined it
PROBE_SEP = ":"  # "rnn_step_forward:0:x": input x of the first visible case of the dependency rnn_step_forward


# --- declarations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """How one check calls the learner's function, and what it reads back.

    Attributes
    ----------
    name : the check's name, also the name of the function the learner writes.
    assignment : e.g. ``"02_rnn"``.
    points : points of the notebook test cell that runs this check.
    outputs : output name -> its axes (``"N T H"``; ``""`` for a scalar): the
        values judged, in the order they are compared and reported.
    args : the case's inputs, in the order the function takes them. A tuple
        of names is passed as one tuple of arrays (a cache in its stated
        layout); a 0-d array is passed as a Python number.
    returns : the names of what the function returns, in order
        (``("next_h", "cache")``); those in ``outputs`` are kept.
    optional : names in ``args`` passed only when the case holds them
        (``lengths``, ``mask``); they come last.
    depends : the graded functions this one calls (declared dependencies),
        e.g. ``rnn_forward`` calls ``rnn_step_forward``.
    run : ``run(fns, inputs, out)``, for a call that ``args`` and
        ``returns`` cannot say (a callback, a dict, PyTorch modules): calls
        the learner's functions (``fns``, name -> callable) through
        ``call`` and puts what they gave into ``out``.
    """

    name: str
    assignment: str
    points: int
    outputs: dict
    args: tuple = ()
    returns: tuple = ()
    optional: tuple = ()
    depends: tuple = ()
    run: Callable = None

    @property
    def functions(self):
        """The learner's functions ``check(name, *functions)`` takes: this one, then its dependencies."""
        return (self.name, *self.depends)


def recurrent_calls(assignment, prefix, *, params, gates, step_cache, sequence_cache, cell=False):
    """The four calls of a recurrent model's assignment: ``<prefix>_step_forward``, ``_forward``,
    ``_step_backward``, ``_backward`` (3, 3, 4 and 6 points).

    One convention for the RNN, the LSTM (``cell``: a cell state ``c`` beside
    ``h``) and the GRU: a step takes ``x, prev_h[, prev_c], *params`` and
    returns ``next_h[, next_c], cache``; a sequence takes ``x, h0, *params``
    and returns ``h, cache`` (the LSTM's cell starts at zero); a step
    backward takes ``dnext_h[, dnext_c]`` and the step's cache (in the layout
    ``step_cache``) and returns the gradients of the step's inputs in their
    order (``dx, dprev_h[, dprev_c], dWx, dWh, d<bias>...``); a sequence
    backward takes ``dh`` and the sequence's cache and returns
    ``dx, dh0, dWx, dWh, d<bias>...``. ``gates``: the blocks stacked in the
    weights (``Wx`` is ``(D, gates * H)``). The sequence functions call
    their step functions (declared dependencies).
    """
    G = f"{gates}H" if gates > 1 else "H"
    states = ("h", "c") if cell else ("h",)
    weights = {"dWx": f"D {G}", "dWh": f"H {G}", **{f"d{p}": G for p in params[2:]}}
    step_grads = {"dx": "N D", **{f"dprev_{s}": "N H" for s in states}, **weights}
    sequence_grads = {"dx": "N T D", "dh0": "N H", **weights}
    name = f"{prefix}_step_forward", f"{prefix}_forward", f"{prefix}_step_backward", f"{prefix}_backward"
    return (
        Call(name[0], assignment, 3, outputs={f"next_{s}": "N H" for s in states},
             args=("x", *(f"prev_{s}" for s in states), *params), returns=(*(f"next_{s}" for s in states), "cache")),
        Call(name[1], assignment, 3, outputs={"h": "N T H"}, args=("x", "h0", *params), returns=("h", "cache"),
             depends=(name[0],)),
        Call(name[2], assignment, 4, outputs=step_grads, args=(*(f"dnext_{s}" for s in states), step_cache),
             returns=tuple(step_grads)),
        Call(name[3], assignment, 6, outputs=sequence_grads, args=("dh", sequence_cache), returns=tuple(sequence_grads),
             depends=(name[2],)),
    )  # fmt: skip


@dataclass(frozen=True)
class Written:
    """A manually graded written question: its nbgrader ``grade_id`` and points."""

    grade_id: str
    assignment: str
    points: int
    summary: str


@dataclass(frozen=True)
class Needs:
    """What an assignment's notebook may import, which is all the grader's sandbox holds for it.

    ``course``: module of ``rnncourse`` -> the names the notebook's first
    cell imports from it (:mod:`rnncourse.checks` is always there).
    ``libraries``: the third-party modules it may import besides the
    Python standard library (``numpy``; ``torch`` where PyTorch is used).
    """

    course: dict = field(default_factory=dict)
    libraries: tuple = ("numpy", "matplotlib")

    def describe(self):
        """``"the Python standard library, numpy, matplotlib, and from rnncourse: ..."``, for messages."""
        course = ["rnncourse.checks (check, assignment_points)"]
        course += [f"{module} ({', '.join(names)})" for module, names in self.course.items()]
        return f"the Python standard library, {', '.join(self.libraries)}, and from rnncourse only {'; '.join(course)}"


class OutputError(Exception):
    """What a learner's function returned cannot be read (wrong count, not numbers)."""


class LearnerError(Exception):
    """A learner's function raised; carries which function and the original exception."""

    def __init__(self, function, exc):
        super().__init__(function, exc)
        self.function, self.exc = function, exc


# --- registry -----------------------------------------------------------------------------

_CALLS = {}
_ASSIGNMENTS = {}  # assignment -> its module here


def register(module):
    """Add an assignment's module (``ASSIGNMENT``, ``CALLS``, ``WRITTEN``, ``NEEDS``) to the registry."""
    assignment = module.ASSIGNMENT
    if assignment in _ASSIGNMENTS:
        raise ValueError(f"assignment {assignment!r} is registered twice")
    for c in module.CALLS:
        if c.assignment != assignment:
            raise ValueError(f"call {c.name!r} says assignment {c.assignment!r}; expected {assignment!r}")
        if c.name in _CALLS:
            raise ValueError(f"call {c.name!r} is declared twice")
        _CALLS[c.name] = c
    _ASSIGNMENTS[assignment] = module


def get_call(name):
    """The :class:`Call` of the check called ``name``."""
    try:
        return _CALLS[name]
    except KeyError:
        raise KeyError(f"no check called {name!r}; the checks are {sorted(_CALLS)}") from None


def assignments():
    """The registered assignments, in course order."""
    return tuple(_ASSIGNMENTS)


def _declarations(assignment):
    try:
        return _ASSIGNMENTS[assignment]
    except KeyError:
        raise KeyError(f"no assignment called {assignment!r}; the assignments are {list(_ASSIGNMENTS)}") from None


def calls_of(assignment):
    """The calls of ``assignment``, in the order of its notebook."""
    return tuple(_declarations(assignment).CALLS)


def written_of(assignment):
    """The written questions of ``assignment``."""
    return tuple(_declarations(assignment).WRITTEN)


def needs_of(assignment):
    """The :class:`Needs` of ``assignment``: what its notebook may import."""
    return _declarations(assignment).NEEDS


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
        {c.name: c.points for c in calls_of(assignment)},
        {w.grade_id: w.points for w in written_of(assignment)},
    )


# --- plain data ---------------------------------------------------------------------------


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


def roundtrip(arrays):
    """The arrays after a trip through NPZ: what the other side of a process boundary would see."""
    buf = io.BytesIO()
    save_arrays(buf, arrays)
    buf.seek(0)
    return load_arrays(buf)


def text(s):
    """A string as a 0-d array, to travel in a case or in outputs."""
    return np.array(str(s))


def read_text(arrays, key, default=""):
    """The string stored under ``key`` by ``text``, or ``default``."""
    v = arrays.get(key)
    if isinstance(v, np.ndarray) and v.dtype.kind == "U" and v.ndim == 0:
        return str(v)
    return default


def inputs_of(case):
    """The inputs of a case, as fresh copies (a learner's function may write into its arguments).

    Metadata (``_label``...) and the dependencies' cases (``"dep:j:x"``) are left out.
    """
    return {k: np.array(v, copy=True) for k, v in case.items() if not k.startswith(META_PREFIX) and PROBE_SEP not in k}


def probe_cases(case, dependency):
    """The cases of ``dependency`` that ``case`` carries, in order (dicts like a case of its own)."""
    found = {}
    head = f"{dependency}{PROBE_SEP}"
    for key, value in case.items():
        if key.startswith(head):
            j, _, name = key[len(head) :].partition(PROBE_SEP)
            if j.isdigit() and name:
                found.setdefault(int(j), {})[name] = value
    return [found[j] for j in sorted(found)]


def probe_outputs(outputs, dependency, j):
    """What the learner's ``dependency`` gave on its ``j``-th probe case, from a check's outputs."""
    head = f"{dependency}{PROBE_SEP}{j}{PROBE_SEP}"
    return {k[len(head) :]: v for k, v in outputs.items() if k.startswith(head)}


# --- messages ------------------------------------------------------------------------------


def format_shape(shape):
    """``(2, 3)``, ``(4,)``: a shape as Python prints a tuple."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def shape_message(name, got, expected, symbols):
    """``"dWx has shape (5, 4); expected (D, H) = (4, 5): the transpose?"``."""
    axes = symbols.split()
    if not axes:
        want = "a scalar" if not expected else format_shape(expected)
    else:
        want = f"{format_shape(axes)} = {format_shape(expected)}"
    msg = f"{name} has shape {format_shape(got)}; expected {want}"
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


# --- calling the learner's functions -------------------------------------------------------


def call(fns, name, *args, **kwargs):
    """Call the learner's function ``name``; an exception it raises is reported as its own."""
    __tracebackhide__ = True  # noqa: F841 - the learner's traceback should show their code, not this
    try:
        return fns[name](*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - whatever the learner's code raises is reported
        raise LearnerError(name, exc) from exc


def call_and_unpack(fns, name, returns, *args):
    """Call the learner's function ``name`` on ``args``; what it returns as a tuple of ``len(returns)`` items.

    :func:`call`, then :func:`unpack` with the function's name in its messages.
    """
    __tracebackhide__ = True  # noqa: F841 - as in call
    return unpack(call(fns, name, *args), returns, name)


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


def argument(inputs, name):
    """The argument ``name`` of a call: an array, a Python number for a 0-d array, a tuple for a tuple of names."""
    if isinstance(name, tuple):
        return tuple(argument(inputs, n) for n in name)
    value = inputs[name]
    return value.item() if value.ndim == 0 else value


def _plain_run(spec, fns, inputs, out):
    args = [argument(inputs, a) for a in spec.args if a not in spec.optional or a in inputs]
    values = call_and_unpack(fns, spec.name, spec.returns, *args)
    out.update((name, value) for name, value in zip(spec.returns, values) if name in spec.outputs)


def bind(spec, functions):
    """The learner's functions as a dict name -> callable, from a mapping or from positional callables.

    From a mapping (a notebook's namespace), the function itself is
    required; a dependency that is not defined is left out (the function may
    not need it). Positional callables must be ``spec.functions``, in order.
    """
    if len(functions) == 1 and isinstance(functions[0], Mapping):
        namespace = functions[0]
        if not callable(namespace.get(spec.name)):
            raise TypeError(f"check {spec.name!r} needs the function {spec.name}; define it first")
        return {f: namespace[f] for f in spec.functions if callable(namespace.get(f))}
    usage = f"check({spec.name!r}, {', '.join(spec.functions)})"
    if len(functions) != len(spec.functions) or not all(callable(f) for f in functions):
        raise TypeError(f"check {spec.name!r} takes the functions {', '.join(spec.functions)}, in that order: {usage}")
    given = [getattr(f, "__name__", "") for f in functions]
    if sorted(given) == sorted(spec.functions) and given != list(spec.functions):
        raise TypeError(f"the functions are in the wrong order; call {usage}")
    return dict(zip(spec.functions, functions))


def shorten(text, limit=300):
    """``text`` on one line, at most ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run(spec, case, fns):
    """Run the learner's functions on one case: ``(outputs, exception or None)``.

    ``outputs`` is a dict of plain arrays: what the function returned (kept
    even when a later step raised), or ``_error`` (and ``_exception``) when
    it raised or returned something unreadable; then, for each declared
    dependency, what the learner's dependency gave on the dependency's cases
    that ``case`` carries.
    """
    outputs, exc = _run_one(spec, inputs_of(case), fns)
    for dependency in spec.depends:
        probes = probe_cases(case, dependency)
        if probes and dependency not in fns:
            outputs[f"{dependency}{PROBE_SEP}{MISSING_KEY}"] = np.array(True)
            continue
        dep_spec = get_call(dependency)
        for j, probe in enumerate(probes):
            probe_out, _ = _run_one(dep_spec, inputs_of(probe), fns)
            outputs.update({f"{dependency}{PROBE_SEP}{j}{PROBE_SEP}{k}": v for k, v in probe_out.items()})
    return roundtrip(outputs), exc


def _run_one(spec, inputs, fns):
    out = {}
    try:
        (spec.run or (lambda f, i, o: _plain_run(spec, f, i, o)))(fns, inputs, out)
        return {k: as_output(v, k) for k, v in out.items()}, None
    except LearnerError as err:
        exc = err.exc
        message = f"{err.function} raised {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
        error = {
            ERROR_KEY: text(shorten(message)),
            EXCEPTION_KEY: text(type(exc).__name__),
            RAISED_IN_KEY: text(_raised_in(exc, err.function, fns)),
        }
    except OutputError as err:
        error, exc = {ERROR_KEY: text(shorten(err))}, None
    except Exception as err:  # noqa: BLE001 - e.g. arrays of different shapes in a returned list
        message = f"what {spec.name} returned could not be read ({type(err).__name__}: {err})"
        error, exc = {ERROR_KEY: text(shorten(message))}, None
    # Keep what came before the failure.
    kept = {}
    for k, v in out.items():
        try:
            kept[k] = as_output(v, k)
        except Exception:  # noqa: BLE001 - unreadable: leave it out
            pass
    return {**kept, **error}, exc


def _raised_in(exc, function, fns):
    """Where ``exc`` was raised: ``function`` when in its own body, else the name of the function that raised it."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or tb.tb_frame.f_code is getattr(fns.get(function), "__code__", None):
        return function
    return tb.tb_frame.f_code.co_name


def run_case(name, case, functions):
    """The learner's outputs on one case, as plain arrays: what runs in the grader's sandbox.

    ``functions`` is a mapping holding the learner's functions by name (the
    notebook's namespace, say). Returns a dict of plain arrays, ready for
    :func:`save_arrays`; an exception in the learner's code or an unreadable
    return value is reported under the key ``_error`` (a string), never raised.
    """
    spec = get_call(name)
    return run(spec, case, bind(spec, (functions,)))[0]


def check_while_grading(name, *functions, hidden=False, seed=None):
    """What ``check`` does inside the grader's sandbox: nothing (the grader runs every check itself)."""
    print(f"{name}: not checked here; the grader runs the checks of this notebook itself.")


# The assignments' modules use the classes above.
from . import applications, attention, bptt, gru, lstm, rnn, scan, sequence_modeling, ssm  # noqa: E402

for _assignment in (sequence_modeling, rnn, bptt, lstm, gru, attention, applications, scan, ssm):  # in course order
    register(_assignment)
del _assignment
