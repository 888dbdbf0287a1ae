"""rnncourse.torch RNN, LSTM, GRU against torch.nn and against rnncourse.numpy.

Every comparison goes through :func:`rnncourse.testing.assert_close` (the
project's one tolerance policy). Modules are built from the same seed, so
ours and torch's have the same weights by construction (checked), with every
bias non-zero.
"""

import random
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import rnncourse.numpy as rn
from rnncourse.testing import assert_close
from rnncourse.torch import _recurrence
from rnncourse.torch.init import init_forget_bias_, init_orthogonal_recurrent_
from rnncourse.torch.cells import GRUCell, LSTMCell, RNNCell
from rnncourse.torch.rnn import GRU, LSTM, RNN

OURS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
THEIRS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
DTYPES = [torch.float64, torch.float32]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# ---------------------------------------------------------------------------
# helpers


def make_pair(cell, input_size, hidden_size, dtype=torch.float64, device="cpu", seed=0, **kwargs):
    """Ours and torch's, built from the same seed; their weights must be equal."""
    torch.manual_seed(seed)
    ours = OURS[cell](input_size, hidden_size, device=device, dtype=dtype, **kwargs)
    torch.manual_seed(seed)
    theirs = THEIRS[cell](input_size, hidden_size, device=device, dtype=dtype, **kwargs)
    for (name, p), (name_t, p_t) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == name_t
        assert torch.equal(p, p_t), f"{name} differs from torch.nn's for the same seed"
    return ours, theirs


def random_config(cell, seed):
    """A configuration: options cycle with the seed (so 12 seeds cover each
    of them both ways), sizes are random."""
    rng = random.Random(f"{cell}-{seed}")
    layout = ["padded", "packed", "unbatched", "packed unsorted", "padded"][seed % 5]
    H = rng.randint(2, 5)
    cfg = dict(
        D=rng.randint(1, 4),
        H=H,
        N=rng.randint(2 if layout.startswith("packed") else 1, 5),
        T=rng.randint(1, 7),
        kwargs=dict(
            num_layers=1 + seed % 3,
            bidirectional=bool(seed & 1),
            batch_first=bool(seed & 2),
            bias=seed % 4 != 3,
        ),
        layout=layout,
        given_states=bool(seed & 4) or seed % 3 == 1,
    )
    if cell == "rnn" and seed % 2:
        cfg["kwargs"]["nonlinearity"] = "relu"
    if cell == "lstm" and seed % 3 != 1:
        cfg["kwargs"]["proj_size"] = rng.randint(1, H - 1)
    return cfg


def make_inputs(cfg, cell, dtype, device="cpu", seed=0):
    """``(input, hx, leaves)``: the module input, initial states, tensors to differentiate."""
    g = torch.Generator().manual_seed(seed)
    kw = cfg["kwargs"]
    N, T, D, H = cfg["N"], cfg["T"], cfg["D"], cfg["H"]
    K = 2 if kw["bidirectional"] else 1
    P = kw.get("proj_size", 0) or H

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype=dtype, device=device).requires_grad_()

    layout = cfg["layout"]
    if layout == "unbatched":
        x = randn(T, D)
        inp = x
    else:
        x = randn(*((N, T, D) if kw["batch_first"] else (T, N, D)))
        inp = x
        if layout.startswith("packed"):
            lengths = torch.randint(1, T + 1, (N,), generator=g)
            lengths[0] = T  # the longest is T, wherever it sits
            sorted_ = layout == "packed"
            if sorted_:
                lengths = lengths.sort(descending=True).values
            inp = pack_padded_sequence(x, lengths, batch_first=kw["batch_first"], enforce_sorted=sorted_)
    hx, leaves = None, [x]
    if cfg["given_states"]:
        batch = () if layout == "unbatched" else (N,)
        h0 = randn(kw["num_layers"] * K, *batch, P)
        if cell == "lstm":
            c0 = randn(kw["num_layers"] * K, *batch, H)
            hx, leaves = (h0, c0), leaves + [h0, c0]
        else:
            hx, leaves = h0, leaves + [h0]
    return inp, hx, leaves


def flat_outputs(result):
    """``[output, h_n(, c_n)]`` as tensors (a PackedSequence gives its data)."""
    out, state = result
    if isinstance(out, PackedSequence):
        out = out.data
    return [out] + (list(state) if isinstance(state, tuple) else [state])


