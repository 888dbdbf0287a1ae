"""Weights to and from torch.nn.RNN/LSTM/GRU: round trips, forward parity, errors."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import rnncourse.numpy as rn
from rnncourse.numpy import params_from_torch, params_to_torch
from rnncourse.testing import assert_close

MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
D, H, N, T = 3, 4, 2, 5


def make_module(cell, num_layers=1, bidirectional=False, dtype=np.float64, seed=0, **kwargs):
    torch.manual_seed(seed)
    module = MODULES[cell](D, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True, **kwargs)
    return module.to(TORCH_DTYPE[dtype])


def torch_outputs(module, x):
    """All outputs as NumPy arrays: (out, h_n) or (out, h_n, c_n)."""
    with torch.no_grad():
        out, state = module(torch.tensor(x))
    states = state if isinstance(state, tuple) else (state,)
    return (out.numpy(),) + tuple(s.numpy() for s in states)


def random_input(dtype, seed=1):
    return np.random.default_rng(seed).standard_normal((N, T, D)).astype(dtype)


def random_params(cell, num_layers, num_dirs, dtype, seed=2):
    """Our format, every bias non-zero."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]

    def a(*shape):
        return (0.5 * rng.standard_normal(shape)).astype(dtype)

    params = []
    for layer in range(num_layers):
        D_in = D if layer == 0 else H * num_dirs
        directions = []
        for _ in range(num_dirs):
            p = {"Wx": a(D_in, G * H), "Wh": a(H, G * H)}
            if cell == "gru":
                p["bx"], p["bh"] = a(G * H), a(G * H)
            else:
                p["b"] = a(G * H)
            directions.append(p)
        params.append(directions)
    return params


def load(cell, state_dict, num_layers, bidirectional, dtype, **kwargs):
    module = make_module(cell, num_layers, bidirectional, dtype, seed=99, **kwargs)
    module.load_state_dict(state_dict)  # strict: no key mapping
    return module


def assert_outputs_close(actual, expected, what):
    names = ("out", "h_n", "c_n")
    assert len(actual) == len(expected)
    for name, a, e in zip(names, actual, expected):
        assert_close(a, e, f"{what}: {name}")


COMBOS = [
    (cell, num_layers, bidirectional, dtype)
    for cell in ("rnn", "lstm", "gru")
    for num_layers in (1, 2, 3)
    for bidirectional in (False, True)
    for dtype in (np.float32, np.float64)
]


def combo_id(combo):
    cell, num_layers, bidirectional, dtype = combo
    return f"{cell}-L{num_layers}-{'bi' if bidirectional else 'uni'}-{np.dtype(dtype).name}"


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_torch_to_ours_to_torch_gives_the_same_module(combo):
    cell, num_layers, bidirectional, dtype = combo
    module = make_module(cell, num_layers, bidirectional, dtype)
    params = params_from_torch(module, cell)

    num_dirs = 2 if bidirectional else 1
    assert len(params) == num_layers and all(len(layer) == num_dirs for layer in params)
    for layer in params:
        for p in layer:
            assert all(a.dtype == dtype for a in p.values())

    state_dict = params_to_torch(params, cell)
    assert list(state_dict) == list(module.state_dict())  # same keys, same order
    original = module.state_dict()
    for key, tensor in state_dict.items():
        assert tensor.dtype == TORCH_DTYPE[dtype]
        if key.startswith("weight") or cell == "gru":
            assert torch.equal(tensor, original[key]), key
    for key in original:
        if key.startswith("bias_ih") and cell != "gru":  # only the sum is kept
            hh = key.replace("bias_ih", "bias_hh")
            assert_close(state_dict[key] + state_dict[hh], original[key] + original[hh], key)
            assert torch.equal(state_dict[hh], torch.zeros_like(state_dict[hh]))

    x = random_input(dtype)
    reloaded = load(cell, state_dict, num_layers, bidirectional, dtype)
    assert_outputs_close(torch_outputs(reloaded, x), torch_outputs(module, x), "reloaded module")


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_ours_to_torch_to_ours_is_exact(combo):
    cell, num_layers, bidirectional, dtype = combo
    params = random_params(cell, num_layers, 2 if bidirectional else 1, dtype)
    back = params_from_torch(params_to_torch(params, cell), cell)
    for layer, (ours, theirs) in enumerate(zip(params, back)):
        for direction, (p, q) in enumerate(zip(ours, theirs)):
            assert set(p) == set(q)
            for key in p:
                assert q[key].dtype == p[key].dtype
                np.testing.assert_array_equal(q[key], p[key], err_msg=f"params[{layer}][{direction}][{key!r}]")


