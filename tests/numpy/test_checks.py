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


def test_shared_checks_name_what_came():
    from rnncourse.numpy._checks import fmt_shape, positive_int, upstream_gradient

    assert fmt_shape((5,)) == "(5,)" and fmt_shape((4, 3)) == "(4, 3)"
    with pytest.raises(ValueError, match=r"^k1 is 0; expected an integer >= 1$"):
        positive_int("k1", 0)
    with pytest.raises(ValueError, match=r"^k1 is 2.5; expected an integer >= 1$"):
        positive_int("k1", 2.5)
    assert positive_int("k1", 3.0) == 3 and type(positive_int("k1", np.int64(3))) is int
    # an upstream gradient's whole shape is known: a wrong rank is told with every size
    with pytest.raises(ValueError, match=r"^dh has shape \(4, 5\); expected \(N, T, H\) = \(4, 2, 5\)$"):
        upstream_gradient("dh", np.zeros((4, 5)), "N T H", (4, 2, 5))
    with pytest.raises(ValueError, match=r"^dh has dtype int64"):
        upstream_gradient("dh", np.zeros((4, 2, 5), np.int64), "N T H", (4, 2, 5))


def test_recurrent_inputs_reads_H_off_Wh_and_checks_the_rest_against_it():
    from rnncourse.numpy._checks import recurrent_inputs

    x, h0, Wx, Wh, b = np.zeros((2, 3, 4)), np.zeros((2, 5)), np.zeros((4, 20)), np.zeros((5, 20)), np.zeros(20)
    got = recurrent_inputs(x, {"h0": h0}, Wx, Wh, {"b": b}, gates=4)
    assert got[0] is x and got[1] == [h0] and got[4] == [b]
    with pytest.raises(ValueError, match=r"^Wx has shape \(4, 20\); expected \(D, H\) = \(4, 5\)$"):
        recurrent_inputs(x, {"h0": h0}, Wx, np.zeros((5, 5)), {"b": b}, gates=1)
    with pytest.raises(ValueError, match=r"^x has shape \(2, 0, 4\); expected at least one time step"):
        recurrent_inputs(x[:, :0], {"h0": h0}, Wx, Wh, {"b": b}, gates=4)
    assert recurrent_inputs(x[:, :0], {"h0": h0}, Wx, Wh, {"b": b}, gates=4, allow_empty=True)[0].shape == (2, 0, 4)
    with pytest.raises(ValueError, match=r"^x has shape \(2, 3, 4\); expected \(N, D\) with 2 dimensions$"):
        recurrent_inputs(x, {"prev_h": h0}, Wx, Wh, {"b": b}, gates=4, sequence=False)


def test_unpack_cache_splits_the_stated_arrays_from_an_option():
    from rnncourse.numpy._checks import unpack_cache

    a, b = np.zeros(2), np.ones(2)
    assert unpack_cache((a, b), "a b", "tanh") == ((a, b), "tanh")
    assert unpack_cache((a, b, "relu"), "a b", "tanh") == ((a, b), "relu")
    with pytest.raises(ValueError, match=r"^cache is a tuple of 3; expected the tuple \(a\)"):
        unpack_cache((a, b, "relu"), "a", "tanh")
    with pytest.raises(ValueError, match=r"^cache is dict; expected the tuple \(a, b\)"):
        unpack_cache({"a": a}, "a b", "tanh")