def outputs_and_grads(module, inp, hx, leaves, seed=1):
    """All outputs and the gradients of a random linear function of them
    with respect to every parameter and every leaf (input, states)."""
    outs = flat_outputs(module(inp, hx))
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o)).sum() for o in outs)
    params = [p for _, p in module.named_parameters()]
    grads = torch.autograd.grad(loss, params + leaves, retain_graph=True)  # packing is shared
    names = [n for n, _ in module.named_parameters()] + [f"d(leaf {k})" for k in range(len(leaves))]
    return outs, dict(zip(names, grads))


def assert_parity(ours, theirs, inp, hx, leaves, what="", *, gradients_floor_from_largest=False):
    """Outputs, final states and every gradient of ``ours`` and ``theirs`` agree.

    ``gradients_floor_from_largest`` compares the gradients as
    :func:`rnncourse.testing.assert_close` does with ``floor_from_largest``
    (for sums over many rows that cancel, see there).
    """
    out_a, grads_a = outputs_and_grads(ours, inp, hx, leaves)
    out_b, grads_b = outputs_and_grads(theirs, inp, hx, leaves)
    for name, a, b in zip(["output", "h_n", "c_n"], out_a, out_b):
        assert_close(a, b, f"{what} {name}")
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert_close(
            grads_a[name], grads_b[name], f"{what} gradient {name}", floor_from_largest=gradients_floor_from_largest
        )


# ---------------------------------------------------------------------------
# parity with torch.nn


