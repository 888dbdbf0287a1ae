"""rnncourse.checks: the registry, the cases, the judge, and the two modes agreeing.

Each graded check must pass a right answer (float64 and float32, any cache),
give plain NPZ-serialisable cases with random shapes and non-zero biases in
the hidden set, judge any malformed output without crashing, and give the
same verdict in the learner's process and across a process boundary.
"""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from exercisetools import (
    check_names,
    functions_of,
    in_float32,
    in_process,
    out_of_process,
    right_answers,
)
from rnncourse.checks._core import case_dtype
from rnncourse.checks.calls import argument, get_call, inputs_of
from rnncourse.testing import tolerance
from rnncourse.checks import (
    CheckFailure,
    assignment_points,
    assignments,
    check,
    checks_of,
    get_check,
    judge,
    load_arrays,
    make_cases,
    run_case,
    save_arrays,
    written_of,
)

CHECKS = check_names()
RIGHT = right_answers()


def test_registry_holds_the_first_three_assignments():
    assert assignments()[:3] == ("01_sequence_modeling", "02_rnn", "03_bptt")
    assert len(set(CHECKS)) == len(CHECKS)
    for a in assignments():
        assert checks_of(a) and all(c.points > 0 for c in checks_of(a))
        assert all(w.points > 0 for w in written_of(a))


def test_assignment_points_add_up():
    p = assignment_points("02_rnn")
    assert p.auto == {"rnn_step_forward": 3, "rnn_forward": 3, "rnn_step_backward": 4, "rnn_backward": 6}
    assert p.total == p.auto_total + p.manual_total == 20
    assert "02_rnn: 20 points" in str(p)
    with pytest.raises(KeyError, match="no assignment called"):
        assignment_points("99_nothing")


@pytest.mark.parametrize("name", CHECKS)
@pytest.mark.parametrize("hidden", [False, True], ids=["visible", "hidden"])
def test_a_right_answer_passes(name, hidden):
    assert in_process(name, RIGHT, hidden=hidden) == (True, "")
    if hidden:
        for seed in (11, 12, 13):  # a grader's secret seeds: other random shapes
            assert out_of_process(name, RIGHT, hidden=True, seed=seed) == (True, "")


PRECISION = "your answer is float32, the inputs are float64: compute in the inputs' dtype"


@pytest.mark.parametrize("name", CHECKS)
def test_a_float32_answer_is_judged_at_the_tolerance_of_its_case(name):
    """The tolerance belongs to the case: float32 inputs, float32's; float64 inputs, float64's.

    A right answer computed in float32 passes every float32 case; on a
    float64 case it passes only where float32 is exact, and otherwise fails
    with the message to compute in the inputs' dtype.
    """
    fns = {f: in_float32(RIGHT[f]) for f in functions_of(name)}
    told = 0
    for case in make_cases(name) + make_cases(name, hidden=True):
        passed, message = judge(name, case, run_case(name, case, fns))
        if case_dtype(inputs_of(case)) == np.float32:
            assert passed, message
        elif not passed:
            assert PRECISION in message.lower(), message
            told += 1
    # Only outputs that float32 holds exactly (one-hot rows, integers) or that are not compared pass, and
    # the PyTorch step, which in_float32 does not reach (its arguments are tensors and modules).
    exempt = ("one_hot", "pad_sequences", "train_char_lm", "attention_decoder_step")
    assert told or name in exempt, f"{name}: float32 passed every float64 case"


def test_a_float32_answer_to_a_float64_case_fails_with_the_precision_message():
    fns = {f: in_float32(RIGHT[f]) for f in functions_of("rnn_step_backward")}
    passed, message = in_process("rnn_step_backward", fns)
    assert not passed and PRECISION in message.lower(), message


