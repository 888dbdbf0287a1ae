"""rnncourse.torch keeps the torch.nn contract where a drop-in module most easily breaks it.

One test (or one parametrized family) per point of issue 19, each comparing
ours with torch.nn built on the same weights (``make_pair`` copies ours into
torch's, every bias non-zero):

1. gradients of gradients (``create_graph=True``): ``gradgradcheck`` in
   float64 and a gradient-penalty training step equal to torch's; derivatives
   in forward mode;
2. vmap over the backward: ``jacobian(vectorize=True)`` and batched gradient checks;
3. an empty batch (N = 0), forward and backward;
4. ``torch.jit.trace`` and (marked ``slow``) ``torch.compile``, forward and backward;
5. the layout of float32 gradients (``g.view(-1)`` works where it does for torch's);
6. ``isinstance`` against torch.nn's classes;
7. every error input the issue and PyTorch's module database list: the same
   exception type as torch, a message that says what was expected and what came;
8. ``repr`` and the output dtype under CPU bfloat16 autocast.

Comparisons go through :func:`rnncourse.testing.assert_close` (the project's
tolerance policy) unless a test says why not.
"""

import os
import re
import shutil
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from rnncourse.testing import assert_close
from rnncourse.torch import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

if not torch.cuda.is_available():
    # Triton's interpreter for the test of the kernels' double backward, chosen
    # before they are first imported (as tests/torch/test_triton_kernels.py does)
    os.environ["TRITON_INTERPRET"] = "1"

OURS = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "rnn_cell": RNNCell, "lstm_cell": LSTMCell, "gru_cell": GRUCell}
THEIRS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU,
          "rnn_cell": nn.RNNCell, "lstm_cell": nn.LSTMCell, "gru_cell": nn.GRUCell}
MODULES = ["rnn", "lstm", "gru"]
CELLS = ["rnn_cell", "lstm_cell", "gru_cell"]


def make_pair(kind, *args, dtype=torch.float64, seed=0, **kwargs):
    """Ours and torch's with the same weights (ours drawn from the seed, copied into torch's)."""
    torch.manual_seed(seed)
    ours = OURS[kind](*args, dtype=dtype, **kwargs)
    theirs = THEIRS[kind](*args, dtype=dtype, **kwargs)
    theirs.load_state_dict(ours.state_dict())
    for name, p in ours.named_parameters():
        if name.startswith("bias"):
            assert p.abs().min() > 0, f"{name} has a zero: the comparison would not see that bias"
    return ours, theirs


def states(module, N, dtype=torch.float64, seed=1):
    """Random initial states for ``module`` (a tuple for the LSTM), batch N."""
    g = torch.Generator().manual_seed(seed)
    K = 2 if module.bidirectional else 1
    P = module.proj_size or module.hidden_size
    h0 = torch.randn(module.num_layers * K, N, P, dtype=dtype, generator=g)
    if module.mode == "LSTM":
        return h0, torch.randn(module.num_layers * K, N, module.hidden_size, dtype=dtype, generator=g)
    return h0


def flat_outputs(result):
    """``(output, h_n)`` or ``(output, (h_n, c_n))`` as a flat tuple of tensors."""
    output, state = result
    if isinstance(output, nn.utils.rnn.PackedSequence):
        output = output.data
    return (output,) + (tuple(state) if isinstance(state, tuple) else (state,))


def params_of(module):
    return dict(module.named_parameters())


def as_function(module, input_is_packed=None):
    """``f(x, *states, *parameters)`` -> flat outputs, for gradcheck over every input at once."""
    names = list(params_of(module))
    lstm = module.mode == "LSTM"

    def f(x, *rest):
        n_states = 2 if lstm else 1
        hx = tuple(rest[:n_states]) if lstm else rest[0]
        weights = dict(zip(names, rest[n_states:]))
        inp = x if input_is_packed is None else input_is_packed(x)
        return flat_outputs(torch.func.functional_call(module, weights, (inp, hx)))

    return f


# Small variants: every code path of the layers (both directions, several
# layers, projection, ReLU, packed sequences that start and stop at different
# steps) at sizes where checks of second derivatives stay fast.
VARIANTS = [
    ("rnn", {}),
    ("rnn", dict(nonlinearity="relu", num_layers=2)),
    ("rnn", dict(num_layers=2, bidirectional=True)),
    ("lstm", {}),
    ("lstm", dict(num_layers=2, bidirectional=True)),
    ("lstm", dict(proj_size=2, bidirectional=True)),
    ("gru", {}),
    ("gru", dict(num_layers=2, bidirectional=True)),
]
VARIANT_IDS = [f"{kind}-" + ("-".join(f"{k}={v}" for k, v in kw.items()) or "plain") for kind, kw in VARIANTS]


