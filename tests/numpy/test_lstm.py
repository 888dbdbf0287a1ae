"""Tests for rnncourse.numpy.lstm: step and sequence, forward and backward.

Independent truths: finite differences in float64 (gradcheck), and
torch.nn.LSTM autograd in float64 and float32 with non-zero biases.
"""

import copy
import re
import warnings

import numpy as np
import pytest
import torch

from rnncourse.numpy import gradcheck
from rnncourse.numpy.lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from rnncourse.testing import assert_close

DTYPES = [np.float64, np.float32]
SHAPES = [(1, 1, 1, 1), (1, 4, 3, 2), (3, 1, 2, 4), (2, 3, 4, 5), (4, 6, 3, 3)]  # N, T, D, H
SMALL_SHAPES = [(1, 1, 1, 1), (2, 3, 4, 3), (3, 4, 2, 2)]


def lstm_params(N, T, D, H, dtype=np.float64, seed=0):
    """Random inputs and weights; the biases are drawn away from zero so a dropped bias shows."""
    rng = np.random.default_rng(seed)
    p = dict(
        x=rng.standard_normal((N, T, D)),
        h0=rng.standard_normal((N, H)),
        Wx=0.7 * rng.standard_normal((D, 4 * H)),
        Wh=0.7 * rng.standard_normal((H, 4 * H)),
        b=rng.choice([-1, 1], 4 * H) * (0.3 + rng.random(4 * H)),
        c0=rng.standard_normal((N, H)),
    )
    return {k: v.astype(dtype) for k, v in p.items()}


def upstream(N, T, H, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, T, H)).astype(dtype), rng.standard_normal((N, H)).astype(dtype)


def torch_lstm(x, h0, Wx, Wh, b, c0, dh, dc_last, *, bias_split=0.5):
    """torch.nn.LSTM with our weights (b split between its two biases) and its autograd gradients."""
    D, H = Wx.shape[0], Wh.shape[0]
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    lstm = torch.nn.LSTM(D, H, batch_first=True, dtype=dtype)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(Wx.T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(Wh.T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(bias_split * b))
        lstm.bias_hh_l0.copy_(torch.from_numpy((1 - bias_split) * b))
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    c0t = torch.tensor(c0[None], requires_grad=True)
    out, (h_n, c_n) = lstm(xt, (h0t, c0t))
    loss = (out * torch.from_numpy(dh)).sum() + (c_n[0] * torch.from_numpy(dc_last)).sum()
    loss.backward()
    return dict(
        h=out, h_last=h_n[0], c_last=c_n[0], dx=xt.grad, dh0=h0t.grad[0], dc0=c0t.grad[0],
        dWx=lstm.weight_ih_l0.grad.T, dWh=lstm.weight_hh_l0.grad.T,
        db_ih=lstm.bias_ih_l0.grad, db_hh=lstm.bias_hh_l0.grad,
    )  # fmt: skip


def ours(p, dh, dc_last):
    h, c_last, cache = lstm_forward(**p, return_state=True)
    dx, dh0, dWx, dWh, db, dc0 = lstm_backward(dh, cache, dc_last=dc_last, return_state=True)
    return dict(h=h, h_last=h[:, -1], c_last=c_last, dx=dx, dh0=dh0, dc0=dc0, dWx=dWx, dWh=dWh, db_ih=db, db_hh=db)


def assert_all_close(got, want):
    for name in want:
        assert_close(got[name], want[name], name)


# ------------------------------------------------------------ against PyTorch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, T, D, H", SHAPES)
def test_sequence_matches_torch(N, T, D, H, dtype):
    p = lstm_params(N, T, D, H, dtype, seed=N * 1000 + T * 100 + D * 10 + H)
    dh, dc_last = upstream(N, T, H, dtype)
    got = ours(p, dh, dc_last)
    for name, value in got.items():
        assert value.dtype == dtype, f"{name} has dtype {value.dtype}; expected {dtype}"
    assert_all_close(got, torch_lstm(**p, dh=dh, dc_last=dc_last))


@pytest.mark.parametrize("bias_split", [0.0, 1.0, -0.7])
def test_any_split_of_the_bias_gives_the_same_answer(bias_split):
    p = lstm_params(2, 3, 4, 5, seed=7)
    dh, dc_last = upstream(2, 3, 5)
    assert_all_close(ours(p, dh, dc_last), torch_lstm(**p, dh=dh, dc_last=dc_last, bias_split=bias_split))


@pytest.mark.parametrize("dtype", DTYPES)
def test_step_matches_torch_lstm_cell(dtype):
    N, D, H = 3, 4, 5
    p = lstm_params(N, 1, D, H, dtype, seed=3)
    rng = np.random.default_rng(4)
    dnext_h, dnext_c = rng.standard_normal((2, N, H)).astype(dtype)
    next_h, next_c, cache = lstm_step_forward(p["x"][:, 0], p["h0"], p["c0"], p["Wx"], p["Wh"], p["b"])
    dx, dprev_h, dprev_c, dWx, dWh, db = lstm_step_backward(dnext_h, dnext_c, cache)

    cell = torch.nn.LSTMCell(D, H, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(p["Wx"].T.copy()))
        cell.weight_hh.copy_(torch.from_numpy(p["Wh"].T.copy()))
        cell.bias_ih.copy_(torch.from_numpy(p["b"]))
        cell.bias_hh.zero_()
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (p["x"][:, 0], p["h0"], p["c0"]))
    h_t, c_t = cell(xt, (ht, ct))
    ((h_t * torch.from_numpy(dnext_h)).sum() + (c_t * torch.from_numpy(dnext_c)).sum()).backward()
    for name, got, want in [
        ("next_h", next_h, h_t), ("next_c", next_c, c_t), ("dx", dx, xt.grad), ("dprev_h", dprev_h, ht.grad),
        ("dprev_c", dprev_c, ct.grad), ("dWx", dWx, cell.weight_ih.grad.T), ("dWh", dWh, cell.weight_hh.grad.T),
        ("db", db, cell.bias_ih.grad),
    ]:  # fmt: skip
        assert got.dtype == dtype, name
        assert_close(got, want, name)