# torch.nn.LSTM warns that its oneDNN path has no projections; not our concern
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("seed", range(12))
def test_random_configurations_match_torch(cell, dtype, seed):
    cfg = random_config(cell, seed)
    ours, theirs = make_pair(cell, cfg["D"], cfg["H"], dtype, seed=seed, **cfg["kwargs"])
    inp, hx, leaves = make_inputs(cfg, cell, dtype, seed=seed)
    assert_parity(ours, theirs, inp, hx, leaves, what=f"{cell} {cfg}")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_packed_sequences_match_torch_and_keep_each_final_state(cell, bidirectional, enforce_sorted):
    ours, theirs = make_pair(cell, 3, 4, num_layers=2, bidirectional=bidirectional)
    g = torch.Generator().manual_seed(3)
    lengths = torch.tensor([5, 5, 3, 2, 2, 1])
    if not enforce_sorted:
        lengths = lengths[torch.tensor([2, 0, 5, 1, 3, 4])]
    x = torch.randn(6, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=enforce_sorted)
    K = 2 if bidirectional else 1
    h0 = torch.randn(2 * K, 6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    if cell == "lstm":
        c0 = torch.randn(2 * K, 6, 4, generator=g, dtype=torch.float64, requires_grad=True)
        hx, leaves = (h0, c0), [x, h0, c0]
    else:
        hx, leaves = h0, [x, h0]
    assert_parity(ours, theirs, packed, hx, leaves, what=f"packed {cell}")

    # and by definition: the forward direction's final state of sequence j
    # is the output at its own last step
    out, state = ours(packed, hx)
    assert isinstance(out, PackedSequence)
    padded, out_lengths = pad_packed_sequence(out, batch_first=True)
    assert torch.equal(out_lengths, lengths)
    h_n = state[0] if cell == "lstm" else state
    for j, length in enumerate(lengths.tolist()):
        assert_close(h_n[-K, j], padded[j, length - 1, :4], f"h_n of sequence {j}")
        if bidirectional:  # the reverse direction ends at t = 0
            assert_close(h_n[-1, j], padded[j, 0, 4:], f"reverse h_n of sequence {j}")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_unbatched_input_gives_unbatched_outputs(cell):
    ours, theirs = make_pair(cell, 3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(5, 3, dtype=torch.float64)
    out, state = ours(x)
    out_t, state_t = theirs(x)
    assert out.shape == out_t.shape == (5, 8)
    states = state if isinstance(state, tuple) else (state,)
    states_t = state_t if isinstance(state_t, tuple) else (state_t,)
    for s, s_t in zip(states, states_t):
        assert s.shape == s_t.shape == (4, 4)
        assert_close(s, s_t, f"{cell} unbatched state")
    # the same as a batch of one
    out_b, _ = ours(x.unsqueeze(1))
    assert_close(out, out_b[:, 0], f"{cell} unbatched output vs batch of one")


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_lstm_projection_shapes_follow_torch():
    ours, theirs = make_pair("lstm", 3, 6, num_layers=2, bidirectional=True, proj_size=2, batch_first=True)
    assert {n: tuple(p.shape) for n, p in ours.named_parameters()} == {
        n: tuple(p.shape) for n, p in theirs.named_parameters()
    }
    assert ours.weight_hr_l1_reverse.shape == (2, 6)
    assert ours.weight_ih_l1.shape == (24, 4)
    out, (h, c) = ours(torch.randn(5, 7, 3, dtype=torch.float64))
    assert out.shape == (5, 7, 4) and h.shape == (4, 5, 2) and c.shape == (4, 5, 6)


def test_bias_false_has_no_bias_parameters_like_torch():
    ours, theirs = make_pair("gru", 3, 4, bias=False, num_layers=2)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert not any("bias" in n for n, _ in ours.named_parameters())


def test_only_requested_gradients_are_computed():
    ours, theirs = make_pair("lstm", 3, 4)
    x = torch.randn(5, 2, 3, dtype=torch.float64)  # no grad for x, weights frozen but one
    for p in ours.parameters():
        p.requires_grad_(False)
    ours.weight_hh_l0.requires_grad_(True)
    ours(x)[0].sum().backward()
    theirs(x)[0].sum().backward()
    assert_close(ours.weight_hh_l0.grad, theirs.weight_hh_l0.grad, "weight_hh_l0 alone")


def test_gradients_accumulate_over_two_backward_passes():
    ours, theirs = make_pair("lstm", 3, 4, num_layers=2)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    for m in (ours, theirs):
        for _ in range(2):
            m(x)[0].pow(2).sum().backward()
    for (n, p), (_, p_t) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert_close(p.grad, p_t.grad, f"accumulated {n}.grad")
    # the two biases get the same gradient but must not share storage
    assert ours.bias_ih_l0.grad.data_ptr() != ours.bias_hh_l0.grad.data_ptr()


def test_backward_with_retain_graph_twice_is_identical():
    ours, _ = make_pair("lstm", 3, 4, proj_size=2)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    out, (h, c) = ours(x)
    loss = out.sum() + h.sum() + c.sum()
    first = torch.autograd.grad(loss, [x] + list(ours.parameters()), retain_graph=True)
    second = torch.autograd.grad(loss, [x] + list(ours.parameters()))
    for a, b in zip(first, second):
        assert torch.equal(a, b)  # backward must not change what the forward saved


# ---------------------------------------------------------------------------
# each check can fail: realistic bugs are caught


def _parity_fails(cell, layout="padded"):
    """The parity check of the tests above, on a bugged implementation: it must fail."""
    cfg = dict(D=3, H=4, N=3, T=4, kwargs=dict(num_layers=2, bidirectional=True, batch_first=False, bias=True),
               layout=layout, given_states=True)
    ours, theirs = make_pair(cell, 3, 4, **cfg["kwargs"])
    inp, hx, leaves = make_inputs(cfg, cell, torch.float64)
    with pytest.raises(AssertionError):
        assert_parity(ours, theirs, inp, hx, leaves)


def test_swapped_gates_are_caught(monkeypatch):
    # the LSTM's gate blocks used in torch's order where ours expects them rotated
    monkeypatch.setattr(_recurrence, "_rotate", lambda w, H: w)
    _parity_fails("lstm")


def test_gradients_of_swapped_gate_blocks_are_caught(monkeypatch):
    # forward right, but the weight gradients handed back in the rotated order
    monkeypatch.setattr(_recurrence, "_unrotate", lambda w, H: w)
    _parity_fails("lstm")


def test_a_missing_hidden_bias_is_caught(monkeypatch):
    original = _recurrence.GRULayer.forward

    def forward_without_b_hh(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, steps, reverse):
        return original(ctx, x, h0, w_ih, w_hh, b_ih, torch.zeros_like(b_hh), steps, reverse)

    monkeypatch.setattr(_recurrence.GRULayer, "forward", staticmethod(forward_without_b_hh))
    _parity_fails("gru")


def test_last_padded_step_as_final_state_is_caught(monkeypatch):
    # the classic packed-sequence bug: h_n taken at step T - 1 for every sequence
    monkeypatch.setattr(_recurrence.Steps, "final", lambda self, flat, reverse: flat[-self.N :].clone())
    _parity_fails("rnn", layout="packed unsorted")


# ---------------------------------------------------------------------------
# the oneDNN products (float32 on the CPU; see rnncourse.torch._recurrence._Weight)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")
@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
def test_float32_products_on_the_cpu_run_in_onednn():
    # the fast path rests on a private operator of the pinned torch: if an
    # upgrade drops it, the fallback (torch.mm) is still right but about
    # 1.5x slower, and this test says why
    assert _recurrence._LINEAR_POINTWISE is not None
    w = torch.randn(8, 4)
    assert _recurrence._on_onednn(w)
    assert not _recurrence._on_onednn(w.double())
    with torch.backends.mkldnn.flags(enabled=False):
        assert not _recurrence._on_onednn(w)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # said by mkldnn.flags
@pytest.mark.parametrize("onednn", [True, False], ids=["onednn", "torch.mm"])
@pytest.mark.parametrize("layout", ["padded", "packed unsorted"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_float32_at_sizes_off_the_kernel_blocks_matches_torch(cell, layout, onednn):
    # sizes that are no multiple of oneDNN's blocks (8, 16, 64), so every
    # product has ragged edges; both paths, in float32, against torch.nn.
    # A weight gradient here sums 143 rows of terms that partly cancel: an
    # element can be 1e-3 of the array's largest, and float32 rounding, which
    # scales with the terms, puts it outside the element-wise bound (both
    # paths do, against torch.nn and one another), so gradients are compared
    # with floor_from_largest; outputs and states element-wise.
    cfg = dict(
        D=37, H=29, N=11, T=13, layout=layout, given_states=True,
        kwargs=dict(num_layers=2, bidirectional=True, batch_first=False, bias=True),
    )  # fmt: skip
    if cell == "lstm":
        cfg["kwargs"]["proj_size"] = 0 if layout == "padded" else 17
    with torch.backends.mkldnn.flags(enabled=onednn):
        ours, theirs = make_pair(cell, cfg["D"], cfg["H"], torch.float32, seed=5, **cfg["kwargs"])
        inp, hx, leaves = make_inputs(cfg, cell, torch.float32, seed=5)
        assert_parity(
            ours, theirs, inp, hx, leaves, what=f"{cell} {layout} float32", gradients_floor_from_largest=True
        )


# ---------------------------------------------------------------------------
# parity with rnncourse.numpy on the same weights


def _numpy_params(module, cell):
    return rn.params_from_torch(module, cell)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_single_layer_matches_numpy_reference(cell):
    torch.manual_seed(4)
    kwargs = dict(nonlinearity="relu") if cell == "rnn" else {}
    ours = OURS[cell](3, 5, batch_first=True, dtype=torch.float64, **kwargs)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 3))
    h0 = rng.standard_normal((1, 2, 5))
    c0 = rng.standard_normal((1, 2, 5))
    p = _numpy_params(ours, cell)[0][0]
    hx = (torch.tensor(h0), torch.tensor(c0)) if cell == "lstm" else torch.tensor(h0)
    out, state = ours(torch.tensor(x), hx)
    if cell == "lstm":
        h, c_last, _ = rn.lstm_forward(x, h0[0], p["Wx"], p["Wh"], p["b"], c0[0], return_state=True)
        assert_close(state[1][0], c_last, "c_n vs lstm_forward")
    elif cell == "gru":
        h, _ = rn.gru_forward(x, h0[0], p["Wx"], p["Wh"], p["bx"], p["bh"])
    else:
        h, _ = rn.rnn_forward(x, h0[0], p["Wx"], p["Wh"], p["b"], nonlinearity="relu")
    assert_close(out, h, f"{cell} output vs rnncourse.numpy")
    assert_close((state[0] if cell == "lstm" else state)[0], h[:, -1], f"{cell} h_n vs rnncourse.numpy")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_stacked_bidirectional_matches_numpy_forward_and_backward(cell):
    torch.manual_seed(5)
    ours = OURS[cell](3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype=torch.float64)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5, 3))
    h0 = rng.standard_normal((4, 3, 4))
    c0 = rng.standard_normal((4, 3, 4)) if cell == "lstm" else None
    params = _numpy_params(ours, cell)

    x_t = torch.tensor(x, requires_grad=True)
    h0_t = torch.tensor(h0, requires_grad=True)
    c0_t = None if c0 is None else torch.tensor(c0, requires_grad=True)
    out, state = ours(x_t, (h0_t, c0_t) if cell == "lstm" else h0_t)
    states = state if cell == "lstm" else (state,)
    expected = rn.stacked_rnn_forward(x, h0, params, cell=cell, c0=c0)
    cache = expected[-1]
    for name, a, b in zip(["output", "h_n", "c_n"], (out,) + states, expected[:-1]):
        assert_close(a, b, f"{cell} stacked {name} vs rnncourse.numpy")

    dout = rng.standard_normal(out.shape)
    dh_n = rng.standard_normal(h0.shape)
    dc_n = rng.standard_normal(h0.shape) if cell == "lstm" else None
    upstream = [dout, dh_n] + ([dc_n] if cell == "lstm" else [])
    torch.autograd.backward([out] + list(states), [torch.tensor(u) for u in upstream])
    if cell == "lstm":
        dx, dh0, dc0, grads = rn.stacked_rnn_backward(dout, cache, dh_n=dh_n, dc_n=dc_n)
        assert_close(c0_t.grad, dc0, "dc0 vs rnncourse.numpy")
    else:
        dx, dh0, grads = rn.stacked_rnn_backward(dout, cache, dh_n=dh_n)
    assert_close(x_t.grad, dx, f"{cell} dx vs rnncourse.numpy")
    assert_close(h0_t.grad, dh0, f"{cell} dh0 vs rnncourse.numpy")
    for layer in range(2):
        for direction in range(2):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            g = grads[layer][direction]
            assert_close(getattr(ours, "weight_ih" + suffix).grad.T, g["Wx"], f"dWx{suffix}")
            assert_close(getattr(ours, "weight_hh" + suffix).grad.T, g["Wh"], f"dWh{suffix}")
            db_ih = getattr(ours, "bias_ih" + suffix).grad
            db_hh = getattr(ours, "bias_hh" + suffix).grad
            if cell == "gru":
                assert_close(db_ih, g["bx"], f"dbx{suffix}")
                assert_close(db_hh, g["bh"], f"dbh{suffix}")
            else:  # one bias b = b_ih + b_hh in the NumPy reference
                assert_close(db_ih, g["b"], f"db{suffix} (bias_ih)")
                assert_close(db_hh, g["b"], f"db{suffix} (bias_hh)")


