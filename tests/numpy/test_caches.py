"""The caches of the RNN, LSTM and GRU: the stated layouts, and the sequence as its step in a loop.

The exercises state these layouts, and so do the docstrings here; the checks
feed reference caches to a learner's backward, so a cache must hold exactly
the stated arrays, in order:

- a step cache: the step's inputs, then what it computed that its backward needs;
- a sequence cache: the sequence's inputs (with the initial states), the step
  caches' computed fields stacked over time, batch-first ``(N, T, H)``, and the
  states ``h`` (and ``c``).

An option the exercises lack (``nonlinearity="relu"``, ``reset_after=False``)
follows the arrays as one more element, so a backward written for the stated
layout cannot unpack such a cache.
"""

import re

import numpy as np
import pytest

import rnncourse.numpy.gru as gru_module
import rnncourse.numpy.lstm as lstm_module
import rnncourse.numpy.rnn as rnn_module
from rnncourse.numpy import sigmoid
from rnncourse.numpy.gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from rnncourse.numpy.lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from rnncourse.numpy.rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from rnncourse.testing import assert_close

N, T, D, H = 3, 4, 2, 5


def arrays(seed, **shapes):
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-1, 1, shape) for name, shape in shapes.items()}


def rnn_inputs(seed=0):
    return arrays(seed, x=(N, T, D), h0=(N, H), Wx=(D, H), Wh=(H, H), b=(H,))


def lstm_inputs(seed=0):
    return arrays(seed, x=(N, T, D), h0=(N, H), Wx=(D, 4 * H), Wh=(H, 4 * H), b=(4 * H,), c0=(N, H))


def gru_inputs(seed=0):
    return arrays(seed, x=(N, T, D), h0=(N, H), Wx=(D, 3 * H), Wh=(H, 3 * H), bx=(3 * H,), bh=(3 * H,))


def assert_layout(cache, want):
    """``cache`` is a tuple of exactly the arrays ``want`` names, in that order, equal to them."""
    assert isinstance(cache, tuple), type(cache)
    assert len(cache) == len(want), f"cache has {len(cache)} elements; the stated layout has {len(want)}: {list(want)}"
    for k, (name, value) in enumerate(want.items()):
        assert np.shape(cache[k]) == np.shape(value), f"cache[{k}] ({name}) has shape {np.shape(cache[k])}"
        assert_close(cache[k], value, f"cache[{k}] ({name})")


# ------------------------------------------------------------ the step caches, from the equations


def test_rnn_step_cache_is_the_stated_layout():
    p = rnn_inputs(1)
    x, prev_h = p["x"][:, 0], p["h0"]
    next_h, cache = rnn_step_forward(x, prev_h, p["Wx"], p["Wh"], p["b"])
    want_h = np.tanh(x @ p["Wx"] + prev_h @ p["Wh"] + p["b"])
    assert_layout(cache, dict(x=x, prev_h=prev_h, Wx=p["Wx"], Wh=p["Wh"], next_h=want_h))
    assert_close(next_h, want_h, "next_h")


def test_lstm_step_cache_is_the_stated_layout():
    p = lstm_inputs(2)
    x, prev_h, prev_c = p["x"][:, 0], p["h0"], p["c0"]
    next_h, next_c, cache = lstm_step_forward(x, prev_h, prev_c, p["Wx"], p["Wh"], p["b"])
    a = x @ p["Wx"] + prev_h @ p["Wh"] + p["b"]
    i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H]), np.tanh(a[:, 2 * H : 3 * H]), sigmoid(a[:, 3 * H :])
    c = f * prev_c + i * g
    assert_layout(
        cache,
        dict(x=x, prev_h=prev_h, prev_c=prev_c, Wx=p["Wx"], Wh=p["Wh"], i=i, f=f, g=g, o=o, tanh_c=np.tanh(c)),
    )
    assert_close(next_c, c, "next_c")
    assert_close(next_h, o * np.tanh(c), "next_h")


def test_gru_step_cache_is_the_stated_layout():
    p = gru_inputs(3)
    x, prev_h = p["x"][:, 0], p["h0"]
    next_h, cache = gru_step_forward(x, prev_h, p["Wx"], p["Wh"], p["bx"], p["bh"])
    ax, ah = x @ p["Wx"] + p["bx"], prev_h @ p["Wh"] + p["bh"]
    r, z = sigmoid(ax[:, :H] + ah[:, :H]), sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
    hn = ah[:, 2 * H :]
    n = np.tanh(ax[:, 2 * H :] + r * hn)
    assert_layout(cache, dict(x=x, prev_h=prev_h, Wx=p["Wx"], Wh=p["Wh"], r=r, z=z, n=n, hn=hn))
    assert_close(next_h, (1 - z) * n + z * prev_h, "next_h")


# ------------------------------------------------------------ the sequence caches: the step caches stacked


