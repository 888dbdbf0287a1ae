"""The adding problem, its training helper, and the LSTM gate read-out of rnncourse.tasks."""

import numpy as np
import pytest
import torch

from rnncourse.numpy.convert import params_from_torch
from rnncourse.tasks import (
    ADDING_BASELINE_MSE,
    AddingBatches,
    LastStateRegressor,
    adding_problem,
    lstm_gates,
    train_adding,
)
from rnncourse.testing import assert_close

# --- the data ----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 3, 10, 51])
def test_adding_problem_has_one_mark_in_each_half_and_sums_them(length):
    x, y = adding_problem(500, length, rng=np.random.default_rng(0))
    assert x.shape == (500, length, 2) and y.shape == (500, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    values, marks = x[..., 0], x[..., 1]
    assert set(np.unique(marks)) <= {0.0, 1.0}
    half = length // 2
    assert (marks[:, :half].sum(axis=1) == 1).all(), "expected exactly one mark in steps 0 .. T//2 - 1"
    assert (marks[:, half:].sum(axis=1) == 1).all(), "expected exactly one mark in steps T//2 .. T-1"
    assert ((values >= 0) & (values < 1)).all()
    assert_close(y[:, 0], (values * marks).sum(axis=1), "y (the sum of the two marked values)")


def test_adding_problem_marks_are_spread_over_each_half():
    x, _ = adding_problem(4000, 10, rng=np.random.default_rng(1))
    counts = x[..., 1].sum(axis=0)  # marks per step: 4000 / 5 = 800 expected at each
    assert counts.min() > 650 and counts.max() < 950, f"marks per step {counts} are not uniform"


def test_adding_problem_baseline_is_the_variance_of_the_target():
    _, y = adding_problem(200_000, 20, rng=np.random.default_rng(2), dtype=np.float64)
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    assert y.mean() == pytest.approx(1.0, abs=0.005)
    # predicting the mean, 1, has error Var(u1 + u2) = 2/12
    assert np.mean((y - 1.0) ** 2) == pytest.approx(ADDING_BASELINE_MSE, rel=0.01)


def test_adding_problem_is_seeded():
    a = adding_problem(8, 12, rng=np.random.default_rng(5))
    b = adding_problem(8, 12, rng=np.random.default_rng(5))
    c = adding_problem(8, 12, rng=np.random.default_rng(6))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0, length=10), "n is 0"),
    (dict(n=4, length=1), "length is 1"),
    (dict(n=4, length=10.0), "length is 10.0"),
])
def test_adding_problem_rejects_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adding_problem(**kwargs, rng=np.random.default_rng(0))


def test_adding_problem_needs_a_generator():
    with pytest.raises(ValueError, match="numpy.random.Generator"):
        adding_problem(4, 10, rng=0)


def test_adding_batches_repeat_on_every_pass_and_follow_the_generator():
    batches = AddingBatches(length=7, batch_size=3, batches=4, seed=11)
    first, second = list(batches), list(batches)
    assert len(batches) == 4 and len(first) == 4
    rng = np.random.default_rng(11)
    for (x, y), (x2, y2) in zip(first, second):
        assert x.shape == (3, 7, 2) and y.shape == (3, 1) and x.dtype == torch.float32
        assert torch.equal(x, x2) and torch.equal(y, y2)
        x_np, y_np = adding_problem(3, 7, rng=rng)
        assert np.array_equal(x.numpy(), x_np) and np.array_equal(y.numpy(), y_np)


# --- the model and its training ------------------------------------------------------------------


