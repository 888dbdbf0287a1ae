"""Stacked and bidirectional layers: gradcheck, and parity with torch.nn.RNN/LSTM/GRU."""

import numpy as np
import pytest
import torch

from rnncourse.numpy import gradcheck, init_params, rel_error, stacked_rnn_backward, stacked_rnn_forward
from rnncourse.numpy.rnn import rnn_step_forward
from rnncourse.testing import assert_close

CELLS = ["rnn", "lstm", "gru"]
# (num_layers, bidirectional): one layer, a reverse direction, depth, both.
CONFIGS = [(1, False), (1, True), (2, False), (3, True)]
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def _problem(cell, L, bidirectional, dtype=np.float64, seed=0, N=None, T=None, D=None, H=None):
    """Random params, input and states; sizes drawn from the seed unless given."""
    rng = np.random.default_rng(seed)
    N = N or int(rng.integers(1, 4))
    T = T or int(rng.integers(1, 5))
    D = D or int(rng.integers(1, 5))
    H = H or int(rng.integers(1, 4))
    K = 2 if bidirectional else 1
    params = init_params(cell, D, H, L, bidirectional, rng=rng, dtype=dtype)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    h0 = rng.standard_normal((L * K, N, H)).astype(dtype)
    c0 = rng.standard_normal((L * K, N, H)).astype(dtype) if cell == "lstm" else None
    return rng, params, x, h0, c0


def _forward(x, h0, params, cell, c0=None, nonlinearity="tanh"):
    """(out, h_n, c_n or None, cache) whatever the cell."""
    res = stacked_rnn_forward(x, h0, params, cell=cell, c0=c0, nonlinearity=nonlinearity)
    if cell == "lstm":
        return res
    out, h_n, cache = res
    return out, h_n, None, cache


def _backward(dout, cache, cell, dh_n, dc_n=None):
    """(dx, dh0, dc0 or None, grads) whatever the cell."""
    res = stacked_rnn_backward(dout, cache, dh_n=dh_n, dc_n=dc_n)
    if cell == "lstm":
        return res
    dx, dh0, grads = res
    return dx, dh0, None, grads


def _torch_module(params, cell, bidirectional, dtype, rng, nonlinearity="tanh"):
    """The torch.nn module with our weights; for rnn/lstm our b is split as
    bias_ih = b - r, bias_hh = r with a random non-zero r, so a bias that torch
    applies twice or not at all would show."""
    L, H = len(params), params[0][0]["Wh"].shape[0]
    D = params[0][0]["Wx"].shape[0]
    kwargs = dict(num_layers=L, bidirectional=bidirectional, batch_first=True)
    if cell == "rnn":
        module = torch.nn.RNN(D, H, nonlinearity=nonlinearity, **kwargs)
    else:
        module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](D, H, **kwargs)
    module = module.to(TORCH_DTYPE[dtype])
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    with torch.no_grad():
        for layer, directions in enumerate(params):
            for direction, p in enumerate(directions):
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                getattr(module, "weight_ih" + sfx).copy_(t(p["Wx"].T))
                getattr(module, "weight_hh" + sfx).copy_(t(p["Wh"].T))
                if cell == "gru":
                    getattr(module, "bias_ih" + sfx).copy_(t(p["bx"]))
                    getattr(module, "bias_hh" + sfx).copy_(t(p["bh"]))
                else:
                    r = rng.standard_normal(p["b"].shape).astype(dtype)
                    getattr(module, "bias_ih" + sfx).copy_(t(p["b"] - r))
                    getattr(module, "bias_hh" + sfx).copy_(t(r))
    return module


def _torch_run(module, cell, x, h0, c0, dout, dh_n, dc_n):
    """Torch's outputs, and the gradients of sum(out*dout) + sum(h_n*dh_n) (+ sum(c_n*dc_n))."""
    xt = torch.from_numpy(x).requires_grad_()
    h0t = torch.from_numpy(h0).requires_grad_()
    if cell == "lstm":
        c0t = torch.from_numpy(c0).requires_grad_()
        out, (h_n, c_n) = module(xt, (h0t, c0t))
        objective = (out * torch.from_numpy(dout)).sum() + (h_n * torch.from_numpy(dh_n)).sum()
        objective = objective + (c_n * torch.from_numpy(dc_n)).sum()
    else:
        c0t, c_n = None, None
        out, h_n = module(xt, h0t)
        objective = (out * torch.from_numpy(dout)).sum() + (h_n * torch.from_numpy(dh_n)).sum()
    objective.backward()
    return out, h_n, c_n, xt.grad, h0t.grad, None if c0t is None else c0t.grad


