"""Realistic wrong answers to assignments 04 (LSTM) and 05 (GRU): each loses its points, named.

Every function below is a learner's answer with one mistake, written the way
a learner would write it (not taken from rnncourse.checks), on top of a right
answer written the same way. For each, the visible cases must fail (so the
notebook's test cell, and its points, fail), the message must point at the
mistake, and the grader's out-of-process mode must give the same verdict and
message as the learner's process. The right answers themselves must pass,
visible and hidden, and the hidden cases' truth must be torch.nn's.
"""

import numpy as np
import pytest

from exercisetools import assert_mistake_fails_and_is_named, in_process, out_of_process
from rnncourse.checks import get_check, make_cases
from rnncourse.checks._core import _float64, _inputs


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


# --- 04: the LSTM, as a learner writes it ---------------------------------------------


def lstm_step(x, prev_h, prev_c, Wx, Wh, b, *, order="ifgo", cell="right", out="right", g_act=np.tanh):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    blocks = {name: a[:, k * H : (k + 1) * H] for k, name in enumerate(order)}
    i, f, o = sigmoid(blocks["i"]), sigmoid(blocks["f"]), sigmoid(blocks["o"])
    g = g_act(blocks["g"])
    if cell == "right":
        next_c = f * prev_c + i * g
    elif cell == "forget_both":
        next_c = f * (prev_c + i * g)
    else:  # "swapped"
        next_c = i * prev_c + f * g
    if out == "right":
        next_h = o * np.tanh(next_c)
    elif out == "no_tanh":
        next_h = o * next_c
    else:  # "old_cell"
        next_h = o * np.tanh(prev_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, g, o, next_c)


def lstm_step_forward_ok(x, prev_h, prev_c, Wx, Wh, b):
    return lstm_step(x, prev_h, prev_c, Wx, Wh, b)


def lstm_step_forward_ifog(x, prev_h, prev_c, Wx, Wh, b):
    return lstm_step(x, prev_h, prev_c, Wx, Wh, b, order="ifog")


def lstm_step_forward_forget_both(x, prev_h, prev_c, Wx, Wh, b):
    return lstm_step(x, prev_h, prev_c, Wx, Wh, b, cell="forget_both")


def lstm_step_forward_i_f_swapped(x, prev_h, prev_c, Wx, Wh, b):
    return lstm_step(x, prev_h, prev_c, Wx, Wh, b, cell="swapped")


def lstm_step_forward_no_tanh(x, prev_h, prev_c, Wx, Wh, b):
    return lstm_step(x, prev_h, prev_c, Wx, Wh, b, out="no_tanh")


def lstm_step_forward_old_cell(x, prev_h, prev_c, Wx, Wh, b):
    return lstm_step(x, prev_h, prev_c, Wx, Wh, b, out="old_cell")


def lstm_step_forward_sigmoid_candidate(x, prev_h, prev_c, Wx, Wh, b):
    return lstm_step(x, prev_h, prev_c, Wx, Wh, b, g_act=sigmoid)


def lstm_step_forward_torch_blocks(x, prev_h, prev_c, Wx, Wh, b):
    """Reads each gate's block of Wh the torch way (W_hi h as a column vector): transposed."""
    H = prev_h.shape[1]
    Wh_blocks = np.concatenate([Wh[:, k * H : (k + 1) * H].T for k in range(4)], axis=1)
    return lstm_step(x, prev_h, prev_c, Wx, Wh_blocks, b)


def lstm_step_forward_no_bias(x, prev_h, prev_c, Wx, Wh, b):
    return lstm_step(x, prev_h, prev_c, Wx, Wh, 0 * b)


def lstm_step_forward_returns_c_first(x, prev_h, prev_c, Wx, Wh, b):
    next_h, next_c, cache = lstm_step(x, prev_h, prev_c, Wx, Wh, b)
    return next_c, next_h, cache


