"""Tests for rnncourse.numpy.rnn: the plain RNN, step and sequence, tanh and ReLU.

Independent truths: finite differences in float64 (gradcheck), and
torch.nn.RNN autograd in float64 and float32 with non-zero biases.
"""

import copy
import re
import warnings

import numpy as np
import pytest
import torch

from rnncourse.numpy import gradcheck
from rnncourse.numpy.rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from rnncourse.testing import assert_close

DTYPES = [np.float64, np.float32]
NONLINEARITIES = ["tanh", "relu"]
SHAPES = [(1, 1, 1, 1), (1, 4, 3, 2), (3, 1, 2, 4), (2, 3, 4, 5), (4, 6, 3, 3)]  # N, T, D, H
SMALL_SHAPES = [(1, 1, 1, 1), (2, 3, 4, 3), (3, 4, 2, 2)]


def rnn_params(N, T, D, H, dtype=np.float64, seed=0):
    """Random inputs and weights; the bias is drawn away from zero so a dropped bias shows."""
    rng = np.random.default_rng(seed)
    p = dict(
        x=rng.standard_normal((N, T, D)),
        h0=rng.standard_normal((N, H)),
        Wx=0.6 * rng.standard_normal((D, H)),
        Wh=0.6 * rng.standard_normal((H, H)),
        b=rng.choice([-1, 1], H) * (0.3 + rng.random(H)),
    )
    return {k: v.astype(dtype) for k, v in p.items()}


def upstream(N, T, H, dtype=np.float64, seed=1):
    return np.random.default_rng(seed).standard_normal((N, T, H)).astype(dtype)


def torch_rnn(x, h0, Wx, Wh, b, dh, nonlinearity, *, bias_split=0.5):
    """torch.nn.RNN with our weights (b split between its two biases) and its autograd gradients."""
    D, H = Wx.shape[0], Wh.shape[0]
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    rnn = torch.nn.RNN(D, H, nonlinearity=nonlinearity, batch_first=True, dtype=dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(Wx.T.copy()))
        rnn.weight_hh_l0.copy_(torch.from_numpy(Wh.T.copy()))
        rnn.bias_ih_l0.copy_(torch.from_numpy(bias_split * b))
        rnn.bias_hh_l0.copy_(torch.from_numpy((1 - bias_split) * b))
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    out, h_n = rnn(xt, h0t)
    out.backward(torch.from_numpy(dh))
    return dict(
        h=out, h_last=h_n[0], dx=xt.grad, dh0=h0t.grad[0], dWx=rnn.weight_ih_l0.grad.T, dWh=rnn.weight_hh_l0.grad.T,
        db_ih=rnn.bias_ih_l0.grad, db_hh=rnn.bias_hh_l0.grad,
    )  # fmt: skip


def ours(p, dh, nonlinearity):
    h, cache = rnn_forward(**p, nonlinearity=nonlinearity)
    dx, dh0, dWx, dWh, db = rnn_backward(dh, cache)
    return dict(h=h, h_last=h[:, -1], dx=dx, dh0=dh0, dWx=dWx, dWh=dWh, db_ih=db, db_hh=db)


def assert_all_close(got, want):
    for name in want:
        assert_close(got[name], want[name], name)


# ------------------------------------------------------------ against PyTorch


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, T, D, H", SHAPES)
def test_sequence_matches_torch(N, T, D, H, dtype, nonlinearity):
    p = rnn_params(N, T, D, H, dtype, seed=N * 1000 + T * 100 + D * 10 + H)
    dh = upstream(N, T, H, dtype)
    got = ours(p, dh, nonlinearity)
    for name, value in got.items():
        assert value.dtype == dtype, f"{name} has dtype {value.dtype}; expected {dtype}"
    assert_all_close(got, torch_rnn(**p, dh=dh, nonlinearity=nonlinearity))