# ---------------------------------------------------------------------------
# state dicts, initialisation


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_load_state_dict_both_ways(cell):
    kwargs = dict(num_layers=2, bidirectional=True, bias=True)
    if cell == "lstm":
        kwargs["proj_size"] = 2
    torch.manual_seed(6)
    theirs = THEIRS[cell](3, 4, dtype=torch.float64, **kwargs)
    torch.manual_seed(7)
    ours = OURS[cell](3, 4, dtype=torch.float64, **kwargs)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    assert ours.state_dict().keys() == theirs.state_dict().keys()

    ours.load_state_dict(theirs.state_dict())  # strict: no missing or unexpected keys
    assert_close(ours(x)[0], theirs(x)[0], f"{cell} after loading torch's state dict")

    torch.manual_seed(8)
    fresh = THEIRS[cell](3, 4, dtype=torch.float64, **kwargs)
    torch.manual_seed(9)
    ours2 = OURS[cell](3, 4, dtype=torch.float64, **kwargs)
    fresh.load_state_dict(ours2.state_dict())
    assert_close(fresh(x)[0], ours2(x)[0], f"torch's {cell} after loading our state dict")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_default_initialisation_is_torchs(cell):
    # make_pair checks equality for the same seed; here: the bounds
    ours, _ = make_pair(cell, 3, 16, num_layers=2, bidirectional=True)
    bound = 1 / 16**0.5
    values = torch.cat([p.flatten() for p in ours.parameters()])
    assert values.abs().max() <= bound
    assert values.abs().max() > 0.95 * bound  # uniform over the whole range, not a narrower one
    assert values.std() > 0.5 * bound  # U(-a, a) has std a / sqrt(3)


