"""Truncated BPTT, RTRL and gradient norms through time, against full BPTT and torch autograd."""

import numpy as np
import pytest
import torch

from rnncourse.numpy import (
    gradient_norm_bound,
    gradient_norms_through_time,
    rnn_backward,
    rnn_forward,
    rtrl,
    scale_to_spectral_norm,
    truncated_bptt,
)
from rnncourse.testing import assert_close

TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}
KEYS = ("Wx", "Wh", "b")


def _rnn_problem(seed, N, T, D, H, dtype=np.float64, scale=0.6):
    """Inputs, parameters (non-zero bias) and regression targets y for a squared loss."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype)
    Wx = (scale * rng.standard_normal((D, H))).astype(dtype)
    Wh = (scale * rng.standard_normal((H, H)) / np.sqrt(H)).astype(dtype)
    b = rng.standard_normal(H).astype(dtype)
    y = rng.standard_normal((N, T, H)).astype(dtype)
    return x, h0, Wx, Wh, b, y


def _squared_loss_grad(y):
    """loss_grad for L_t = 0.5 * ||h_t - y_t||^2, which depends on h_t itself."""
    return lambda h_t, t: h_t - y[:, t]


def _full_bptt(x, h0, Wx, Wh, b, y, nonlinearity="tanh"):
    h, cache = rnn_forward(x, h0, Wx, Wh, b, nonlinearity=nonlinearity)
    _, dh0, dWx, dWh, db = rnn_backward(h - y, cache)
    return {"Wx": dWx, "Wh": dWh, "b": db, "h0": dh0}, h[:, -1]


def _torch_params(Wx, Wh, b):
    return [torch.tensor(a, requires_grad=True) for a in (Wx, Wh, b)]


def _torch_step(x_t, h, Wx, Wh, b):
    return torch.tanh(x_t @ Wx + h @ Wh + b)


# --- truncated BPTT ---------------------------------------------------------------------


@pytest.mark.parametrize("k1, k2", [(7, 7), (10, 20), (7, 9)])
def test_a_window_covering_the_sequence_is_full_bptt(k1, k2):
    x, h0, Wx, Wh, b, y = _rnn_problem(0, N=3, T=7, D=4, H=5)
    updates, h_last = truncated_bptt(x, h0, Wx, Wh, b, _squared_loss_grad(y), k1, k2)
    full, full_h_last = _full_bptt(x, h0, Wx, Wh, b, y)
    assert len(updates) == 1
    for k in KEYS:
        assert_close(updates[0][k], full[k], f"d{k}")
    assert_close(h_last, full_h_last, "h_last")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "seed, N, T, D, H, k", [(1, 2, 12, 3, 4, 4), (2, 3, 10, 2, 5, 3), (3, 1, 9, 4, 3, 1), (4, 2, 5, 3, 3, 2)]
)
def test_chunked_truncation_matches_torch_with_detach(seed, N, T, D, H, k, dtype):
    """k1 = k2 = k is PyTorch's `h = h.detach()` every k steps (the last chunk may be shorter)."""
    x, h0, Wx, Wh, b, y = _rnn_problem(seed, N, T, D, H, dtype)
    updates, h_last = truncated_bptt(x, h0, Wx, Wh, b, _squared_loss_grad(y), k)

    Wx_t, Wh_t, b_t = _torch_params(Wx, Wh, b)
    xt, yt, h = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(h0)
    expected = []
    for start in range(0, T, k):
        h = h.detach()
        loss = 0
        for t in range(start, min(start + k, T)):
            h = _torch_step(xt[:, t], h, Wx_t, Wh_t, b_t)
            loss = loss + 0.5 * ((h - yt[:, t]) ** 2).sum()
        expected.append(torch.autograd.grad(loss, (Wx_t, Wh_t, b_t)))

    assert len(updates) == len(expected) == -(-T // k)
    for i, (ours, theirs) in enumerate(zip(updates, expected)):
        for key, g in zip(KEYS, theirs):
            assert ours[key].dtype == dtype
            assert_close(ours[key], g, f"update {i}: d{key}")
    assert_close(h_last, h, "h_last")


def _truncated_by_definition(x, h0, Wx, Wh, b, y, k1, k2):
    """BPTT(k1, k2) written out: for each block of steps t0 .. e, run the
    window [max(0, t0 - (k2 - k1)), e] from the true (detached) state before
    it, and differentiate the losses of the block's steps."""
    T = x.shape[1]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    with torch.no_grad():  # the true states h_{-1} (= h0), h_0, ..., h_{T-1}
        states = [torch.from_numpy(h0)]
        for t in range(T):
            states.append(_torch_step(xt[:, t], states[-1], *map(torch.from_numpy, (Wx, Wh, b))))
    Wx_t, Wh_t, b_t = _torch_params(Wx, Wh, b)
    grads = []
    for t0 in range(0, T, k1):
        e = min(t0 + k1, T) - 1
        s = max(0, t0 - (k2 - k1))
        h, loss = states[s], 0  # states[s] is h_{s-1}, a constant
        for t in range(s, e + 1):
            h = _torch_step(xt[:, t], h, Wx_t, Wh_t, b_t)
            if t >= t0:
                loss = loss + 0.5 * ((h - yt[:, t]) ** 2).sum()
        grads.append(torch.autograd.grad(loss, (Wx_t, Wh_t, b_t)))
    return grads


@pytest.mark.parametrize("T, k1, k2", [(12, 2, 5), (11, 3, 4), (9, 1, 3), (10, 4, 100)])
def test_general_k1_k2_matches_its_definition(T, k1, k2):
    x, h0, Wx, Wh, b, y = _rnn_problem(T + k1 + k2, N=2, T=T, D=3, H=4)
    updates, _ = truncated_bptt(x, h0, Wx, Wh, b, _squared_loss_grad(y), k1, k2)
    expected = _truncated_by_definition(x, h0, Wx, Wh, b, y, k1, k2)
    assert len(updates) == len(expected)
    for i, (ours, theirs) in enumerate(zip(updates, expected)):
        for key, g in zip(KEYS, theirs):
            assert_close(ours[key], g, f"update {i}: d{key}")


def test_truncation_changes_the_gradient():
    """The checks above can fail: windows of different depth give different gradients."""
    x, h0, Wx, Wh, b, y = _rnn_problem(5, N=2, T=12, D=3, H=4)
    loss_grad = _squared_loss_grad(y)
    short, _ = truncated_bptt(x, h0, Wx, Wh, b, loss_grad, 3, 3)
    long, _ = truncated_bptt(x, h0, Wx, Wh, b, loss_grad, 3, 6)
    expected = _truncated_by_definition(x, h0, Wx, Wh, b, y, 3, 6)
    with pytest.raises(AssertionError, match="dWh"):
        assert_close(short[2]["Wh"], expected[2][1], "dWh")
    assert_close(long[2]["Wh"], expected[2][1], "dWh")
    # and the sum of chunked updates is not full BPTT
    full, _ = _full_bptt(x, h0, Wx, Wh, b, y)
    with pytest.raises(AssertionError):
        assert_close(sum(u["Wh"] for u in short), full["Wh"], "dWh")


def test_loss_grad_is_called_once_per_step_in_order_and_may_return_none():
    x, h0, Wx, Wh, b, y = _rnn_problem(6, N=2, T=10, D=3, H=4)
    calls = []

    def last_step_of_each_chunk(h_t, t):
        calls.append(t)
        return h_t - y[:, t] if t % 4 == 3 or t == 9 else None

    updates, _ = truncated_bptt(x, h0, Wx, Wh, b, last_step_of_each_chunk, 4, 6)
    assert calls == list(range(10))
    dense = np.zeros_like(y)
    for t in (3, 7, 9):
        dense[:, t] = 1
    masked_y = lambda h_t, t: (h_t - y[:, t]) * dense[:, t]  # noqa: E731
    same, _ = truncated_bptt(x, h0, Wx, Wh, b, masked_y, 4, 6)
    for u, v in zip(updates, same):
        for k in KEYS:
            assert_close(u[k], v[k], f"d{k}")


def test_carrying_the_state_across_calls_equals_one_call():
    """Stateful: two stretches with h0 = previous h_last give the updates of one long stretch."""
    x, h0, Wx, Wh, b, y = _rnn_problem(7, N=2, T=12, D=3, H=4)
    whole, h_whole = truncated_bptt(x, h0, Wx, Wh, b, _squared_loss_grad(y), 3)
    first, h_mid = truncated_bptt(x[:, :6], h0, Wx, Wh, b, _squared_loss_grad(y[:, :6]), 3)
    second, h_end = truncated_bptt(x[:, 6:], h_mid, Wx, Wh, b, _squared_loss_grad(y[:, 6:]), 3)
    for u, v in zip(whole, first + second):
        for k in KEYS:
            assert_close(u[k], v[k], f"d{k}")
    assert_close(h_end, h_whole, "h_last")


def test_truncated_bptt_errors():
    x, h0, Wx, Wh, b, y = _rnn_problem(0, N=2, T=5, D=3, H=4)
    lg = _squared_loss_grad(y)
    with pytest.raises(ValueError, match=r"k2 = 2 < k1 = 3; expected k2 >= k1"):
        truncated_bptt(x, h0, Wx, Wh, b, lg, 3, 2)
    with pytest.raises(ValueError, match=r"k1 is 0; expected an integer >= 1"):
        truncated_bptt(x, h0, Wx, Wh, b, lg, 0)
    with pytest.raises(ValueError, match=r"h0 has shape \(3, 4\); expected \(N, H\) = \(2, 4\)"):
        truncated_bptt(x, np.zeros((3, 4)), Wx, Wh, b, lg, 2)
    with pytest.raises(ValueError, match=r"Wx has shape \(2, 4\); expected \(D, H\) = \(3, 4\)"):
        truncated_bptt(x, h0, Wx[:2], Wh, b, lg, 2)
    with pytest.raises(ValueError, match=r"loss_grad\(h_t, t=0\) has shape \(2, 3\); expected \(N, H\) = \(2, 4\)"):
        truncated_bptt(x, h0, Wx, Wh, b, lambda h, t: h[:, :3], 2)
    with pytest.raises(ValueError, match=r"nonlinearity is 'sigmoid'"):
        truncated_bptt(x, h0, Wx, Wh, b, lg, 2, nonlinearity="sigmoid")


# --- RTRL -------------------------------------------------------------------------------


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("seed, N, T, D, H", [(0, 2, 6, 3, 4), (1, 3, 9, 2, 5), (2, 1, 1, 4, 3), (3, 2, 4, 1, 2)])
def test_rtrl_equals_full_bptt(seed, N, T, D, H, nonlinearity):
    x, h0, Wx, Wh, b, y = _rnn_problem(seed, N, T, D, H)
    grads, h_last = rtrl(x, h0, Wx, Wh, b, _squared_loss_grad(y), nonlinearity=nonlinearity)
    full, full_h_last = _full_bptt(x, h0, Wx, Wh, b, y, nonlinearity)
    for k in ("Wx", "Wh", "b", "h0"):
        assert grads[k].shape == full[k].shape
        assert_close(grads[k], full[k], f"d{k}")
    assert_close(h_last, full_h_last, "h_last")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rtrl_matches_torch_autograd(dtype):
    x, h0, Wx, Wh, b, y = _rnn_problem(9, N=2, T=7, D=3, H=4, dtype=dtype)
    grads, _ = rtrl(x, h0, Wx, Wh, b, _squared_loss_grad(y))
    Wx_t, Wh_t, b_t = _torch_params(Wx, Wh, b)
    h0_t = torch.tensor(h0, requires_grad=True)
    h, loss = h0_t, 0
    for t in range(x.shape[1]):
        h = _torch_step(torch.from_numpy(x[:, t]), h, Wx_t, Wh_t, b_t)
        loss = loss + 0.5 * ((h - torch.from_numpy(y[:, t])) ** 2).sum()
    expected = torch.autograd.grad(loss, (Wx_t, Wh_t, b_t, h0_t))
    for key, g in zip(("Wx", "Wh", "b", "h0"), expected):
        assert grads[key].dtype == dtype
        assert_close(grads[key], g, f"d{key}")


def test_rtrl_without_its_recurrent_term_would_fail():
    """A sensitivity that forgets `sum_m Wh[m, k] P_{t-1}` gives the one-step
    truncated gradient, BPTT(1, 1); the comparison with full BPTT catches it."""
    x, h0, Wx, Wh, b, y = _rnn_problem(4, N=2, T=6, D=3, H=4)
    full, _ = _full_bptt(x, h0, Wx, Wh, b, y)
    one_step, _ = truncated_bptt(x, h0, Wx, Wh, b, _squared_loss_grad(y), 1)
    forgetful = {k: sum(u[k] for u in one_step) for k in KEYS}
    for k in KEYS:
        with pytest.raises(AssertionError, match=f"d{k}"):
            assert_close(forgetful[k], full[k], f"d{k}")
    # the loss at step 0 alone needs no recurrent term: there both agree
    only_first = lambda h_t, t: h_t - y[:, t] if t == 0 else None  # noqa: E731
    grads, _ = rtrl(x, h0, Wx, Wh, b, only_first)
    first = truncated_bptt(x, h0, Wx, Wh, b, only_first, 1)[0][0]
    for k in KEYS:
        assert_close(grads[k], first[k], f"d{k}")


def test_rtrl_errors():
    x, h0, Wx, Wh, b, y = _rnn_problem(0, N=2, T=5, D=3, H=4)
    with pytest.raises(ValueError, match=r"b has shape \(3,\); expected \(H\) = \(4,\)"):
        rtrl(x, h0, Wx, Wh, b[:3], _squared_loss_grad(y))
    with pytest.raises(ValueError, match=r"x has dtype int64"):
        rtrl(x.astype(np.int64), h0, Wx, Wh, b, _squared_loss_grad(y))
    with pytest.raises(ValueError, match=r"loss_grad\(h_t, t=0\) has dtype int64"):
        rtrl(x, h0, Wx, Wh, b, lambda h, t: np.zeros(h.shape, dtype=np.int64))


def test_bptt_tools_stay_finite_on_extreme_inputs():
    x, h0, Wx, Wh, b, y = _rnn_problem(0, N=2, T=5, D=3, H=4)
    x, h0 = 1e4 * x, 1e4 * h0
    grads, _ = rtrl(x, h0, Wx, Wh, b, _squared_loss_grad(y))
    updates, _ = truncated_bptt(x, h0, Wx, Wh, b, _squared_loss_grad(y), 2, 3)
    norms = gradient_norms_through_time(x, h0, Wx, Wh, b, np.ones((2, 4)))
    lstm_norms = gradient_norms_through_time(x, h0, np.tile(Wx, 4), np.tile(Wh, 4), np.tile(b, 4),
                                             np.ones((2, 4)), cell="lstm")
    for a in [*grads.values(), *updates[-1].values(), norms, lstm_norms]:
        assert np.all(np.isfinite(a))


# --- gradient norms through time ----------------------------------------------------------


def _torch_norms(x, h0, Wx, Wh, b, dh_last, cell, c0=None, nonlinearity="tanh"):
    """||dL/dh_t|| with retain_grad on every h_t."""
    xt = torch.from_numpy(x)
    Wx_t, Wh_t, b_t = (torch.from_numpy(a) for a in (Wx, Wh, b))
    h = torch.from_numpy(h0).requires_grad_()  # so that every h_t is part of the graph
    c, hs = None if c0 is None else torch.from_numpy(c0), []
    for t in range(x.shape[1]):
        if cell == "rnn":
            a = xt[:, t] @ Wx_t + h @ Wh_t + b_t
            h = torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a)
        else:
            i, f, g, o = (xt[:, t] @ Wx_t + h @ Wh_t + b_t).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        h.retain_grad()
        hs.append(h)
    (h * torch.from_numpy(dh_last)).sum().backward()
    return np.array([torch.linalg.norm(h_t.grad).item() for h_t in hs])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell, nonlinearity", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh")])
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_norms_match_torch_retain_grad(cell, nonlinearity, seed, dtype):
    G = 4 if cell == "lstm" else 1
    rng = np.random.default_rng(seed)
    N, T, D, H = 2, 8 + seed, 3, 4
    x = rng.standard_normal((N, T, D)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype)
    c0 = rng.standard_normal((N, H)).astype(dtype) if cell == "lstm" else None
    Wx = rng.standard_normal((D, G * H)).astype(dtype)
    Wh = (1.2 * rng.standard_normal((H, G * H)) / np.sqrt(H)).astype(dtype)
    b = rng.standard_normal(G * H).astype(dtype)
    dh_last = rng.standard_normal((N, H)).astype(dtype)
    norms = gradient_norms_through_time(x, h0, Wx, Wh, b, dh_last, cell=cell, c0=c0, nonlinearity=nonlinearity)
    expected = _torch_norms(x, h0, Wx, Wh, b, dh_last, cell, c0, nonlinearity)
    assert norms.shape == (T,)
    assert_close(norms, expected, "||dL/dh_t||", dtype=dtype)
    assert_close(norms[-1], np.linalg.norm(dh_last.astype(np.float64)), "||dL/dh_{T-1}||", dtype=dtype)