# A backward check -> the forward whose cache it consumes.
BACKWARDS = {
    "embedding_backward": "embedding_forward",
    "rnn_step_backward": "rnn_step_forward",
    "rnn_backward": "rnn_forward",
    "lstm_step_backward": "lstm_step_forward",
    "lstm_backward": "lstm_forward",
    "gru_step_backward": "gru_step_forward",
    "gru_backward": "gru_forward",
    "masked_softmax_backward": "masked_softmax_forward",
    "attention_backward": "attention_forward",
}


def test_every_backward_check_is_listed():
    # linear_recurrence_backward takes the forward's states h, not a cache: test_mistakes_scan.py checks them.
    assert {n for n in CHECKS if n.endswith("_backward")} == set(BACKWARDS) | {"linear_recurrence_backward"}


@pytest.mark.parametrize("backward, forward", BACKWARDS.items())
def test_a_backward_gets_the_cache_a_right_forward_returns(backward, forward):
    """Independent credit: the case holds the reference's cache, in the layout the notebook's forward returns."""
    got = []

    def spy(*args):
        got.append(args[-1])
        return RIGHT[backward](*args)

    fns = {**{f: RIGHT[f] for f in functions_of(backward)}, backward: spy}
    forward_call = get_call(forward)
    for case in make_cases(backward) + make_cases(backward, hidden=True):
        got.clear()
        passed, message = judge(backward, case, run_case(backward, case, fns))
        assert passed, message
        inputs = inputs_of(case)
        args = [argument(inputs, a) for a in forward_call.args if a not in forward_call.optional or a in inputs]
        *_, cache = RIGHT[forward](*args)
        assert isinstance(got[0], tuple) and len(got[0]) == len(cache)
        tol = tolerance(case_dtype(inputs))
        for k, (given, right) in enumerate(zip(got[0], cache)):
            assert isinstance(given, np.ndarray) and given.shape == np.shape(right), k
            np.testing.assert_allclose(given, right, **tol, err_msg=f"field {k} of {backward}'s cache")


@pytest.mark.parametrize("backward", BACKWARDS)
def test_a_backward_keeps_its_points_whatever_the_forward_does(backward):
    """The backward's check never calls the learner's forward: a forward that raises changes nothing."""

    def broken(*args, **kwargs):
        raise AssertionError("the forward must not be called by a backward's check")

    fns = {**{f: RIGHT[f] for f in functions_of(backward)}, BACKWARDS[backward]: broken}
    assert in_process(backward, fns) == (True, "")
    assert out_of_process(backward, fns, hidden=True) == (True, "")


@pytest.mark.parametrize("name", CHECKS)
def test_cases_are_plain_data_and_reproducible(name, tmp_path):
    for hidden in (False, True):
        cases = make_cases(name, hidden=hidden)
        assert cases
        for i, case in enumerate(cases):
            assert all(isinstance(v, np.ndarray) and not v.dtype.hasobject for v in case.values())
            save_arrays(tmp_path / f"{i}.npz", case)
            back = load_arrays(tmp_path / f"{i}.npz")  # allow_pickle=False inside
            assert back.keys() == case.keys()
            assert all(np.array_equal(back[k], case[k]) for k in case)
        again = make_cases(name, hidden=hidden)
        assert all(np.array_equal(a[k], b[k]) for a, b in zip(cases, again) for k in a)


@pytest.mark.parametrize("name", CHECKS)
def test_hidden_cases_vary_with_the_seed_and_biases_are_not_zero(name):
    def shapes(seed):
        return [tuple(v.shape for k, v in sorted(c.items()) if not k.startswith("_")) for c in make_cases(name, seed, hidden=True)]

    assert len({tuple(shapes(seed)) for seed in range(5)}) > 1
    for seed in range(5):
        for case in make_cases(name, seed, hidden=True):
            if "b" in case:
                assert np.all(np.abs(case["b"]) >= 0.3)