def _compare_grads_with_torch(grads, module, cell):
    for layer, directions in enumerate(grads):
        for direction, g in enumerate(directions):
            sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
            where = f"grads[{layer}][{direction}]"
            assert_close(g["Wx"], getattr(module, "weight_ih" + sfx).grad.T, f"{where}['Wx']")
            assert_close(g["Wh"], getattr(module, "weight_hh" + sfx).grad.T, f"{where}['Wh']")
            if cell == "gru":
                assert_close(g["bx"], getattr(module, "bias_ih" + sfx).grad, f"{where}['bx']")
                assert_close(g["bh"], getattr(module, "bias_hh" + sfx).grad, f"{where}['bh']")
            else:
                # b enters like bias_ih and like bias_hh: all three gradients agree
                assert_close(g["b"], getattr(module, "bias_ih" + sfx).grad, f"{where}['b'] vs bias_ih")
                assert_close(g["b"], getattr(module, "bias_hh" + sfx).grad, f"{where}['b'] vs bias_hh")


# --- parity with torch.nn ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("L, bidirectional", CONFIGS)
@pytest.mark.parametrize("cell", CELLS)
def test_matches_torch_forward_backward_and_final_states(cell, L, bidirectional, dtype):
    seed = 100 * L + 10 * bidirectional + CELLS.index(cell)
    rng, params, x, h0, c0 = _problem(cell, L, bidirectional, dtype, seed=seed)
    module = _torch_module(params, cell, bidirectional, dtype, rng)

    out, h_n, c_n, cache = _forward(x, h0, params, cell, c0)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dh_n = rng.standard_normal(h_n.shape).astype(dtype)
    dc_n = rng.standard_normal(h_n.shape).astype(dtype) if cell == "lstm" else None
    dx, dh0, dc0, grads = _backward(dout, cache, cell, dh_n, dc_n)

    t_out, t_h_n, t_c_n, t_dx, t_dh0, t_dc0 = _torch_run(module, cell, x, h0, c0, dout, dh_n, dc_n)
    assert out.dtype == dtype and dx.dtype == dtype
    assert_close(out, t_out, "out")
    assert_close(h_n, t_h_n, "h_n")
    assert_close(dx, t_dx, "dx")
    assert_close(dh0, t_dh0, "dh0")
    if cell == "lstm":
        assert_close(c_n, t_c_n, "c_n")
        assert_close(dc0, t_dc0, "dc0")
    _compare_grads_with_torch(grads, module, cell)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_relu_rnn_matches_torch(bidirectional):
    rng, params, x, h0, _ = _problem("rnn", 2, bidirectional, seed=7, N=3, T=4, D=3, H=4)
    module = _torch_module(params, "rnn", bidirectional, np.float64, rng, nonlinearity="relu")
    out, h_n, cache = stacked_rnn_forward(x, h0, params, cell="rnn", nonlinearity="relu")
    dout, dh_n = rng.standard_normal(out.shape), rng.standard_normal(h_n.shape)
    dx, dh0, grads = stacked_rnn_backward(dout, cache, dh_n=dh_n)
    t_out, t_h_n, _, t_dx, t_dh0, _ = _torch_run(module, "rnn", x, h0, None, dout, dh_n, None)
    assert_close(out, t_out, "out")
    assert_close(h_n, t_h_n, "h_n")
    assert_close(dx, t_dx, "dx")
    assert_close(dh0, t_dh0, "dh0")
    _compare_grads_with_torch(grads, module, "rnn")


def test_parity_check_catches_swapped_directions_and_concatenation_order():
    """The comparison with torch is sharp enough to see the usual bidirectional bugs."""
    rng, params, x, h0, c0 = _problem("lstm", 2, True, seed=3, N=2, T=4, D=3, H=3)
    module = _torch_module(params, "lstm", True, np.float64, rng)
    t_out = module(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))[0]
    out = stacked_rnn_forward(x, h0, params, cell="lstm", c0=c0)[0]
    assert_close(out, t_out, "out")

    reverse_first = np.concatenate([out[..., 3:], out[..., :3]], axis=2)
    with pytest.raises(AssertionError, match="out"):
        assert_close(reverse_first, t_out, "out")
    swapped = [[layer[1], layer[0]] for layer in params]
    with pytest.raises(AssertionError):
        assert_close(stacked_rnn_forward(x, h0, swapped, cell="lstm", c0=c0)[0], t_out, "out")
    not_reversed_back = out.copy()
    not_reversed_back[..., 3:] = out[:, ::-1, 3:]
    with pytest.raises(AssertionError):
        assert_close(not_reversed_back, t_out, "out")