def _lstm_loop(x, h0, Wx, Wh, b, *, carry_h=True, carry_c=True, c0_is_h0=False, shift=False, step=lstm_step_forward_ok):
    N, T, _ = x.shape
    H = h0.shape[1]
    c0 = h0.copy() if c0_is_h0 else np.zeros((N, H))
    h, caches = np.zeros((N, T, H)), []
    prev_h, prev_c = h0, c0
    for t in range(T):
        next_h, next_c, cache = step(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h if shift else next_h
        caches.append(cache)
        prev_h = next_h if carry_h else h0
        prev_c = next_c if carry_c else c0
    return h, caches


def lstm_forward_ok(x, h0, Wx, Wh, b):
    return _lstm_loop(x, h0, Wx, Wh, b)


def lstm_forward_no_cell_carry(x, h0, Wx, Wh, b):
    return _lstm_loop(x, h0, Wx, Wh, b, carry_c=False)


def lstm_forward_no_h_carry(x, h0, Wx, Wh, b):
    return _lstm_loop(x, h0, Wx, Wh, b, carry_h=False)


def lstm_forward_c0_is_h0(x, h0, Wx, Wh, b):
    return _lstm_loop(x, h0, Wx, Wh, b, c0_is_h0=True)


def lstm_forward_off_by_one(x, h0, Wx, Wh, b):
    return _lstm_loop(x, h0, Wx, Wh, b, shift=True)


def lstm_forward_ifog(x, h0, Wx, Wh, b):
    return _lstm_loop(x, h0, Wx, Wh, b, step=lstm_step_forward_ifog)


def lstm_step_grads(dnext_h, dnext_c, cache, *, with_dnext_c=True, through_h=True, slope_of_c=False,
                    order="ifgo", dprev_c_times_f=True, dWh_transposed=False):  # fmt: skip
    x, prev_h, prev_c, Wx, Wh, i, f, g, o, next_c = cache
    tanh_c = np.tanh(next_c)
    slope = 1 - next_c**2 if slope_of_c else 1 - tanh_c**2
    dc = (dnext_c if with_dnext_c else 0) + (dnext_h * o * slope if through_h else 0)
    das = {"i": dc * g * i * (1 - i), "f": dc * prev_c * f * (1 - f), "g": dc * i * (1 - g**2),
           "o": dnext_h * tanh_c * o * (1 - o)}  # fmt: skip
    da = np.concatenate([das[k] for k in order], axis=1)
    dWh = da.T @ prev_h if dWh_transposed else prev_h.T @ da
    dprev_c = dc * f if dprev_c_times_f else dc
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, dWh, da.sum(axis=0)


def lstm_step_backward_ok(dnext_h, dnext_c, cache):
    return lstm_step_grads(dnext_h, dnext_c, cache)


def lstm_step_backward_ignores_dnext_c(dnext_h, dnext_c, cache):
    return lstm_step_grads(dnext_h, dnext_c, cache, with_dnext_c=False)


def lstm_step_backward_no_path_through_h(dnext_h, dnext_c, cache):
    return lstm_step_grads(dnext_h, dnext_c, cache, through_h=False)


def lstm_step_backward_slope_of_c(dnext_h, dnext_c, cache):
    return lstm_step_grads(dnext_h, dnext_c, cache, slope_of_c=True)


def lstm_step_backward_ifog(dnext_h, dnext_c, cache):
    return lstm_step_grads(dnext_h, dnext_c, cache, order="ifog")


def lstm_step_backward_dprev_c_without_f(dnext_h, dnext_c, cache):
    return lstm_step_grads(dnext_h, dnext_c, cache, dprev_c_times_f=False)


def lstm_step_backward_dWh_transposed(dnext_h, dnext_c, cache):
    return lstm_step_grads(dnext_h, dnext_c, cache, dWh_transposed=True)


def _lstm_bptt(dh, caches, *, carry_h=True, carry_c=True, forwards=False, dWh_from_current=False):
    N, T, H = dh.shape
    Wx, Wh = caches[0][3], caches[0][4]
    dx = np.zeros((N, T, Wx.shape[0]))
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H)
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    for t in range(T) if forwards else reversed(range(T)):
        dnext_h = dh[:, t] + (dprev_h if carry_h else 0)
        dnext_c = dprev_c if carry_c else np.zeros((N, H))
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward_ok(dnext_h, dnext_c, caches[t])
        if dWh_from_current:  # h_t (the state after the step) in place of h_{t-1}
            *_, o, next_c = caches[t]
            dWh_t = (o * np.tanh(next_c)).T @ _lstm_da(dnext_h, dnext_c, caches[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db


def _lstm_da(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, g, o, next_c = cache
    tanh_c = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tanh_c**2)
    return np.concatenate([dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dc * i * (1 - g**2),
                           dnext_h * tanh_c * o * (1 - o)], axis=1)  # fmt: skip


def lstm_backward_ok(dh, caches):
    return _lstm_bptt(dh, caches)


def lstm_backward_no_cell_carry(dh, caches):
    return _lstm_bptt(dh, caches, carry_c=False)


def lstm_backward_no_h_carry(dh, caches):
    return _lstm_bptt(dh, caches, carry_h=False)


def lstm_backward_forwards(dh, caches):
    return _lstm_bptt(dh, caches, forwards=True)


def lstm_backward_dWh_from_current(dh, caches):
    return _lstm_bptt(dh, caches, dWh_from_current=True)


def lstm_forward_shifted_cells(x, h0, Wx, Wh, b):
    """Right states, but each step's cache holds the cell *after* the step as its prev_c (off by one in time)."""
    h, caches = _lstm_loop(x, h0, Wx, Wh, b)
    shifted = []
    for cache in caches:
        x_t, prev_h, prev_c, Wx_, Wh_, i, f, g, o, next_c = cache
        shifted.append((x_t, prev_h, next_c, Wx_, Wh_, i, f, g, o, next_c))
    return h, shifted


# --- 05: the GRU, as a learner writes it ----------------------------------------------


def gru_step(x, prev_h, Wx, Wh, bx, bh, *, weighting="torch", reset="after", bhn="inside", rz="rz"):
    H = prev_h.shape[1]
    ax, ah = x @ Wx + bx, prev_h @ Wh + bh
    first, second = sigmoid(ax[:, :H] + ah[:, :H]), sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
    r, z = (first, second) if rz == "rz" else (second, first)
    if reset == "before":
        n = np.tanh(ax[:, 2 * H :] + (r * prev_h) @ Wh[:, 2 * H :] + bh[2 * H :])
    elif bhn == "outside":  # bx + bh added up front, as in the RNN and the LSTM
        b = bx + bh
        n = np.tanh(x @ Wx[:, 2 * H :] + b[2 * H :] + r * (prev_h @ Wh[:, 2 * H :]))
    else:
        n = np.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :])
    next_h = z * n + (1 - z) * prev_h if weighting == "swapped" else (1 - z) * n + z * prev_h
    return next_h, (x, prev_h, Wx, Wh, r, z, n, ah[:, 2 * H :])


