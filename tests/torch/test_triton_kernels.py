"""The fused Triton kernels of rnncourse.torch.triton against torch.nn and rnncourse.numpy.

Without a GPU the kernels run in Triton's interpreter on CPU tensors:
``TRITON_INTERPRET=1`` is set here, before the kernels module is first
imported (Triton reads it when a kernel is decorated). With CUDA the same
tests run natively on the GPU, plus those that need programs running at the
same time (a persistent kernel whose programs wait for each other at every
step cannot run in the interpreter, which runs one program to its end before
the next).

References are computed in float64 (torch.nn on the CPU, rnncourse.numpy);
float32 results are held to the project's float32 policy
(:func:`rnncourse.testing.assert_close`). bfloat16 and float16 have no
policy: they are held to a norm-wise bound stated where it is used.
Shapes are tiny: the interpreter runs every operation of every program in NumPy.
"""

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

NATIVE = torch.cuda.is_available()
if not NATIVE:
    os.environ["TRITON_INTERPRET"] = "1"  # before rnncourse.torch.triton.kernels is imported
pytest.importorskip("triton")

import rnncourse.numpy as rn  # noqa: E402
import rnncourse.torch as rt  # noqa: E402
from rnncourse.testing import assert_close  # noqa: E402
from rnncourse.torch import triton as fast  # noqa: E402
from rnncourse.torch.triton import Plan, kernels, layers, make_plan  # noqa: E402

if kernels.INTERPRETED == NATIVE:
    pytest.skip("the kernels were created before TRITON_INTERPRET could be set for this machine "
                "(run this file on its own)", allow_module_level=True)

DEVICE = "cuda" if NATIVE else "cpu"
native_only = pytest.mark.skipif(not NATIVE, reason="needs programs that run at the same time: a CUDA GPU")
GATES = {"lstm": 4, "gru": 3}


@pytest.fixture(autouse=True)
def barrier_check(monkeypatch):
    """A barrier that times out raises instead of passing silently (costs a host sync: tests only)."""
    monkeypatch.setenv("RNNCOURSE_TRITON_CHECK", "1")


@pytest.fixture(autouse=True)
def exact_float32():
    """float32 products without TF32 on a GPU, so float32 means float32 (restored after)."""
    if not NATIVE:
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = saved


# ---------------------------------------------------------------------------
# helpers


def random_problem(model, T, N, D, H, bias=True, seed=0):
    """float64 tensors: x (T, N, D), h0, c0 (N, H) and torch.nn's weights, all non-zero."""
    g = torch.Generator().manual_seed(seed)
    G = GATES[model]

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    x, h0, c0 = randn(T, N, D), randn(N, H), randn(N, H)
    s = 1 / H**0.5
    weights = [randn(G * H, D, scale=s), randn(G * H, H, scale=s)]
    weights += [randn(G * H, scale=s), randn(G * H, scale=s)] if bias else [None, None]
    return x, h0, c0, weights


def run_kernel(model, problem, plan, reverse, dtype, seed=1):
    """Our layer-direction on the kernels: outputs and the gradients of a random linear function of them.

    Returns ``(outputs, grads)``: ``[out (T, N, H), h_n(, c_n)]`` and the
    gradients with respect to ``x, h0(, c0), w_ih, w_hh(, b_ih, b_hh)``, all float64.
    """
    x, h0, c0, weights = problem
    T, N, D = x.shape
    leaves = [t.to(DEVICE, dtype).requires_grad_() for t in (x, h0, c0) if t is not None]
    params = [None if w is None else w.to(DEVICE, dtype).requires_grad_() for w in weights]
    xs, h0s, c0s = leaves
    flat = xs.reshape(T * N, D)
    if model == "lstm":
        out, h_n, c_n = layers.LSTMTritonLayer.apply(flat, h0s, c0s, *params, T, reverse, plan)
        outputs, wrt = [out, h_n, c_n], [xs, h0s, c0s]
    else:
        out, h_n = layers.GRUTritonLayer.apply(flat, h0s, *params, T, reverse, plan)
        outputs, wrt = [out, h_n], [xs, h0s]
    for o in outputs:
        assert o.dtype == dtype, f"an output has dtype {o.dtype}; expected {dtype}"
    outputs[0] = outputs[0].view(T, N, -1)
    wrt += [p for p in params if p is not None]
    return _grads(outputs, wrt, seed)


