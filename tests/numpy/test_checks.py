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


def test_the_sequence_value_and_cell_state_checks_name_what_came():
    from rnncourse.numpy._checks import at_least_one_step, first_index, no_cell_state

    x = np.zeros((4, 0, 3))
    with pytest.raises(ValueError, match=r"^x has shape \(4, 0, 3\); expected at least one time step \(T >= 1\)$"):
        at_least_one_step("x", x)
    one_step = np.zeros((4, 1, 3))
    assert at_least_one_step("x", one_step) is one_step
    bad = np.zeros((3, 5), bool)
    bad[1, 2] = bad[2, 0] = True
    assert first_index(bad) == [1, 2] and all(type(i) is int for i in first_index(bad))
    assert first_index(np.array([False, False, True])) == [2]
    with pytest.raises(ValueError, match=r"^c0 was given for cell='gru'; only an LSTM has a cell state$"):
        no_cell_state("c0", np.zeros((2, 3)), "gru")
    assert no_cell_state("c0", None, "gru") is None


def _part_three_calls(T):
    """Every sequence function of part three, called on T steps: (name of its sequence input, call)."""
    from rnncourse import numpy as rn

    rng = np.random.default_rng(0)
    N, D, H, S = 2, 3, 4, 5
    x = rng.standard_normal((N, T, D))
    a, b = rng.uniform(0.1, 0.9, (N, T, H)), rng.standard_normal((N, T, H))
    A = rng.standard_normal((N, T, H, H)) * 0.1
    ssm = dict(A_log=np.zeros((D, S)), W_delta=np.zeros((D, D)), b_delta=np.zeros(D), W_B=np.zeros((D, S)),
               W_C=np.zeros((D, S)), skip=np.zeros(D))  # fmt: skip
    rnn = dict(Wx=np.zeros((D, H)), Wh=np.zeros((H, H)), b=np.zeros(H))
    z = np.zeros((D, H))
    return {
        "linear_recurrence": ("a", lambda: rn.linear_recurrence(a, b)),
        "parallel_scan": ("a", lambda: rn.parallel_scan(a, b)),
        "matrix_linear_recurrence": ("b", lambda: rn.matrix_linear_recurrence(A, b)),
        "min_gru_forward": ("x", lambda: rn.min_gru_forward(x, np.zeros((N, H)), z, np.zeros(H), z, np.zeros(H))),
        "min_lstm_forward": ("x", lambda: rn.min_lstm_forward(x, np.zeros((N, H)), z, np.zeros(H), z, np.zeros(H),
                                                              z, np.zeros(H))),
        "lru_forward": ("x", lambda: rn.lru_forward(x, None, **rn.lru_init(D, H, rng=rng))),
        "selective_ssm_forward": ("x", lambda: rn.selective_ssm_forward(x, None, **ssm)),
        "linear_attention_forward": ("q", lambda: rn.linear_attention_forward(x, x, x)),
        "newton_rnn": ("x", lambda: rn.newton_rnn(x, np.zeros((N, H)), **rnn)),
        "fixed_point_rnn": ("x", lambda: rn.fixed_point_rnn(x, np.zeros((N, H)), **rnn)),
    }


@pytest.mark.parametrize("function", sorted(_part_three_calls(1)))
def test_every_sequence_function_of_part_three_refuses_an_empty_sequence_by_name(function):
    # A call that lost its check fails further in with a reduction over nothing or an index error.
    name, call = _part_three_calls(0)[function]
    with pytest.raises(ValueError, match=rf"^{name} has shape \(2, 0, [0-9]+\); expected at least one time step"):
        call()
    _part_three_calls(1)[function][1]()  # and one step is a sequence


@pytest.mark.parametrize("function", ["min_gru_forward", "lru_forward", "selective_ssm_forward"])
def test_a_mode_outside_the_two_is_told_both(function):
    from rnncourse import numpy as rn
    from rnncourse.numpy.scan import MODES

    N, T, D, H, S = 2, 1, 3, 4, 5
    x, z = np.zeros((N, T, D)), np.zeros((D, H))
    call = {
        "min_gru_forward": lambda mode: rn.min_gru_forward(x, np.zeros((N, H)), z, np.zeros(H), z, np.zeros(H),
                                                           mode=mode),
        "lru_forward": lambda mode: rn.lru_forward(x, None, **rn.lru_init(D, H, rng=np.random.default_rng(0)),
                                                   mode=mode),
        "selective_ssm_forward": lambda mode: rn.selective_ssm_forward(
            x, None, np.zeros((D, S)), np.zeros((D, D)), np.zeros(D), np.zeros((D, S)), np.zeros((D, S)),
            np.zeros(D), mode=mode),
    }[function]  # fmt: skip
    with pytest.raises(ValueError, match=r"^mode is 'scan'; expected 'sequential' or 'parallel'$"):
        call("scan")
    for mode in MODES:
        call(mode)


@pytest.mark.parametrize("where", ["stacked_rnn_forward", "stacked_rnn_backward", "CharRNN.loss", "CharRNN.sample"])
def test_a_cell_state_given_to_a_gru_is_refused_by_name(where):
    from rnncourse import numpy as rn

    rng = np.random.default_rng(0)
    N, T, D, H = 2, 3, 4, 5
    c = np.zeros((1, N, H))
    name = "dc_n" if where == "stacked_rnn_backward" else "c0"
    with pytest.raises(ValueError, match=rf"^{name} was given for cell='gru'; only an LSTM has a cell state$"):
        if where.startswith("stacked"):
            params = rn.init_params("gru", D, H, rng=rng)
            out, _, cache = rn.stacked_rnn_forward(rng.standard_normal((N, T, D)), None, params, cell="gru",
                                                   c0=c if where == "stacked_rnn_forward" else None)
            rn.stacked_rnn_backward(np.zeros_like(out), cache, dc_n=c)
        elif where == "CharRNN.loss":
            model = rn.CharRNN(6, H, cell="gru", rng=rng)
            model.loss(np.zeros((N, T), int), np.zeros((N, T), int), c0=c[0])
        else:
            rn.CharRNN(6, H, cell="gru", rng=rng).sample(0, 3, rng=rng, c0=c[0, :1])