@pytest.mark.parametrize("bias_split", [0.0, 1.0, 2.5])
def test_any_split_of_the_bias_gives_the_same_answer(bias_split):
    p = rnn_params(2, 3, 4, 5, seed=7)
    dh = upstream(2, 3, 5)
    assert_all_close(ours(p, dh, "tanh"), torch_rnn(**p, dh=dh, nonlinearity="tanh", bias_split=bias_split))


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_step_matches_torch_rnn_cell(dtype, nonlinearity):
    N, D, H = 3, 4, 5
    p = rnn_params(N, 1, D, H, dtype, seed=3)
    dnext_h = upstream(N, 1, H, dtype, seed=4)[:, 0]
    next_h, cache = rnn_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["b"], nonlinearity=nonlinearity)
    dx, dprev_h, dWx, dWh, db = rnn_step_backward(dnext_h, cache)

    cell = torch.nn.RNNCell(D, H, nonlinearity=nonlinearity, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(p["Wx"].T.copy()))
        cell.weight_hh.copy_(torch.from_numpy(p["Wh"].T.copy()))
        cell.bias_ih.zero_()
        cell.bias_hh.copy_(torch.from_numpy(p["b"]))
    xt, ht = torch.tensor(p["x"][:, 0], requires_grad=True), torch.tensor(p["h0"], requires_grad=True)
    h_t = cell(xt, ht)
    h_t.backward(torch.from_numpy(dnext_h))
    for name, got, want in [
        ("next_h", next_h, h_t), ("dx", dx, xt.grad), ("dprev_h", dprev_h, ht.grad),
        ("dWx", dWx, cell.weight_ih.grad.T), ("dWh", dWh, cell.weight_hh.grad.T), ("db", db, cell.bias_hh.grad),
    ]:  # fmt: skip
        assert got.dtype == dtype, name
        assert_close(got, want, name)


def test_relu_state_is_nonnegative_and_default_is_tanh():
    p = rnn_params(3, 4, 2, 5, seed=8)
    h_relu, _ = rnn_forward(**p, nonlinearity="relu")
    assert h_relu.min() >= 0 and (h_relu == 0).any() and (h_relu > 1).any()
    h_default, _ = rnn_forward(**p)
    h_tanh, _ = rnn_forward(**p, nonlinearity="tanh")
    assert np.array_equal(h_default, h_tanh)
    assert h_tanh.min() < 0


# ------------------------------------------------------------ must be able to fail


@pytest.mark.parametrize("bug", ["transpose Wh", "drop the bias", "wrong nonlinearity", "swap Wx rows"])
def test_torch_comparison_catches_realistic_bugs(bug):
    p = rnn_params(2, 3, 4, 4, seed=5)
    dh = upstream(2, 3, 4)
    want = torch_rnn(**p, dh=dh, nonlinearity="tanh")
    buggy, nonlinearity = dict(p), "tanh"
    if bug == "transpose Wh":
        buggy["Wh"] = p["Wh"].T.copy()
    elif bug == "drop the bias":
        buggy["b"] = np.zeros_like(p["b"])
    elif bug == "wrong nonlinearity":
        nonlinearity = "relu"
    else:
        buggy["Wx"] = p["Wx"][::-1].copy()
    with pytest.raises(AssertionError):
        assert_close(ours(buggy, dh, nonlinearity)["h"], want["h"], "h")


def test_gradient_comparison_catches_a_transposed_dWh():
    p = rnn_params(2, 3, 4, 4, seed=6)
    dh = upstream(2, 3, 4)
    want = torch_rnn(**p, dh=dh, nonlinearity="tanh")
    got = ours(p, dh, "tanh")
    with pytest.raises(AssertionError):
        assert_close(got["dWh"].T, want["dWh"], "dWh")


def test_gradcheck_catches_a_transposed_dWh():
    p = rnn_params(2, 3, 3, 3, seed=9)
    dh = upstream(2, 3, 3)
    _, cache = rnn_forward(**p)
    dx, dh0, dWx, dWh, db = rnn_backward(dh, cache)
    report = gradcheck(lambda **a: rnn_forward(**a)[0], p, dict(Wh=dWh.T), dh)
    assert not report.ok and report.errors["Wh"] > 1e-3


# ------------------------------------------------------------ gradcheck (float64)


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("N, T, D, H", SMALL_SHAPES)
def test_step_gradcheck(N, T, D, H, nonlinearity):
    p = rnn_params(N, 1, D, H, seed=N + 10 * D + 100 * H)
    dnext_h = upstream(N, 1, H, seed=3)[:, 0]
    inputs = dict(x=p["x"][:, 0], prev_h=p["h0"], Wx=p["Wx"], Wh=p["Wh"], b=p["b"])
    _, cache = rnn_step_forward(**inputs, nonlinearity=nonlinearity)
    grads = rnn_step_backward(dnext_h, cache)
    report = gradcheck(
        lambda **a: rnn_step_forward(**a, nonlinearity=nonlinearity)[0], inputs, dict(zip(inputs, grads)), dnext_h
    )
    assert report.ok, str(report)


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("N, T, D, H", SMALL_SHAPES)
def test_sequence_gradcheck(N, T, D, H, nonlinearity):
    p = rnn_params(N, T, D, H, seed=N + 10 * T + 100 * D)
    dh = upstream(N, T, H)
    _, cache = rnn_forward(**p, nonlinearity=nonlinearity)
    grads = rnn_backward(dh, cache)
    report = gradcheck(lambda **a: rnn_forward(**a, nonlinearity=nonlinearity)[0], p, dict(zip(p, grads)), dh)
    assert report.ok, str(report)


