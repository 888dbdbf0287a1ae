"""Tests for rnncourse.numpy.gru: step and sequence, both reset conventions.

Independent truths: finite differences in float64 (gradcheck), torch.nn.GRU
autograd (reset_after=True) in float64 and float32 with non-zero biases, and
for reset_after=False (which torch.nn.GRU does not offer) the equations
written directly in torch here and differentiated by autograd.
"""

import copy
import re
import warnings

import numpy as np
import pytest
import torch

from rnncourse.numpy import gradcheck
from rnncourse.numpy.gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from rnncourse.testing import assert_close

DTYPES = [np.float64, np.float32]
RESETS = [True, False]
SHAPES = [(1, 1, 1, 1), (1, 4, 3, 2), (3, 1, 2, 4), (2, 3, 4, 5), (4, 6, 3, 3)]  # N, T, D, H
SMALL_SHAPES = [(1, 1, 1, 1), (2, 3, 4, 3), (3, 4, 2, 2)]
GRAD_NAMES = ["dx", "dh0", "dWx", "dWh", "dbx", "dbh"]


def gru_params(N, T, D, H, dtype=np.float64, seed=0):
    """Random inputs and weights; the biases are drawn away from zero so a dropped bias shows."""
    rng = np.random.default_rng(seed)
    p = dict(
        x=rng.standard_normal((N, T, D)),
        h0=rng.standard_normal((N, H)),
        Wx=0.7 * rng.standard_normal((D, 3 * H)),
        Wh=0.7 * rng.standard_normal((H, 3 * H)),
        bx=rng.choice([-1, 1], 3 * H) * (0.3 + rng.random(3 * H)),
        bh=rng.choice([-1, 1], 3 * H) * (0.3 + rng.random(3 * H)),
    )
    return {k: v.astype(dtype) for k, v in p.items()}


def upstream(N, T, H, dtype=np.float64, seed=1):
    return np.random.default_rng(seed).standard_normal((N, T, H)).astype(dtype)


def torch_gru(x, h0, Wx, Wh, bx, bh, dh):
    """torch.nn.GRU with our weights, and its autograd gradients."""
    D, H = Wx.shape[0], Wh.shape[0]
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    gru = torch.nn.GRU(D, H, batch_first=True, dtype=dtype)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(Wx.T.copy()))
        gru.weight_hh_l0.copy_(torch.from_numpy(Wh.T.copy()))
        gru.bias_ih_l0.copy_(torch.from_numpy(bx))
        gru.bias_hh_l0.copy_(torch.from_numpy(bh))
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    out, h_n = gru(xt, h0t)
    out.backward(torch.from_numpy(dh))
    return dict(
        h=out, h_last=h_n[0], dx=xt.grad, dh0=h0t.grad[0], dWx=gru.weight_ih_l0.grad.T,
        dWh=gru.weight_hh_l0.grad.T, dbx=gru.bias_ih_l0.grad, dbh=gru.bias_hh_l0.grad,
    )  # fmt: skip