def run_reference(model, problem, reverse, seed=1):
    """The same with torch.nn in float64 on the CPU (the reverse direction: the sequence flipped in time)."""
    x, h0, c0, weights = problem
    T, N, D = x.shape
    H = h0.shape[1]
    bias = weights[2] is not None
    module = (nn.LSTM if model == "lstm" else nn.GRU)(D, H, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        for name, w in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), weights):
            if w is not None:
                getattr(module, name).copy_(w)
    xs, h0s, c0s = (t.clone().requires_grad_() for t in (x, h0, c0))
    inp = xs.flip(0) if reverse else xs
    if model == "lstm":
        out, (h_n, c_n) = module(inp, (h0s[None], c0s[None]))
        outputs, wrt = [out, h_n[0], c_n[0]], [xs, h0s, c0s]
    else:
        out, h_n = module(inp, h0s[None])
        outputs, wrt = [out, h_n[0]], [xs, h0s]
    outputs[0] = outputs[0].flip(0) if reverse else outputs[0]
    names = ["weight_ih_l0", "weight_hh_l0"] + (["bias_ih_l0", "bias_hh_l0"] if bias else [])
    wrt += [getattr(module, name) for name in names]
    return _grads(outputs, wrt, seed)


def _grads(outputs, wrt, seed):
    g = torch.Generator().manual_seed(seed)
    loss = sum((o.double().cpu() * torch.randn(o.shape, generator=g, dtype=torch.float64)).sum() for o in outputs)
    grads = list(torch.autograd.grad(loss, wrt))
    return [o.detach().double().cpu() for o in outputs], [d.double().cpu() for d in grads]  # two lists


NAMES = {
    "lstm": (["out", "h_n", "c_n"], ["dx", "dh0", "dc0", "dW_ih", "dW_hh", "db_ih", "db_hh"]),
    "gru": (["out", "h_n"], ["dx", "dh0", "dW_ih", "dW_hh", "db_ih", "db_hh"]),
}

# Half precision has no tolerance in the project's policy. On these shapes
# (T <= 5, H <= 20, values of order 1) the largest error over all outputs
# and gradients, relative to the largest reference value, measured 3 to 12
# unit roundoffs u (bfloat16 u = 2^-9, float16 u = 2^-11): every stored h,
# gate and gradient is rounded once per step. 24 u leaves room for other
# seeds and still fails any wrong formula (a swapped gate or a missing term
# is an error of order 1).
HALF_BOUND = {torch.bfloat16: 24 * 2.0**-9, torch.float16: 24 * 2.0**-11}


def compare(model, ours, ref, dtype, what):
    (outs, grads), (routs, rgrads) = ours, ref
    out_names, grad_names = NAMES[model]
    for name, a, e in zip(out_names + grad_names, outs + grads, routs + rgrads):
        label = f"{what}: {name}"
        if dtype == torch.float32:
            assert_close(a.float(), e, label)  # float32 policy: the less precise of the two
        else:
            err = (a - e).abs().max().item() / max(e.abs().max().item(), 1e-3)
            bound = HALF_BOUND[dtype]
            assert err <= bound, f"{label}: max error {err:.3g} of the largest value; bound {bound:.3g}"


def plan(variant, BN, BH, H, sync, BK=16):
    return Plan(variant, BN, BH, BK, max(16, 1 << (H - 1).bit_length()), 4, sync)


# (variant, BN, BH, sync, T, N, D, H, bias): the tilings the interpreter can run
CASES = [
    ("step", 16, 8, False, 5, 3, 4, 6, True),  # one hidden tile, padded rows and units
    ("step", 16, 8, False, 4, 3, 4, 20, True),  # 3 hidden tiles, 2 chunks of W_hh per product
    ("step", 16, 8, False, 3, 18, 3, 5, False),  # 2 batch tiles, no bias
    ("persistent", 16, 16, False, 5, 3, 4, 6, True),  # weights held by the program
    ("persistent", 16, 16, True, 4, 20, 4, 6, True),  # 2 batch tiles, each through its barrier
    ("streamed", 16, 32, True, 4, 3, 4, 20, False),  # weights re-read in chunks, barrier on
    ("persistent", 16, 16, False, 1, 1, 2, 3, True),  # T = 1, N = 1
]