def test_default_results_and_c0_none():
    p = lstm_params(2, 3, 4, 5, seed=11)
    dh, _ = upstream(2, 3, 5)
    del p["c0"]
    h, cache = lstm_forward(**p)
    grads = lstm_backward(dh, cache)
    assert len(grads) == 5
    h_z, c_last, cache_z = lstm_forward(**p, c0=np.zeros((2, 5)), return_state=True)
    assert_close(h, h_z, "h with c0=None vs zeros")
    for name, g, gz in zip("dx dh0 dWx dWh db".split(), grads, lstm_backward(dh, cache_z)):
        assert_close(g, gz, name)
    want = torch_lstm(**p, c0=np.zeros((2, 5)), dh=dh, dc_last=np.zeros((2, 5)))
    assert_close(h, want["h"], "h")
    assert_close(c_last, want["c_last"], "c_last")
    assert_close(grads[0], want["dx"], "dx")


# ------------------------------------------------------------ must be able to fail


def _permute_gates(W, order):
    H = W.shape[-1] // 4
    return np.concatenate([W[..., k * H : (k + 1) * H] for k in order], axis=-1)


@pytest.mark.parametrize(
    "bug",
    ["swap i and f", "swap g and o", "drop the bias", "transpose Wh"],
)
def test_torch_comparison_catches_realistic_bugs(bug):
    p = lstm_params(2, 3, 4, 4, seed=5)
    dh, dc_last = upstream(2, 3, 4)
    want = torch_lstm(**p, dh=dh, dc_last=dc_last)
    buggy = dict(p)
    if bug == "swap i and f":
        buggy.update(Wx=_permute_gates(p["Wx"], [1, 0, 2, 3]), Wh=_permute_gates(p["Wh"], [1, 0, 2, 3]),
                     b=_permute_gates(p["b"], [1, 0, 2, 3]))  # fmt: skip
    elif bug == "swap g and o":
        buggy.update(Wx=_permute_gates(p["Wx"], [0, 1, 3, 2]), Wh=_permute_gates(p["Wh"], [0, 1, 3, 2]),
                     b=_permute_gates(p["b"], [0, 1, 3, 2]))  # fmt: skip
    elif bug == "drop the bias":
        buggy["b"] = np.zeros_like(p["b"])
    else:
        H = p["Wh"].shape[0]
        buggy["Wh"] = np.concatenate([p["Wh"][:, k * H : (k + 1) * H].T for k in range(4)], axis=1)
    with pytest.raises(AssertionError):
        assert_close(ours(buggy, dh, dc_last)["h"], want["h"], "h")


