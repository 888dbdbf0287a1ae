"""rnncourse.torch's part-three layers against the NumPy reference: forward and every gradient.

MinGRU, MinLSTM, LRU, SelectiveSSM and the linear-attention functions, in
float64 with random non-zero biases and random shapes, each mode against the
reference's hand-written backward (itself checked by finite differences and
autograd in tests/numpy), and the modes against each other.
"""

import numpy as np
import pytest
import torch

import rnncourse.numpy as rn
from rnncourse.testing import assert_close
from rnncourse.torch import (
    LRU,
    CausalLinearAttention,
    DenseLinearRNN,
    MinGRU,
    MinLSTM,
    SelectiveSSM,
    linear_attention,
    linear_attention_rnn,
    linear_attention_step,
)

SHAPES = [(1, 1, 1, 1), (2, 5, 3, 4), (3, 17, 2, 3), (2, 70, 4, 2)]  # N, T, D, H


def randomize(module, seed):
    """Every parameter uniform in [-1, 1] (biases well away from zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 2 - 1)
    return module


def grads_of(module, x, h0, dout):
    xt = x.clone().requires_grad_()
    h0t = None if h0 is None else h0.clone().requires_grad_()
    out, _ = module(xt, h0t)
    out.backward(dout)
    return out.detach(), xt.grad, None if h0 is None else h0t.grad, {n: p.grad for n, p in module.named_parameters()}


# ------------------------------------------------------------ minGRU, minLSTM


@pytest.mark.parametrize("mode", ["parallel", "scan", "sequential"])
@pytest.mark.parametrize("model", ["gru", "lstm"])
@pytest.mark.parametrize("N, T, D, H", SHAPES)
def test_min_rnns_equal_the_reference(model, mode, N, T, D, H):
    cls = MinGRU if model == "gru" else MinLSTM
    module = randomize(cls(D, H, mode=mode, dtype=torch.float64), seed=T)
    g = torch.Generator().manual_seed(1)
    x, h0 = torch.randn(N, T, D, generator=g, dtype=torch.float64), torch.rand(N, H, generator=g, dtype=torch.float64)
    dout = torch.randn(N, T, H, generator=g, dtype=torch.float64)
    out, dx, dh0, grads = grads_of(module, x, h0, dout)

    gates = ("z", "h") if model == "gru" else ("f", "i", "h")
    weights = []
    for gate in gates:
        linear = getattr(module, f"linear_{gate}")
        weights += [linear.weight.detach().T.numpy(), linear.bias.detach().numpy()]
    forward, backward = (rn.min_gru_forward, rn.min_gru_backward) if model == "gru" else (
        rn.min_lstm_forward, rn.min_lstm_backward)
    h, cache = forward(x.numpy(), h0.numpy(), *weights)
    assert_close(out, h, "h")
    expected = backward(dout.numpy(), cache)
    assert_close(dx, expected[0], "dx")
    assert_close(dh0, expected[1], "dh0")
    for k, gate in enumerate(gates):
        assert_close(grads[f"linear_{gate}.weight"].T, expected[2 + 2 * k], f"dW{gate}")
        assert_close(grads[f"linear_{gate}.bias"], expected[3 + 2 * k], f"db{gate}")


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM])
def test_min_rnn_step_generates_what_the_sequence_computes(cls):
    module = randomize(cls(3, 4, dtype=torch.float64), seed=2)
    x = torch.randn(2, 8, 3, dtype=torch.float64)
    out, h_n = module(x)
    h = torch.zeros(2, 4, dtype=torch.float64)
    for t in range(8):
        h = module.step(x[:, t], h)
        assert_close(h, out[:, t], f"h[:, {t}]")
    assert_close(h_n, out[:, -1], "h_n")


def test_min_rnn_rejects_bad_input():
    with pytest.raises(ValueError, match="mode is 'log'"):
        MinGRU(3, 4, mode="log")
    with pytest.raises(ValueError, match="hidden_size is 0"):
        MinLSTM(3, 0)
    module = MinGRU(3, 4)
    with pytest.raises(ValueError, match=r"x has shape \(2, 5, 2\); expected \(N, T, D\) with D = 3"):
        module(torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="needs h0 >= 0"):
        module(torch.zeros(2, 5, 3), -torch.ones(2, 4))


# Each layer with input size 3 and its (N, T, D) input and h0, wrong, and the message it gets:
# the same words from every layer (rnncourse.torch._checks), the state's axes named as its docstring does.
BAD_INPUTS = [
    (lambda: MinGRU(3, 4), (2, 5, 3), (3, 4), r"h0 has shape \(3, 4\); expected \(N, H\) = \(2, 4\)"),
    (lambda: MinLSTM(3, 4), (2, 5), None, r"x has shape \(2, 5\); expected \(N, T, D\) with D = 3"),
    (lambda: LRU(3, 4), (2, 5, 2), None, r"x has shape \(2, 5, 2\); expected \(N, T, D\) with D = 3"),
    (lambda: LRU(3, 4), (2, 5, 3), (2, 5), r"h0 has shape \(2, 5\); expected \(N, H\) = \(2, 4\)"),
    (lambda: DenseLinearRNN(3, 4), (2, 5, 4), None, r"x has shape \(2, 5, 4\); expected \(N, T, D\) with D = 3"),
    # (4,) used to broadcast over the batch without a word
    (lambda: DenseLinearRNN(3, 4), (2, 5, 3), (4,), r"h0 has shape \(4,\); expected \(N, H\) = \(2, 4\)"),
    (lambda: SelectiveSSM(3, 16), (2, 5, 4), None, r"x has shape \(2, 5, 4\); expected \(N, T, D\) with D = 3"),
    (lambda: SelectiveSSM(3, 16), (2, 5, 3), (2, 3, 15),
     r"h0 has shape \(2, 3, 15\); expected \(N, D, S\) = \(2, 3, 16\)"),
]


@pytest.mark.parametrize("make, x_shape, h0_shape, message", BAD_INPUTS)
def test_the_part3_layers_refuse_a_wrong_shape_in_the_same_words(make, x_shape, h0_shape, message):
    h0 = None if h0_shape is None else torch.zeros(h0_shape)
    with pytest.raises(ValueError, match=f"^{message}$"):
        make()(torch.zeros(x_shape), h0)


# ------------------------------------------------------------ LRU


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
@pytest.mark.parametrize("N, T, D, H", SHAPES)
def test_lru_equals_the_reference(mode, N, T, D, H):
    torch.manual_seed(T)
    module = LRU(D, H, r_min=0.5, r_max=0.99, mode=mode, dtype=torch.float64)
    with torch.no_grad():
        module.gamma_log.add_(0.3)  # away from its initial value
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, T, D, generator=g, dtype=torch.float64)
    h0 = torch.randn(N, H, generator=g, dtype=torch.complex128)
    dout = torch.randn(N, T, D, generator=g, dtype=torch.float64)
    out, dx, dh0, grads = grads_of(module, x, h0, dout)

    names = ["nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "skip"]
    params = {n: getattr(module, n).detach().numpy() for n in names}
    y, cache = rn.lru_forward(x.numpy(), h0.numpy(), **params)
    assert_close(out, y, "y")
    expected = rn.lru_backward(dout.numpy(), cache)
    assert_close(dx, expected[0], "dx")
    assert_close(dh0.real, expected[1].real, "Re dh0")
    assert_close(dh0.imag, expected[1].imag, "Im dh0")
    for name, want in zip(names, expected[2:]):
        assert_close(grads[name], want, f"d{name}")


def test_lru_parametrizations_describe_the_same_eigenvalues():
    torch.manual_seed(0)
    stable = LRU(3, 5, r_min=0.6, r_max=0.95, dtype=torch.float64)
    lam = stable.eigenvalues().detach()
    exp = LRU(3, 5, parametrization="exp", normalize=False, dtype=torch.float64)
    real_imag = LRU(3, 5, parametrization="real_imag", normalize=False, dtype=torch.float64)
    with torch.no_grad():
        exp.nu.copy_(-torch.log(lam.abs()))
        exp.theta.copy_(torch.angle(lam))
        real_imag.lambda_re.copy_(lam.real)
        real_imag.lambda_im.copy_(lam.imag)
    for other in (exp, real_imag):
        got = other.eigenvalues().detach()
        assert_close(got.real, lam.real, f"{other.parametrization} Re")
        assert_close(got.imag, lam.imag, f"{other.parametrization} Im")


def test_lru_initial_eigenvalues_lie_on_the_ring():
    torch.manual_seed(0)
    for parametrization in ("stable_exp", "exp", "real_imag"):
        modulus = LRU(2, 500, r_min=0.9, r_max=0.99, parametrization=parametrization).eigenvalues().abs()
        assert modulus.min() >= 0.9 - 1e-6 and modulus.max() <= 0.99 + 1e-6, parametrization


def test_dense_linear_rnn_is_a_linear_recurrence():
    torch.manual_seed(0)
    module = DenseLinearRNN(3, 4).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    y, h_n = module(x)
    h = torch.zeros(2, 4, dtype=torch.float64)
    for t in range(6):
        h = h @ module.A + x[:, t] @ module.B
        assert_close(y[:, t], h @ module.C + module.skip * x[:, t], f"y[:, {t}]")
    assert_close(h_n, h, "h_n")


# ------------------------------------------------------------ selective SSM


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
@pytest.mark.parametrize("N, T, D, S", SHAPES)
def test_selective_ssm_equals_the_reference(mode, N, T, D, S):
    module = randomize(SelectiveSSM(D, S, mode=mode, dtype=torch.float64), seed=T)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, T, D, generator=g, dtype=torch.float64)
    h0 = torch.randn(N, D, S, generator=g, dtype=torch.float64)
    dout = torch.randn(N, T, D, generator=g, dtype=torch.float64)
    out, dx, dh0, grads = grads_of(module, x, h0, dout)

    p = dict(A_log=module.A_log, W_delta=module.delta_proj.weight.T, b_delta=module.delta_proj.bias,
             W_B=module.B_proj.weight.T, W_C=module.C_proj.weight.T, skip=module.skip)
    p = {k: v.detach().numpy() for k, v in p.items()}
    y, cache = rn.selective_ssm_forward(x.numpy(), h0.numpy(), **p)
    assert_close(out, y, "y")
    dx_r, dh0_r, dA_log, dW_delta, db_delta, dW_B, dW_C, dskip = rn.selective_ssm_backward(dout.numpy(), cache)
    for got, want, name in ((dx, dx_r, "dx"), (dh0, dh0_r, "dh0"), (grads["A_log"], dA_log, "dA_log"),
                            (grads["delta_proj.weight"].T, dW_delta, "dW_delta"),
                            (grads["delta_proj.bias"], db_delta, "db_delta"), (grads["B_proj.weight"].T, dW_B, "dW_B"),
                            (grads["C_proj.weight"].T, dW_C, "dW_C"), (grads["skip"], dskip, "dskip")):
        assert_close(got, want, name)


def test_time_invariant_ssm_is_a_convolution():
    # selective=False: y = K * x per channel with K_j = sum_s C[s] exp(delta A)^j delta B[s] (+ skip at j = 0)
    torch.manual_seed(0)
    D, S, T = 2, 3, 12
    module = SelectiveSSM(D, S, selective=False, dtype=torch.float64)
    x = torch.randn(1, T, D, dtype=torch.float64)
    y, _ = module(x)
    delta = torch.nn.functional.softplus(module.delta_bias)[:, None]
    A_bar = torch.exp(delta * -torch.exp(module.A_log))
    j = torch.arange(T, dtype=torch.float64)
    K = (module.C[None] * A_bar[None] ** j[:, None, None] * delta[None] * module.B[None]).sum(-1)  # (T, D)
    expected = torch.stack([(K[: t + 1].flip(0) * x[0, : t + 1]).sum(0) for t in range(T)]) + module.skip * x[0]
    assert_close(y[0], expected, "y")


def test_selective_ssm_initial_steps_lie_in_range():
    torch.manual_seed(0)
    module = SelectiveSSM(64, 4, dt_min=1e-3, dt_max=1e-1)
    dt = torch.nn.functional.softplus(module.delta_proj.bias)
    assert dt.min() >= 1e-3 * (1 - 1e-4) and dt.max() <= 1e-1 * (1 + 1e-4)
    assert_close(-torch.exp(module.A_log[0]), -torch.arange(1.0, 5.0), "A = -(1..S)")


# ------------------------------------------------------------ linear attention


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("N, T, F, E", SHAPES)
def test_linear_attention_both_forms_equal_the_reference(normalize, N, T, F, E):
    g = torch.Generator().manual_seed(T)
    q, k, v = (torch.randn(N, T, n, generator=g, dtype=torch.float64, requires_grad=True) for n in (F, F, E))
    dout = torch.randn(N, T, E, generator=g, dtype=torch.float64)
    out_ref, cache = rn.linear_attention_rnn_forward(q.detach().numpy(), k.detach().numpy(), v.detach().numpy(),
                                                     normalize=normalize)
    grads_ref = rn.linear_attention_rnn_backward(dout.numpy(), cache)
    for form in (linear_attention, linear_attention_rnn):
        out = form(q, k, v, normalize=normalize)
        assert_close(out, out_ref, f"{form.__name__} out")
        for got, want, name in zip(torch.autograd.grad(out, (q, k, v), dout), grads_ref, "qkv"):
            assert_close(got, want, f"{form.__name__} d{name}")


def test_linear_attention_step_and_module_forms_agree():
    torch.manual_seed(0)
    module = CausalLinearAttention(5, 3, 4, dtype=torch.float64)
    x = torch.randn(2, 9, 5, dtype=torch.float64)
    rnn_out = module(x)
    module.form = "attention"
    assert_close(module(x), rnn_out, "attention vs rnn")
    q, k, v = module.query(x), module.key(x), module.value(x)
    S, z = torch.zeros(2, 3, 4, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64)
    for t in range(9):
        out, S, z = linear_attention_step(q[:, t], k[:, t], v[:, t], S, z)
        assert_close(module.out(out), rnn_out[:, t], f"step {t}")
    with pytest.raises(ValueError, match="form is 'loop'"):
        CausalLinearAttention(5, 3, 4, form="loop")
    with pytest.raises(ValueError, match=r"v has shape \(2, 8, 4\)"):
        linear_attention(q, k, v[:, :8])


def test_float32_modules_run_in_float32():
    torch.manual_seed(0)
    x = torch.randn(2, 10, 3)
    for module in (MinGRU(3, 4), MinLSTM(3, 4), LRU(3, 4), SelectiveSSM(3, 2), SelectiveSSM(3, 2, selective=False)):
        y, _ = module(x)
        assert y.dtype == torch.float32, module
        y.sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters()), module
    assert np.isfinite(CausalLinearAttention(3, 2, 2)(x).detach().numpy()).all()