def gru_step_forward_ok(x, prev_h, Wx, Wh, bx, bh):
    return gru_step(x, prev_h, Wx, Wh, bx, bh)


def gru_step_forward_swapped_weighting(x, prev_h, Wx, Wh, bx, bh):
    return gru_step(x, prev_h, Wx, Wh, bx, bh, weighting="swapped")


def gru_step_forward_reset_before(x, prev_h, Wx, Wh, bx, bh):
    return gru_step(x, prev_h, Wx, Wh, bx, bh, reset="before")


def gru_step_forward_bhn_outside(x, prev_h, Wx, Wh, bx, bh):
    return gru_step(x, prev_h, Wx, Wh, bx, bh, bhn="outside")


def gru_step_forward_r_z_swapped(x, prev_h, Wx, Wh, bx, bh):
    return gru_step(x, prev_h, Wx, Wh, bx, bh, rz="zr")


def _gru_loop(x, h0, Wx, Wh, bx, bh, *, carry=True, shift=False, step=gru_step_forward_ok):
    N, T, _ = x.shape
    h, caches, prev_h = np.zeros((N, T, h0.shape[1])), [], h0
    for t in range(T):
        next_h, cache = step(x[:, t], prev_h if carry else h0, Wx, Wh, bx, bh)
        h[:, t] = prev_h if shift else next_h
        caches.append(cache)
        prev_h = next_h
    return h, caches


def gru_forward_ok(x, h0, Wx, Wh, bx, bh):
    return _gru_loop(x, h0, Wx, Wh, bx, bh)


def gru_forward_no_carry(x, h0, Wx, Wh, bx, bh):
    return _gru_loop(x, h0, Wx, Wh, bx, bh, carry=False)


def gru_forward_off_by_one(x, h0, Wx, Wh, bx, bh):
    return _gru_loop(x, h0, Wx, Wh, bx, bh, shift=True)


def gru_forward_reset_before(x, h0, Wx, Wh, bx, bh):
    return _gru_loop(x, h0, Wx, Wh, bx, bh, step=gru_step_forward_reset_before)