def test_visible_cases_isolate_one_term():
    cases = {str(c["_label"]): c for c in make_cases("rnn_step_forward")}
    zero = lambda a: not np.any(a)  # noqa: E731
    assert zero(cases["bias_only"]["x"]) and zero(cases["bias_only"]["prev_h"]) and not zero(cases["bias_only"]["b"])
    assert zero(cases["input_only"]["prev_h"]) and zero(cases["input_only"]["b"]) and not zero(cases["input_only"]["x"])
    assert zero(cases["recurrence_only"]["x"]) and zero(cases["recurrence_only"]["b"])


@pytest.mark.parametrize(
    "outputs, says",
    [
        ({}, "no output next_h"),
        ({"next_h": np.array("text")}, "not an array of numbers"),
        ({"next_h": np.zeros((2, 4), dtype=np.int64)}, "dtype int64; expected a floating-point array"),
        ({"next_h": np.zeros((2, 4), dtype=np.float16)}, "expected float32 or float64"),
        ({"next_h": np.zeros((4, 2))}, "shape (4, 2); expected (N, H) = (2, 4): the transpose?"),
        ({"next_h": np.full((2, 4), np.nan)}, "next_h is wrong"),
        ({"_error": np.array("rnn_step_forward raised KeyError: 'x'")}, "raised KeyError"),
        ({"next_h": "not even an array"}, "not an array of numbers"),
    ],
)
def test_the_judge_answers_malformed_outputs_with_a_verdict(outputs, says):
    case = make_cases("rnn_step_forward")[0]
    passed, message = judge("rnn_step_forward", case, outputs)
    assert not passed
    assert says in message


def test_run_case_reports_exceptions_and_unreadable_returns_as_data():
    case = make_cases("rnn_step_forward")[0]

    def raises(*args):
        raise KeyError("x")

    out = run_case("rnn_step_forward", case, {"rnn_step_forward": raises})
    assert str(out["_error"]).startswith("rnn_step_forward raised KeyError") and str(out["_exception"]) == "KeyError"
    out = run_case("rnn_step_forward", case, {"rnn_step_forward": lambda *a: (object(), None)})
    assert "not an array of numbers" in str(out["_error"])
    out = run_case("rnn_step_forward", case, {"rnn_step_forward": lambda *a: np.zeros((2, 4))})
    assert "expected 2 values: next_h, cache" in str(out["_error"])


def test_the_learner_cannot_change_the_judged_case():
    case = make_cases("rnn_step_forward")[-1]
    kept = {k: v.copy() for k, v in case.items()}

    def vandal(x, prev_h, Wx, Wh, b):
        x[...] = 0
        b[...] = 0
        return np.tanh(prev_h @ Wh), None

    run_case("rnn_step_forward", case, {"rnn_step_forward": vandal})
    assert all(np.array_equal(case[k], kept[k]) for k in case)


def test_check_prints_one_line_on_success(capsys):
    check("rnn_step_forward", RIGHT["rnn_step_forward"])
    assert capsys.readouterr().out == "rnn_step_forward: all 4 visible cases pass.\n"


def test_check_wants_the_functions_it_names():
    with pytest.raises(TypeError, match=r"check\('rnn_forward', rnn_forward, rnn_step_forward\)"):
        check("rnn_forward", RIGHT["rnn_forward"])
    with pytest.raises(TypeError, match="wrong order"):
        check("rnn_forward", RIGHT["rnn_step_forward"], RIGHT["rnn_forward"])
    with pytest.raises(KeyError, match="no check called"):
        check("rnn_stp_forward", RIGHT["rnn_step_forward"])


def _blank(x, prev_h, Wx, Wh, b):
    raise NotImplementedError()


def test_a_function_not_written_yet_is_told_so_without_a_hint():
    """A blank function raises NotImplementedError saying so, not "Check the input term x Wx"."""
    with pytest.raises(NotImplementedError, match="rnn_step_forward is not written yet") as info:
        check("rnn_step_forward", _blank)
    assert "x Wx" not in str(info.value)
    passed, message = out_of_process("rnn_step_forward", {"rnn_step_forward": _blank})
    assert not passed and "rnn_step_forward is not written yet" in message and "x Wx" not in message