def _case_id(case):
    variant, BN, BH, sync, T, N, D, H, bias = case
    return f"{variant}-T{T}N{N}D{D}H{H}" + ("-sync" if sync else "") + ("" if bias else "-nobias")


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_float32_kernels_match_torch_nn_in_float64(model, case, reverse):
    variant, BN, BH, sync, T, N, D, H, bias = case
    problem = random_problem(model, T, N, D, H, bias, seed=len(case) + T + H)
    p = plan(variant, BN, BH, H, sync)
    ours = run_kernel(model, problem, p, reverse, torch.float32)
    compare(model, ours, run_reference(model, problem, reverse), torch.float32, f"{model} {p} reverse={reverse}")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
@pytest.mark.parametrize("variant", ["step", "persistent"])
@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_half_precision_kernels_match_torch_nn_in_float64(model, variant, dtype):
    # the interpreter supports both: float16 natively, bfloat16 with its dot
    # products upcast to float32 (kernels.UPCAST; the result is the same)
    T, N, D, H = 5, 3, 4, 6
    problem = random_problem(model, T, N, D, H, seed=7)
    p = plan(variant, 16, 8 if variant == "step" else 16, H, False)
    for reverse in (False, True):
        ours = run_kernel(model, problem, p, reverse, dtype)
        compare(model, ours, run_reference(model, problem, reverse), dtype, f"{model} {dtype} {variant} {reverse}")


def test_the_comparison_catches_a_wrong_gate(monkeypatch):
    # the check above must be able to fail: swap the LSTM's input and forget
    # gate blocks of W_hh and the outputs differ far beyond the float32 policy
    T, N, D, H = 4, 2, 3, 5
    x, h0, c0, (w_ih, w_hh, b_ih, b_hh) = random_problem("lstm", T, N, D, H, seed=3)
    swapped = torch.cat((w_hh[H:2 * H], w_hh[:H], w_hh[2 * H:]))
    ours = run_kernel("lstm", (x, h0, c0, [w_ih, swapped, b_ih, b_hh]), plan("persistent", 16, 16, H, False),
                      False, torch.float32)
    with pytest.raises(AssertionError, match="out"):
        compare("lstm", ours, run_reference("lstm", (x, h0, c0, [w_ih, w_hh, b_ih, b_hh]), False), torch.float32,
                "swapped gates")


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_kernels_match_the_numpy_reference(model):
    T, N, D, H = 4, 3, 5, 6
    problem = random_problem(model, T, N, D, H, seed=11)
    x, h0, c0, (w_ih, w_hh, b_ih, b_hh) = problem
    (outs, grads) = run_kernel(model, problem, plan("step", 16, 8, H, False), False, torch.float32, seed=5)
    g = torch.Generator().manual_seed(5)
    upstream = [torch.randn(o.shape, generator=g, dtype=torch.float64).numpy() for o in outs]
    xb = x.numpy().transpose(1, 0, 2)  # rnncourse.numpy is batch-first
    dh = upstream[0].transpose(1, 0, 2).copy()
    dh[:, -1] += upstream[1]  # h_n is the last step's h
    Wx, Wh = w_ih.numpy().T, w_hh.numpy().T
    if model == "lstm":
        h, c_last, cache = rn.lstm_forward(xb, h0.numpy(), Wx, Wh, (b_ih + b_hh).numpy(), c0.numpy(), return_state=True)
        dx, dh0, dWx, dWh, db, dc0 = rn.lstm_backward(dh, cache, dc_last=upstream[2], return_state=True)
        expected = [h.transpose(1, 0, 2), h[:, -1], c_last, dx.transpose(1, 0, 2), dh0, dc0, dWx.T, dWh.T, db, db]
    else:
        h, cache = rn.gru_forward(xb, h0.numpy(), Wx, Wh, b_ih.numpy(), b_hh.numpy())
        dx, dh0, dWx, dWh, dbx, dbh = rn.gru_backward(dh, cache)
        expected = [h.transpose(1, 0, 2), h[:, -1], dx.transpose(1, 0, 2), dh0, dWx.T, dWh.T, dbx, dbh]
    out_names, grad_names = NAMES[model]
    for name, a, e in zip(out_names + grad_names, outs + grads, expected):
        assert_close(a.float(), e, f"{model} kernel vs rnncourse.numpy: {name}")