@pytest.mark.parametrize("sigma", [0.3, 0.9, 1.0, 1.5, 4.0])
@pytest.mark.parametrize("seed", range(4))
def test_gradient_norms_obey_the_bound(sigma, seed):
    rng = np.random.default_rng(seed)
    N, T, D, H = 3, 15, 2, 6
    Wh = scale_to_spectral_norm(rng.standard_normal((H, H)), sigma)
    x = rng.standard_normal((N, T, D))
    Wx, b = rng.standard_normal((D, H)), 0.5 * rng.standard_normal(H)
    h0, dh_last = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    norms = gradient_norms_through_time(x, h0, Wx, Wh, b, dh_last)
    bound = gradient_norm_bound(Wh, T, np.linalg.norm(dh_last))
    assert np.all(norms <= bound * (1 + 1e-12)), np.c_[norms, bound]
    # the bound is not vacuous: a step back never grows by more than sigma
    assert np.all(norms[:-1] <= sigma * norms[1:] * (1 + 1e-12))


def test_gradients_vanish_for_small_sigma_and_explode_for_large():
    rng = np.random.default_rng(0)
    N, T, D, H = 2, 20, 3, 8
    Q = np.linalg.qr(rng.standard_normal((H, H)))[0]  # orthogonal: all singular values 1
    x = 1e-4 * rng.standard_normal((N, T, D))  # keep tanh near its linear regime
    Wx, b, h0 = rng.standard_normal((D, H)), 1e-4 * rng.standard_normal(H), np.zeros((N, H))
    dh_last = rng.standard_normal((N, H))
    small = gradient_norms_through_time(x, h0, Wx, 0.5 * Q, b, dh_last)
    large = gradient_norms_through_time(x, h0, Wx, 1.5 * Q, b, dh_last)
    assert np.all(np.diff(small) > 0)  # shrinks with distance T-1-t
    assert small[0] < 1e-5 * small[-1]  # 0.5**19 ~ 2e-6
    assert np.all(np.diff(large) < 0)  # grows with distance
    assert large[0] > 1e3 * large[-1]  # 1.5**19 ~ 2e3