def test_state_dict_and_module_give_the_same_params():
    module = make_module("gru", 2, True)
    from_module = params_from_torch(module, "gru")
    from_state_dict = params_from_torch(module.state_dict(), "gru")
    for p, q in zip(sum(from_module, []), sum(from_state_dict, [])):
        for key in p:
            np.testing.assert_array_equal(p[key], q[key])


def test_results_do_not_share_memory():
    module = make_module("lstm")
    params = params_from_torch(module, "lstm")
    Wx = params[0][0]["Wx"].copy()
    with torch.no_grad():
        module.weight_ih_l0.add_(1.0)
    np.testing.assert_array_equal(params[0][0]["Wx"], Wx)
    state_dict = params_to_torch(params, "lstm")
    params[0][0]["Wx"] += 1.0
    assert_close(state_dict["weight_ih_l0"], Wx.T, "weight_ih_l0")


def test_transposes_and_sums_exactly_as_documented():
    module = make_module("lstm")
    p = params_from_torch(module, "lstm")[0][0]
    sd = module.state_dict()
    np.testing.assert_array_equal(p["Wx"], sd["weight_ih_l0"].numpy().T)
    np.testing.assert_array_equal(p["Wh"], sd["weight_hh_l0"].numpy().T)
    np.testing.assert_array_equal(p["b"], (sd["bias_ih_l0"] + sd["bias_hh_l0"]).numpy())
    assert p["Wx"].flags.c_contiguous and p["Wh"].flags.c_contiguous


# ---------------------------------------------------------------- the round trip can fail


@pytest.mark.parametrize(
    "break_params",
    [
        lambda p: p.update(b=p["b"] - 0.3),  # e.g. bias_hh dropped from the sum
        lambda p: p.update(Wx=np.concatenate([p["Wx"][:, H:2 * H], p["Wx"][:, :H], p["Wx"][:, 2 * H:]], axis=1)),
        lambda p: p.update(Wh=p["Wh"].T.reshape(p["Wh"].shape)),  # a wrong transpose
    ],
    ids=["bias", "gates_i_f_swapped", "Wh_scrambled"],
)
def test_module_comparison_catches_a_wrong_conversion(break_params):
    module = make_module("lstm", dtype=np.float64)
    params = params_from_torch(module, "lstm")
    break_params(params[0][0])
    wrong = load("lstm", params_to_torch(params, "lstm"), 1, False, np.float64)
    x = random_input(np.float64)
    with pytest.raises(AssertionError):
        assert_outputs_close(torch_outputs(wrong, x), torch_outputs(module, x), "broken")


# ---------------------------------------------------------------- bias=False, dtypes, devices


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_bias_false_modules(cell):
    module = make_module(cell, 2, True, bias=False)
    params = params_from_torch(module, cell)
    for layer in params:
        for p in layer:
            for key in p:
                if key.startswith("b"):
                    assert p[key].shape == (GATES[cell] * H,)
                    np.testing.assert_array_equal(p[key], 0.0)
    state_dict = params_to_torch(params, cell, bias=False)
    assert not any(key.startswith("bias") for key in state_dict)
    x = random_input(np.float64)
    reloaded = load(cell, state_dict, 2, True, np.float64, bias=False)
    assert_outputs_close(torch_outputs(reloaded, x), torch_outputs(module, x), "bias=False")

    bias_key = "bx" if cell == "gru" else "b"
    params[1][1][bias_key][0] = 0.5
    with pytest.raises(ValueError, match=rf"params\[1\]\[1\]\['{bias_key}'\] is not zero, but bias=False has no place for it"):
        params_to_torch(params, cell, bias=False)


def test_half_precision_tensors_become_float32():
    module = make_module("gru").to(torch.bfloat16)
    params = params_from_torch(module, "gru")
    assert params[0][0]["Wx"].dtype == np.float32
    assert_close(params[0][0]["Wx"], module.weight_ih_l0.float().T, "Wx")