# ---------------------------------------------------------------------------
# the dispatch in rnncourse.torch


@pytest.fixture
def count_kernel_layers(monkeypatch):
    """Counts the layer-directions that went through the Triton Functions."""
    calls = []
    for cls in (layers.LSTMTritonLayer, layers.GRUTritonLayer):
        original = cls.apply
        monkeypatch.setattr(cls, "apply", lambda *args, _f=original: calls.append(1) or _f(*args))
    return calls


@pytest.fixture
def mode():
    """``mode(name)`` selects the Triton path for the test; the previous setting comes back after."""
    previous = fast.set_mode(None)
    fast.set_mode(previous)
    yield fast.set_mode
    fast.set_mode(previous)


def module_pair(model, D, H, dtype, **kwargs):
    torch.manual_seed(0)
    ours = (rt.LSTM if model == "lstm" else rt.GRU)(D, H, device=DEVICE, dtype=dtype, **kwargs)
    theirs = (nn.LSTM if model == "lstm" else nn.GRU)(D, H, dtype=torch.float64, **kwargs)
    theirs.load_state_dict({k: v.double().cpu() for k, v in ours.state_dict().items()})
    return ours, theirs


def module_outputs_and_grads(module, inputs, device, dtype):
    x, hx = inputs
    x = x.to(device, dtype).requires_grad_()
    if isinstance(hx, tuple):
        hx = tuple(h.to(device, dtype).requires_grad_() for h in hx)
        leaves = [x, *hx]
    else:
        hx = hx.to(device, dtype).requires_grad_()
        leaves = [x, hx]
    out, state = module(x, hx)
    outputs = [out] + (list(state) if isinstance(state, tuple) else [state])
    return _grads(outputs, leaves + list(module.parameters()), seed=2)


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_modules_use_the_kernels_when_asked_and_match_torch_nn(model, mode, count_kernel_layers):
    mode("persistent" if NATIVE else "step")
    T, N, D, H = 4, 3, 5, 6
    ours, theirs = module_pair(model, D, H, torch.float32, num_layers=2, bidirectional=True, batch_first=True)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(N, T, D, generator=g, dtype=torch.float64)
    h0 = torch.randn(4, N, H, generator=g, dtype=torch.float64)
    hx = (h0, torch.randn(4, N, H, generator=g, dtype=torch.float64)) if model == "lstm" else h0
    outs, grads = module_outputs_and_grads(ours, (x, hx), DEVICE, torch.float32)
    assert len(count_kernel_layers) == 2 * 2, "every layer and direction goes through the kernels"
    routs, rgrads = module_outputs_and_grads(theirs, (x, hx), "cpu", torch.float64)
    for k, (a, e) in enumerate(zip(outs + grads, routs + rgrads)):
        assert_close(a.float(), e, f"{model} module on the kernels, result {k}")


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_modules_fall_back_where_the_kernels_do_not_apply(model, mode, count_kernel_layers):
    from torch.nn.utils.rnn import pack_padded_sequence

    Module = rt.LSTM if model == "lstm" else rt.GRU
    T, N, D, H = 4, 3, 2, 5
    x = torch.randn(T, N, D)
    mode("auto")  # on CPU tensors: never Triton, even with the interpreter on
    Module(D, H)(x)
    mode("step")  # float64, a packed sequence, a projection: the plain path
    Module(D, H, dtype=torch.float64)(x.double())
    Module(D, H)(pack_padded_sequence(x, torch.tensor([4, 3, 1])))
    if model == "lstm":
        rt.LSTM(D, H, proj_size=2)(x)
    mode("off")
    Module(D, H, device=DEVICE)(x.to(DEVICE))
    assert count_kernel_layers == [], "a case the kernels do not cover reached them"
    mode("step")  # and where they apply, they are used (the counter counts)
    Module(D, H, device=DEVICE)(x.to(DEVICE))
    assert len(count_kernel_layers) == 1