def gru_forward_swapped_weighting(x, h0, Wx, Wh, bx, bh):
    return _gru_loop(x, h0, Wx, Wh, bx, bh, step=gru_step_forward_swapped_weighting)


def gru_step_grads(dnext_h, cache, *, direct=True, r_on_hidden_n=True, dz_flipped=False, bhn_in_dr=True, dbh_is_dbx=False):
    x, prev_h, Wx, Wh, r, z, n, hn = cache  # hn = prev_h Whn + bhn
    H = prev_h.shape[1]
    dn = dnext_h * (1 - z) * (1 - n**2)
    dz = dnext_h * ((n - prev_h) if dz_flipped else (prev_h - n)) * z * (1 - z)
    dr = dn * (hn if bhn_in_dr else prev_h @ Wh[:, 2 * H :]) * r * (1 - r)
    dax = np.concatenate([dr, dz, dn], axis=1)
    dah = np.concatenate([dr, dz, dn * r if r_on_hidden_n else dn], axis=1)
    dprev_h = dah @ Wh.T + (dnext_h * z if direct else 0)
    dbh = dax.sum(axis=0) if dbh_is_dbx else dah.sum(axis=0)
    return dax @ Wx.T, dprev_h, x.T @ dax, prev_h.T @ dah, dax.sum(axis=0), dbh


def gru_step_backward_ok(dnext_h, cache):
    return gru_step_grads(dnext_h, cache)


def gru_step_backward_no_direct_path(dnext_h, cache):
    return gru_step_grads(dnext_h, cache, direct=False)


def gru_step_backward_no_r_on_hidden_n(dnext_h, cache):
    return gru_step_grads(dnext_h, cache, r_on_hidden_n=False)


def gru_step_backward_dz_flipped(dnext_h, cache):
    return gru_step_grads(dnext_h, cache, dz_flipped=True)


def gru_step_backward_dr_without_bhn(dnext_h, cache):
    return gru_step_grads(dnext_h, cache, bhn_in_dr=False)


def gru_step_backward_dbh_is_dbx(dnext_h, cache):
    return gru_step_grads(dnext_h, cache, dbh_is_dbx=True)


def _gru_bptt(dh, caches, *, carry=True, forwards=False, step_backward=gru_step_backward_ok):
    N, T, H = dh.shape
    Wx, Wh = caches[0][2], caches[0][3]
    dx = np.zeros((N, T, Wx.shape[0]))
    dWx, dWh, dbx, dbh = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(3 * H), np.zeros(3 * H)
    dprev_h = np.zeros((N, H))
    for t in range(T) if forwards else reversed(range(T)):
        dx[:, t], dprev_h, dWx_t, dWh_t, dbx_t, dbh_t = step_backward(dh[:, t] + (dprev_h if carry else 0), caches[t])
        dWx += dWx_t
        dWh += dWh_t
        dbx += dbx_t
        dbh += dbh_t
    return dx, dprev_h, dWx, dWh, dbx, dbh


def gru_backward_ok(dh, caches):
    return _gru_bptt(dh, caches)


def gru_backward_no_carry(dh, caches):
    return _gru_bptt(dh, caches, carry=False)


def gru_backward_forwards(dh, caches):
    return _gru_bptt(dh, caches, forwards=True)


def gru_backward_no_direct_path(dh, caches):
    return _gru_bptt(dh, caches, step_backward=gru_step_backward_no_direct_path)


# (check, {function name: learner's function}, what the visible message must say)
LSTM_STEP = {"lstm_step_forward": lstm_step_forward_ok}
LSTM_SEQ = {"lstm_forward": lstm_forward_ok}
GRU_STEP = {"gru_step_forward": gru_step_forward_ok}
GRU_SEQ = {"gru_forward": gru_forward_ok}