def test_spectral_norm_rescaling():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 5)).astype(np.float32)
    V = scale_to_spectral_norm(W, 0.7)
    assert V.dtype == np.float32
    np.testing.assert_allclose(np.linalg.svd(V.astype(np.float64), compute_uv=False)[0], 0.7, rtol=1e-6)
    singular_values = lambda A: np.linalg.svd(A.astype(np.float64), compute_uv=False)  # noqa: E731
    ratio = singular_values(V) / singular_values(W)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)  # all singular values scaled alike
    bound = gradient_norm_bound(V, 4, 2.0)
    np.testing.assert_allclose(bound, 2.0 * 0.7 ** np.array([3, 2, 1, 0]), rtol=1e-6)
    with pytest.raises(ValueError, match=r"W is all zeros"):
        scale_to_spectral_norm(np.zeros((3, 3)), 1.0)
    with pytest.raises(ValueError, match=r"sigma is -1; expected a number >= 0"):
        scale_to_spectral_norm(W, -1)


def test_gradient_norms_errors():
    rng = np.random.default_rng(0)
    x, h0 = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 4))
    Wx, Wh, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 4)), rng.standard_normal(4)
    with pytest.raises(ValueError, match=r"dh_last has shape \(2, 3\); expected \(N, H\) = \(2, 4\)"):
        gradient_norms_through_time(x, h0, Wx, Wh, b, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"cell is 'gru'; expected 'rnn' or 'lstm'"):
        gradient_norms_through_time(x, h0, Wx, Wh, b, np.ones((2, 4)), cell="gru")
    with pytest.raises(ValueError, match=r"Wh has shape \(4, 4\); expected \(H, 4H\) = \(4, 16\)"):
        gradient_norms_through_time(x, h0, Wx, Wh, b, np.ones((2, 4)), cell="lstm")
    with pytest.raises(ValueError, match=r"x has T = 0 steps"):
        gradient_norms_through_time(x[:, :0], h0, Wx, Wh, b, np.ones((2, 4)))