def test_gradcheck_catches_a_missing_term():
    """Dropping the path of c_t through h_t (a classic LSTM backward bug) must fail gradcheck."""
    p = lstm_params(2, 1, 3, 2, seed=9)
    x, prev_h, prev_c = p["x"][:, 0], p["h0"], p["c0"]
    dnext_h = np.random.default_rng(2).standard_normal((2, 2))
    _, _, cache = lstm_step_forward(x, prev_h, prev_c, p["Wx"], p["Wh"], p["b"])
    # with dnext_c = 0, dprev_c comes only through h_t; a backward that forgets it returns zeros
    analytic = dict(prev_c=np.zeros_like(prev_c))
    report = gradcheck(
        lambda **a: lstm_step_forward(**a)[:2],
        dict(x=x, prev_h=prev_h, prev_c=prev_c, Wx=p["Wx"], Wh=p["Wh"], b=p["b"]),
        analytic,
        (dnext_h, np.zeros_like(dnext_h)),
    )
    assert not report.ok


# ------------------------------------------------------------ gradcheck (float64)


@pytest.mark.parametrize("N, T, D, H", SMALL_SHAPES)
def test_step_gradcheck(N, T, D, H):
    p = lstm_params(N, 1, D, H, seed=N + 10 * D + 100 * H)
    dnext_h, dnext_c = upstream(N, 1, H, seed=3)[1], upstream(N, 1, H, seed=4)[1]
    inputs = dict(x=p["x"][:, 0], prev_h=p["h0"], prev_c=p["c0"], Wx=p["Wx"], Wh=p["Wh"], b=p["b"])
    _, _, cache = lstm_step_forward(**inputs)
    grads = lstm_step_backward(dnext_h, dnext_c, cache)
    report = gradcheck(lambda **a: lstm_step_forward(**a)[:2], inputs, dict(zip(inputs, grads)), (dnext_h, dnext_c))
    assert report.ok, str(report)


@pytest.mark.parametrize("N, T, D, H", SMALL_SHAPES)
def test_sequence_gradcheck(N, T, D, H):
    p = lstm_params(N, T, D, H, seed=N + 10 * T + 100 * D)
    dh, _ = upstream(N, T, H)
    _, cache = lstm_forward(**p)
    dx, dh0, dWx, dWh, db = lstm_backward(dh, cache)
    analytic = dict(x=dx, h0=dh0, Wx=dWx, Wh=dWh, b=db)
    report = gradcheck(lambda **a: lstm_forward(**a)[0], p, analytic, dh)
    assert report.ok, str(report)


@pytest.mark.parametrize("N, T, D, H", SMALL_SHAPES)
def test_sequence_gradcheck_with_final_cell_state(N, T, D, H):
    p = lstm_params(N, T, D, H, seed=N + 10 * T + 100 * H)
    dh, dc_last = upstream(N, T, H, seed=5)
    _, _, cache = lstm_forward(**p, return_state=True)
    grads = lstm_backward(dh, cache, dc_last=dc_last, return_state=True)
    analytic = dict(zip(["x", "h0", "Wx", "Wh", "b", "c0"], grads))
    report = gradcheck(lambda **a: lstm_forward(**a, return_state=True)[:2], p, analytic, (dh, dc_last))
    assert report.ok, str(report)


# ------------------------------------------------------------ sequence = loop of steps


def test_sequence_equals_looping_the_step():
    N, T, D, H = 3, 5, 4, 2
    p = lstm_params(N, T, D, H, seed=21)
    dh, dc_last = upstream(N, T, H, seed=22)
    h, c_last, cache = lstm_forward(**p, return_state=True)
    dx, dh0, dWx, dWh, db, dc0 = lstm_backward(dh, cache, dc_last=dc_last, return_state=True)

    prev_h, prev_c, caches = p["h0"], p["c0"], []
    for t in range(T):
        prev_h, prev_c, step_cache = lstm_step_forward(p["x"][:, t], prev_h, prev_c, p["Wx"], p["Wh"], p["b"])
        assert_close(h[:, t], prev_h, f"h[:, {t}]")
        caches.append(step_cache)
    assert_close(c_last, prev_c, "c_last")

    dprev_h, dprev_c = np.zeros((N, H)), dc_last
    loop = dict(dx=np.zeros_like(dx), dWx=0, dWh=0, db=0)
    for t in reversed(range(T)):
        dx_t, dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:, t] + dprev_h, dprev_c, caches[t])
        loop["dx"][:, t] = dx_t
        loop["dWx"], loop["dWh"], loop["db"] = loop["dWx"] + dWx_t, loop["dWh"] + dWh_t, loop["db"] + db_t
    for name, got in dict(dx=dx, dWx=dWx, dWh=dWh, db=db, dh0=dh0, dc0=dc0).items():
        assert_close(got, dict(loop, dh0=dprev_h, dc0=dprev_c)[name], name)