# --- what the outputs mean --------------------------------------------------------------


def test_reverse_direction_reads_the_sequence_backwards():
    """out[:, T-1, H:] is the reverse direction's first step: it has seen x_{T-1} only."""
    rng, params, x, h0, _ = _problem("rnn", 1, True, seed=11, N=2, T=5, D=3, H=4)
    out, h_n, _ = stacked_rnn_forward(x, h0, params, cell="rnn")
    rev = params[0][1]
    first_reverse_step, _ = rnn_step_forward(x[:, -1], h0[1], rev["Wx"], rev["Wh"], rev["b"])
    assert_close(out[:, -1, 4:], first_reverse_step, "reverse output at t = T-1")
    fwd = params[0][0]
    first_forward_step, _ = rnn_step_forward(x[:, 0], h0[0], fwd["Wx"], fwd["Wh"], fwd["b"])
    assert_close(out[:, 0, :4], first_forward_step, "forward output at t = 0")


@pytest.mark.parametrize("cell", CELLS)
def test_final_states_are_the_last_outputs_of_each_direction(cell):
    rng, params, x, h0, c0 = _problem(cell, 3, True, seed=5, N=2, T=4, D=2, H=3)
    out, h_n, _, _ = _forward(x, h0, params, cell, c0)
    # top layer (index 2): forward ends at t = T-1, reverse at t = 0
    assert_close(h_n[4], out[:, -1, :3], "h_n of the top forward direction")
    assert_close(h_n[5], out[:, 0, 3:], "h_n of the top reverse direction")


# --- gradcheck --------------------------------------------------------------------------


def _flat_inputs(x, h0, c0, params):
    inputs = {"x": x, "h0": h0}
    if c0 is not None:
        inputs["c0"] = c0
    for layer, directions in enumerate(params):
        for direction, p in enumerate(directions):
            for name, a in p.items():
                inputs[f"p{layer}{direction}_{name}"] = a
    return inputs


def _unflatten(inputs, L, K):
    return [[{k.split("_", 1)[1]: v for k, v in inputs.items() if k.startswith(f"p{layer}{direction}_")}
             for direction in range(K)] for layer in range(L)]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("L, bidirectional", [(1, True), (2, True), (2, False)])
def test_gradcheck(cell, L, bidirectional):
    rng, params, x, h0, c0 = _problem(cell, L, bidirectional, seed=21, N=2, T=3, D=2, H=2)
    K = 2 if bidirectional else 1

    def f(**inputs):
        out, h_n, c_n, _ = _forward(inputs["x"], inputs["h0"], _unflatten(inputs, L, K), cell, inputs.get("c0"))
        return (out, h_n) if c_n is None else (out, h_n, c_n)

    out, h_n, c_n, cache = _forward(x, h0, params, cell, c0)
    dout = tuple(rng.standard_normal(a.shape) for a in (out, h_n, c_n) if a is not None)
    dx, dh0, dc0, grads = _backward(dout[0], cache, cell, dout[1], dout[2] if cell == "lstm" else None)
    analytic = _flat_inputs(dx, dh0, dc0, grads)
    report = gradcheck(f, _flat_inputs(x, h0, c0, params), analytic, dout)
    assert report.ok, str(report)

    # A realistic bug, the two directions' (or two layers') gradients mixed up, fails.
    if bidirectional:
        wrong = _flat_inputs(dx, dh0, dc0, [[g[1], g[0]] for g in grads])
    else:
        wrong = _flat_inputs(dx, dh0, dc0, grads[::-1])  # D == H: the layers' shapes agree
    assert max(rel_error(wrong[k], report.numeric_grads[k]) for k in wrong) > 1e-7


def test_backward_twice_gives_the_same_result_and_keeps_dout():
    rng, params, x, h0, c0 = _problem("lstm", 2, True, seed=2, N=2, T=3, D=2, H=3)
    out, h_n, c_n, cache = stacked_rnn_forward(x, h0, params, cell="lstm", c0=c0)
    dout, dh_n, dc_n = (rng.standard_normal(a.shape) for a in (out, h_n, c_n))
    dout_before = dout.copy()
    first = stacked_rnn_backward(dout, cache, dh_n=dh_n, dc_n=dc_n)
    second = stacked_rnn_backward(dout, cache, dh_n=dh_n, dc_n=dc_n)
    np.testing.assert_array_equal(dout, dout_before)
    for a, b in zip(first[:3], second[:3]):
        np.testing.assert_array_equal(a, b)
    for ga, gb in zip(first[3], second[3]):
        for pa, pb in zip(ga, gb):
            for k in pa:
                np.testing.assert_array_equal(pa[k], pb[k])


