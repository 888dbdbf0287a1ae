"""rnncourse.validation: the scalar checks of the package, and the callers that use them.

check_int, check_positive_number, check_choice and check_rng; check_probability is tested in tests/torch/test_dropout.py.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnncourse.validation import check_choice, check_int, check_positive_number, check_rng

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(1), 2**40])
def test_integers_at_least_the_minimum_pass_as_python_ints(value):
    out = check_int("n", value)
    assert out == value and type(out) is int


@pytest.mark.parametrize("value, minimum, maximum", [(0, 0, None), (12, 1, 12), (5, 5, 5), (-3, -3, None)])
def test_the_bounds_are_inclusive(value, minimum, maximum):
    assert check_int("n", value, minimum=minimum, maximum=maximum) == value


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (0, {}, "batch_size is 0; expected an integer >= 1"),
        (-1, dict(minimum=0), "batch_size is -1; expected an integer >= 0"),
        (13, dict(maximum=12), r"batch_size is 13; expected an integer in \[1, 12\]"),
        (True, {}, "batch_size is True; expected an integer >= 1"),
        (np.bool_(True), {}, "batch_size is .*True.*; expected an integer >= 1"),
        (2.0, {}, "batch_size is 2.0; expected an integer >= 1"),
        ("3", {}, "batch_size is '3'; expected an integer >= 1"),
        (None, {}, "batch_size is None; expected an integer >= 1"),
    ],
)
def test_everything_else_is_refused_with_a_message_that_names_it(value, kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_int("batch_size", value, **kwargs)


@pytest.mark.parametrize("value", [1, 0.5, 1e-12, np.float32(2.5), np.int64(3)])
def test_finite_positive_numbers_pass_as_python_floats(value):
    out = check_positive_number("temperature", value)
    assert out == value and type(out) is float


@pytest.mark.parametrize("value", [0, -1, 0.0, float("inf"), float("nan"), np.float64("inf"), True, "1", None,
                                   np.array(1.0)])  # fmt: skip
def test_anything_else_is_not_a_positive_number(value):
    with pytest.raises(ValueError, match=r"^temperature is .*; expected a finite number > 0$"):
        check_positive_number("temperature", value)


def test_a_choice_outside_the_list_is_told_the_list_in_its_order():
    with pytest.raises(ValueError, match=r"^cell is 'elman'; expected 'rnn', 'lstm' or 'gru'$"):
        check_choice("cell", "elman", ("rnn", "lstm", "gru"))
    with pytest.raises(ValueError, match=r"^mode is 'scan'; expected 'sequential' or 'parallel'$"):
        check_choice("mode", "scan", ("sequential", "parallel"))
    assert check_choice("cell", "gru", ("rnn", "lstm", "gru")) == "gru"


def test_randomness_comes_from_a_generator_passed_in():
    with pytest.raises(ValueError, match=r"^rng is int; expected a numpy.random.Generator"):
        check_rng(0)
    full = r"^rng is NoneType; expected a numpy.random.Generator, e.g. np.random.default_rng\(0\)$"
    with pytest.raises(ValueError, match=full):
        check_rng(None)
    rng = np.random.default_rng(0)
    assert check_rng(rng) is rng


def test_importing_the_check_imports_no_torch():
    code = "import sys, rnncourse.validation; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# The modules whose inline copies the check replaced. A copy written again (the pattern of
# `isinstance(x, bool) or not isinstance(x, int) or x < 1`, or with the bool test between:
# `not isinstance(x, int) or isinstance(x, bool) or x < 1`) would be a second home.
CALLERS = ["rnncourse/torch/train.py", "rnncourse/torch/data.py", "rnncourse/torch/models.py",
           "rnncourse/torch/seq2seq.py", "rnncourse/torch/attention.py", "rnncourse/torch/runtime.py",
           "rnncourse/torch/minrnn.py", "rnncourse/torch/linear_attention.py", "rnncourse/torch/ssm.py",
           "rnncourse/torch/lru.py", "rnncourse/drawing.py", "rnncourse/timing.py", "rnncourse/tasks.py",
           "rnncourse/datasets.py"]
INLINE_COPY = re.compile(r"not isinstance\(\w+, \(?int\b[^)]*\)?\)(?: or isinstance\(\w+, \(?bool\b[^)]*\)?\))? or \w+ <")


@pytest.mark.parametrize("path", CALLERS)
def test_the_callers_hold_no_inline_copy_of_the_check(path):
    copies = [line.strip() for line in (ROOT / path).read_text(encoding="utf-8").splitlines()
              if INLINE_COPY.search(line)]
    assert not copies, f"{path} checks an integer inline again; call rnncourse.validation.check_int: {copies}"


def test_the_copy_pattern_finds_the_copies_it_is_meant_to_find():
    # The guard above is only as good as its pattern: it must match the copies that were there.
    assert INLINE_COPY.search("if isinstance(k, bool) or not isinstance(k, int) or k < 1:")
    assert INLINE_COPY.search("if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:")
    assert INLINE_COPY.search("if not isinstance(value, int) or isinstance(value, bool) or value < 1:")  # torch/minrnn.py
    assert INLINE_COPY.search("if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)) or v < 1:")
    assert not INLINE_COPY.search("k = check_int('k', k)")


@pytest.mark.parametrize(
    "call, message",
    [
        ("rnncourse.torch.data.batchify_stream(torch.arange(10), 0)", "batch_size is 0; expected an integer >= 1"),
        ("rnncourse.torch.data.tbptt_chunks(torch.zeros(2, 5, dtype=torch.int64), True)", "k is True"),
        ("rnncourse.torch.runtime.seed_everything(2**32)", r"seed is 4294967296; expected an integer in \[0, 4294967295\]"),
        ("rnncourse.torch.models.CharLanguageModel(5, 4, num_layers=0)", "num_layers is 0; expected an integer >= 1"),
        ("rnncourse.torch.models.Forecaster(1, 4, 3).rollout(torch.zeros(2, 5), -1)", "steps is -1; expected an integer >= 0"),
        ("rnncourse.tasks.adding_problem(4, 1, rng=np.random.default_rng(0))", "length is 1; expected an integer >= 2"),
        ("rnncourse.datasets.number_translation_pairs(5, 5, max_digits=13)", r"max_digits is 13; expected an integer in \[1, 12\]"),
        ("rnncourse.datasets.bach_chorale_melodies(limit=0)", "limit is 0; expected an integer >= 1"),
        ("rnncourse.torch.minrnn.MinGRU(3, 0)", "hidden_size is 0; expected an integer >= 1"),
        ("rnncourse.torch.minrnn.MinLSTM(True, 4)", "input_size is True; expected an integer >= 1"),
    ],
)
def test_each_caller_reports_through_the_one_check(call, message):
    import torch  # noqa: F401  (used by the calls)

    import rnncourse.datasets  # noqa: F401
    import rnncourse.tasks  # noqa: F401
    import rnncourse.torch.minrnn  # noqa: F401
    import rnncourse.torch.models  # noqa: F401

    with pytest.raises(ValueError, match=message):
        eval(call)