# ------------------------------------------------------------ sequence = loop of steps


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_sequence_equals_looping_the_step(nonlinearity):
    N, T, D, H = 3, 5, 4, 2
    p = rnn_params(N, T, D, H, seed=21)
    dh = upstream(N, T, H, seed=22)
    h, cache = rnn_forward(**p, nonlinearity=nonlinearity)
    dx, dh0, dWx, dWh, db = rnn_backward(dh, cache)

    prev_h, caches = p["h0"], []
    for t in range(T):
        prev_h, step_cache = rnn_step_forward(p["x"][:, t], prev_h, p["Wx"], p["Wh"], p["b"], nonlinearity=nonlinearity)
        assert_close(h[:, t], prev_h, f"h[:, {t}]")
        caches.append(step_cache)

    dprev_h = np.zeros((N, H))
    loop = dict(dx=np.zeros_like(dx), dWx=0, dWh=0, db=0)
    for t in reversed(range(T)):
        dx_t, dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, caches[t])
        loop["dx"][:, t] = dx_t
        loop["dWx"], loop["dWh"], loop["db"] = loop["dWx"] + dWx_t, loop["dWh"] + dWh_t, loop["db"] + db_t
    for name, got in dict(dx=dx, dWx=dWx, dWh=dWh, db=db, dh0=dh0).items():
        assert_close(got, dict(loop, dh0=dprev_h)[name], name)


def test_loop_comparison_catches_a_stale_state():
    p = rnn_params(2, 3, 2, 3, seed=23)
    h, _ = rnn_forward(**p)
    stale = rnn_step_forward(p["x"][:, 2], p["h0"], p["Wx"], p["Wh"], p["b"])[0]
    with pytest.raises(AssertionError):
        assert_close(h[:, 2], stale, "h[:, 2]")


# ------------------------------------------------------------ dtypes, cache, extremes


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_float32_in_float32_out_and_promotion(nonlinearity):
    p = rnn_params(2, 3, 4, 5, np.float32, seed=31)
    dh = upstream(2, 3, 5, np.float32)
    h, cache = rnn_forward(**p, nonlinearity=nonlinearity)
    grads = rnn_backward(dh, cache)
    assert all(a.dtype == np.float32 for a in (h, *grads))
    next_h, step_cache = rnn_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["b"], nonlinearity=nonlinearity)
    assert all(a.dtype == np.float32 for a in (next_h, *rnn_step_backward(dh[:, 0], step_cache)))
    h64, _ = rnn_forward(**dict(p, b=p["b"].astype(np.float64)), nonlinearity=nonlinearity)
    assert h64.dtype == np.float64


def _assert_same(a, b):
    if isinstance(a, np.ndarray):
        assert np.array_equal(a, b)
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_backward_does_not_modify_the_cache(nonlinearity):
    p = rnn_params(2, 4, 3, 3, seed=41)
    dh = upstream(2, 4, 3)
    _, cache = rnn_forward(**p, nonlinearity=nonlinearity)
    before = copy.deepcopy(cache)
    first = rnn_backward(dh, cache)
    _assert_same(cache, before)
    for a, b in zip(first, rnn_backward(dh, cache)):
        assert np.array_equal(a, b)

    _, step_cache = rnn_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["b"], nonlinearity=nonlinearity)
    before = copy.deepcopy(step_cache)
    first = rnn_step_backward(dh[:, 0], step_cache)
    _assert_same(step_cache, before)
    for a, b in zip(first, rnn_step_backward(dh[:, 0], step_cache)):
        assert np.array_equal(a, b)