def test_default_initial_states_are_zeros():
    rng, params, x, _, _ = _problem("lstm", 2, True, seed=4, N=2, T=3, D=2, H=3)
    zeros = np.zeros((4, 2, 3))
    a = stacked_rnn_forward(x, None, params, cell="lstm")
    b = stacked_rnn_forward(x, zeros, params, cell="lstm", c0=zeros)
    for u, v in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(u, v)
    dx_a = stacked_rnn_backward(np.ones_like(a[0]), a[3])[0]
    dx_b = stacked_rnn_backward(np.ones_like(a[0]), b[3], dh_n=zeros, dc_n=zeros)[0]
    np.testing.assert_array_equal(dx_a, dx_b)


@pytest.mark.parametrize("cell", CELLS)
def test_extreme_inputs_stay_finite(cell):
    rng, params, x, h0, c0 = _problem(cell, 2, True, seed=8, N=2, T=4, D=3, H=3)
    out, h_n, c_n, cache = _forward(1e4 * x, 1e4 * h0, params, cell, None if c0 is None else 1e4 * c0)
    dx, dh0, dc0, grads = _backward(np.ones_like(out), cache, cell, np.ones_like(h_n),
                                    None if c_n is None else np.ones_like(c_n))
    for a in (out, h_n, dx, dh0):
        assert np.all(np.isfinite(a))
    assert all(np.all(np.isfinite(g)) for layer in grads for d in layer for g in d.values())


# --- init_params ------------------------------------------------------------------------