def _assert_blocks_orthogonal(w, H, what):
    for k, block in enumerate(w.split(H, 0)):
        eye = torch.eye(block.shape[1], dtype=block.dtype)
        assert_close(block.T @ block, eye, f"{what} gate block {k}: Q^T Q")


@pytest.mark.parametrize("cls", [LSTM, nn.LSTM, GRU, nn.RNN])
def test_init_orthogonal_recurrent_makes_each_gate_block_orthogonal(cls):
    torch.manual_seed(10)
    module = cls(3, 5, num_layers=2, bidirectional=True, dtype=torch.float64)
    before = {n: p.clone() for n, p in module.named_parameters()}
    assert init_orthogonal_recurrent_(module) is module
    for name, p in module.named_parameters():
        if name.startswith("weight_hh"):
            _assert_blocks_orthogonal(p.detach(), 5, name)
            assert not torch.equal(p, before[name])
        else:
            assert torch.equal(p, before[name]), f"{name} must not change"


def test_init_orthogonal_recurrent_with_projection_is_semi_orthogonal():
    torch.manual_seed(11)
    module = LSTM(3, 5, proj_size=2, dtype=torch.float64)
    init_orthogonal_recurrent_(module, gain=1.0)
    _assert_blocks_orthogonal(module.weight_hh_l0.detach(), 5, "weight_hh_l0 (5 x 2 blocks)")