def test_a_function_calling_a_blank_dependency_says_to_write_that_one_first():
    namespace = {"rnn_step_forward": _blank}
    exec(
        "def rnn_forward(x, h0, Wx, Wh, b):\n"
        "    h, _ = rnn_step_forward(x[:, 0], h0, Wx, Wh, b)\n"
        "    return h[:, None], None\n",
        namespace,
    )
    expected = "rnn_forward calls rnn_step_forward, which is not written yet: write rnn_step_forward first."
    with pytest.raises(NotImplementedError, match=re.escape(expected)):
        check("rnn_forward", namespace)
    assert expected in out_of_process("rnn_forward", namespace)[1]
    del namespace["rnn_step_forward"]  # a dependency not defined at all
    assert "which is not defined: define rnn_step_forward first" in out_of_process("rnn_forward", namespace)[1]


def test_a_failure_is_an_assertion_error_a_few_lines_long():
    def rnn_step_forward(x, prev_h, Wx, Wh, b):
        return np.tanh(x @ Wx + prev_h @ Wh), None

    with pytest.raises(AssertionError) as info:
        check("rnn_step_forward", rnn_step_forward)
    assert isinstance(info.value, CheckFailure)
    lines = str(info.value).splitlines()
    assert 2 <= len(lines) <= 5
    assert "only the bias is non-zero" in lines[0] and "bias" in lines[2]


LEARNER_MODULE = '''
import numpy as np

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    return np.tanh(x @ Wx + prev_h @ Wh.T + b), None   # Wh transposed

def rnn_step_backward(dnext_h, cache):
    raise AssertionError("not reached")
'''

SANDBOX = '''
import sys
from pathlib import Path
import importlib.util
from rnncourse.checks import load_arrays, run_case, save_arrays

spec = importlib.util.spec_from_file_location("learner", sys.argv[1])
learner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(learner)
for path in sorted(Path(sys.argv[2]).glob("case_*.npz")):
    name = sys.argv[3]
    outputs = run_case(name, load_arrays(path), vars(learner))
    save_arrays(path.with_name(path.name.replace("case_", "out_")), outputs)
'''


def test_a_real_process_boundary_gives_the_same_verdict(tmp_path):
    """Cases go to another Python process as NPZ files; outputs come back as NPZ files; we judge."""
    (tmp_path / "learner.py").write_text(LEARNER_MODULE)
    (tmp_path / "sandbox.py").write_text(textwrap.dedent(SANDBOX))
    cases = make_cases("rnn_step_forward", 5, hidden=True)
    for i, case in enumerate(cases):
        save_arrays(tmp_path / f"case_{i}.npz", case)
    subprocess.run(
        [sys.executable, str(tmp_path / "sandbox.py"), str(tmp_path / "learner.py"), str(tmp_path), "rnn_step_forward"],
        check=True,
        timeout=120,
    )
    verdicts = [judge("rnn_step_forward", case, load_arrays(tmp_path / f"out_{i}.npz")) for i, case in enumerate(cases)]
    first_failure = next(v for v in verdicts if not v[0])

    namespace = {}
    exec(LEARNER_MODULE, namespace)
    assert in_process("rnn_step_forward", namespace, hidden=True, seed=5) == first_failure
    assert "Wh is used transposed" in first_failure[1]


def test_every_check_declares_what_the_grader_needs():
    for name in CHECKS:
        spec = get_check(name)
        assert spec.name in spec.functions, "the check is named after the function the learner writes"
        assert spec.visible and spec.outputs and callable(spec.hidden)
        assert len({c.label for c in spec.visible}) == len(spec.visible)


def test_importing_the_checks_does_not_import_torch():
    # A grader imports rnncourse.checks once per submission, in and out of the sandbox.
    code = "import sys, rnncourse.checks; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