def test_loop_comparison_catches_a_stale_state():
    """Feeding h0 to every step (forgetting to carry the state) must not pass as the sequence."""
    p = lstm_params(2, 3, 2, 3, seed=23)
    h, _ = lstm_forward(**p)
    stale = lstm_step_forward(p["x"][:, 2], p["h0"], p["c0"], p["Wx"], p["Wh"], p["b"])[0]
    with pytest.raises(AssertionError):
        assert_close(h[:, 2], stale, "h[:, 2]")


# ------------------------------------------------------------ dtypes, cache, extremes


def test_float32_in_float32_out_and_promotion():
    p = lstm_params(2, 3, 4, 5, np.float32, seed=31)
    dh, dc_last = upstream(2, 3, 5, np.float32)
    h, c_last, cache = lstm_forward(**p, return_state=True)
    grads = lstm_backward(dh, cache, dc_last=dc_last, return_state=True)
    assert all(a.dtype == np.float32 for a in (h, c_last, *grads))
    next_h, next_c, step_cache = lstm_step_forward(p["x"][:, 0], p["h0"], p["c0"], p["Wx"], p["Wh"], p["b"])
    step_grads = lstm_step_backward(dh[:, 0], dc_last, step_cache)
    assert all(a.dtype == np.float32 for a in (next_h, next_c, *step_grads))
    # one float64 input promotes everything, as NumPy does
    h64, _ = lstm_forward(**dict(p, Wh=p["Wh"].astype(np.float64)))
    assert h64.dtype == np.float64


def _snapshot(cache):
    return copy.deepcopy(cache)


def _assert_same(a, b):
    if isinstance(a, np.ndarray):
        assert np.array_equal(a, b)
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


def test_backward_does_not_modify_the_cache():
    p = lstm_params(2, 4, 3, 3, seed=41)
    dh, dc_last = upstream(2, 4, 3)
    _, _, cache = lstm_forward(**p, return_state=True)
    before = _snapshot(cache)
    first = lstm_backward(dh, cache, dc_last=dc_last, return_state=True)
    _assert_same(cache, before)
    second = lstm_backward(dh, cache, dc_last=dc_last, return_state=True)
    for a, b in zip(first, second):
        assert np.array_equal(a, b)

    x, h, c = p["x"][:, 0], p["h0"], p["c0"]
    _, _, step_cache = lstm_step_forward(x, h, c, p["Wx"], p["Wh"], p["b"])
    before = _snapshot(step_cache)
    first = lstm_step_backward(dh[:, 0], dc_last, step_cache)
    _assert_same(step_cache, before)
    for a, b in zip(first, lstm_step_backward(dh[:, 0], dc_last, step_cache)):
        assert np.array_equal(a, b)


def test_final_cell_state_is_not_a_view_of_the_cache():
    p = lstm_params(2, 3, 3, 2, seed=43)
    dh, dc_last = upstream(2, 3, 2)
    h, c_last, cache = lstm_forward(**p, return_state=True)
    first = lstm_backward(dh, cache, dc_last=dc_last, return_state=True)
    c_last += 1.0
    for a, b in zip(first, lstm_backward(dh, cache, dc_last=dc_last, return_state=True)):
        assert np.array_equal(a, b)