def test_rnn_sequence_cache_stacks_the_steps():
    p = rnn_inputs(4)
    h, cache = rnn_forward(**p)
    assert_layout(cache, dict(x=p["x"], h0=p["h0"], Wx=p["Wx"], Wh=p["Wh"], h=h))
    prev_h = p["h0"]
    for t in range(T):
        prev_h, _ = rnn_step_forward(p["x"][:, t], prev_h, p["Wx"], p["Wh"], p["b"])
        assert_close(h[:, t], prev_h, f"h[:, {t}]")


def test_lstm_sequence_cache_stacks_the_steps():
    p = lstm_inputs(5)
    h, cache = lstm_forward(**p)
    assert len(cache) == 12
    x, h0, c0, Wx, Wh, *fields, h_cached, c = cache
    assert_layout((x, h0, c0, Wx, Wh, h_cached), dict(x=p["x"], h0=p["h0"], c0=p["c0"], Wx=p["Wx"], Wh=p["Wh"], h=h))
    prev_h, prev_c = p["h0"], p["c0"]
    for t in range(T):
        prev_h, prev_c, step_cache = lstm_step_forward(p["x"][:, t], prev_h, prev_c, p["Wx"], p["Wh"], p["b"])
        want = dict(zip("i f g o tanh_c c".split(), [*step_cache[5:], prev_c]))
        assert_layout(tuple(a[:, t] for a in fields + [c]), want)


def test_lstm_sequence_cache_holds_zeros_for_c0_none():
    p = lstm_inputs(6)
    del p["c0"]
    _, cache = lstm_forward(**p)
    assert_close(cache[2], np.zeros((N, H)), "c0")


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_sequence_cache_stacks_the_steps(reset_after):
    p = gru_inputs(7)
    h, cache = gru_forward(**p, reset_after=reset_after)
    assert len(cache) == (9 if reset_after else 10)
    x, h0, Wx, Wh, r, z, n, hn, h_cached = cache[:9]
    assert_layout((x, h0, Wx, Wh, h_cached), dict(x=p["x"], h0=p["h0"], Wx=p["Wx"], Wh=p["Wh"], h=h))
    prev_h = p["h0"]
    for t in range(T):
        prev_h, step_cache = gru_step_forward(
            p["x"][:, t], prev_h, p["Wx"], p["Wh"], p["bx"], p["bh"], reset_after=reset_after
        )
        assert_layout((r[:, t], z[:, t], n[:, t], hn[:, t]), dict(zip("r z n hn".split(), step_cache[4:8])))


# ------------------------------------------------------------ a cache built by hand in the stated layout


def test_backward_reads_a_hand_built_lstm_cache():
    """What a learner's forward returns in the stated layout, the reference backward takes (and the reverse)."""
    p = lstm_inputs(8)
    dh = np.random.default_rng(9).standard_normal((N, T, H))
    fields, hs, cs = [], [], []
    h, c = p["h0"], p["c0"]
    for t in range(T):
        a = p["x"][:, t] @ p["Wx"] + h @ p["Wh"] + p["b"]
        i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H]), np.tanh(a[:, 2 * H : 3 * H]), sigmoid(a[:, 3 * H :])
        c = f * c + i * g
        h = o * np.tanh(c)
        fields.append((i, f, g, o, np.tanh(c)))
        hs.append(h)
        cs.append(c)
    stacked = [np.stack(k, axis=1) for k in zip(*fields)]
    by_hand = (p["x"], p["h0"], p["c0"], p["Wx"], p["Wh"], *stacked, np.stack(hs, axis=1), np.stack(cs, axis=1))
    _, cache = lstm_forward(**p)
    for name, got, want in zip("dx dh0 dWx dWh db".split(), lstm_backward(dh, by_hand), lstm_backward(dh, cache)):
        assert_close(got, want, name)


def test_backward_reads_a_hand_built_gru_cache():
    p = gru_inputs(10)
    dh = np.random.default_rng(11).standard_normal((N, T, H))
    steps, h = [], p["h0"]
    for t in range(T):
        ax, ah = p["x"][:, t] @ p["Wx"] + p["bx"], h @ p["Wh"] + p["bh"]
        r, z = sigmoid(ax[:, :H] + ah[:, :H]), sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
        n = np.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :])
        h = (1 - z) * n + z * h
        steps.append((r, z, n, ah[:, 2 * H :], h))
    by_hand = (p["x"], p["h0"], p["Wx"], p["Wh"], *(np.stack(k, axis=1) for k in zip(*steps)))
    _, cache = gru_forward(**p)
    for name, got, want in zip("dx dh0 dWx dWh dbx dbh".split(), gru_backward(dh, by_hand), gru_backward(dh, cache)):
        assert_close(got, want, name)


# ------------------------------------------------------------ the options the exercises lack