MISTAKES = [
    ("lstm_step_forward", {"lstm_step_forward": lstm_step_forward_ifog}, "order i, f, o, g"),
    ("lstm_step_forward", {"lstm_step_forward": lstm_step_forward_forget_both}, "applied to the input gate's product"),
    ("lstm_step_forward", {"lstm_step_forward": lstm_step_forward_i_f_swapped}, "input and forget gates are swapped"),
    ("lstm_step_forward", {"lstm_step_forward": lstm_step_forward_no_tanh}, "the tanh is missing"),
    ("lstm_step_forward", {"lstm_step_forward": lstm_step_forward_old_cell}, "tanh of the previous cell"),
    ("lstm_step_forward", {"lstm_step_forward": lstm_step_forward_sigmoid_candidate}, "g = tanh(a_g)"),
    ("lstm_step_forward", {"lstm_step_forward": lstm_step_forward_torch_blocks}, "used transposed"),
    ("lstm_step_forward", {"lstm_step_forward": lstm_step_forward_no_bias}, "The bias is missing"),
    ("lstm_step_forward", {"lstm_step_forward": lstm_step_forward_returns_c_first}, "next_h and next_c are swapped"),
    ("lstm_forward", {"lstm_forward": lstm_forward_no_cell_carry}, "cell state is not carried"),
    ("lstm_forward", {"lstm_forward": lstm_forward_no_h_carry}, "Every step started from h0"),
    ("lstm_forward", {"lstm_forward": lstm_forward_c0_is_h0}, "The cell started from h0"),
    ("lstm_forward", {"lstm_forward": lstm_forward_off_by_one}, "Off by one in time"),
    ("lstm_forward", {"lstm_forward": lstm_forward_ifog}, "order i, f, o, g"),
    ("lstm_step_backward", {**LSTM_STEP, "lstm_step_backward": lstm_step_backward_ignores_dnext_c}, "dnext_c is left out"),
    ("lstm_step_backward", {**LSTM_STEP, "lstm_step_backward": lstm_step_backward_no_path_through_h}, "through next_h is missing"),
    ("lstm_step_backward", {**LSTM_STEP, "lstm_step_backward": lstm_step_backward_slope_of_c}, "not 1 - c**2"),
    ("lstm_step_backward", {**LSTM_STEP, "lstm_step_backward": lstm_step_backward_ifog}, "da is stacked i, f, o, g"),
    ("lstm_step_backward", {**LSTM_STEP, "lstm_step_backward": lstm_step_backward_dprev_c_without_f}, "dprev_c = dc * f"),
    ("lstm_step_backward", {**LSTM_STEP, "lstm_step_backward": lstm_step_backward_dWh_transposed}, "dWh has shape (16, 4); expected (H, 4H) = (4, 16): the transpose?"),
    ("lstm_step_backward", {"lstm_step_forward": lstm_step_forward_no_tanh, "lstm_step_backward": lstm_step_backward_ok}, "Make lstm_step_forward pass its own check first"),
    ("lstm_backward", {**LSTM_SEQ, "lstm_backward": lstm_backward_no_cell_carry}, "cell state is not carried back"),
    ("lstm_backward", {**LSTM_SEQ, "lstm_backward": lstm_backward_no_h_carry}, "not carried back through h"),
    ("lstm_backward", {**LSTM_SEQ, "lstm_backward": lstm_backward_forwards}, "runs forwards in time"),
    ("lstm_backward", {**LSTM_SEQ, "lstm_backward": lstm_backward_dWh_from_current}, "dWh uses the wrong state"),
    ("lstm_backward", {"lstm_forward": lstm_forward_shifted_cells, "lstm_backward": lstm_backward_ok}, "Off by one in time"),
    ("lstm_backward", {"lstm_forward": lstm_forward_no_cell_carry, "lstm_backward": lstm_backward_ok}, "Make lstm_forward pass its own check first"),
    ("gru_step_forward", {"gru_step_forward": gru_step_forward_swapped_weighting}, "weighs the other way round"),
    ("gru_step_forward", {"gru_step_forward": gru_step_forward_reset_before}, "before the product"),
    ("gru_step_forward", {"gru_step_forward": gru_step_forward_bhn_outside}, "b_hn is added outside"),
    ("gru_step_forward", {"gru_step_forward": gru_step_forward_r_z_swapped}, "r and z are swapped"),
    ("gru_forward", {"gru_forward": gru_forward_no_carry}, "Every step started from h0"),
    ("gru_forward", {"gru_forward": gru_forward_off_by_one}, "Off by one in time"),
    ("gru_forward", {"gru_forward": gru_forward_reset_before}, "Cho et al."),
    ("gru_forward", {"gru_forward": gru_forward_swapped_weighting}, "weighs the other way round"),
    ("gru_step_backward", {**GRU_STEP, "gru_step_backward": gru_step_backward_no_direct_path}, "misses the direct path"),
    ("gru_step_backward", {**GRU_STEP, "gru_step_backward": gru_step_backward_no_r_on_hidden_n}, "n block is multiplied by r"),
    ("gru_step_backward", {**GRU_STEP, "gru_step_backward": gru_step_backward_dz_flipped}, "da_z has the wrong sign"),
    ("gru_step_backward", {**GRU_STEP, "gru_step_backward": gru_step_backward_dr_without_bhn}, "da_r misses b_hn"),
    ("gru_step_backward", {**GRU_STEP, "gru_step_backward": gru_step_backward_dbh_is_dbx}, "dbh is not dbx"),
    ("gru_step_backward", {"gru_step_forward": gru_step_forward_reset_before, "gru_step_backward": gru_step_backward_ok}, "Make gru_step_forward pass its own check first"),
    ("gru_backward", {**GRU_SEQ, "gru_backward": gru_backward_no_carry}, "not carried back"),
    ("gru_backward", {**GRU_SEQ, "gru_backward": gru_backward_forwards}, "runs forwards in time"),
    ("gru_backward", {**GRU_SEQ, "gru_backward": gru_backward_no_direct_path}, "misses the direct path"),
]


