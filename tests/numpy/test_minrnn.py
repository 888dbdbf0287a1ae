"""Tests for rnncourse.numpy.minrnn: minGRU and minLSTM, sequential and parallel (log-space).

Independent truths: the equations written here as a PyTorch loop (forward
and autograd, non-zero biases, random shapes), finite differences in
float64, and the step function run in a loop.
"""

import numpy as np
import pytest
import torch

from rnncourse.numpy import gradcheck
from rnncourse.numpy.minrnn import (
    log_positive_activation,
    min_gru_backward,
    min_gru_forward,
    min_gru_step_forward,
    min_lstm_backward,
    min_lstm_forward,
    min_lstm_step_forward,
    positive_activation,
)
from rnncourse.testing import assert_close

SHAPES = [(1, 1, 1, 1), (2, 3, 4, 3), (3, 7, 2, 5), (2, 40, 3, 4)]  # N, T, D, H
GRU_NAMES = ["x", "h0", "Wz", "bz", "Wh", "bh"]
LSTM_NAMES = ["x", "h0", "Wf", "bf", "Wi", "bi", "Wh", "bh"]


def params(model, N, T, D, H, seed=0, dtype=np.float64):
    """Random inputs; h0 >= 0 (the log-space form needs it); biases drawn away from zero."""
    rng = np.random.default_rng(seed)
    p = dict(x=rng.standard_normal((N, T, D)), h0=rng.uniform(0, 1, (N, H)))
    for gate in ("z", "h") if model == "gru" else ("f", "i", "h"):
        p[f"W{gate}"] = rng.standard_normal((D, H))
        p[f"b{gate}"] = rng.choice([-1, 1], H) * (0.3 + rng.random(H))
    order = GRU_NAMES if model == "gru" else LSTM_NAMES
    return {k: p[k].astype(dtype) for k in order}


def torch_g(a):
    return torch.where(a >= 0, a + 0.5, torch.sigmoid(a))