def test_whole_matrix_orthogonal_init_is_caught_by_the_block_check():
    torch.manual_seed(12)
    w = torch.empty(20, 5, dtype=torch.float64)
    nn.init.orthogonal_(w)  # orthonormal columns of the (4H, H) stack, not per block
    with pytest.raises(AssertionError):
        _assert_blocks_orthogonal(w, 5, "naive")


@pytest.mark.parametrize("cls", [LSTM, nn.LSTM])
def test_init_forget_bias_sets_the_forget_block_only(cls):
    torch.manual_seed(13)
    module = cls(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64)
    before = {n: p.clone() for n, p in module.named_parameters()}
    assert init_forget_bias_(module, value=1.5) is module
    for name, p in module.named_parameters():
        if name.startswith("bias_"):
            want = 1.5 if name.startswith("bias_ih") else 0.0
            assert torch.all(p[4:8] == want), f"{name} forget block"
            assert torch.equal(p[:4], before[name][:4]) and torch.equal(p[8:], before[name][8:])
        else:
            assert torch.equal(p, before[name])
    # the forget gate of the first step is sigmoid(x W_if + 1.5 + h W_hf): with
    # zero weights it is exactly sigmoid(1.5) whatever the input
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("weight"):
                p.zero_()
    h0 = torch.zeros(4, 2, 4, dtype=torch.float64)
    _, (h, c) = module(torch.randn(1, 2, 3, dtype=torch.float64), (h0, torch.ones_like(h0)))
    b = (module.bias_ih_l0 + module.bias_hh_l0).detach()
    f, i, g = torch.sigmoid(b[4:8]), torch.sigmoid(b[:4]), torch.tanh(b[8:12])
    assert_close(f, torch.full((4,), 1.5, dtype=torch.float64).sigmoid(), "forget gate")
    assert_close(c[0], (f * 1 + i * g).expand(2, 4), "c after one step from c0 = 1")


def test_init_forget_bias_rejects_non_lstms_and_missing_biases():
    with pytest.raises(ValueError, match="needs an LSTM"):
        init_forget_bias_(GRU(3, 4))
    with pytest.raises(ValueError, match="no biases"):
        init_forget_bias_(LSTM(3, 4, bias=False))
    with pytest.raises(ValueError, match="expected an RNN, LSTM or GRU"):
        init_orthogonal_recurrent_(nn.Linear(3, 4))


# ---------------------------------------------------------------------------
# dropout


def test_dropout_with_one_layer_warns_like_torch():
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        LSTM(3, 4, dropout=0.5)
    with warnings.catch_warnings(record=True) as theirs_w:
        warnings.simplefilter("always")
        nn.LSTM(3, 4, dropout=0.5)
    assert [w.category for w in ours_w] == [w.category for w in theirs_w] == [UserWarning]
    assert str(ours_w[0].message) == str(theirs_w[0].message)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_dropout_acts_between_layers_in_training_only(cell):
    ours, theirs = make_pair(cell, 3, 4, num_layers=2, dropout=0.5)
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    ours.eval()
    theirs.eval()
    eval_out, eval_state = ours(x)
    assert_close(eval_out, theirs(x)[0], "eval mode: no dropout, like torch")

    ours.train()
    torch.manual_seed(0)
    train_out, train_state = ours(x)
    torch.manual_seed(0)
    again, _ = ours(x)
    assert torch.equal(train_out, again)  # dropout draws from torch's generator
    assert not torch.allclose(train_out, eval_out)
    assert (train_out != 0).all(), "no dropout after the last layer"
    h_eval = eval_state[0] if cell == "lstm" else eval_state
    h_train = train_state[0] if cell == "lstm" else train_state
    assert_close(h_train[0], h_eval[0], "the first layer is not affected by dropout")


def test_dropout_one_zeroes_the_second_layers_input_like_torch():
    ours, theirs = make_pair("lstm", 3, 4, num_layers=2, dropout=1.0)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    ours.train()
    theirs.train()
    out, (h, c) = ours(x)
    out_t, (h_t, c_t) = theirs(x)
    assert_close(out, out_t, "output with dropout=1")
    assert_close(h, h_t, "h_n with dropout=1")
    # by definition: layer 2 alone on zeros
    single = LSTM(4, 4, dtype=torch.float64)
    with torch.no_grad():
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(single, kind + "_l0").copy_(getattr(ours, kind + "_l1"))
    assert_close(out, single(torch.zeros(5, 2, 4, dtype=torch.float64))[0], "layer 2 on a zero input")