def test_relu_rnn_converts_like_tanh():
    module = make_module("rnn", nonlinearity="relu")
    params = params_from_torch(module, "rnn")
    reloaded = load("rnn", params_to_torch(params, "rnn"), 1, False, np.float64, nonlinearity="relu")
    x = random_input(np.float64)
    assert_outputs_close(torch_outputs(reloaded, x), torch_outputs(module, x), "relu rnn")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_modules_convert():
    module = make_module("lstm", 2, True, dtype=np.float32)
    params = params_from_torch(module.cuda(), "lstm")
    assert params[0][0]["Wx"].dtype == np.float32
    x = random_input(np.float32)
    reloaded = load("lstm", params_to_torch(params, "lstm"), 2, True, np.float32)
    assert_outputs_close(torch_outputs(reloaded, x), torch_outputs(module.cpu(), x), "from cuda")


# ---------------------------------------------------------------- bad input


def test_params_from_torch_errors():
    lstm = make_module("lstm", 2, True)
    with pytest.raises(ValueError, match=r"cell is 'LSTM'; expected one of 'rnn', 'lstm', 'gru'"):
        params_from_torch(lstm, "LSTM")
    with pytest.raises(ValueError, match=r"the module is a torch.nn.LSTM \(mode 'LSTM'\); expected a torch.nn.GRU for cell 'gru'"):
        params_from_torch(lstm, "gru")
    with pytest.raises(
        ValueError,
        match=r"weight_ih_l0 has shape \(16, 3\); expected \(G\*H, D\) = \(12, 3\) for cell 'gru' \(G = 3\)",
    ):
        params_from_torch(lstm.state_dict(), "gru")
    with pytest.raises(ValueError, match=r"proj_size > 0 .* are not supported"):
        params_from_torch(torch.nn.LSTM(D, H, proj_size=2), "lstm")
    with pytest.raises(ValueError, match=r"proj_size > 0 .* are not supported"):
        params_from_torch(torch.nn.LSTM(D, H, proj_size=2).state_dict(), "lstm")

    sd = lstm.state_dict()
    missing = {k: v for k, v in sd.items() if k != "weight_hh_l1_reverse"}
    with pytest.raises(ValueError, match=r"the state dict has no key 'weight_hh_l1_reverse'"):
        params_from_torch(missing, "lstm")
    missing_bias = {k: v for k, v in sd.items() if k != "bias_hh_l0"}
    with pytest.raises(ValueError, match=r"the state dict has no key 'bias_hh_l0'"):
        params_from_torch(missing_bias, "lstm")
    with pytest.raises(ValueError, match=r"unexpected key 'weight_ih'; expected torch.nn.RNN/LSTM/GRU keys"):
        params_from_torch(torch.nn.LSTMCell(D, H).state_dict(), "lstm")
    with pytest.raises(ValueError, match=r"the state dict is empty"):
        params_from_torch({}, "lstm")
    with pytest.raises(ValueError, match=r"state_dict_or_module is a list"):
        params_from_torch([1, 2], "lstm")
    wrong_layer1 = dict(sd, weight_ih_l1=torch.zeros(16, H))  # should be (4H, 2H)
    with pytest.raises(ValueError, match=r"weight_ih_l1 has shape \(16, 4\); expected \(G\*H, D\) = \(16, 8\)"):
        params_from_torch(wrong_layer1, "lstm")
    with pytest.raises(ValueError, match=r"weight_hh_l0 has dtype torch.int64; expected a floating-point tensor"):
        params_from_torch(dict(sd, weight_hh_l0=torch.zeros(16, H, dtype=torch.int64)), "lstm")


