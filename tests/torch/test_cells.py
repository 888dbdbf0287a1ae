"""rnncourse.torch RNNCell, LSTMCell, GRUCell against torch.nn and rnncourse.numpy.

Comparisons use :func:`rnncourse.testing.assert_close`; modules are built
from the same seed (same weights as torch.nn's, checked), biases non-zero.
"""

import random

import numpy as np
import pytest
import torch
from torch import nn

import rnncourse.numpy as rn
from rnncourse.testing import assert_close
from rnncourse.torch.cells import GRUCell, LSTMCell, RNNCell
from rnncourse.torch.init import init_forget_bias_, init_orthogonal_recurrent_
from rnncourse.torch.rnn import GRU, LSTM, RNN

OURS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
THEIRS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def make_pair(cell, input_size, hidden_size, dtype=torch.float64, device="cpu", seed=0, **kwargs):
    torch.manual_seed(seed)
    ours = OURS[cell](input_size, hidden_size, device=device, dtype=dtype, **kwargs)
    torch.manual_seed(seed)
    theirs = THEIRS[cell](input_size, hidden_size, device=device, dtype=dtype, **kwargs)
    for (name, p), (name_t, p_t) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == name_t
        assert torch.equal(p, p_t), f"{name} differs from torch.nn's for the same seed"
    return ours, theirs