def test_forward_does_not_modify_its_inputs():
    p = lstm_params(2, 3, 3, 2, seed=42)
    before = _snapshot(p)
    lstm_forward(**p)
    lstm_step_forward(p["x"][:, 0], p["h0"], p["c0"], p["Wx"], p["Wh"], p["b"])
    for k in p:
        assert np.array_equal(p[k], before[k]), k


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_inputs_are_finite_without_warnings(dtype):
    N, T, D, H = 3, 6, 4, 5
    p = lstm_params(N, T, D, H, dtype, seed=51)
    rng = np.random.default_rng(52)
    p["x"] = (rng.choice([-1e4, 1e4], (N, T, D)) * rng.random((N, T, D))).astype(dtype)
    p["h0"] = np.full((N, H), 1e4, dtype)
    p["c0"] = np.full((N, H), -1e4, dtype)
    dh, dc_last = upstream(N, T, H, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h, c_last, cache = lstm_forward(**p, return_state=True)
        grads = lstm_backward(dh, cache, dc_last=dc_last, return_state=True)
        step = lstm_step_forward(p["x"][:, 0], p["h0"], p["c0"], p["Wx"], p["Wh"], p["b"])
        step_grads = lstm_step_backward(dh[:, 0], dc_last, step[2])
    for a in (h, c_last, *grads, *step[:2], *step_grads):
        assert np.all(np.isfinite(a))
    assert np.all(np.abs(h) <= 1)


# ------------------------------------------------------------ input checks


def _bad(**changes):
    p = lstm_params(4, 2, 3, 5, seed=61)
    p.update(changes)
    return p


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(x=np.zeros((4, 3))), "x has shape (4, 3); expected (N, T, D) with 3 dimensions"),
        (dict(x=np.zeros((4, 0, 3))), "x has shape (4, 0, 3); expected at least one time step (T >= 1)"),
        (dict(x=np.zeros((4, 2, 3), dtype=np.int64)), "x has dtype int64; expected a floating-point array"),
        (dict(h0=np.zeros((4, 3))), "h0 has shape (4, 3); expected (N, H) = (4, 5)"),
        (dict(h0=np.zeros(5)), "h0 has shape (5,); expected (N, H) with 2 dimensions"),
        (dict(c0=np.zeros((3, 5))), "c0 has shape (3, 5); expected (N, H) = (4, 5)"),
        (dict(Wx=np.zeros((3, 21))), "Wx has shape (3, 21); expected (D, 4H) = (3, 20)"),
        (dict(Wx=np.zeros((2, 20))), "Wx has shape (2, 20); expected (D, 4H) = (3, 20)"),
        (dict(Wh=np.zeros((5, 5))), "Wh has shape (5, 5); expected (H, 4H) = (5, 20)"),
        (dict(b=np.zeros(5)), "b has shape (5,); expected (4H) = (20,)"),
        (dict(b=np.zeros((1, 20))), "b has shape (1, 20); expected (4H) with 1 dimension"),
        (dict(Wh=np.zeros((5, 20), dtype=np.int32)), "Wh has dtype int32; expected a floating-point array"),
    ],
)
def test_forward_rejects_bad_input(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        lstm_forward(**_bad(**changes))


def test_wx_message_from_the_brief():
    p = lstm_params(2, 2, 3, 4, seed=62)
    with pytest.raises(ValueError, match=re.escape("Wx has shape (3, 20); expected (D, 4H) = (3, 16)")):
        lstm_forward(**dict(p, Wx=np.zeros((3, 20))))


def test_step_rejects_bad_input():
    p = lstm_params(4, 1, 3, 5, seed=63)
    x, h, c = p["x"][:, 0], p["h0"], p["c0"]
    with pytest.raises(ValueError, match=re.escape("prev_c has shape (4, 3); expected (N, H) = (4, 5)")):
        lstm_step_forward(x, h, np.zeros((4, 3)), p["Wx"], p["Wh"], p["b"])
    with pytest.raises(ValueError, match=re.escape("x has shape (4, 1, 3); expected (N, D) with 2 dimensions")):
        lstm_step_forward(p["x"], h, c, p["Wx"], p["Wh"], p["b"])
    _, _, cache = lstm_step_forward(x, h, c, p["Wx"], p["Wh"], p["b"])
    with pytest.raises(ValueError, match=re.escape("dnext_c has shape (4, 4); expected (N, H) = (4, 5)")):
        lstm_step_backward(np.zeros((4, 5)), np.zeros((4, 4)), cache)


def test_backward_rejects_bad_upstream_gradients():
    p = lstm_params(4, 2, 3, 5, seed=64)
    _, cache = lstm_forward(**p)
    with pytest.raises(ValueError, match=re.escape("dh has shape (4, 3, 5); expected (N, T, H) = (4, 2, 5)")):
        lstm_backward(np.zeros((4, 3, 5)), cache)
    with pytest.raises(ValueError, match=re.escape("dc_last has shape (5, 4); expected (N, H) = (4, 5)")):
        lstm_backward(np.zeros((4, 2, 5)), cache, dc_last=np.zeros((5, 4)))
    with pytest.raises(ValueError, match=re.escape("dh has dtype int64; expected a floating-point array")):
        lstm_backward(np.zeros((4, 2, 5), dtype=np.int64), cache)
