"""Tests for rnncourse.numpy.linear_attention: causal linear attention as attention and as an RNN.

Independent truths: the definition written here as a double loop over
positions in PyTorch (forward and autograd), finite differences in float64,
and each form against the other.
"""

import numpy as np
import pytest
import torch

from rnncourse.numpy import gradcheck
from rnncourse.numpy.linear_attention import (
    elu_feature_map,
    linear_attention_backward,
    linear_attention_forward,
    linear_attention_rnn_backward,
    linear_attention_rnn_forward,
    linear_attention_rnn_step,
)
from rnncourse.testing import assert_close

SHAPES = [(1, 1, 1, 1), (2, 5, 3, 4), (3, 8, 4, 2), (1, 17, 2, 3)]  # N, T, F, E
FORMS = {
    "attention": (linear_attention_forward, linear_attention_backward),
    "rnn": (linear_attention_rnn_forward, linear_attention_rnn_backward),
}


def inputs(N, T, F, E, seed=0):
    rng = np.random.default_rng(seed)
    return dict(q=rng.standard_normal((N, T, F)), k=rng.standard_normal((N, T, F)), v=rng.standard_normal((N, T, E)))


def torch_reference(p, dout, normalize):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    phi_q, phi_k = torch.nn.functional.elu(t["q"]) + 1, torch.nn.functional.elu(t["k"]) + 1
    outs = []
    for i in range(p["q"].shape[1]):
        w = (phi_q[:, i : i + 1] * phi_k[:, : i + 1]).sum(-1)  # (N, i + 1): weights of positions 0..i
        o = (w[..., None] * t["v"][:, : i + 1]).sum(1)
        outs.append(o / w.sum(1, keepdim=True) if normalize else o)
    out = torch.stack(outs, 1)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), {k: v.grad.numpy() for k, v in t.items()}


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("N, T, F, E", SHAPES)
def test_both_forms_equal_torch_autograd(form, normalize, N, T, F, E):
    p = inputs(N, T, F, E, seed=T)
    dout = np.random.default_rng(1).standard_normal((N, T, E))
    out_t, grads_t = torch_reference(p, dout, normalize)
    forward, backward = FORMS[form]
    out, cache = forward(**p, normalize=normalize)
    assert_close(out, out_t, f"{form} out")
    for name, g in zip("qkv", backward(dout, cache)):
        assert_close(g, grads_t[name], f"{form} d{name}")


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("N, T, F, E", SHAPES[1:])  # T = 1 normalised: out = v, no gradient to check
def test_backward_matches_finite_differences(form, normalize, N, T, F, E):
    p = inputs(N, T, F, E, seed=2)
    dout = np.random.default_rng(3).standard_normal((N, T, E))
    forward, backward = FORMS[form]
    _, cache = forward(**p, normalize=normalize)
    report = gradcheck(lambda **a: forward(**a, normalize=normalize)[0], p, dict(zip("qkv", backward(dout, cache))), dout)
    assert report.ok, str(report)


def test_the_rnn_and_the_attention_form_agree_on_a_long_sequence():
    p = inputs(2, 200, 4, 3, seed=5)
    assert_close(linear_attention_rnn_forward(**p)[0], linear_attention_forward(**p)[0], "out")


def test_step_in_a_loop_is_the_sequence_and_the_state_has_a_fixed_size():
    p = inputs(2, 7, 3, 4)
    out, _ = linear_attention_forward(**p)
    S, z = np.zeros((2, 3, 4)), np.zeros((2, 3))
    for t in range(7):
        o, S, z = linear_attention_rnn_step(p["q"][:, t], p["k"][:, t], p["v"][:, t], S, z)
        assert S.shape == (2, 3, 4) and z.shape == (2, 3)
        assert_close(o, out[:, t], f"out[:, {t}]")


def test_the_memory_is_a_sum_of_outer_products():
    p = inputs(1, 5, 3, 2)
    _, cache = linear_attention_rnn_forward(**p)
    S = cache[5]
    phi_k = elu_feature_map(p["k"])
    assert_close(S[0, -1], phi_k[0].T @ p["v"][0], "S_T = phi(K)^T V")


def test_a_query_that_matches_one_key_reads_its_value():
    # orthogonal non-negative features: with phi(k_s) = e_s, phi(q) = e_s reads v_s exactly
    T = 4
    big = 30.0  # elu(-30) + 1 = exp(-30): an almost-zero feature
    k = np.full((1, T, T), -big)
    k[0, np.arange(T), np.arange(T)] = 0.0  # phi = 1 on the diagonal
    v = np.arange(1, T + 1, dtype=float).reshape(1, T, 1)
    q = np.full((1, T, T), -big)
    q[0, -1, 1] = 0.0  # the last query asks for key 1
    out, _ = linear_attention_forward(q, k, v)
    assert abs(out[0, -1, 0] - 2.0) < 1e-9


def test_bad_inputs_say_what_was_expected():
    p = inputs(2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"k has shape \(2, 3, 3\); expected \(N, T, F\) = \(2, 3, 4\)"):
        linear_attention_forward(p["q"], p["k"][..., :3], p["v"])
    with pytest.raises(ValueError, match=r"v has shape \(2, 2, 5\); expected \(N, T, E\) = \(2, 3, 5\)"):
        linear_attention_rnn_forward(p["q"], p["k"], p["v"][:, :2])
    with pytest.raises(ValueError, match=r"dout has shape"):
        linear_attention_backward(np.zeros((2, 3, 4)), linear_attention_forward(**p)[1])