def test_importing_rnncourse_torch_does_not_import_triton():
    # a fresh interpreter: rnncourse.torch imports no Triton and runs on the
    # CPU; with Triton missing altogether it still works, and says so
    code = (
        "import sys, torch\n"
        "import rnncourse.torch as rt\n"
        "rt.LSTM(3, 4)(torch.randn(5, 2, 3)); rt.GRU(3, 4, bidirectional=True)(torch.randn(5, 2, 3))\n"
        "assert 'triton' not in sys.modules, 'rnncourse.torch imported triton'\n"
        "sys.modules['triton'] = None  # as if not installed\n"
        "from rnncourse.torch import triton as fast\n"
        "assert fast.available() is False\n"
        "rt.LSTM(3, 4)(torch.randn(5, 2, 3))\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "RNNCOURSE_TRITON")}
    env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root,
                            timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_the_step_floor_kernel_counts_its_steps():
    # the benchmark's step floor: T barriers; one program here (the interpreter)
    buf = torch.zeros(2, dtype=torch.int32, device=DEVICE)
    sync = torch.zeros(2, dtype=torch.int32, device=DEVICE)
    kernels.barrier_chain_kernel[(1,)](buf, sync, 4, MAX_SPIN=kernels.MAX_SPIN)
    assert buf.tolist() == [3, 0 + 1 + 2 + 3], "the last step published, and every step read it"
    assert sync.tolist() == [4, 0], "four arrivals, no time-out"


# Compiled by Triton for an H100 (sm_90) on this machine, GPU or not: Triton's
# compiler and NVIDIA's assembler (ptxas, in the Triton wheel) need no GPU.
# The interpreter checks none of what only the compiler checks (block shapes
# of dot products, types joining at loops and branches, constexpr use), so
# this is what keeps a kernel from failing on its first GPU. Run in a fresh
# interpreter: here the kernels were created by the interpreter.
COMPILE_SCRIPT = """
import sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from rnncourse.torch.triton import kernels, make_plan

FLOAT32 = {"c0", "c_all", "dc_io", "carry"}
for name, G in [("lstm_forward_kernel", 4), ("lstm_backward_kernel", 4), ("gru_forward_kernel", 3),
                ("gru_backward_kernel", 3)]:
    kernel = getattr(kernels, name)
    for io, itemsize, precision, tensor_cores, variant, reverse in [
            ("bf16", 2, "ieee", True, "auto", True), ("fp32", 4, "ieee", False, "step", False)]:
        plan = make_plan(G, 16, 768, itemsize, 132, variant, tensor_cores)
        constants = dict(REVERSE=reverse, RESIDENT=plan.variant == "persistent", SYNC=plan.sync, BN=plan.BN,
                         BH=plan.BH, BK=plan.BK, HP=plan.HP, PRECISION=precision, UPCAST=False,
                         MAX_SPIN=kernels.MAX_SPIN)
        if name == "gru_forward_kernel":
            constants["HAS_BIAS"] = True
        signature = {}
        for arg in kernel.arg_names:
            if arg in constants:
                signature[arg] = "constexpr"
            elif arg in ("s_begin", "s_end", "T", "N", "H"):
                signature[arg] = "i32"
            elif arg == "sync":
                signature[arg] = "*i32"
            else:
                signature[arg] = "*fp32" if arg in FLOAT32 else "*" + io
        triton.compile(ASTSource(kernel, signature, constexprs=constants), target=GPUTarget("cuda", 90, 32),
                       options=dict(num_warps=plan.num_warps))
        print(name, io, plan.variant, "compiled")
"""


def test_kernels_compile_for_an_h100(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(OMP_NUM_THREADS="1", TRITON_CACHE_DIR=str(tmp_path))  # no writes to ~/.triton
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT], capture_output=True, text=True, env=env,
                            cwd=root, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("compiled") == 8, result.stdout


# ---------------------------------------------------------------------------
# plans


def test_plans_keep_every_waiting_program_on_the_gpu():
    # a sequence variant's programs wait for each other: the grid may not
    # exceed the SMs (else the barrier waits for a program that cannot start),
    # and a persistent program's slice of W_hh stays within the budget
    for G in (3, 4):
        for itemsize in (2, 4):
            for N in (1, 7, 16, 33, 64, 100, 256):
                for H in (1, 5, 64, 100, 128, 256, 512, 768, 1024, 2048):
                    for sms in (1, 8, 132):
                        p = make_plan(G, N, H, itemsize, sms)
                        n_b, n_h = p.grid(N, H)
                        assert p.variant == "step" or n_b * n_h <= sms, (G, N, H, itemsize, sms, p)
                        assert p.sync == (p.variant != "step" and n_h > 1), p
                        if p.variant == "persistent":
                            assert G * p.BH * p.HP * itemsize <= fast.RESIDENT_BYTES, p
                            assert p.BN * p.HP <= fast.H_TILE_NUMBERS, p
                        assert p.HP >= max(16, H) and p.BK >= 16, p  # tl.dot needs K >= 16
                        interp = make_plan(G, N, H, itemsize, None)
                        assert interp.variant == "step" or interp.grid(N, H)[1] == 1, interp
    with pytest.raises(ValueError, match="variant"):
        make_plan(4, 2, 3, 4, 8, variant="fastest")


def test_plans_for_the_benchmark_shapes_on_an_h100():
    # what the benchmark's shapes get on 132 SMs (the book quotes this table)
    sms = 132
    assert make_plan(4, 16, 768, 2, sms).variant == "persistent"  # the FlashRNN comparison, bf16/fp16
    assert make_plan(4, 256, 1024, 2, sms).variant == "streamed"  # too large to hold on chip
    assert make_plan(4, 1, 256, 4, sms).variant == "persistent"


# ---------------------------------------------------------------------------
# only on a GPU: programs that run at the same time


@native_only
@pytest.mark.cuda
@pytest.mark.parametrize("variant", ["persistent", "streamed"])
@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_programs_that_wait_for_each_other_match_torch_nn(model, variant):
    T, N, D, H = 6, 20, 8, 40
    problem = random_problem(model, T, N, D, H, seed=21)
    p = plan(variant, 16, 8 if variant == "persistent" else 16, H, True)  # 5 or 3 programs per batch tile
    for reverse in (False, True):
        ours = run_kernel(model, problem, p, reverse, torch.float32)
        compare(model, ours, run_reference(model, problem, reverse), torch.float32, f"{model} {p} {reverse}")


@native_only
@pytest.mark.cuda
@pytest.mark.parametrize("model", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_auto_plans_on_this_gpu_match_torch_nn(model, dtype):
    # the plans auto picks for a few realistic sizes, through the module
    for T, N, D, H in [(8, 16, 32, 256), (5, 64, 64, 512), (4, 3, 16, 100)]:
        ours, theirs = module_pair(model, D, H, dtype)
        g = torch.Generator().manual_seed(H)
        x = torch.randn(T, N, D, generator=g, dtype=torch.float64)
        h0 = torch.randn(1, N, H, generator=g, dtype=torch.float64)
        hx = (h0, torch.randn(1, N, H, generator=g, dtype=torch.float64)) if model == "lstm" else h0
        outs, grads = module_outputs_and_grads(ours, (x, hx), "cuda", dtype)
        routs, rgrads = module_outputs_and_grads(theirs, (x, hx), "cpu", torch.float64)
        for k, (a, e) in enumerate(zip(outs + grads, routs + rgrads)):
            # larger H and T than above (sums over up to 512 terms): every
            # dtype is held norm-wise here, at 64 unit roundoffs
            bound = 64 * {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-9, torch.float16: 2.0**-11}[dtype]
            err = (a - e).abs().max().item() / max(e.abs().max().item(), 1e-3)
            assert err <= bound, f"{model} {dtype} {(T, N, D, H)} result {k}: error {err:.3g} > {bound:.3g}"


@native_only
@pytest.mark.cuda
@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_autocast_runs_the_kernels_in_half_precision(model, count_kernel_layers):
    ours = (rt.LSTM if model == "lstm" else rt.GRU)(16, 64, device="cuda")
    x = torch.randn(10, 4, 16, device="cuda", requires_grad=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out, _ = ours(x)
    assert out.dtype == torch.bfloat16 and len(count_kernel_layers) == 1
    out.float().sum().backward()
    assert x.grad.dtype == torch.float32 and all(p.grad.dtype == torch.float32 for p in ours.parameters())