def test_forward_and_backward_do_not_modify_their_inputs():
    p = rnn_params(2, 3, 3, 2, seed=42)
    dh = upstream(2, 3, 2)
    before, dh_before = copy.deepcopy(p), dh.copy()
    _, cache = rnn_forward(**p)
    rnn_backward(dh, cache)
    rnn_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["b"])
    for k in p:
        assert np.array_equal(p[k], before[k]), k
    assert np.array_equal(dh, dh_before)


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_inputs_are_finite_without_warnings(dtype, nonlinearity):
    N, T, D, H = 3, 6, 4, 5
    p = rnn_params(N, T, D, H, dtype, seed=51)
    rng = np.random.default_rng(52)
    p["x"] = (rng.choice([-1e4, 1e4], (N, T, D)) * rng.random((N, T, D))).astype(dtype)
    p["h0"] = np.full((N, H), 1e4, dtype)
    dh = upstream(N, T, H, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h, cache = rnn_forward(**p, nonlinearity=nonlinearity)
        grads = rnn_backward(dh, cache)
        next_h, step_cache = rnn_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["b"], nonlinearity=nonlinearity)
        step_grads = rnn_step_backward(dh[:, 0], step_cache)
    for a in (h, *grads, next_h, *step_grads):
        assert np.all(np.isfinite(a))


# ------------------------------------------------------------ input checks


def _bad(**changes):
    p = rnn_params(4, 2, 3, 5, seed=61)
    p.update(changes)
    return p


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(x=np.zeros((4, 3))), "x has shape (4, 3); expected (N, T, D) with 3 dimensions"),
        (dict(x=np.zeros((4, 0, 3))), "x has shape (4, 0, 3); expected at least one time step (T >= 1)"),
        (dict(x=np.zeros((4, 2, 3), dtype=np.int64)), "x has dtype int64; expected a floating-point array"),
        (dict(h0=np.zeros((4, 3))), "h0 has shape (4, 3); expected (N, H) = (4, 5)"),
        (dict(h0=np.zeros((2, 5))), "h0 has shape (2, 5); expected (N, H) = (4, 5)"),
        (dict(Wx=np.zeros((2, 5))), "Wx has shape (2, 5); expected (D, H) = (3, 5)"),
        (dict(Wx=np.zeros((3, 5, 1))), "Wx has shape (3, 5, 1); expected (D, H) with 2 dimensions"),
        (dict(Wh=np.zeros((5, 4))), "Wh has shape (5, 4); expected (H, H) = (5, 5)"),
        (dict(b=np.zeros(4)), "b has shape (4,); expected (H) = (5,)"),
        (dict(b=np.zeros(5, dtype=bool)), "b has dtype bool; expected a floating-point array"),
    ],
)
def test_forward_rejects_bad_input(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        rnn_forward(**_bad(**changes))


@pytest.mark.parametrize("fn", ["rnn_forward", "rnn_step_forward"])
def test_unknown_nonlinearity_is_rejected(fn):
    p = rnn_params(2, 2, 3, 4, seed=62)
    with pytest.raises(ValueError, match=re.escape("nonlinearity is 'sigmoid'; expected 'tanh' or 'relu'")):
        if fn == "rnn_forward":
            rnn_forward(**p, nonlinearity="sigmoid")
        else:
            rnn_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["b"], nonlinearity="sigmoid")


def test_step_and_backward_reject_bad_input():
    p = rnn_params(4, 2, 3, 5, seed=63)
    with pytest.raises(ValueError, match=re.escape("prev_h has shape (4, 3); expected (N, H) = (4, 5)")):
        rnn_step_forward(p["x"][:, 0], np.zeros((4, 3)), p["Wx"], p["Wh"], p["b"])
    with pytest.raises(ValueError, match=re.escape("x has shape (4, 2, 3); expected (N, D) with 2 dimensions")):
        rnn_step_forward(p["x"], p["h0"], p["Wx"], p["Wh"], p["b"])
    _, step_cache = rnn_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["b"])
    with pytest.raises(ValueError, match=re.escape("dnext_h has shape (5, 4); expected (N, H) = (4, 5)")):
        rnn_step_backward(np.zeros((5, 4)), step_cache)
    _, cache = rnn_forward(**p)
    # an upstream gradient's whole shape is known, so a wrong rank is told with every size (as in attention)
    with pytest.raises(ValueError, match=re.escape("dh has shape (4, 5); expected (N, T, H) = (4, 2, 5)")):
        rnn_backward(np.zeros((4, 5)), cache)
    with pytest.raises(ValueError, match=re.escape("dh has shape (4, 2, 4); expected (N, T, H) = (4, 2, 5)")):
        rnn_backward(np.zeros((4, 2, 4)), cache)