def test_params_to_torch_errors():
    params = random_params("lstm", 2, 2, np.float64)

    def modified(change):
        copy = [[dict(p) for p in layer] for layer in params]
        change(copy)
        return copy

    with pytest.raises(ValueError, match=r"cell is 'transformer'"):
        params_to_torch(params, "transformer")
    with pytest.raises(ValueError, match=r"params is an empty list"):
        params_to_torch([], "lstm")
    with pytest.raises(ValueError, match=r"params is a dict; expected a non-empty list"):
        params_to_torch(params[0][0], "lstm")
    with pytest.raises(ValueError, match=r"params\[0\]\[0\] has no key 'bx'; expected keys \['Wx', 'Wh', 'bx', 'bh'\] for cell 'gru'"):
        params_to_torch(params, "gru")
    with pytest.raises(ValueError, match=r"params\[1\]\[0\] has no key 'b'"):
        params_to_torch(modified(lambda c: c[1][0].pop("b")), "lstm")
    with pytest.raises(ValueError, match=r"params\[0\]\[1\] has unexpected key 'bh'"):
        params_to_torch(modified(lambda c: c[0][1].update(bh=np.zeros(16))), "lstm")
    with pytest.raises(ValueError, match=r"params\[1\] has 1 directions; expected 2 like params\[0\]"):
        params_to_torch(modified(lambda c: c[1].pop()), "lstm")
    with pytest.raises(ValueError, match=r"params\[0\] is a list of length 3; expected a list of 1 or 2 dicts"):
        params_to_torch(modified(lambda c: c[0].append(c[0][0])), "lstm")
    with pytest.raises(
        ValueError, match=r"params\[1\]\[1\]\['Wx'\] has shape \(4, 16\); expected \(D, G\*H\) = \(8, 16\) for cell 'lstm' \(G = 4\)"
    ):
        params_to_torch(modified(lambda c: c[1][1].update(Wx=np.zeros((H, 16)))), "lstm")
    with pytest.raises(ValueError, match=r"params\[0\]\[1\]\['Wh'\] has shape \(4, 12\); expected \(H, G\*H\) = \(4, 16\)"):
        params_to_torch(modified(lambda c: c[0][1].update(Wh=np.zeros((H, 12)))), "lstm")
    with pytest.raises(ValueError, match=r"params\[0\]\[0\]\['b'\] has shape \(16, 1\); expected \(G\*H\) with 1 dimension"):
        params_to_torch(modified(lambda c: c[0][0].update(b=np.zeros((16, 1)))), "lstm")
    with pytest.raises(ValueError, match=r"params\[0\]\[0\]\['Wh'\] has dtype int64; expected a floating-point array"):
        params_to_torch(modified(lambda c: c[0][0].update(Wh=np.zeros((H, 16), dtype=np.int64))), "lstm")


# ---------------------------------------------------------------- torch is imported lazily


def test_importing_rnncourse_numpy_does_not_import_torch():
    code = "import rnncourse.numpy, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- our forward passes agree with torch


def our_forward(cell, x, h0, c0, p, nonlinearity="tanh"):
    """One layer, one direction: (h, h_last) or (h, h_last, c_last)."""
    if cell == "rnn":
        h, _ = rn.rnn_forward(x, h0, p["Wx"], p["Wh"], p["b"], nonlinearity=nonlinearity)
        return h, h[:, -1]
    if cell == "lstm":
        h, c_last, _ = rn.lstm_forward(x, h0, p["Wx"], p["Wh"], p["b"], c0, return_state=True)
        return h, h[:, -1], c_last
    h, _ = rn.gru_forward(x, h0, p["Wx"], p["Wh"], p["bx"], p["bh"])
    return h, h[:, -1]


def torch_outputs_from(module, x, h0, c0):
    with torch.no_grad():
        state = torch.tensor(h0[None]) if c0 is None else (torch.tensor(h0[None]), torch.tensor(c0[None]))
        out, state = module(torch.tensor(x), state)
    states = state if isinstance(state, tuple) else (state,)
    return (out.numpy(),) + tuple(s[0].numpy() for s in states)


FORWARD = {"rnn": "rnn_forward", "lstm": "lstm_forward", "gru": "gru_forward"}


def skip_unless_written(*names):
    for name in names:
        if not hasattr(rn, name):
            pytest.skip(f"rnncourse.numpy.{name} is not written yet")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell, nonlinearity", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")])
def test_converted_single_layer_matches_our_forward(cell, nonlinearity, dtype):
    skip_unless_written(FORWARD[cell])
    kwargs = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    module = make_module(cell, dtype=dtype, **kwargs)
    x = random_input(dtype)
    rng = np.random.default_rng(3)
    h0 = rng.standard_normal((N, H)).astype(dtype)
    c0 = rng.standard_normal((N, H)).astype(dtype) if cell == "lstm" else None
    params = params_from_torch(module, cell)
    ours = our_forward(cell, x, h0, c0, params[0][0], **kwargs)
    assert_outputs_close(ours, torch_outputs_from(module, x, h0, c0), f"{cell} ({nonlinearity})")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_converted_stacked_bidirectional_matches_stacked_rnn_forward(cell, dtype):
    """The params[layer][direction] format means what torch means by it."""
    skip_unless_written("stacked_rnn_forward", FORWARD[cell])
    module = make_module(cell, num_layers=3, bidirectional=True, dtype=dtype)
    x = random_input(dtype)
    params = params_from_torch(module, cell)
    *ours, _ = rn.stacked_rnn_forward(x, None, params, cell=cell)
    assert_outputs_close(tuple(ours), torch_outputs(module, x), f"stacked {cell}")
