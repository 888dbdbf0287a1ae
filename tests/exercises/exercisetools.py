"""Shared by the exercise tests: paths, the generation script, right answers, and the two modes of a check."""

import importlib.util
import io
import json
from pathlib import Path

import numpy as np

import rnncourse.numpy as reference
from rnncourse.checks import CheckFailure, applications, attention, check, get_check, judge, load_arrays, make_cases, run_case, save_arrays

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


def one_hot(idx, V):
    out = np.zeros(idx.shape + (V,))
    np.put_along_axis(out, idx[..., None], 1.0, axis=-1)
    return out


def perplexity(probs, y):
    p = np.take_along_axis(probs, y[..., None], axis=-1)
    return float(np.exp(-np.log(p).mean()))


def right_answers():
    """A namespace holding a right twin of every graded function: ours, or rnncourse.numpy's."""
    names = {n for c in _all_checks() for n in c.functions}
    found = {n: getattr(reference, n) for n in names if hasattr(reference, n)}
    found.update(one_hot=one_hot, perplexity=perplexity)
    found.update({n: f for n, f in applications.REFERENCES.items() if n in names})  # 07's have no twin in rnncourse.numpy
    found.update({n: f for n, f in attention.REFERENCES.items() if n in names})  # 06's PyTorch step has no twin either
    assert set(found) == names, f"no right answer for {names - set(found)}"
    return found


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
    return wrapped


class Opaque:
    """A cache no check can look into: the value is behind a name no one else knows."""

    def __init__(self, value):
        self._hidden_value = value


# --- the two modes of a check ---------------------------------------------------------


def in_process(name, functions, *, hidden=False, seed=None):
    """``(passed, message)`` from ``check`` in this process ("" when it passes)."""
    try:
        check(name, functions, hidden=hidden, seed=seed)
    except CheckFailure as err:
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

