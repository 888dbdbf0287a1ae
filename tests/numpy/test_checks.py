import numpy as np
import pytest

from rnncourse.numpy._checks import dims, expect_shape, float_array, int_array


def test_messages_say_what_was_expected_and_what_came():
    with pytest.raises(ValueError, match=r"^h0 has shape \(4, 3\); expected \(N, H\) = \(4, 5\)$"):
        expect_shape("h0", np.zeros((4, 3)), "N H", (4, 5))
    with pytest.raises(ValueError, match=r"^x has shape \(4,\); expected \(N, T, D\) with 3 dimensions$"):
        dims("x", np.zeros(4), "N T D")
    with pytest.raises(ValueError, match=r"^x has dtype int64; expected a floating-point array"):
        float_array("x", np.arange(3))
    with pytest.raises(ValueError, match=r"^idx has dtype float64; expected an integer array$"):
        int_array("idx", np.zeros(3))


def test_valid_input_passes_through():
    a = np.zeros((2, 3), np.float32)
    assert float_array("a", a) is a
    assert dims("a", a, "N H") == (2, 3)
    assert expect_shape("a", a, "N H", (2, 3)) is a
