"""Shared by the exercise tests: paths, the generation script, right answers, and the two modes of a check."""

import importlib.util
import io
import json
from pathlib import Path

import numpy as np

from rnncourse.checks import CheckFailure, check, get_check, judge, load_arrays, make_cases, run_case, save_arrays

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"


def load_script():
    """scripts/generate_exercises.py as a module."""
    spec = importlib.util.spec_from_file_location("generate_exercises", ROOT / "scripts" / "generate_exercises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook(folder, assignment):
    return Path(folder) / assignment / f"{assignment}.ipynb"


def read_notebook(path):
    return json.loads(Path(path).read_text())


def source(cell):
    return "".join(cell["source"])


def nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


# --- right answers --------------------------------------------------------------------


def right_answers():
    """A namespace holding every graded function as the solution notebooks write it.

    Each notebook's import cell and the cells defining its graded functions
    run, in order, in a namespace of the notebook's own: the right answers in
    the cache layouts the notebooks state.
    """
    import contextlib

    from rnncourse.checks import assignments, checks_of

    found = {}
    for assignment in assignments():
        names = {n for c in checks_of(assignment) for n in c.functions}
        namespace = {}
        for cell in read_notebook(notebook(SOLUTIONS, assignment))["cells"]:
            grade_id = nbgrader(cell).get("grade_id")
            if cell["cell_type"] == "code" and (grade_id == "imports" or grade_id in names):
                with contextlib.redirect_stdout(io.StringIO()):  # the import cell prints the points
                    exec(compile(source(cell), f"{assignment}/{grade_id}", "exec"), namespace)
        missing = {n for n in names if not callable(namespace.get(n))}
        assert not missing, f"{assignment}: no right answer for {missing}"
        found.update({n: namespace[n] for n in names})
    return found


def calling(fn, **functions):
    """``fn`` whose global names ``functions`` are bound as given: a learner's function and the graded
    functions it calls by name, as in a notebook."""
    import types

    bound = types.FunctionType(fn.__code__, {**fn.__globals__, **functions}, fn.__name__, fn.__defaults__, fn.__closure__)
    bound.__kwdefaults__ = fn.__kwdefaults__
    bound.unbound = fn  # what the learner wrote: the functions it calls are the notebook's
    return bound


def mistake_id(mistake):
    """The test id of a ``(name, functions, says)`` mistake: the function checked, then the name of the
    learner's wrong version of it (for a :func:`calling` one, of what the learner wrote)."""
    name, functions, _ = mistake
    return f"{name}-{getattr(functions[name], 'unbound', functions[name]).__name__}"


# --- a learner's function as a notebook cell ----------------------------------------------


def _public_home(value, name):
    """The shortest module path that gives ``name`` as ``value`` (rnncourse.numpy rather than rnncourse.numpy.charlm)."""
    import importlib

    parts = value.__module__.split(".")
    for k in range(1, len(parts) + 1):
        candidate = ".".join(parts[:k])
        if getattr(importlib.import_module(candidate), name, None) is value:
            return candidate
    return value.__module__


def learner_cell(name, fn, graded=()):
    """The source of a notebook cell defining ``name`` as the test's learner function ``fn``.

    The module-level helpers ``fn`` uses (functions of the same test module,
    constants, imported modules) come first, in an order that defines each
    before its use; the names in ``graded`` (the notebook's graded
    functions) are left to the notebook. Ends with ``name = fn`` when the
    names differ.
    """
    import inspect
    import types

    fn = getattr(fn, "unbound", fn)
    module = fn.__module__
    imports, parts, seen = [], [], set()

    def names_of(code):
        found = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found |= names_of(const)
        return found

    def visit(f):
        if f.__name__ in seen:
            return
        seen.add(f.__name__)
        needs = sorted(names_of(f.__code__))
        defaults = [*(f.__defaults__ or ()), *(f.__kwdefaults__ or {}).values()]
        needs += [d.__name__ for d in defaults if isinstance(d, types.FunctionType)]
        for n in needs:
            if n in graded or n in seen or n not in f.__globals__:
                continue
            value = f.__globals__[n]
            if isinstance(value, types.ModuleType):
                line = f"import {value.__name__}" + (f" as {n}" if n != value.__name__ else "")
                if line not in imports:
                    imports.append(line)
            elif isinstance(value, types.FunctionType) and value.__module__ == module:
                visit(value)
            elif callable(value) and getattr(value, "__module__", None):  # a function or class imported by name
                line = f"from {_public_home(value, n)} import {n}"
                if line not in imports:
                    imports.append(line)
            elif isinstance(value, (int, float, str, tuple, frozenset)):
                seen.add(n)
                parts.append(f"{n} = {value!r}")
        parts.append(inspect.getsource(f))

    visit(fn)
    alias = [] if fn.__name__ == name else [f"{name} = {fn.__name__}"]
    return "\n".join([*imports, "", *parts, *alias]) + "\n"


def _all_checks():
    from rnncourse.checks import assignments, checks_of

    return [c for a in assignments() for c in checks_of(a)]


def _to_float32(value):
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float32)
    if isinstance(value, float):
        return np.float32(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_float32(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_float32(v) for k, v in value.items()}
    return value


def in_float32(fn):
    """``fn`` computed in float32: float inputs and outputs (caches included) cast to float32."""

    def wrapped(*args):
        args = [a if callable(a) else _to_float32(a) for a in args]
        return _to_float32(fn(*args))

    wrapped.__name__ = fn.__name__
    wrapped.__wrapped__ = fn  # where the learner's function finds the functions it calls by name
    return wrapped


# --- the two modes of a check ---------------------------------------------------------


def in_process(name, functions, *, hidden=False, seed=None):
    """``(passed, message)`` from ``check`` in this process ("" when it passes)."""
    try:
        check(name, functions, hidden=hidden, seed=seed)
    except (CheckFailure, NotImplementedError) as err:
        return False, str(err)
    return True, ""


def out_of_process(name, functions, *, hidden=False, seed=None):
    """``(passed, message)`` the way a grader gets it: cases and outputs cross as NPZ bytes only."""
    for case in make_cases(name, seed, hidden=hidden):
        sandbox_case = _through_npz(case)  # what the sandbox receives
        outputs = run_case(name, sandbox_case, functions)  # the untrusted side
        passed, message = judge(name, case, _through_npz(outputs))  # the trusted side, with its own copy of the case
        if not passed:
            return False, message
    return True, ""


def _through_npz(arrays):
    buf = io.BytesIO()
    save_arrays(buf, arrays)
    buf.seek(0)
    return load_arrays(buf)


def check_names():
    return [c.name for c in _all_checks()]


def functions_of(name):
    return get_check(name).functions


def assert_mistake_fails_and_is_named(name, functions, says, *, hidden_must_fail=False):
    """A realistic wrong answer loses its points, with a short visible message containing ``says``.

    The grader's out-of-process mode must give the very same verdict and
    message; on the hidden cases both modes must agree too (random shapes may
    or may not show a mistake, unless ``hidden_must_fail``).
    """
    passed, message = in_process(name, functions)
    assert not passed, f"{name}: a wrong answer passed the visible cases"
    assert says in message, message
    assert len(message.splitlines()) <= 5, message
    assert out_of_process(name, functions) == (passed, message)
    hidden = in_process(name, functions, hidden=True)
    assert hidden == out_of_process(name, functions, hidden=True)
    if hidden_must_fail:
        assert not hidden[0], f"{name}: a wrong answer passed the hidden cases"