def _backward_for_the_stated_rnn_layout(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache  # how the exercise unpacks its cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def _unpack_as_the_stated_gru_layout(cache):
    x, prev_h, Wx, Wh, r, z, n, hn = cache
    return hn


def test_an_option_trails_the_stated_arrays():
    p = rnn_inputs(12)
    x, h0 = p["x"][:, 0], p["h0"]
    _, tanh_cache = rnn_step_forward(x, h0, p["Wx"], p["Wh"], p["b"])
    _, relu_cache = rnn_step_forward(x, h0, p["Wx"], p["Wh"], p["b"], nonlinearity="relu")
    assert len(tanh_cache) == 5 and relu_cache[5:] == ("relu",)
    assert rnn_forward(**p, nonlinearity="relu")[1][5:] == ("relu",)
    g = gru_inputs(13)
    _, after = gru_step_forward(g["x"][:, 0], g["h0"], g["Wx"], g["Wh"], g["bx"], g["bh"])
    _, before = gru_step_forward(g["x"][:, 0], g["h0"], g["Wx"], g["Wh"], g["bx"], g["bh"], reset_after=False)
    assert len(after) == 8 and before[8:] == (False,)
    assert gru_forward(**g, reset_after=False)[1][9:] == (False,)


def test_a_backward_for_the_stated_layout_cannot_take_another_option():
    """No silently wrong gradient: a tanh-only (or reset-after-only) backward fails to unpack."""
    p = rnn_inputs(14)
    dnext_h = np.ones((N, H))
    _, tanh_cache = rnn_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["b"])
    exercise, reference = _backward_for_the_stated_rnn_layout(dnext_h, tanh_cache), rnn_step_backward(dnext_h, tanh_cache)
    for got, want in zip(exercise, reference):
        assert_close(got, want, "the exercise's backward on the reference cache")
    _, relu_cache = rnn_step_forward(p["x"][:, 0], p["h0"], p["Wx"], p["Wh"], p["b"], nonlinearity="relu")
    with pytest.raises(ValueError, match="too many values to unpack"):
        _backward_for_the_stated_rnn_layout(dnext_h, relu_cache)
    g = gru_inputs(15)
    _, before = gru_step_forward(g["x"][:, 0], g["h0"], g["Wx"], g["Wh"], g["bx"], g["bh"], reset_after=False)
    with pytest.raises(ValueError, match="too many values to unpack"):
        _unpack_as_the_stated_gru_layout(before)


def test_the_reference_backward_refuses_a_cache_of_another_length():
    r, g = rnn_inputs(16), gru_inputs(17)
    _, rnn_cache = rnn_step_forward(r["x"][:, 0], r["h0"], r["Wx"], r["Wh"], r["b"])
    _, gru_cache = gru_step_forward(g["x"][:, 0], g["h0"], g["Wx"], g["Wh"], g["bx"], g["bh"])
    message = "cache is a tuple of 8; expected the tuple (x, prev_h, Wx, Wh, next_h)"
    with pytest.raises(ValueError, match=re.escape(message)):
        rnn_step_backward(np.ones((N, H)), gru_cache)
    message = "cache is a tuple of 5; expected the tuple (x, prev_h, Wx, Wh, r, z, n, hn)"
    with pytest.raises(ValueError, match=re.escape(message)):
        gru_step_backward(np.ones((N, H)), rnn_cache)
    _, seq_cache = gru_forward(**g)
    with pytest.raises(ValueError, match=re.escape("cache is a tuple of 11")):
        gru_backward(np.ones((N, T, H)), seq_cache + (False, False))


# ------------------------------------------------------------ the sequence is its step in a loop


def _spy(module, name, monkeypatch, scale=1.0):
    """Wrap ``module.name``: count its calls, and scale its first output (to show the caller uses it)."""
    calls = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(1)
        out = original(*args, **kwargs)
        return (out[0] * scale, *out[1:])

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.mark.parametrize(
    "module, step, sequence, inputs",
    [
        (rnn_module, "rnn_step_forward", rnn_forward, rnn_inputs),
        (lstm_module, "lstm_step_forward", lstm_forward, lstm_inputs),
        (gru_module, "gru_step_forward", gru_forward, gru_inputs),
    ],
)
def test_the_sequence_forward_loops_the_public_step(module, step, sequence, inputs, monkeypatch):
    p = inputs(18)
    h, _ = sequence(**p)
    calls = _spy(module, step, monkeypatch, scale=0.5)
    h_spied, _ = sequence(**p)
    assert len(calls) == T
    assert_close(h_spied[:, 0], 0.5 * h[:, 0], "h[:, 0] from the step")


@pytest.mark.parametrize(
    "module, step, forward, backward, inputs",
    [
        (rnn_module, "rnn_step_backward", rnn_forward, rnn_backward, rnn_inputs),
        (lstm_module, "lstm_step_backward", lstm_forward, lstm_backward, lstm_inputs),
        (gru_module, "gru_step_backward", gru_forward, gru_backward, gru_inputs),
    ],
)
def test_the_sequence_backward_loops_the_public_step(module, step, forward, backward, inputs, monkeypatch):
    p = inputs(19)
    _, cache = forward(**p)
    dh = np.random.default_rng(20).standard_normal((N, T, H))
    dx = backward(dh, cache)[0]
    calls = _spy(module, step, monkeypatch, scale=2.0)
    dx_spied = backward(dh, cache)[0]
    assert len(calls) == T
    assert_close(dx_spied[:, -1], 2.0 * dx[:, -1], "dx[:, T-1] from the step")
