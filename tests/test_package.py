"""The package as a whole: what importing it costs, and the tolerance policy."""

import subprocess
import sys

import numpy as np
import pytest

from rnncourse.testing import assert_close, tolerance


def test_import_numpy_reference_does_not_import_torch():
    # Graders start rnncourse.numpy once per submission: it must stay light.
    code = "import sys, rnncourse, rnncourse.numpy, rnncourse.testing; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tolerance_policy_is_the_stated_one():
    assert tolerance(np.float64) == dict(rtol=1e-9, atol=1e-12)
    assert tolerance(np.float32) == dict(rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="expected float32 or float64"):
        tolerance(np.float16)


def test_assert_close_accepts_rounding_and_rejects_real_differences():
    x = np.linspace(-3, 3, 50)
    assert_close(x * (1 + 1e-12), x)
    assert_close(x.astype(np.float32) * np.float32(1 + 1e-6), x.astype(np.float32))
    with pytest.raises(AssertionError, match=r"h: 1 of 50 elements differ.*worst at \[7\]"):
        y = x.copy()
        y[7] += 1e-6
        assert_close(y, x, "h")
    with pytest.raises(AssertionError, match=r"has shape \(50,\); expected \(5, 10\)"):
        assert_close(x, x.reshape(5, 10))


def test_assert_close_float32_is_judged_at_float32_tolerance():
    x = np.ones(4, dtype=np.float32)
    assert_close(x + np.float32(5e-6), x.astype(np.float64))  # within rtol=1e-5
    with pytest.raises(AssertionError):
        assert_close(x + np.float32(1e-4), x.astype(np.float64))


def test_assert_close_does_not_let_nan_or_inf_through():
    x = np.array([1.0, 2.0, 3.0])
    for bad in (np.nan, np.inf):
        y = x.copy()
        y[1] = bad
        with pytest.raises(AssertionError, match=r"worst at \[1\]"):
            assert_close(y, x)
        with pytest.raises(AssertionError):
            assert_close(x, y)
        assert_close(y, y.copy())