def _id(mistake):
    name, fns, _ = mistake
    return f"{name}-{list(fns.values())[-1].__name__}-{list(fns.values())[0].__name__}"


@pytest.mark.parametrize("name, functions, says", MISTAKES, ids=[_id(m) for m in MISTAKES])
def test_a_mistake_fails_and_is_named(name, functions, says):
    assert_mistake_fails_and_is_named(name, functions, says, hidden_must_fail=True)



RIGHT = {
    "lstm_step_forward": {"lstm_step_forward": lstm_step_forward_ok},
    "lstm_forward": {"lstm_forward": lstm_forward_ok},
    "lstm_step_backward": {**LSTM_STEP, "lstm_step_backward": lstm_step_backward_ok},
    "lstm_backward": {**LSTM_SEQ, "lstm_backward": lstm_backward_ok},
    "gru_step_forward": {"gru_step_forward": gru_step_forward_ok},
    "gru_forward": {"gru_forward": gru_forward_ok},
    "gru_step_backward": {**GRU_STEP, "gru_step_backward": gru_step_backward_ok},
    "gru_backward": {**GRU_SEQ, "gru_backward": gru_backward_ok},
}


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_the_answers_the_mistakes_are_built_from_are_right_without_the_mistake(name):
    assert in_process(name, RIGHT[name]) == (True, "")
    assert in_process(name, RIGHT[name], hidden=True) == (True, "")
    assert out_of_process(name, RIGHT[name], hidden=True, seed=21) == (True, "")


def _float32(fn):
    def wrapped(*args):
        cast = [a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args]
        out = fn(*cast)
        return tuple(o.astype(np.float32) if isinstance(o, np.ndarray) else o for o in out)

    wrapped.__name__ = fn.__name__
    return wrapped


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_a_learner_computing_in_float32_passes_on_many_seeds(name):
    # The float32 tolerance (rtol 1e-5, atol 1e-6) against a float64 truth: a right answer computed
    # in float32 throughout must pass whatever shapes the grader's secret seed draws.
    fns = {f: _float32(fn) for f, fn in RIGHT[name].items()}
    assert in_process(name, fns) == (True, "")
    for seed in range(30):
        assert in_process(name, fns, hidden=True, seed=seed) == (True, ""), seed


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_the_hidden_truth_is_torch_nn_and_agrees_with_the_reference(name):
    pytest.importorskip("torch")
    from rnncourse.checks._core import TORCH_TRUTH, torch_truth

    spec = get_check(name)
    for case in make_cases(name, 3, hidden=True):
        inputs = _float64(_inputs(case))
        assert torch_truth(inputs)
        from_torch = spec.reference(inputs)
        del inputs[TORCH_TRUTH]
        assert not torch_truth(inputs)
        from_numpy = spec.reference(inputs)
        assert from_torch.keys() == from_numpy.keys() == {k for k in spec.outputs}
        for k in from_torch:
            np.testing.assert_allclose(from_torch[k], from_numpy[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_the_torch_truth_leaves_the_learners_torch_generator_alone():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    assert in_process("gru_backward", RIGHT["gru_backward"], hidden=True) == (True, "")
    assert in_process("lstm_step_backward", RIGHT["lstm_step_backward"], hidden=True) == (True, "")
    assert torch.equal(torch.rand(3), expected)