@pytest.mark.parametrize("cell, G", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_init_params_shapes_range_and_determinism(cell, G):
    params = init_params(cell, 5, 4, num_layers=3, bidirectional=True, rng=np.random.default_rng(0))
    assert len(params) == 3 and all(len(layer) == 2 for layer in params)
    for layer, directions in enumerate(params):
        for p in directions:
            assert p["Wx"].shape == ((5 if layer == 0 else 8), G * 4)
            assert p["Wh"].shape == (4, G * 4)
            assert p["Wx"].dtype == np.float64
            assert np.abs(p["Wx"]).max() <= 0.5 and np.abs(p["Wh"]).max() <= 0.5  # 1/sqrt(4)
            if cell == "gru":
                assert set(p) == {"Wx", "Wh", "bx", "bh"}
                assert np.abs(p["bx"]).max() <= 0.5 and np.any(p["bx"] != 0)
            else:
                assert set(p) == {"Wx", "Wh", "b"}
                assert np.abs(p["b"]).max() <= 1.0 and np.any(p["b"] != 0)  # sum of two U(-1/2, 1/2)
    again = init_params(cell, 5, 4, num_layers=3, bidirectional=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(params[2][1]["Wh"], again[2][1]["Wh"])
    other = init_params(cell, 5, 4, num_layers=3, bidirectional=True, rng=np.random.default_rng(1))
    assert not np.array_equal(params[2][1]["Wh"], other[2][1]["Wh"])


def test_init_params_float32_and_rnn_weights_spread_over_the_range():
    params = init_params("rnn", 3, 100, rng=np.random.default_rng(0), dtype=np.float32)
    Wh = params[0][0]["Wh"]
    assert Wh.dtype == np.float32 and params[0][0]["b"].dtype == np.float32
    # U(-0.1, 0.1): nearly reaches both ends, std 0.2 / sqrt(12)
    assert Wh.max() > 0.099 and Wh.min() < -0.099
    assert abs(Wh.std() - 0.2 / np.sqrt(12)) < 0.002


def test_float32_in_float32_out():
    rng, params, x, h0, c0 = _problem("gru", 2, True, np.float32, seed=1)
    out, h_n, cache = stacked_rnn_forward(x, h0, params, cell="gru")
    dx, dh0, grads = stacked_rnn_backward(np.ones_like(out), cache)
    assert out.dtype == h_n.dtype == dx.dtype == dh0.dtype == grads[1][1]["Wh"].dtype == np.float32


# --- bad input --------------------------------------------------------------------------


def test_errors_name_what_was_expected():
    rng, params, x, h0, c0 = _problem("lstm", 2, True, seed=0, N=2, T=3, D=4, H=3)
    with pytest.raises(ValueError, match=r"cell is 'transformer'; expected 'rnn', 'lstm' or 'gru'"):
        stacked_rnn_forward(x, h0, params, cell="transformer")
    with pytest.raises(ValueError, match=r"nonlinearity='relu' only applies to cell='rnn'"):
        stacked_rnn_forward(x, h0, params, cell="lstm", nonlinearity="relu")
    with pytest.raises(ValueError, match=r"nonlinearity is 'sigmoid'"):
        stacked_rnn_forward(x, h0, params, cell="lstm", nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"h0 has shape \(4, 2, 2\); expected \(L\*num_directions, N, H\) = \(4, 2, 3\)"):
        stacked_rnn_forward(x, h0[..., :2], params, cell="lstm")
    with pytest.raises(ValueError, match=r"c0 has shape \(2, 2, 3\); expected .* = \(4, 2, 3\)"):
        stacked_rnn_forward(x, h0, params, cell="lstm", c0=c0[:2])
    with pytest.raises(ValueError, match=r"x has shape \(2, 4\); expected \(N, T, D\) with 3 dimensions"):
        stacked_rnn_forward(x[:, 0], h0, params, cell="lstm")
    with pytest.raises(ValueError, match=r"x has dtype int64; expected a floating-point"):
        stacked_rnn_forward(x.astype(np.int64), h0, params, cell="lstm")
    with pytest.raises(ValueError, match=r"params\[0\]\[0\]\['Wx'\] has shape \(4, 12\); expected \(D, 4H\) = \(5, 12\)"):
        stacked_rnn_forward(np.zeros((2, 3, 5)), h0, params, cell="lstm")
    bad = [params[0], [dict(params[1][0], Wx=params[1][0]["Wx"][:3]), params[1][1]]]
    with pytest.raises(ValueError, match=r"params\[1\]\[0\]\['Wx'\] has shape \(3, 12\); expected \(2H, 4H\) = \(6, 12\)"):
        stacked_rnn_forward(x, h0, bad, cell="lstm")
    with pytest.raises(ValueError, match=r"params\[0\]\[0\] has keys \['Wh', 'Wx', 'b'\]; expected \['Wh', 'Wx', 'bh', 'bx'\] for cell='gru'"):
        stacked_rnn_forward(x, h0, params, cell="gru")
    with pytest.raises(ValueError, match=r"params\[1\] has 1 directions; expected 2 like params\[0\]"):
        stacked_rnn_forward(x, h0, [params[0], params[1][:1]], cell="lstm")
    with pytest.raises(ValueError, match=r"expected a non-empty list of layers"):
        stacked_rnn_forward(x, h0, [], cell="lstm")

    rnn_params = init_params("rnn", 4, 3, rng=rng)
    with pytest.raises(ValueError, match=r"c0 was given for cell='rnn'"):
        stacked_rnn_forward(x, h0[:1], rnn_params, cell="rnn", c0=h0[:1])
    out, h_n, cache = stacked_rnn_forward(x, h0[:1], rnn_params, cell="rnn")
    with pytest.raises(ValueError, match=r"dc_n was given for cell='rnn'"):
        stacked_rnn_backward(out, cache, dc_n=h_n)
    with pytest.raises(ValueError, match=r"dout has shape \(2, 3, 4\); expected \(N, T, num_directions\*H\) = \(2, 3, 3\)"):
        stacked_rnn_backward(np.zeros((2, 3, 4)), cache)
    with pytest.raises(ValueError, match=r"dh_n has shape \(2, 2, 3\); expected .* = \(1, 2, 3\)"):
        stacked_rnn_backward(out, cache, dh_n=np.zeros((2, 2, 3)))


def test_init_params_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"rng is int; expected a numpy.random.Generator"):
        init_params("lstm", 3, 4, rng=0)
    with pytest.raises(ValueError, match=r"cell is 'LSTM'; expected"):
        init_params("LSTM", 3, 4, rng=rng)
    with pytest.raises(ValueError, match=r"num_layers is 0; expected an integer >= 1"):
        init_params("lstm", 3, 4, num_layers=0, rng=rng)
    with pytest.raises(ValueError, match=r"hidden_size is 2.5; expected an integer >= 1"):
        init_params("lstm", 3, 2.5, rng=rng)
    with pytest.raises(ValueError, match=r"dtype is int32; expected a floating-point dtype"):
        init_params("lstm", 3, 4, rng=rng, dtype=np.int32)


@pytest.mark.parametrize("cell", CELLS)
def test_weights_of_a_torch_module_via_the_converter(cell):
    """End to end: torch's own initialisation, converted by params_from_torch."""
    from rnncourse.numpy import params_from_torch

    torch.manual_seed(0)
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        3, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    out, h_n, c_n, _ = _forward(x, None, params_from_torch(module, cell), cell)
    t_out, t_state = module(torch.from_numpy(x))
    assert_close(out, t_out, "out")
    assert_close(h_n, t_state[0] if cell == "lstm" else t_state, "h_n")
    if cell == "lstm":
        assert_close(c_n, t_state[1], "c_n")