def small_inputs(module, T=3, N=2, seed=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, N, module.input_size, dtype=torch.float64, generator=g, requires_grad=True)
    hx = states(module, N)
    hx = tuple(h.requires_grad_() for h in hx) if isinstance(hx, tuple) else hx.requires_grad_()
    return x, hx


# ---------------------------------------------------------------------------
# 1. Gradients of gradients


@pytest.mark.parametrize("kind, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_1_gradgradcheck_passes_and_second_derivatives_match_torch(kind, kwargs):
    ours, theirs = make_pair(kind, 2, 3, **kwargs)
    x, hx = small_inputs(ours)
    inputs = (x,) + (hx if isinstance(hx, tuple) else (hx,)) + tuple(ours.parameters())
    # fast_mode: the second derivatives along random directions, against finite
    # differences (the full Jacobian of the gradient takes ten times longer)
    assert torch.autograd.gradgradcheck(as_function(ours), inputs, fast_mode=True)

    # and the same Hessian-vector product as torch's: d/dw <v, d out/dw>
    def hvp(module):
        out = flat_outputs(module(x, hx))
        v = [torch.ones_like(o) for o in out]
        grads = torch.autograd.grad(out, list(module.parameters()), v, create_graph=True)
        s = sum((g * g).sum() for g in grads)
        return torch.autograd.grad(s, [x] + list(module.parameters()))

    for name, a, b in zip(["x"] + list(params_of(ours)), hvp(ours), hvp(theirs)):
        assert_close(a, b, f"second derivative wrt {name}")


def test_1_double_backward_on_a_packed_bidirectional_lstm():
    ours, theirs = make_pair("lstm", 2, 3, num_layers=2, bidirectional=True)
    lengths = [4, 2, 1]
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 2, dtype=torch.float64, generator=g, requires_grad=True)

    def packed(x):
        return pack_padded_sequence(x, lengths, enforce_sorted=True)

    hx = tuple(h.requires_grad_() for h in states(ours, 3))
    inputs = (x,) + hx + tuple(ours.parameters())
    assert torch.autograd.gradgradcheck(as_function(ours, packed), inputs, fast_mode=True)

    def second(module):
        out = flat_outputs(module(packed(x), hx))
        grads = torch.autograd.grad(out, [x] + list(module.parameters()), [o.cos() for o in out], create_graph=True)
        return torch.autograd.grad(sum(g.square().sum() for g in grads), [x, *hx] + list(module.parameters()))

    for a, b in zip(second(ours), second(theirs)):
        assert_close(a, b, "packed second derivative")


@pytest.mark.parametrize("kind", MODULES)
def test_1_gradient_penalty_training_step_equals_torchs(kind):
    """A WGAN-GP style step: loss + |d loss / d x|^2, then one SGD step; the weights after it match."""
    ours, theirs = make_pair(kind, 3, 4, num_layers=2, bidirectional=True)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, 3, 3, dtype=torch.float64, generator=g)
    target = torch.randn(5, 3, 8, dtype=torch.float64, generator=g)
    for module in (ours, theirs):
        opt = torch.optim.SGD(module.parameters(), lr=0.1)
        xi = x.clone().requires_grad_()
        out, _ = module(xi)
        loss = (out - target).square().mean()
        (dx,) = torch.autograd.grad(loss, xi, create_graph=True)
        penalty = (dx.flatten(1).norm(dim=1) - 1).square().mean()
        opt.zero_grad()
        (loss + 10 * penalty).backward()
        opt.step()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(a, b, f"{name} after a gradient-penalty step")


def test_1_first_order_gradients_are_unchanged_by_create_graph():
    """The same first derivatives whether or not the graph of the backward is built."""
    ours, _ = make_pair("lstm", 3, 4, num_layers=2, bidirectional=True, dtype=torch.float32)
    x = torch.randn(6, 2, 3, requires_grad=True)
    out = flat_outputs(ours(x))
    v = [torch.randn_like(o) for o in out]
    plain = torch.autograd.grad(out, [x] + list(ours.parameters()), v, retain_graph=True)
    built = torch.autograd.grad(out, [x] + list(ours.parameters()), v, create_graph=True)
    assert all(b.requires_grad for b in built)
    for a, b in zip(plain, built):
        assert_close(a, b, "first derivative with create_graph=True")