# ---------------------------------------------------------------------------
# errors, mirroring torch.nn's


def _same_error(call_ours, call_theirs, match):
    """Ours raises what torch raises (type), with the message matching ``match``."""
    with pytest.raises(Exception) as theirs:
        call_theirs()
    with pytest.raises(type(theirs.value), match=match):
        call_ours()


def test_wrong_input_size_raises_like_torch():
    ours, theirs = make_pair("lstm", 3, 4)
    x = torch.randn(5, 2, 6, dtype=torch.float64)
    _same_error(lambda: ours(x), lambda: theirs(x), r"input_size. Expected 3, got 6")
    with pytest.raises(ValueError):  # and a ValueError, the project's convention
        ours(x)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_wrong_state_shapes_raise_like_torch(cell):
    ours, theirs = make_pair(cell, 3, 4, num_layers=2)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    bad = torch.zeros(1, 2, 4, dtype=torch.float64)
    good = torch.zeros(2, 2, 4, dtype=torch.float64)
    if cell == "lstm":
        _same_error(lambda: ours(x, (bad, good)), lambda: theirs(x, (bad, good)),
                    r"Expected hidden\[0\] size \(2, 2, 4\).*got \[1, 2, 4\]")
        wide = torch.zeros(2, 2, 5, dtype=torch.float64)
        _same_error(lambda: ours(x, (good, wide)), lambda: theirs(x, (good, wide)),
                    r"Expected hidden\[1\] size \(2, 2, 4\).*got \[2, 2, 5\]")
        flat = (good[0], good[0])
        _same_error(lambda: ours(x, flat), lambda: theirs(x, flat), r"For batched 3-D input.*3-D")
        _same_error(lambda: ours(x[:, 0], (good, good)), lambda: theirs(x[:, 0], (good, good)),
                    r"For unbatched 2-D input.*2-D")
    else:
        _same_error(lambda: ours(x, bad), lambda: theirs(x, bad), r"Expected hidden size \(2, 2, 4\).*got \[1, 2, 4\]")
    with pytest.raises(ValueError):
        ours(x, (bad, good) if cell == "lstm" else bad)


def test_other_input_errors_raise_like_torch():
    ours, theirs = make_pair("gru", 3, 4)
    x4 = torch.randn(5, 2, 3, 1, dtype=torch.float64)
    _same_error(lambda: ours(x4), lambda: theirs(x4), r"GRU: Expected input to be 2D or 3D, got 4D instead")
    x32 = torch.randn(5, 2, 3)
    _same_error(lambda: ours(x32), lambda: theirs(x32), r"dtype \(torch.float32\) does not match weight dtype")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda M: M["lstm"](3, 4, dropout=1.5), "dropout should be a number in range"),
        (lambda M: M["lstm"](3, 4, proj_size=4), "proj_size has to be smaller than hidden_size"),
        (lambda M: M["lstm"](3, 4, proj_size=-1), "proj_size should be a positive integer"),
        (lambda M: M["gru"](3, 4, num_layers=0), "num_layers must be greater than zero"),
        (lambda M: M["rnn"](3, 0), "hidden_size must be greater than zero"),
        (lambda M: M["rnn"](3, 4, nonlinearity="sigmoid"), "Unknown nonlinearity 'sigmoid'"),
        (lambda M: M["lstm"](3, 2.5), "hidden_size should be of type int"),
    ],
)
def test_constructor_errors_like_torch(make, match):
    _same_error(lambda: make(OURS), lambda: make(THEIRS), match)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: LSTM(3, 4, proj_size=2.0), r"proj_size should be of type int, got: float \(2\.0\)"),
        (lambda: GRU(3, 4, num_layers=2.0), r"num_layers should be of type int, got: float \(2\.0\)"),
        (lambda: GRUCell(3, "4"), r"hidden_size should be of type int, got: str \('4'\)"),
        (lambda: RNN(3, 4)(torch.zeros(5, 2, 3), [0.0]), r"hidden is a list; expected a Tensor"),
        (lambda: LSTM(3, 4)(torch.zeros(5, 2, 3), (torch.zeros(1, 2, 4), "c")),
         r"hidden\[1\] is a str; expected a Tensor"),
        (lambda: RNNCell(3, 4)([1.0, 2.0, 3.0]), r"input is a list; expected a Tensor"),
        (lambda: LSTMCell(3, 4)(torch.zeros(2, 3), (torch.zeros(2, 4), 1)), r"hx\[1\] is a int; expected a Tensor"),
    ],
    ids=["LSTM proj_size", "GRU num_layers", "GRUCell hidden_size", "RNN hidden", "LSTM c0", "RNNCell input",
         "LSTMCell c"],
)
def test_modules_and_cells_refuse_a_wrong_type_in_the_same_words(call, message):
    # One home for both (rnncourse.torch._checks): an int argument in torch.nn's words, a state that is not a Tensor.
    with pytest.raises(TypeError, match=f"^{message}$"):
        call()