def torch_reference(model, p, dh):
    """The paper's equations as a loop of torch operations, and autograd's gradients."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    x = t["x"]
    h, hs = t["h0"], []
    for s in range(x.shape[1]):
        xs = x[:, s]
        h_tilde = torch_g(xs @ t["Wh"] + t["bh"])
        if model == "gru":
            z = torch.sigmoid(xs @ t["Wz"] + t["bz"])
            h = (1 - z) * h + z * h_tilde
        else:
            f, i = torch.sigmoid(xs @ t["Wf"] + t["bf"]), torch.sigmoid(xs @ t["Wi"] + t["bi"])
            h = f / (f + i) * h + i / (f + i) * h_tilde
        hs.append(h)
    h = torch.stack(hs, 1)
    h.backward(torch.tensor(dh))
    return h.detach().numpy(), {k: v.grad.numpy() for k, v in t.items()}


FORWARD = {"gru": min_gru_forward, "lstm": min_lstm_forward}
BACKWARD = {"gru": min_gru_backward, "lstm": min_lstm_backward}
NAMES = {"gru": GRU_NAMES, "lstm": LSTM_NAMES}


@pytest.mark.parametrize("model", ["gru", "lstm"])
@pytest.mark.parametrize("N, T, D, H", SHAPES)
def test_sequential_and_parallel_equal_torch_to_float64_precision(model, N, T, D, H):
    p = params(model, N, T, D, H, seed=T)
    dh = np.random.default_rng(1).standard_normal((N, T, H))
    h_torch, grads_torch = torch_reference(model, p, dh)
    for mode in ("sequential", "parallel"):
        h, cache = FORWARD[model](**p, mode=mode)
        assert_close(h, h_torch, f"{mode} h")
        grads = BACKWARD[model](dh, cache)
        for name, g in zip(NAMES[model], grads):
            assert_close(g, grads_torch[name], f"{mode} d{name}")


@pytest.mark.parametrize("model", ["gru", "lstm"])
@pytest.mark.parametrize("mode", ["sequential", "parallel"])
@pytest.mark.parametrize("N, T, D, H", SHAPES[:3])
def test_backward_matches_finite_differences(model, mode, N, T, D, H):
    p = params(model, N, T, D, H, seed=2)
    dh = np.random.default_rng(3).standard_normal((N, T, H))
    h, cache = FORWARD[model](**p, mode=mode)
    analytic = dict(zip(NAMES[model], BACKWARD[model](dh, cache)))
    report = gradcheck(lambda **a: FORWARD[model](**a, mode=mode)[0], p, analytic, dh)
    assert report.ok, str(report)


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_step_in_a_loop_is_the_sequence(model):
    p = params(model, 2, 6, 3, 4)
    h_seq, _ = FORWARD[model](**p)
    step = min_gru_step_forward if model == "gru" else min_lstm_step_forward
    weights = [p[k] for k in NAMES[model][2:]]
    h = p["h0"]
    for t in range(6):
        h = step(p["x"][:, t], h, *weights)
        assert_close(h, h_seq[:, t], f"h[:, {t}]")


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_float32_in_float32_out(model):
    p = params(model, 2, 9, 3, 4, dtype=np.float32)
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    for mode in ("sequential", "parallel"):
        h, cache = FORWARD[model](**p, mode=mode)
        assert h.dtype == np.float32, mode
        assert_close(h, FORWARD[model](**p64)[0], mode, np.float32)


def test_parallel_form_is_stable_on_long_sequences_with_saturated_gates():
    # a strongly negative update-gate bias: z ~ 1e-9, so (1 - z)^t stays near 1 while z h~ is tiny;
    # a strongly positive one: the products of (1 - z) underflow. Both stay finite and equal the loop.
    for bias in (-20.0, 20.0):
        p = params("gru", 1, 3000, 2, 3, seed=4)
        p["bz"] = np.full(3, bias)
        h_seq, _ = min_gru_forward(**p)
        h_par, _ = min_gru_forward(**p, mode="parallel")
        assert np.all(np.isfinite(h_par)), bias
        assert_close(h_par, h_seq, f"bias {bias}")


def test_positive_activation_and_its_log():
    a = np.linspace(-40, 5, 91)
    g = positive_activation(a)
    assert np.all(g > 0)
    assert_close(g[a >= 0], a[a >= 0] + 0.5, "g(a >= 0)")
    assert_close(g[a < 0], 1 / (1 + np.exp(-a[a < 0])), "g(a < 0)")
    assert_close(log_positive_activation(a), np.log(g), "log g")


def test_normalised_minlstm_gates_sum_to_one():
    # with h0 = h~ = c the state stays c whatever the gates: f' + i' = 1
    p = params("lstm", 2, 5, 3, 4)
    p["Wh"][:] = 0
    p["bh"][:] = 1.0  # g(1) = 1.5
    p["h0"][:] = 1.5
    h, _ = min_lstm_forward(**p)
    assert_close(h, np.full_like(h, 1.5), "h")


def test_bad_inputs_say_what_was_expected():
    p = params("gru", 2, 3, 4, 5)
    with pytest.raises(ValueError, match="mode='parallel' runs on logarithms and needs h0 >= 0"):
        min_gru_forward(**{**p, "h0": -p["h0"]}, mode="parallel")
    with pytest.raises(ValueError, match="mode is 'scan'"):
        min_gru_forward(**p, mode="scan")
    with pytest.raises(ValueError, match=r"Wz has shape \(4, 4\); expected \(D, H\) = \(4, 5\)"):
        min_gru_forward(**{**p, "Wz": p["Wz"][:, :4]})
    with pytest.raises(ValueError, match=r"dh has shape \(2, 3, 4\); expected \(N, T, H\) = \(2, 3, 5\)"):
        min_gru_backward(np.zeros((2, 3, 4)), min_gru_forward(**p)[1])
    with pytest.raises(ValueError, match=r"bi has shape \(4,\); expected \(H\) = \(5,\)"):
        q = params("lstm", 2, 3, 4, 5)
        min_lstm_forward(**{**q, "bi": q["bi"][:4]})