@pytest.mark.parametrize("kind, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_1_forward_mode_derivatives_equal_torchs(kind, kwargs):
    """Directional derivatives in forward mode: ``forward_ad`` dual tensors and ``torch.func.jvp``.

    The tangent runs through the input, the initial states and every
    parameter at once; ``jacfwd`` and ``torch.func.hessian`` build on the same rule.
    """
    import torch.autograd.forward_ad as fwAD

    ours, theirs = make_pair(kind, 2, 3, **kwargs)
    x, hx = small_inputs(ours)
    primals = (x.detach(),) + tuple(h.detach() for h in (hx if isinstance(hx, tuple) else (hx,)))
    g = torch.Generator().manual_seed(7)
    tangents = tuple(torch.randn(p.shape, dtype=p.dtype, generator=g) for p in primals)
    p_tangents = {name: torch.randn(p.shape, dtype=p.dtype, generator=g) for name, p in ours.named_parameters()}

    def dual_level(module):
        with fwAD.dual_level():
            duals = [fwAD.make_dual(p, t) for p, t in zip(primals, tangents)]
            weights = {name: fwAD.make_dual(p.detach(), p_tangents[name]) for name, p in module.named_parameters()}
            hx = tuple(duals[1:]) if module.mode == "LSTM" else duals[1]
            out = flat_outputs(torch.func.functional_call(module, weights, (duals[0], hx)))
            return [fwAD.unpack_dual(o).tangent for o in out]

    def jvp(module):
        names = list(p_tangents)
        weights = tuple(p.detach() for p in params_of(module).values())
        f = as_function(module)
        return torch.func.jvp(f, primals + weights, tangents + tuple(p_tangents[n] for n in names))[1]

    for how in (dual_level, jvp):
        mine, torchs = how(ours), how(theirs)
        assert all(t is not None for t in mine), f"{how.__name__}: no tangent came out of ours"
        for a, b in zip(mine, torchs):
            assert_close(a, b, f"forward-mode derivative ({how.__name__})")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_1_double_backward_through_the_triton_layers(kind):
    """The fused kernels' layers (CUDA) give the same second derivatives as the composite steps.

    Without a GPU they run in Triton's interpreter, on float32 CPU tensors.
    """
    native = torch.cuda.is_available()
    pytest.importorskip("triton")
    from rnncourse.torch import _recurrence
    from rnncourse.torch.triton import kernels, layers, make_plan

    if kernels.INTERPRETED == native:
        pytest.skip("Triton's kernels were created for the other kind of machine in this process")
    device = "cuda" if native else "cpu"
    T, N, D, H, G = 3, 2, 3, 4, 4 if kind == "lstm" else 3
    g = torch.Generator().manual_seed(5)

    def randn(*shape):
        return (torch.randn(*shape, generator=g) / 2).to(device).requires_grad_()

    x, h0, c0 = randn(T * N, D), randn(N, H), randn(N, H)
    weights = [randn(G * H, D), randn(G * H, H), randn(G * H), randn(G * H)]
    plan = make_plan(G, N, H, 4, None if not native else 1, "step", tensor_cores=False)
    steps = _recurrence.Steps((N,) * T)

    def fused():
        if kind == "lstm":
            return layers.LSTMTritonLayer.apply(x, h0, c0, *weights, T, False, plan)
        return layers.GRUTritonLayer.apply(x, h0, *weights, T, False, plan)

    def composite():
        if kind == "lstm":
            return _recurrence.composite_layer(_recurrence.lstm_step, x, (h0, c0), (*weights, None), steps, False)
        return _recurrence.composite_layer(_recurrence.gru_step, x, (h0,), tuple(weights), steps, False)

    leaves = [x, h0] + ([c0] if kind == "lstm" else []) + weights
    results = []
    for layer in (fused, composite):
        out = layer()
        loss = sum(o.square().sum() for o in out)
        (dx,) = torch.autograd.grad(loss, x, create_graph=True)
        results.append(torch.autograd.grad(loss + dx.square().sum(), leaves))
    for a, b in zip(*results):
        assert_close(a, b, "second derivative through the kernels", floor_from_largest=True)


# ---------------------------------------------------------------------------
# 2. vmap over the backward


@pytest.mark.parametrize("kind, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_2_vectorized_jacobian_equals_torchs(kind, kwargs):
    ours, theirs = make_pair(kind, 2, 3, **kwargs)
    x, hx = small_inputs(ours)

    states_in = hx if isinstance(hx, tuple) else (hx,)

    def jac(module):
        def f(x, *h):
            return flat_outputs(module(x, h if len(h) == 2 else h[0]))

        return torch.autograd.functional.jacobian(f, (x, *states_in), vectorize=True)

    for a, b in zip(_leaves(jac(ours)), _leaves(jac(theirs))):
        assert_close(a, b, "vectorized Jacobian")


def _leaves(tree):
    return [t for t in torch.utils._pytree.tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


@pytest.mark.parametrize("kind", MODULES)
def test_2_batched_gradient_check_passes(kind):
    ours, _ = make_pair(kind, 2, 3, num_layers=2, bidirectional=True)
    x, hx = small_inputs(ours)
    inputs = (x,) + (hx if isinstance(hx, tuple) else (hx,)) + tuple(ours.parameters())
    assert torch.autograd.gradcheck(as_function(ours), inputs, check_batched_grad=True, fast_mode=True)


@pytest.mark.parametrize("kind", MODULES)
def test_2_per_sample_gradients_with_torch_func_equal_torchs_one_at_a_time(kind):
    """``vmap(grad(...))`` over a batch of sequences (what differential privacy does).

    torch.nn's modules fail under it on the CPU; torch's gradients one
    sequence at a time are the truth.
    """
    ours, theirs = make_pair(kind, 3, 4, bidirectional=True)
    params = {name: p.detach() for name, p in ours.named_parameters()}
    xs = torch.randn(5, 6, 3, dtype=torch.float64)

    def loss(module):
        def f(p, x):
            return torch.func.functional_call(module, p, (x.unsqueeze(1),))[0].square().sum()

        return f

    batched = torch.func.vmap(torch.func.grad(loss(ours)), in_dims=(None, 0))(params, xs)
    one_at_a_time = [torch.func.grad(loss(theirs))(params, x) for x in xs]
    for name in params:
        assert_close(batched[name], torch.stack([g[name] for g in one_at_a_time]), f"per-sample gradient of {name}")


# Points 1 and 2 for the cells. A cell is one step in plain tensor operations
# (no hand-written backward), so autograd differentiates it to any order; its
# higher derivatives are compared with torch's cells all the same, since code
# that swaps a step for a faster function (as the layers do) would break them.
CELL_VARIANTS = [("rnn_cell", {}), ("rnn_cell", dict(nonlinearity="relu")), ("rnn_cell", dict(bias=False)),
                 ("lstm_cell", {}), ("gru_cell", {})]


@pytest.mark.parametrize("kind, kwargs", CELL_VARIANTS, ids=[f"{k}-{kw}" for k, kw in CELL_VARIANTS])
def test_1_2_cells_higher_derivatives_equal_torchs(kind, kwargs):
    ours, theirs = make_pair(kind, 3, 4, **kwargs)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    n_states = 2 if kind == "lstm_cell" else 1
    hx = tuple(torch.randn(2, 4, dtype=torch.float64, generator=g, requires_grad=True) for _ in range(n_states))
    names = list(params_of(ours))

    def as_cell_function(module):
        def f(x, *rest):
            weights = dict(zip(names, rest[n_states:]))
            state = tuple(rest[:n_states]) if n_states == 2 else rest[0]
            return _leaves(torch.func.functional_call(module, weights, (x, state)))
        return f

    inputs = (x, *hx) + tuple(ours.parameters())
    assert torch.autograd.gradgradcheck(as_cell_function(ours), inputs, fast_mode=True)

    def second(module):  # d/d(x, h, w) of |d <cos(out), out> / d(x, w)|^2
        out = _leaves(module(x, hx if n_states == 2 else hx[0]))
        wrt = [x] + list(module.parameters())
        grads = torch.autograd.grad(out, wrt, [o.cos() for o in out], create_graph=True)
        return torch.autograd.grad(sum(d.square().sum() for d in grads), [x, *hx] + list(module.parameters()))

    def forward_mode(module):
        weights = tuple(p.detach() for p in module.parameters())
        primals = (x.detach(), *(h.detach() for h in hx)) + weights
        tangents = tuple(torch.randn(p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(i))
                         for i, p in enumerate(primals))
        return torch.func.jvp(as_cell_function(module), primals, tangents)[1]

    def vectorized_jacobian(module):
        def f(x, *h):
            return tuple(_leaves(module(x, h if n_states == 2 else h[0])))
        return _leaves(torch.autograd.functional.jacobian(f, (x, *hx), vectorize=True))

    for how in (second, forward_mode, vectorized_jacobian):
        for a, b in zip(how(ours), how(theirs), strict=True):
            assert_close(a, b, f"{kind} {how.__name__}")


# ---------------------------------------------------------------------------
# 3. An empty batch


@pytest.mark.parametrize("kind", MODULES)
@pytest.mark.parametrize("given_states", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_3_empty_batch_forward_and_backward_match_torch(kind, given_states, batch_first):
    ours, theirs = make_pair(kind, 3, 4, num_layers=2, bidirectional=True, batch_first=batch_first)
    shape = (0, 5, 3) if batch_first else (5, 0, 3)
    results = []
    for module in (ours, theirs):
        x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        hx = states(module, 0) if given_states else None
        if hx is not None:
            hx = tuple(h.requires_grad_() for h in hx) if isinstance(hx, tuple) else hx.requires_grad_()
        out = flat_outputs(module(x, hx))
        leaves = [x] + ([] if hx is None else list(hx if isinstance(hx, tuple) else (hx,))) + list(module.parameters())
        grads = torch.autograd.grad(sum(o.sum() for o in out), leaves, allow_unused=True)
        results.append((out, grads))
    (out_o, grads_o), (out_t, grads_t) = results
    for a, b in zip(out_o, out_t):
        assert a.shape == b.shape
    for a, b in zip(grads_o, grads_t):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape == b.shape
            assert_close(a, b, "gradient with an empty batch")


# ---------------------------------------------------------------------------
# 4. torch.jit.trace and torch.compile


@pytest.mark.parametrize("kind, kwargs", [("rnn", {}), ("lstm", dict(proj_size=2, num_layers=2)),
                                          ("gru", dict(bidirectional=True, batch_first=True))])
def test_4_jit_trace_matches_eager_and_torch(kind, kwargs):
    ours, theirs = make_pair(kind, 3, 4, dtype=torch.float32, **kwargs)
    x = torch.randn(5, 2, 3)
    with warnings.catch_warnings():
        # torch.jit.trace is deprecated (DeprecationWarning), and warns that the
        # trace holds sizes as constants (TracerWarning), for torch's modules too
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(ours, (x,))  # checks the trace against a second run
    x2 = torch.randn(5, 2, 3, requires_grad=True)
    out_traced = flat_outputs(traced(x2))
    out_theirs = flat_outputs(theirs(x2))
    for a, b in zip(out_traced, out_theirs):
        assert_close(a, b, "traced output")
    grads = torch.autograd.grad(sum(o.sum() for o in out_traced), [x2] + list(ours.parameters()))
    expected = torch.autograd.grad(sum(o.sum() for o in out_theirs), [x2] + list(theirs.parameters()))
    for a, b in zip(grads, expected):
        assert_close(a, b, "gradient through the trace", floor_from_largest=True)


class _Stack(nn.Module):
    """An embedding, then an RNN, an LSTM and a GRU in turn, then a read-out: what torch.compile usually wraps."""

    def __init__(self, M, num_layers):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Linear(3, 3)
        self.rnn = M["rnn"](3, 4, num_layers, nonlinearity="relu")
        self.lstm = M["lstm"](4, 4, num_layers, proj_size=2, bidirectional=True)
        self.gru = M["gru"](4, 3, num_layers, batch_first=True)
        self.out = nn.Linear(3, 2)

    def forward(self, x):
        h = self.rnn(torch.tanh(self.embed(x)))[0]
        h = self.lstm(h)[0]
        return self.out(self.gru(h.transpose(0, 1))[0])


def _require_a_cxx_compiler():
    """Inductor builds its CPU kernels with a C++ compiler: say so plainly where there is none."""
    if shutil.which(os.environ.get("CXX", "g++")) is None and shutil.which("c++") is None:
        pytest.fail("torch.compile needs a C++ compiler (g++): run scripts/install-test-deps.sh")


def _compiled_against_eager(model, x, **compile_kwargs):
    _require_a_cxx_compiler()
    torch._dynamo.reset()
    compiled = torch.compile(model, **compile_kwargs)
    results = []
    for m in (compiled, model):
        m.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_()
        out = m(xi)
        out.square().sum().backward()
        results.append([out, xi.grad] + [p.grad for p in model.parameters()])
    for a, b in zip(*results):
        assert_close(a, b, "compiled against eager", floor_from_largest=True)


def _graphs_compiled(model, x):
    """What Dynamo hands to the back end when compiling ``model``: the calls of each graph."""
    graphs = []

    def backend(gm, example_inputs):
        graphs.append([str(node.target) for node in gm.graph.nodes if node.op == "call_function"])
        return gm.forward

    torch._dynamo.reset()
    torch.compile(model, backend=backend)(x)
    return graphs


@pytest.mark.slow
def test_4_torch_compile_treats_ours_as_torchs_and_equals_eager():
    """By default Dynamo does not trace recurrent modules (nn.RNNBase): ours run eagerly, as torch's do."""
    x = torch.randn(5, 2, 3)
    ours, theirs = _graphs_compiled(_Stack(OURS, 2), x), _graphs_compiled(_Stack(THEIRS, 2), x)
    assert ours == theirs, f"Dynamo compiled {len(ours)} graphs around ours, {len(theirs)} around torch's"
    _compiled_against_eager(_Stack(OURS, num_layers=2), x)


@pytest.mark.slow
def test_4_torch_compile_traced_into_the_modules_equals_eager():
    """With ``allow_rnn`` Dynamo traces into ours, as one graph (fullgraph), and Inductor compiles it."""
    with torch._dynamo.config.patch(allow_rnn=True):
        _compiled_against_eager(_Stack(OURS, num_layers=1), torch.randn(3, 2, 3), fullgraph=True)


@pytest.mark.slow
def test_4_torch_compile_of_the_cells_equals_eager():
    cells = [OURS[kind](3, 3) for kind in CELLS]

    def three_steps(x):
        h = cells[0](x)
        h, c = cells[1](h)
        return cells[2](h, c)

    x = torch.randn(2, 3, requires_grad=True)
    _require_a_cxx_compiler()
    torch._dynamo.reset()
    compiled = torch.compile(three_steps, fullgraph=True)
    outputs = []
    for f in (compiled, three_steps):
        out = f(x)
        outputs.append([out] + list(torch.autograd.grad(out.sum(), [x] + [p for c in cells for p in c.parameters()])))
    for a, b in zip(*outputs):
        assert_close(a, b, "compiled cells", floor_from_largest=True)


# ---------------------------------------------------------------------------
# 5. The layout of gradients


@pytest.mark.parametrize("kind, kwargs", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_5_gradients_have_torchs_layout(kind, kwargs, dtype):
    ours, theirs = make_pair(kind, 5, 6, dtype=dtype, **kwargs)
    x = torch.randn(4, 3, 5, dtype=dtype)
    xo, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
    go = torch.autograd.grad(ours(xo)[0].sum(), [xo] + list(ours.parameters()))
    gt = torch.autograd.grad(theirs(xt)[0].sum(), [xt] + list(theirs.parameters()))
    for name, a, b in zip(["x"] + list(params_of(ours)), go, gt):
        assert a.shape == b.shape and a.stride() == b.stride(), (
            f"gradient of {name}: strides {a.stride()}, torch's {b.stride()}"
        )
        a.view(-1)  # what failed on strided views


# ---------------------------------------------------------------------------
# 6. The class hierarchy


@pytest.mark.parametrize("kind", MODULES + CELLS)
def test_6_ours_are_instances_of_torchs_classes(kind):
    ours = OURS[kind](3, 4)
    base = nn.RNNBase if kind in MODULES else nn.RNNCellBase
    assert isinstance(ours, base)
    assert isinstance(ours, THEIRS[kind])
    for other in set(THEIRS.values()) - {THEIRS[kind]}:
        assert not isinstance(ours, other), f"ours {kind} is also a {other.__name__}"


def test_6_code_that_finds_rnns_by_isinstance_finds_ours():
    model = nn.Sequential(LSTM(3, 4), nn.Linear(4, 4), GRU(4, 4), RNNCell(4, 4))

    def init_all_recurrent(model):  # what training scripts do
        touched = []
        for m in model.modules():
            if isinstance(m, nn.RNNBase):
                m.flatten_parameters()
                for name, p in m.named_parameters():
                    if name.startswith("weight_hh"):
                        nn.init.orthogonal_(p)
                touched.append(type(m).__name__)
            elif isinstance(m, nn.RNNCellBase):
                touched.append(type(m).__name__)
        return touched

    assert init_all_recurrent(model) == ["LSTM", "GRU", "RNNCell"]
    w = model[0].weight_hh_l0.detach()
    assert_close(w.t() @ w, torch.eye(4), "orthogonal_ reached our LSTM")


# ---------------------------------------------------------------------------
# 7. Errors: torch's exception type, a message that says what was expected and what came


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


NO_STEPS = r"Expected sequence length to be larger than 0 in RNN; got input of shape "

# (id, call given the namespace {kind: class}, regex our message must match: the value that came)
ERROR_INPUTS = [
    # constructors of the sequence modules (also the module database's list,
    # whose regexes are torch's words: ours begin with them, then the value)
    ("bias=0", lambda M: M["rnn"](3, 5, bias=0), r"bias should be of type bool, got: int \(0\)"),
    ("bias=1", lambda M: M["gru"](3, 5, bias=1), r"bias should be of type bool, got: int \(1\)"),
    ("bias='True'", lambda M: M["lstm"](3, 5, bias="True"), r"bias should be of type bool, got: str \('True'\)"),
    ("batch_first=0", lambda M: M["rnn"](3, 5, batch_first=0), r"batch_first should be of type bool, got: int \(0\)"),
    ("batch_first=1", lambda M: M["gru"](3, 5, batch_first=1), r"batch_first should be of type bool, got: int \(1\)"),
    ("batch_first='False'", lambda M: M["lstm"](3, 5, batch_first="False"),
     r"batch_first should be of type bool, got: str \('False'\)"),
    ("input_size=3.0", lambda M: M["rnn"](3.0, 5), r"input_size should be of type int, got: float \(3\.0\)"),
    ("input_size='10'", lambda M: M["gru"]("10", 5), r"input_size should be of type int, got: str \('10'\)"),
    ("input_size=0", lambda M: M["lstm"](0, 5), r"input_size.*greater than zero.*0"),
    ("input_size=-1", lambda M: M["rnn"](-1, 5), r"input_size.*greater than zero.*-1"),
    ("hidden_size=5.0", lambda M: M["gru"](3, 5.0), r"hidden_size should be of type int, got: float \(5\.0\)"),
    ("hidden_size=0", lambda M: M["lstm"](10, 0, 1), r"hidden_size.*greater than zero.*0"),
    ("num_layers=0", lambda M: M["rnn"](10, 10, 0), r"num_layers.*greater than zero.*0"),
    ("dropout=1.5", lambda M: M["gru"](3, 5, dropout=1.5), r"dropout.*\[0, 1\].*1\.5"),
    ("dropout=True", lambda M: M["lstm"](3, 5, dropout=True), r"dropout.*\[0, 1\].*True"),
    ("RNN proj_size", lambda M: M["rnn"](3, 5, proj_size=2), r"proj_size.*only.*LSTM.*RNN"),
    ("GRU proj_size=0", lambda M: M["gru"](3, 5, proj_size=0), r"proj_size.*only.*LSTM.*GRU"),
    ("proj_size=-1", lambda M: M["lstm"](3, 5, proj_size=-1), r"proj_size.*-1"),
    ("proj_size=hidden", lambda M: M["lstm"](3, 5, proj_size=5), r"proj_size.*smaller than hidden_size.*5 >= 5"),
    ("nonlinearity", lambda M: M["rnn"](3, 5, nonlinearity="sigmoid"), r"'sigmoid'.*'tanh' or 'relu'"),
    # forward of the sequence modules
    # torch's words, then the input's shape
    ("T=0", lambda M: M["gru"](3, 5)(_x(0, 2, 3)), NO_STEPS + r"\(0, 2, 3\)"),
    ("T=0 batch_first", lambda M: M["lstm"](3, 5, batch_first=True)(_x(2, 0, 3)), NO_STEPS + r"\(2, 0, 3\)"),
    ("T=0 unbatched", lambda M: M["rnn"](3, 5)(_x(0, 3)), NO_STEPS + r"\(0, 3\)"),
    ("4-D input", lambda M: M["rnn"](3, 5)(_x(2, 2, 2, 3)), r"2-?D or 3-?D.*4-?D"),
    ("input size", lambda M: M["lstm"](3, 5)(_x(4, 2, 6)), r"input_size.*Expected 3, got 6"),
    ("dtype", lambda M: M["gru"](3, 5)(_x(4, 2, 3, dtype=torch.float64)),
     # torch's words (the module database's regex), with the module's name
     r"RNN input dtype \(torch.float64\) does not match weight dtype \(torch.float32\) of this GRU\. "
     r"Convert input: input\.to\(torch.float32\), or convert model: model\.to\(torch.float64\)"),
    ("hidden dtype", lambda M: M["lstm"](3, 5)(_x(6, 4, 3), (_x(1, 4, 5, dtype=torch.float64), _x(1, 4, 5))),
     r"torch.float64.*torch.float32"),
    ("hidden batch", lambda M: M["rnn"](3, 5, 2)(_x(6, 4, 3), _x(2, 7, 5)), r"\(2, 4, 5\).*\[2, 7, 5\]"),
    ("hidden layers", lambda M: M["gru"](3, 5, 2)(_x(6, 4, 3), _x(7, 4, 5)), r"\(2, 4, 5\).*\[7, 4, 5\]"),
    ("cell state", lambda M: M["lstm"](3, 5, 2)(_x(6, 4, 3), (_x(2, 4, 5), _x(2, 4, 7))), r"\(2, 4, 5\).*\[2, 4, 7\]"),
    ("projected state", lambda M: M["lstm"](3, 5, proj_size=2)(_x(6, 4, 3), (_x(1, 4, 5), _x(1, 4, 5))),
     r"\(1, 4, 2\).*\[1, 4, 5\]"),
    ("2-D state, 3-D input", lambda M: M["gru"](3, 5)(_x(6, 4, 3), _x(4, 5)), r"3-D.*2-D"),
    # cells: constructors
    ("cell hidden_size=-1", lambda M: M["rnn_cell"](10, -1), r"hidden_size.*-1"),
    ("cell input_size=-2", lambda M: M["gru_cell"](-2, 3), r"input_size.*-2"),
    ("cell hidden_size=2.0", lambda M: M["lstm_cell"](3, 2.0), r"hidden_size.*int.*2\.0"),
    # cells: forward (the module database's list, and the order of the checks)
    ("cell input size", lambda M: M["rnn_cell"](10, 20)(_x(3, 11), _x(3, 20)), r"input_size: got 11 expected 10"),
    ("cell hidden size", lambda M: M["gru_cell"](10, 20)(_x(3, 10), _x(3, 21)), r"hidden_size: got 21, expected 20"),
    ("cell batch", lambda M: M["rnn_cell"](10, 20, "relu")(_x(3, 10), _x(5, 20)), r"batch size 3.*batch size 5"),
    ("cell 4-D hidden", lambda M: M["gru_cell"](10, 20)(_x(3, 10), _x(3, 1, 1, 20)), r"1-?D or 2-?D.*4-?D"),
    ("cell 3-D input", lambda M: M["lstm_cell"](10, 20)(_x(3, 10, 1)), r"1-?D or 2-?D.*3-?D"),
    ("LSTMCell 4-D hx[0]", lambda M: M["lstm_cell"](10, 20)(_x(3, 10), (_x(3, 1, 1, 20), _x(3, 1, 1, 20))),
     r"hx\[0\].*1-?D or 2-?D.*4-?D"),
    ("LSTMCell c size", lambda M: M["lstm_cell"](10, 20)(_x(3, 10), (_x(3, 20), _x(3, 21))),
     r"hidden1.*got 21, expected 20"),
    ("cell dtype", lambda M: M["lstm_cell"](3, 4)(_x(2, 3, dtype=torch.float64)), r"torch.float64.*torch.float32"),
    ("cell hidden dtype", lambda M: M["rnn_cell"](3, 4)(_x(2, 3), _x(2, 4, dtype=torch.float64)),
     r"torch.float64.*torch.float32"),
    ("cell hidden shape before dtype", lambda M: M["gru_cell"](3, 4)(_x(2, 3), _x(2, 5, dtype=torch.float64)),
     r"hidden_size: got 5, expected 4"),
]


@pytest.mark.parametrize("call, message", [case[1:] for case in ERROR_INPUTS], ids=[case[0] for case in ERROR_INPUTS])
def test_7_error_inputs_raise_torchs_exception_type_with_our_message(call, message):
    with pytest.raises(Exception) as theirs:
        call(THEIRS)
    with pytest.raises(Exception) as ours:
        call(OURS)
    expected = type(theirs.value)
    assert isinstance(ours.value, expected), (
        f"torch raises {expected.__name__}, ours {type(ours.value).__name__}: {ours.value}"
    )
    assert re.search(message, str(ours.value)), f"message {str(ours.value)!r} does not match {message!r}"


@pytest.mark.parametrize(
    "make",
    [
        lambda M: M["rnn_cell"](10, 0),
        lambda M: M["rnn_cell"](10, 0, nonlinearity="relu"),
        lambda M: M["gru_cell"](10, 0),
        lambda M: M["lstm_cell"](10, 0),
        lambda M: M["rnn_cell"](10, 3, bias="relu"),  # the module database's RNNCell(10, 20, 'relu')
    ],
    ids=["RNNCell(10, 0)", "RNNCell(10, 0, relu)", "GRUCell(10, 0)", "LSTMCell(10, 0)", "RNNCell bias='relu'"],
)
def test_7_what_torch_accepts_ours_accepts(make):
    torch.manual_seed(0)
    ours = make(OURS)
    theirs = make(THEIRS)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 10)
    for a, b in zip(_leaves(ours(x)), _leaves(theirs(x))):
        assert a.shape == b.shape
        assert_close(a, b, "output")


# ---------------------------------------------------------------------------
# 8. repr and autocast


REPRS = [
    ("rnn_cell", (3, 4), dict(nonlinearity="relu")),
    ("rnn_cell", (3, 4), dict(bias=False)),
    ("gru_cell", (3, 4), {}),
    ("lstm_cell", (3, 4), dict(bias=False)),
    ("rnn", (3, 4), dict(nonlinearity="relu", num_layers=2, dropout=0.5)),
    ("lstm", (3, 4), dict(proj_size=2, batch_first=True, bidirectional=True, bias=False)),
    ("gru", (3, 4), dict(num_layers=3)),
]


@pytest.mark.parametrize("kind, args, kwargs", REPRS, ids=[f"{k}-{kw}" for k, _, kw in REPRS])
def test_8_repr_is_torchs(kind, args, kwargs):
    ours, theirs = OURS[kind](*args, **kwargs), THEIRS[kind](*args, **kwargs)
    assert repr(ours) == repr(theirs)


AUTOCAST = [("rnn", {}), ("rnn", dict(nonlinearity="relu", num_layers=2)), ("gru", {}), ("lstm", {}),
            ("rnn_cell", {}), ("gru_cell", {}), ("lstm_cell", {})]


@pytest.mark.parametrize("kind, kwargs", AUTOCAST, ids=[f"{k}-{kw}" for k, kw in AUTOCAST])
def test_8_cpu_bfloat16_autocast_gives_torchs_dtype(kind, kwargs):
    ours, theirs = make_pair(kind, 3, 4, dtype=torch.float32, **kwargs)
    x = torch.randn(5, 2, 3) if kind in MODULES else torch.randn(2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = _leaves(ours(x))
        try:
            expected = [t.dtype for t in _leaves(theirs(x))]
        except RuntimeError:
            # torch's LSTM runs oneDNN's bfloat16 LSTM, which CPUs without
            # bfloat16 instructions refuse; its intended result is bfloat16
            assert kind == "lstm"
            expected = [torch.bfloat16] * len(out)
    assert [t.dtype for t in out] == expected
    reference = _leaves(ours(x))
    for a, b in zip(out, reference):
        # bfloat16 keeps 8 significant bits (relative rounding 2^-8); a few
        # steps of a recurrence of values below 1 stay within 2e-2
        assert (a.float() - b).abs().max() < 2e-2
    (sum(t.float().sum() for t in out)).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in ours.parameters())