def test_signatures_and_attributes_follow_torch():
    m = LSTM(3, 4, 2, True, True, 0.25, True, 2)  # positional, in torch's order
    t = nn.LSTM(3, 4, 2, True, True, 0.25, True, 2)
    attributes = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
                  "proj_size", "mode")
    for attr in attributes:
        assert getattr(m, attr) == getattr(t, attr), attr
    r = RNN(3, 4, 1, "relu")
    assert r.nonlinearity == nn.RNN(3, 4, 1, "relu").nonlinearity == "relu"
    assert repr(m).replace("rnncourse.torch.rnn.", "") == repr(t)
    m.flatten_parameters()  # accepted, does nothing
    assert [len(w) for w in m.all_weights] == [len(w) for w in t.all_weights]


# ---------------------------------------------------------------------------
# CUDA


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("seed", range(3))
def test_cuda_float32_matches_torch(cell, seed):
    cfg = random_config(cell, 100 + seed)
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # exact float32 for both
    try:
        ours, theirs = make_pair(cell, cfg["D"], cfg["H"], torch.float32, device="cuda", seed=seed, **cfg["kwargs"])
        inp, hx, leaves = make_inputs(cfg, cell, torch.float32, device="cuda", seed=seed)
        assert_parity(ours, theirs, inp, hx, leaves, what=f"cuda {cell} {cfg}")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_cuda_packed_unsorted_float32_matches_torch(cell):
    cfg = dict(D=5, H=6, N=4, T=7, kwargs=dict(num_layers=2, bidirectional=True, batch_first=True, bias=True),
               layout="packed unsorted", given_states=True)
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # exact float32 for both
    try:
        ours, theirs = make_pair(cell, 5, 6, torch.float32, device="cuda", **cfg["kwargs"])
        inp, hx, leaves = make_inputs(cfg, cell, torch.float32, device="cuda")
        assert_parity(ours, theirs, inp, hx, leaves, what=f"cuda packed {cell}")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_cuda_bfloat16_forward_and_backward_run(cell):
    # bfloat16 has no tolerance in the project's policy: a smoke test (shapes,
    # dtype, finite values, gradients reach every parameter)
    ours = OURS[cell](32, 64, num_layers=2, bidirectional=True, device="cuda", dtype=torch.bfloat16)
    x = torch.randn(16, 8, 32, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    out, state = ours(x)
    assert out.dtype == torch.bfloat16 and out.shape == (16, 8, 128)
    assert torch.isfinite(out).all()
    out.float().pow(2).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in ours.parameters())


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_cuda_time_loops_never_wait_for_the_device(cell):
    # a host-device synchronisation anywhere in forward or backward raises here
    ours = OURS[cell](8, 16, num_layers=2, bidirectional=True, device="cuda")
    x = torch.randn(7, 4, 8, device="cuda", requires_grad=True)
    ours(x)[0].sum().backward()  # warm-up: library handles, allocator
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out, _ = ours(x)
        out.sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


class _OutputOnly(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)[0]


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cuda_graph_capture_of_the_module_matches_eager(cell):
    # no host sync and no data-dependent control flow: the whole module can be
    # captured as a CUDA graph (torch.cuda.make_graphed_callables)
    torch.manual_seed(14)
    ours = OURS[cell](8, 16, num_layers=2, bidirectional=True, device="cuda")
    x = torch.randn(7, 4, 8, device="cuda", requires_grad=True)
    dout = torch.randn(7, 4, 32, device="cuda")
    out = ours(x)[0]
    out.backward(dout)
    eager = [x.grad.clone()] + [p.grad.clone() for p in ours.parameters()]
    graphed = torch.cuda.make_graphed_callables(_OutputOnly(ours), (x.detach().clone().requires_grad_(),))
    x.grad = None
    ours.zero_grad(set_to_none=True)
    out_g = graphed(x)
    out_g.backward(dout)
    assert_close(out_g, out, f"graphed {cell} output")
    for k, (a, b) in enumerate(zip([x.grad] + [p.grad for p in ours.parameters()], eager)):
        assert_close(a, b, f"graphed {cell} gradient {k}")