def torch_gru_by_hand(x, h0, Wx, Wh, bx, bh, dh, reset_after):
    """The GRU equations written out in torch, both conventions, differentiated by autograd."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in dict(x=x, h0=h0, Wx=Wx, Wh=Wh, bx=bx, bh=bh).items()}
    H = h0.shape[1]
    Wxr, Wxz, Wxn = t["Wx"].split(H, dim=1)
    Whr, Whz, Whn = t["Wh"].split(H, dim=1)
    bxr, bxz, bxn = t["bx"].split(H)
    bhr, bhz, bhn = t["bh"].split(H)
    h, hs = t["h0"], []
    for step in range(x.shape[1]):
        x_t = t["x"][:, step]
        r = torch.sigmoid(x_t @ Wxr + bxr + h @ Whr + bhr)
        z = torch.sigmoid(x_t @ Wxz + bxz + h @ Whz + bhz)
        if reset_after:
            n = torch.tanh(x_t @ Wxn + bxn + r * (h @ Whn + bhn))
        else:
            n = torch.tanh(x_t @ Wxn + bxn + (r * h) @ Whn + bhn)
        h = (1 - z) * n + z * h
        hs.append(h)
    out = torch.stack(hs, dim=1)
    out.backward(torch.from_numpy(dh))
    return dict(h=out, h_last=h, **{"d" + k: v.grad for k, v in t.items()})


def ours(p, dh, reset_after=True):
    h, cache = gru_forward(**p, reset_after=reset_after)
    grads = gru_backward(dh, cache)
    return dict(h=h, h_last=h[:, -1], **dict(zip(GRAD_NAMES, grads)))


def assert_all_close(got, want):
    for name in want:
        assert_close(got[name], want[name], name)


# ------------------------------------------------------------ against PyTorch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, T, D, H", SHAPES)
def test_sequence_matches_torch(N, T, D, H, dtype):
    p = gru_params(N, T, D, H, dtype, seed=N * 1000 + T * 100 + D * 10 + H)
    dh = upstream(N, T, H, dtype)
    got = ours(p, dh)
    for name, value in got.items():
        assert value.dtype == dtype, f"{name} has dtype {value.dtype}; expected {dtype}"
    assert_all_close(got, torch_gru(**p, dh=dh))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, T, D, H", SHAPES[1:4])
def test_reset_before_matches_the_equations_in_torch(N, T, D, H, dtype):
    p = gru_params(N, T, D, H, dtype, seed=N * 1000 + T * 100 + D * 10 + H + 1)
    dh = upstream(N, T, H, dtype)
    got = ours(p, dh, reset_after=False)
    for name, value in got.items():
        assert value.dtype == dtype, f"{name} has dtype {value.dtype}; expected {dtype}"
    assert_all_close(got, torch_gru_by_hand(**p, dh=dh, reset_after=False))


def test_the_hand_written_torch_reference_is_torch_nn_gru():
    """The reference for reset_after=False is trusted because, with reset_after=True, it is torch.nn.GRU."""
    p = gru_params(2, 3, 4, 5, seed=12)
    dh = upstream(2, 3, 5)
    assert_all_close(torch_gru_by_hand(**p, dh=dh, reset_after=True), torch_gru(**p, dh=dh))


@pytest.mark.parametrize("reset_after", RESETS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_step_matches_torch(dtype, reset_after):
    N, D, H = 3, 4, 5
    p = gru_params(N, 1, D, H, dtype, seed=3)
    dnext_h = upstream(N, 1, H, dtype, seed=4)
    next_h, cache = gru_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["bx"], p["bh"], reset_after=reset_after)
    grads = gru_step_backward(dnext_h[:, 0], cache)
    want = torch_gru_by_hand(**p, dh=dnext_h, reset_after=reset_after)
    assert_close(next_h, want["h_last"], "next_h")
    for name, got in zip(["dx", "dprev_h", "dWx", "dWh", "dbx", "dbh"], grads):
        assert got.dtype == dtype, name
        truth = {"dx": want["dx"][:, 0], "dprev_h": want["dh0"]}.get(name, want.get(name))
        assert_close(got, truth, name)


def test_step_matches_torch_gru_cell():
    N, D, H = 3, 4, 5
    p = gru_params(N, 1, D, H, seed=13)
    next_h, _ = gru_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["bx"], p["bh"])
    cell = torch.nn.GRUCell(D, H, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(p["Wx"].T.copy()))
        cell.weight_hh.copy_(torch.from_numpy(p["Wh"].T.copy()))
        cell.bias_ih.copy_(torch.from_numpy(p["bx"]))
        cell.bias_hh.copy_(torch.from_numpy(p["bh"]))
        assert_close(next_h, cell(torch.from_numpy(p["x"][:, 0]), torch.from_numpy(p["h0"])), "next_h")


# ------------------------------------------------------------ must be able to fail


def _permute_gates(W, order):
    H = W.shape[-1] // 3
    return np.concatenate([W[..., k * H : (k + 1) * H] for k in order], axis=-1)


@pytest.mark.parametrize(
    "bug", ["swap r and z", "swap z and n", "drop bh", "drop bx", "merge the biases", "reset before"]
)
def test_torch_comparison_catches_realistic_bugs(bug):
    p = gru_params(2, 3, 4, 4, seed=5)
    dh = upstream(2, 3, 4)
    want = torch_gru(**p, dh=dh)
    buggy, reset_after = dict(p), True
    if bug.startswith("swap"):
        order = [1, 0, 2] if bug == "swap r and z" else [0, 2, 1]
        buggy.update({k: _permute_gates(p[k], order) for k in ("Wx", "Wh", "bx", "bh")})
    elif bug == "drop bh":
        buggy["bh"] = np.zeros_like(p["bh"])
    elif bug == "drop bx":
        buggy["bx"] = np.zeros_like(p["bx"])
    elif bug == "merge the biases":
        # right for r and z, wrong for n: bhn sits inside r * (h Whn + bhn)
        buggy.update(bx=p["bx"] + p["bh"], bh=np.zeros_like(p["bh"]))
    else:
        reset_after = False
    with pytest.raises(AssertionError):
        assert_close(ours(buggy, dh, reset_after)["h"], want["h"], "h")


def test_gradcheck_catches_a_wrong_bias_gradient():
    """dbh = dbx holds for r and z only; a backward that returns dbx for dbh must fail."""
    p = gru_params(2, 3, 3, 2, seed=9)
    dh = upstream(2, 3, 2)
    _, cache = gru_forward(**p)
    grads = dict(zip(GRAD_NAMES, gru_backward(dh, cache)))
    report = gradcheck(lambda **a: gru_forward(**a)[0], p, dict(bh=grads["dbx"]), dh)
    assert not report.ok
    report = gradcheck(lambda **a: gru_forward(**a)[0], p, dict(bh=grads["dbh"]), dh)
    assert report.ok, str(report)


# ------------------------------------------------------------ gradcheck (float64)


@pytest.mark.parametrize("reset_after", RESETS)
@pytest.mark.parametrize("N, T, D, H", SMALL_SHAPES)
def test_step_gradcheck(N, T, D, H, reset_after):
    p = gru_params(N, 1, D, H, seed=N + 10 * D + 100 * H)
    dnext_h = upstream(N, 1, H, seed=3)[:, 0]
    inputs = dict(x=p["x"][:, 0], prev_h=p["h0"], Wx=p["Wx"], Wh=p["Wh"], bx=p["bx"], bh=p["bh"])
    _, cache = gru_step_forward(**inputs, reset_after=reset_after)
    grads = gru_step_backward(dnext_h, cache)
    report = gradcheck(
        lambda **a: gru_step_forward(**a, reset_after=reset_after)[0], inputs, dict(zip(inputs, grads)), dnext_h
    )
    assert report.ok, str(report)


@pytest.mark.parametrize("reset_after", RESETS)
@pytest.mark.parametrize("N, T, D, H", SMALL_SHAPES)
def test_sequence_gradcheck(N, T, D, H, reset_after):
    p = gru_params(N, T, D, H, seed=N + 10 * T + 100 * D)
    dh = upstream(N, T, H)
    _, cache = gru_forward(**p, reset_after=reset_after)
    grads = gru_backward(dh, cache)
    report = gradcheck(lambda **a: gru_forward(**a, reset_after=reset_after)[0], p, dict(zip(p, grads)), dh)
    assert report.ok, str(report)


# ------------------------------------------------------------ sequence = loop of steps


@pytest.mark.parametrize("reset_after", RESETS)
def test_sequence_equals_looping_the_step(reset_after):
    N, T, D, H = 3, 5, 4, 2
    p = gru_params(N, T, D, H, seed=21)
    dh = upstream(N, T, H, seed=22)
    h, cache = gru_forward(**p, reset_after=reset_after)
    dx, dh0, dWx, dWh, dbx, dbh = gru_backward(dh, cache)

    prev_h, caches = p["h0"], []
    for t in range(T):
        prev_h, step_cache = gru_step_forward(
            p["x"][:, t], prev_h, p["Wx"], p["Wh"], p["bx"], p["bh"], reset_after=reset_after
        )
        assert_close(h[:, t], prev_h, f"h[:, {t}]")
        caches.append(step_cache)

    dprev_h = np.zeros((N, H))
    loop = dict(dx=np.zeros_like(dx), dWx=0, dWh=0, dbx=0, dbh=0)
    for t in reversed(range(T)):
        dx_t, dprev_h, dWx_t, dWh_t, dbx_t, dbh_t = gru_step_backward(dh[:, t] + dprev_h, caches[t])
        loop["dx"][:, t] = dx_t
        for name, g in dict(dWx=dWx_t, dWh=dWh_t, dbx=dbx_t, dbh=dbh_t).items():
            loop[name] = loop[name] + g
    for name, got in dict(dx=dx, dWx=dWx, dWh=dWh, dbx=dbx, dbh=dbh, dh0=dh0).items():
        assert_close(got, dict(loop, dh0=dprev_h)[name], name)


def test_loop_comparison_catches_a_stale_state():
    p = gru_params(2, 3, 2, 3, seed=23)
    h, _ = gru_forward(**p)
    stale = gru_step_forward(p["x"][:, 2], p["h0"], p["Wx"], p["Wh"], p["bx"], p["bh"])[0]
    with pytest.raises(AssertionError):
        assert_close(h[:, 2], stale, "h[:, 2]")


# ------------------------------------------------------------ dtypes, cache, extremes


@pytest.mark.parametrize("reset_after", RESETS)
def test_float32_in_float32_out_and_promotion(reset_after):
    p = gru_params(2, 3, 4, 5, np.float32, seed=31)
    dh = upstream(2, 3, 5, np.float32)
    h, cache = gru_forward(**p, reset_after=reset_after)
    assert all(a.dtype == np.float32 for a in (h, *gru_backward(dh, cache)))
    x, h0 = p["x"][:, 0], p["h0"]
    next_h, step_cache = gru_step_forward(x, h0, p["Wx"], p["Wh"], p["bx"], p["bh"], reset_after=reset_after)
    assert all(a.dtype == np.float32 for a in (next_h, *gru_step_backward(dh[:, 0], step_cache)))
    h64, _ = gru_forward(**dict(p, bh=p["bh"].astype(np.float64)), reset_after=reset_after)
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


@pytest.mark.parametrize("reset_after", RESETS)
def test_backward_does_not_modify_the_cache(reset_after):
    p = gru_params(2, 4, 3, 3, seed=41)
    dh = upstream(2, 4, 3)
    _, cache = gru_forward(**p, reset_after=reset_after)
    before = copy.deepcopy(cache)
    first = gru_backward(dh, cache)
    _assert_same(cache, before)
    for a, b in zip(first, gru_backward(dh, cache)):
        assert np.array_equal(a, b)

    x, h0 = p["x"][:, 0], p["h0"]
    _, step_cache = gru_step_forward(x, h0, p["Wx"], p["Wh"], p["bx"], p["bh"], reset_after=reset_after)
    before = copy.deepcopy(step_cache)
    first = gru_step_backward(dh[:, 0], step_cache)
    _assert_same(step_cache, before)
    for a, b in zip(first, gru_step_backward(dh[:, 0], step_cache)):
        assert np.array_equal(a, b)


def test_forward_and_backward_do_not_modify_their_inputs():
    p = gru_params(2, 3, 3, 2, seed=42)
    dh = upstream(2, 3, 2)
    before, dh_before = copy.deepcopy(p), dh.copy()
    for reset_after in RESETS:
        _, cache = gru_forward(**p, reset_after=reset_after)
        gru_backward(dh, cache)
        gru_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["bx"], p["bh"], reset_after=reset_after)
    for k in p:
        assert np.array_equal(p[k], before[k]), k
    assert np.array_equal(dh, dh_before)


@pytest.mark.parametrize("reset_after", RESETS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_inputs_are_finite_without_warnings(dtype, reset_after):
    N, T, D, H = 3, 6, 4, 5
    p = gru_params(N, T, D, H, dtype, seed=51)
    rng = np.random.default_rng(52)
    p["x"] = (rng.choice([-1e4, 1e4], (N, T, D)) * rng.random((N, T, D))).astype(dtype)
    p["h0"] = np.full((N, H), 1e4, dtype)
    dh = upstream(N, T, H, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h, cache = gru_forward(**p, reset_after=reset_after)
        grads = gru_backward(dh, cache)
        x, h0 = p["x"][:, 0], p["h0"]
        next_h, step_cache = gru_step_forward(x, h0, p["Wx"], p["Wh"], p["bx"], p["bh"], reset_after=reset_after)
        step_grads = gru_step_backward(dh[:, 0], step_cache)
    for a in (h, *grads, next_h, *step_grads):
        assert np.all(np.isfinite(a))


# ------------------------------------------------------------ input checks


def _bad(**changes):
    p = gru_params(4, 2, 3, 5, seed=61)
    p.update(changes)
    return p


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(x=np.zeros((4, 3))), "x has shape (4, 3); expected (N, T, D) with 3 dimensions"),
        (dict(x=np.zeros((4, 0, 3))), "x has shape (4, 0, 3); expected at least one time step (T >= 1)"),
        (dict(x=np.zeros((4, 2, 3), dtype=np.int64)), "x has dtype int64; expected a floating-point array"),
        (dict(h0=np.zeros((4, 3))), "h0 has shape (4, 3); expected (N, H) = (4, 5)"),
        (dict(Wx=np.zeros((3, 20))), "Wx has shape (3, 20); expected (D, 3H) = (3, 15)"),
        (dict(Wh=np.zeros((5, 20))), "Wh has shape (5, 20); expected (H, 3H) = (5, 15)"),
        (dict(bx=np.zeros(5)), "bx has shape (5,); expected (3H) = (15,)"),
        (dict(bh=np.zeros(14)), "bh has shape (14,); expected (3H) = (15,)"),
        (dict(bh=np.zeros(15, dtype=np.int8)), "bh has dtype int8; expected a floating-point array"),
    ],
)
def test_forward_rejects_bad_input(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        gru_forward(**_bad(**changes))


def test_step_and_backward_reject_bad_input():
    p = gru_params(4, 2, 3, 5, seed=63)
    x, h0, Wx, Wh, bx, bh = p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["bx"], p["bh"]
    with pytest.raises(ValueError, match=re.escape("prev_h has shape (4, 3); expected (N, H) = (4, 5)")):
        gru_step_forward(x, np.zeros((4, 3)), Wx, Wh, bx, bh)
    with pytest.raises(ValueError, match=re.escape("x has shape (4, 2, 3); expected (N, D) with 2 dimensions")):
        gru_step_forward(p["x"], h0, Wx, Wh, bx, bh)
    _, step_cache = gru_step_forward(x, h0, Wx, Wh, bx, bh)
    with pytest.raises(ValueError, match=re.escape("dnext_h has shape (4, 4); expected (N, H) = (4, 5)")):
        gru_step_backward(np.zeros((4, 4)), step_cache)
    _, cache = gru_forward(**p)
    with pytest.raises(ValueError, match=re.escape("dh has shape (4, 2, 4); expected (N, T, H) = (4, 2, 5)")):
        gru_backward(np.zeros((4, 2, 4)), cache)