@pytest.mark.parametrize("cell, gates", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_last_state_regressor_reads_the_last_state(cell, gates):
    torch.manual_seed(0)
    model = LastStateRegressor(cell, 2, 5)
    assert model.rnn.weight_hh_l0.shape == (gates * 5, 5)
    x = torch.randn(4, 9, 2)
    y = model(x)
    assert y.shape == (4, 1)
    out, _ = model.rnn(x)
    assert_close(y.detach().numpy(), model.head(out[:, -1]).detach().numpy(), "prediction")
    # the prediction depends on the first step (the state carries it), not only on the last
    x2 = x.clone()
    x2[:, 0] += 1.0
    assert not torch.allclose(model(x2), y)


def test_last_state_regressor_sets_the_forget_bias():
    model = LastStateRegressor("lstm", 2, 6, forget_bias=2.0)
    b = (model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0).detach()
    assert torch.all(b[6:12] == 2.0), "the forget gate is the second block of i, f, g, o"
    with pytest.raises(ValueError, match="only an LSTM"):
        LastStateRegressor("gru", 2, 6, forget_bias=1.0)
    with pytest.raises(ValueError, match="cell is 'elman'"):
        LastStateRegressor("elman", 2, 6)


def test_train_adding_is_seeded_and_records_every_step():
    a = train_adding("gru", 6, hidden_size=4, steps=5, batch_size=8, seed=3, test_size=50, device="cpu")
    b = train_adding("gru", 6, hidden_size=4, steps=5, batch_size=8, seed=3, test_size=50, device="cpu")
    assert len(a.history.train_loss) == 5 and len(a.history.grad_norm) == 5
    assert a.test_mse == b.test_mse and a.history.train_loss == b.history.train_loss
    assert not a.model.training


def test_train_adding_without_clipping_records_no_norms():
    r = train_adding("rnn", 6, hidden_size=4, steps=3, batch_size=8, clip_grad_norm=None, test_size=50,
                     device="cpu")
    assert r.history.grad_norm == [] and np.isfinite(r.test_mse)


@pytest.mark.slow
def test_an_lstm_learns_a_short_adding_problem():
    torch.set_num_threads(1)
    r = train_adding("lstm", 10, hidden_size=16, steps=300, lr=1e-2, forget_bias=1.0, seed=0, device="cpu")
    assert r.test_mse < ADDING_BASELINE_MSE / 5, (
        f"test MSE {r.test_mse:.4f}: an LSTM should learn T = 10 in 300 steps "
        f"(predicting the mean gives {ADDING_BASELINE_MSE:.4f})"
    )


# --- looking inside an LSTM -----------------------------------------------------------------------


def test_lstm_gates_agree_with_torch_lstm():
    torch.manual_seed(0)
    N, T, D, H = 3, 6, 2, 4
    lstm = torch.nn.LSTM(D, H, batch_first=True).double()
    with torch.no_grad():
        for p in lstm.parameters():
            p.uniform_(-1, 1)  # non-zero biases, gates well away from 1/2
    x = torch.randn(N, T, D, dtype=torch.float64)
    h0 = torch.randn(1, N, H, dtype=torch.float64)
    c0 = torch.randn(1, N, H, dtype=torch.float64)
    out, (h_n, c_n) = lstm(x, (h0, c0))
    p = params_from_torch(lstm, "lstm")[0][0]
    gates = lstm_gates(x.numpy(), h0[0].numpy(), p["Wx"], p["Wh"], p["b"], c0=c0[0].numpy())
    assert set(gates) == {"i", "f", "g", "o", "c", "h"}
    for k, v in gates.items():
        assert v.shape == (N, T, H), f"gates[{k!r}] has shape {v.shape}; expected (N, T, H)"
    assert_close(gates["h"], out.detach().numpy(), "h")
    assert_close(gates["c"][:, -1], c_n[0].detach().numpy(), "c at the last step (i, f or g wrong?)")
    assert_close(gates["h"], gates["o"] * np.tanh(gates["c"]), "h = o * tanh(c) (o wrong?)")
    for k in "ifo":
        assert ((gates[k] > 0) & (gates[k] < 1)).all(), f"gate {k} should lie in (0, 1)"


def test_lstm_gates_checks_shapes():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="Wh"):
        lstm_gates(rng.standard_normal((2, 3, 1)), np.zeros((2, 4)), rng.standard_normal((1, 16)),
                   rng.standard_normal((4, 12)), np.zeros(16))