def make_inputs(cell, D, H, N, unbatched, given_state, dtype, device="cpu", seed=0):
    """``(x, hx, leaves)``."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype=dtype, device=device).requires_grad_()

    batch = () if unbatched else (N,)
    x = randn(*batch, D)
    if not given_state:
        return x, None, [x]
    if cell == "lstm":
        h, c = randn(*batch, H), randn(*batch, H)
        return x, (h, c), [x, h, c]
    h = randn(*batch, H)
    return x, h, [x, h]


def outputs_and_grads(module, x, hx, leaves, seed=1):
    result = module(x, hx)
    outs = list(result) if isinstance(result, tuple) else [result]
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o)).sum() for o in outs)
    params = [p for _, p in module.named_parameters()]
    grads = torch.autograd.grad(loss, params + leaves)
    names = [n for n, _ in module.named_parameters()] + [f"d(leaf {k})" for k in range(len(leaves))]
    return outs, dict(zip(names, grads))


def assert_parity(ours, theirs, x, hx, leaves, what=""):
    out_a, grads_a = outputs_and_grads(ours, x, hx, leaves)
    out_b, grads_b = outputs_and_grads(theirs, x, hx, leaves)
    assert len(out_a) == len(out_b)
    for name, a, b in zip(["h'", "c'"], out_a, out_b):
        assert_close(a, b, f"{what} {name}")
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert_close(grads_a[name], grads_b[name], f"{what} gradient {name}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("seed", range(8))
def test_random_configurations_match_torch(cell, dtype, seed):
    rng = random.Random(f"{cell}-{seed}")
    D, H, N = rng.randint(1, 6), rng.randint(1, 6), rng.randint(1, 5)
    kwargs = dict(bias=seed % 4 != 3)
    if cell == "rnn" and seed % 2:
        kwargs["nonlinearity"] = "relu"
    ours, theirs = make_pair(cell, D, H, dtype, seed=seed, **kwargs)
    unbatched, given_state = seed % 3 == 2, seed % 2 == 0
    x, hx, leaves = make_inputs(cell, D, H, N, unbatched, given_state, dtype=dtype, seed=seed)
    assert_parity(ours, theirs, x, hx, leaves, what=f"{cell} D={D} H={H} N={N} {kwargs}")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_unbatched_input_gives_unbatched_state(cell):
    ours, theirs = make_pair(cell, 3, 4)
    x = torch.randn(3, dtype=torch.float64)
    out, out_t = ours(x), theirs(x)
    outs = out if isinstance(out, tuple) else (out,)
    outs_t = out_t if isinstance(out_t, tuple) else (out_t,)
    for a, b in zip(outs, outs_t):
        assert a.shape == b.shape == (4,)
        assert_close(a, b, f"{cell} unbatched")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_cell_over_time_equals_the_sequence_module(cell):
    torch.manual_seed(2)
    layer = LAYERS[cell](3, 4, dtype=torch.float64)
    step = OURS[cell](3, 4, dtype=torch.float64)
    step.load_state_dict({k[: -len("_l0")]: v for k, v in layer.state_dict().items()})
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    out, _ = layer(x)
    state = None
    for t in range(6):
        state = step(x[t], state)
        h = state[0] if cell == "lstm" else state
        assert_close(h, out[t], f"{cell} step {t} vs the sequence module")


# ---------------------------------------------------------------------------
# each check can fail


def test_swapped_gates_are_caught():
    # a learner's classic: chunk order i, f, o, g instead of torch's i, f, g, o
    class SwappedLSTMCell(LSTMCell):
        def forward(self, input, hx=None):
            h, c = hx
            a = input @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
            i, f, o, g = a.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c

    torch.manual_seed(3)
    bugged = SwappedLSTMCell(3, 4, dtype=torch.float64)
    theirs = nn.LSTMCell(3, 4, dtype=torch.float64)
    theirs.load_state_dict(bugged.state_dict())
    x, hx, leaves = make_inputs("lstm", 3, 4, 2, False, True, torch.float64)
    with pytest.raises(AssertionError):
        assert_parity(bugged, theirs, x, hx, leaves)


def test_reset_gate_before_the_product_is_caught():
    # Cho et al.'s GRU, r * (h W_hn) + b_hn instead of torch's r * (h W_hn + b_hn):
    # only a non-zero b_hn tells them apart
    class ResetBeforeBias(GRUCell):
        def forward(self, input, hx=None):
            x_r, x_z, x_n = (input @ self.weight_ih.T + self.bias_ih).chunk(3, 1)
            h_r, h_z, h_n = (hx @ self.weight_hh.T).chunk(3, 1)
            b_r, b_z, b_n = self.bias_hh.chunk(3)
            r, z = torch.sigmoid(x_r + h_r + b_r), torch.sigmoid(x_z + h_z + b_z)
            n = torch.tanh(x_n + r * h_n + b_n)
            return (1 - z) * n + z * hx

    torch.manual_seed(4)
    bugged = ResetBeforeBias(3, 4, dtype=torch.float64)
    theirs = nn.GRUCell(3, 4, dtype=torch.float64)
    theirs.load_state_dict(bugged.state_dict())
    x, hx, leaves = make_inputs("gru", 3, 4, 2, False, True, torch.float64)
    with pytest.raises(AssertionError):
        assert_parity(bugged, theirs, x, hx, leaves)


# ---------------------------------------------------------------------------
# rnncourse.numpy on the same weights


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_matches_numpy_step_functions(cell):
    torch.manual_seed(5)
    kwargs = dict(nonlinearity="relu") if cell == "rnn" else {}
    ours = OURS[cell](3, 4, dtype=torch.float64, **kwargs)
    # the NumPy reference's weights are the transposes of ours; one bias for RNN/LSTM
    Wx, Wh = ours.weight_ih.detach().numpy().T, ours.weight_hh.detach().numpy().T
    b_ih, b_hh = ours.bias_ih.detach().numpy(), ours.bias_hh.detach().numpy()
    rng = np.random.default_rng(5)
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    if cell == "lstm":
        c = rng.standard_normal((2, 4))
        h_next, c_next = ours(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
        want_h, want_c, _ = rn.lstm_step_forward(x, h, c, Wx, Wh, b_ih + b_hh)
        assert_close(c_next, want_c, "c' vs lstm_step_forward")
    elif cell == "gru":
        h_next = ours(torch.tensor(x), torch.tensor(h))
        want_h, _ = rn.gru_step_forward(x, h, Wx, Wh, b_ih, b_hh)
    else:
        h_next = ours(torch.tensor(x), torch.tensor(h))
        want_h, _ = rn.rnn_step_forward(x, h, Wx, Wh, b_ih + b_hh, nonlinearity="relu")
    assert_close(h_next, want_h, f"{cell} h' vs rnncourse.numpy")


# ---------------------------------------------------------------------------
# state dicts, initialisation, errors


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bias", [True, False])
def test_load_state_dict_both_ways(cell, bias):
    torch.manual_seed(6)
    theirs = THEIRS[cell](3, 4, bias=bias, dtype=torch.float64)
    torch.manual_seed(7)
    ours = OURS[cell](3, 4, bias=bias, dtype=torch.float64)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    x = torch.randn(2, 3, dtype=torch.float64)
    ours.load_state_dict(theirs.state_dict())
    a, b = ours(x), theirs(x)
    assert_close(a[0] if cell == "lstm" else a, b[0] if cell == "lstm" else b, f"{cell} after loading torch's")
    torch.manual_seed(8)
    ours2 = OURS[cell](3, 4, bias=bias, dtype=torch.float64)
    theirs.load_state_dict(ours2.state_dict())
    a, b = ours2(x), theirs(x)
    assert_close(a[0] if cell == "lstm" else a, b[0] if cell == "lstm" else b, f"torch's {cell} after loading ours")


def test_bias_false_registers_none_like_torch():
    ours, theirs = make_pair("lstm", 3, 4, bias=False)
    assert ours.bias_ih is None and ours.bias_hh is None
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_init_helpers_work_on_cells():
    torch.manual_seed(9)
    cell = init_forget_bias_(LSTMCell(3, 4, dtype=torch.float64), value=2.0)
    assert torch.all(cell.bias_ih[4:8] == 2.0) and torch.all(cell.bias_hh[4:8] == 0.0)
    gru = init_orthogonal_recurrent_(nn.GRUCell(3, 4, dtype=torch.float64))
    for k, block in enumerate(gru.weight_hh.detach().split(4, 0)):
        assert_close(block.T @ block, torch.eye(4, dtype=torch.float64), f"GRUCell weight_hh block {k}")


def _same_error(call_ours, call_theirs, match):
    with pytest.raises(Exception) as theirs:
        call_theirs()
    with pytest.raises(type(theirs.value), match=match):
        call_ours()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_errors_like_torch(cell):
    ours, theirs = make_pair(cell, 4, 5)
    x = torch.randn(3, 4, dtype=torch.float64)
    wrong_d = torch.randn(3, 6, dtype=torch.float64)
    _same_error(lambda: ours(wrong_d), lambda: theirs(wrong_d), "input has inconsistent input_size: got 6 expected 4")
    x3 = torch.randn(3, 4, 1, dtype=torch.float64)
    name = type(theirs).__name__
    _same_error(lambda: ours(x3), lambda: theirs(x3), f"{name}: Expected input to be 1D or 2D, got 3D instead")

    def state(*shape):
        h = torch.zeros(*shape, dtype=torch.float64)
        return (h, torch.zeros(3, 5, dtype=torch.float64)) if cell == "lstm" else h

    _same_error(lambda: ours(x, state(2, 5)), lambda: theirs(x, state(2, 5)),
                "Input batch size 3 doesn't match hidden0 batch size 2")
    _same_error(lambda: ours(x, state(3, 4)), lambda: theirs(x, state(3, 4)),
                "hidden0 has inconsistent hidden_size: got 4, expected 5")
    if cell == "lstm":
        bad_c = (torch.zeros(3, 5, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64))
        _same_error(lambda: ours(x, bad_c), lambda: theirs(x, bad_c),
                    "hidden1 has inconsistent hidden_size: got 4, expected 5")
    with pytest.raises(ValueError):  # also a ValueError, the project's convention
        ours(wrong_d)
    with pytest.raises(ValueError, match="should be 1-D for unbatched 1-D input, got 2-D"):
        ours(x[0], state(3, 5))


def test_rnn_cell_rejects_an_unknown_nonlinearity_at_construction():
    # torch.nn.RNNCell accepts it and fails at the first forward; we fail early
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        RNNCell(3, 4, nonlinearity="sigmoid")


# ---------------------------------------------------------------------------
# CUDA


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_cuda_float32_matches_torch(cell):
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        ours, theirs = make_pair(cell, 5, 6, torch.float32, device="cuda")
        x, hx, leaves = make_inputs(cell, 5, 6, 4, False, True, torch.float32, device="cuda")
        assert_parity(ours, theirs, x, hx, leaves, what=f"cuda {cell}")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
