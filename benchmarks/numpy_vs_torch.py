"""How fast are the NumPy LSTM and GRU of ``rnncourse.numpy`` next to ``torch.nn``?

Run from the repository root::

    .venv/bin/python benchmarks/numpy_vs_torch.py [--quick] [--threads N] [--repeats R]
        [--models lstm,gru] [--dtypes float32,float64] [--shapes 0,1,2]

Both libraries run in the same process with the same number of threads:
the script sets ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and
``MKL_NUM_THREADS`` from ``--threads`` (default: all cores) *before* it
imports NumPy or PyTorch, since BLAS libraries read them when loaded, and
calls ``torch.set_num_threads``.

For each model (LSTM, GRU), dtype (float32, float64) and shape (N, T, D, H),
each measured in a fresh Python process (the memory an earlier case leaves
behind slowed later ones), it reports, in milliseconds, the median of
``--repeats`` runs after one warm-up run, ours and torch's timed
alternately so that a noisy neighbour slows both alike (``--stat min`` takes the minimum instead, ``--clock cpu``
the CPU time of the process instead of the wall-clock time: both are
steadier when other programs share the cores):

- ``ours fwd``: ``lstm_forward`` / ``gru_forward``;
- ``torch fwd``: ``torch.nn.LSTM`` / ``GRU`` forward with ``requires_grad``
  inputs and parameters (what training runs); ``no-grad`` is the same under
  ``torch.no_grad()``, which may take a faster inference-only path;
- ``ours f+b`` and ``torch f+b``: forward and backward to the input, the
  initial state and every parameter, for a given upstream gradient of ``h``;
- the ratios ours / torch (below 1: we are faster), and whether the
  forward + backward ratio meets its bound: 1.6 at the two larger shapes,
  LSTM and GRU, float32 and float64, 3 at the smallest. ``rnncourse.numpy``
  is the reference a learner reads next to the equations (each sequence
  function its step function in a loop); the bound guards against it
  becoming slow to train on, and speed itself belongs to ``rnncourse.torch``.

``--quick`` runs the two smaller shapes with 3 repeats; ``--shapes`` picks
shapes by their index in ``SHAPES`` (``--shapes 2``: the largest only) and
``--dtypes`` the dtypes.

BLAS settings: NumPy's matrix products run in OpenBLAS, which picks its
kernels for the processor when it is loaded, unless ``OPENBLAS_CORETYPE``
names one. Some machines set that variable (and ``OPENBLAS_L2_SIZE``)
because older OpenBLAS builds crash on their processor; on the project's
machines it forces the AVX2 "Haswell" kernels on a CPU that has AVX-512,
and halves NumPy's float32 matrix-product speed, while PyTorch (MKL and
oneDNN) is unaffected. ``make bench`` therefore runs this script with both
variables unset, for that command only (tests and CI keep them). This
script leaves the environment as it finds it and prints, in its header, the
two variables and the kernel OpenBLAS runs (from ``threadpoolctl``).

Memory pages: every large array is fresh memory, and its first use costs a
page fault per page. NumPy asks the kernel for transparent huge pages (2 MiB)
for large arrays; PyTorch does only with ``THP_MEM_ALLOC_ENABLE=1``. Where
the kernel compacts memory to find huge pages (``defrag`` set to
``madvise``, as on the project's machines), those faults cost far more, and
unevenly: at the largest shape NumPy's LSTM forward spent 0.2 s in the
kernel with 4 KiB pages and 0.8-1.2 s with huge pages, run after run. So both libraries get the same
pages: 4 KiB by default (``--huge-pages off``: NumPy's request turned off),
or huge pages for both (``--huge-pages both``).
"""

import argparse
import os
import subprocess
import sys
import time

SHAPES = [(32, 64, 64, 128), (64, 128, 256, 256), (64, 256, 512, 512)]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="two smaller shapes, 3 repeats")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both libraries")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default 5, quick 3)")
    p.add_argument("--models", default="lstm,gru", help="comma-separated subset of lstm,gru")
    p.add_argument("--dtypes", default="float32,float64", help="comma-separated subset of float32,float64")
    p.add_argument(
        "--shapes", default=None,
        help=f"comma-separated indices into {SHAPES} (default: all; with --quick 0,1)",
    )  # fmt: skip
    p.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall",
        help="wall-clock time, or CPU time of the process (all its threads; steadier when other "
        "programs share the cores, and fairest with --threads 1)",
    )  # fmt: skip
    p.add_argument(
        "--stat", choices=["median", "min"], default="median",
        help="summary of the repeats (min is steadier on a shared machine)",
    )  # fmt: skip
    p.add_argument(
        "--huge-pages", choices=["off", "both"], default="off",
        help="4 KiB pages for both libraries (default), or transparent huge pages for both",
    )  # fmt: skip
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)  # "model,dtype,shape index": one row, in this process
    args = p.parse_args()
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    return args


ARGS = parse_args()
# BLAS libraries read these once, when they are loaded: set them before importing numpy or torch.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
# PyTorch reads this once, at its first allocation (see --huge-pages)
os.environ["THP_MEM_ALLOC_ENABLE"] = "1" if ARGS.huge_pages == "both" else "0"

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from rnncourse.numpy import gru_backward, gru_forward, lstm_backward, lstm_forward  # noqa: E402

torch.set_num_threads(ARGS.threads)
# NumPy asks for huge pages for large arrays by default (a private switch of NumPy 2); PyTorch only when told
np._core.multiarray._set_madvise_hugepage(ARGS.huge_pages == "both")


def timed(fn):
    clock = time.process_time if ARGS.clock == "cpu" else time.perf_counter
    t0 = clock()
    fn()
    return clock() - t0


def summary_ms(times):
    return 1e3 * float(np.min(times) if ARGS.stat == "min" else np.median(times))


def make_case(model, dtype, N, T, D, H, rng):
    """The torch module and matching NumPy functions, with the same random weights and inputs."""
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    torch.manual_seed(0)
    cls = torch.nn.LSTM if model == "lstm" else torch.nn.GRU
    module = cls(D, H, batch_first=True).to(tdtype)
    Wx = module.weight_ih_l0.detach().numpy().T.copy()
    Wh = module.weight_hh_l0.detach().numpy().T.copy()
    bx = module.bias_ih_l0.detach().numpy().copy()
    bh = module.bias_hh_l0.detach().numpy().copy()
    x = rng.standard_normal((N, T, D)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype)
    c0 = rng.standard_normal((N, H)).astype(dtype)
    dh = rng.standard_normal((N, T, H)).astype(dtype)

    xt = torch.from_numpy(x).requires_grad_()
    h0t = torch.from_numpy(h0)[None].clone().requires_grad_()
    c0t = torch.from_numpy(c0)[None].clone().requires_grad_()
    dht = torch.from_numpy(dh)
    state = (h0t, c0t) if model == "lstm" else h0t

    if model == "lstm":
        b = bx + bh

        def ours_fwd():
            return lstm_forward(x, h0, Wx, Wh, b, c0)

        def ours_fb():
            h, cache = lstm_forward(x, h0, Wx, Wh, b, c0)
            return lstm_backward(dh, cache)

    else:

        def ours_fwd():
            return gru_forward(x, h0, Wx, Wh, bx, bh)

        def ours_fb():
            h, cache = gru_forward(x, h0, Wx, Wh, bx, bh)
            return gru_backward(dh, cache)

    def torch_fwd():
        return module(xt, state)

    def torch_nograd():
        with torch.no_grad():
            return module(xt, state)

    def torch_fb():
        module.zero_grad(set_to_none=True)
        for t in (xt, h0t, c0t):
            t.grad = None
        out, _ = module(xt, state)
        out.backward(dht)

    # guard against timing a broken implementation
    ours_h = ours_fwd()[0]
    torch_h = torch_fwd()[0].detach().numpy()
    tol = 1e-3 if dtype == np.float32 else 1e-8
    if not np.allclose(ours_h, torch_h, rtol=tol, atol=tol):
        raise SystemExit(f"{model} {dtype.__name__} {(N, T, D, H)}: ours and torch disagree")
    return ours_fwd, ours_fb, torch_fwd, torch_nograd, torch_fb


def blas_kernel():
    """Which BLAS NumPy runs and the kernels it chose, e.g. ``OpenBLAS 0.3.30 (SkylakeX kernels)``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS kernel unknown (threadpoolctl not installed)"
    for lib in threadpool_info():
        if lib.get("internal_api") == "openblas" and "numpy" in lib.get("filepath", ""):
            return f"OpenBLAS {lib.get('version')} ({lib.get('architecture')} kernels)"
    return "BLAS kernel unknown"


def target(shape):
    """The bound on ours / torch for forward + backward (the same for the LSTM and the GRU)."""
    return 3.0 if shape == SHAPES[0] else 1.6


def measure(fns, repeats):
    """Median (or min) time of each function, alternating them after one warm-up each."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            ts.append(timed(fn))
    return [summary_ms(ts) for ts in times]


def run_case(model, dtype, shape):
    """Measure one case in this process and print its row of the table."""
    rng = np.random.default_rng(0)
    ours_fwd, ours_fb, torch_fwd, torch_nograd, torch_fb = make_case(model, dtype, *shape, rng)
    of, tf, tn, ofb, tfb = measure([ours_fwd, torch_fwd, torch_nograd, ours_fb, torch_fb], ARGS.repeats)
    bound = target(shape)
    verdict = f"<={bound:g} " + ("ok" if ofb / tfb <= bound else "no")
    print(
        f"{model.upper():5} {dtype.__name__:7} {str(shape):20} "
        f"{of:9.1f} {tf:9.1f} {tn:8.1f} {of / tf:6.2f}   "
        f"{ofb:9.1f} {tfb:9.1f} {ofb / tfb:6.2f} {verdict:>8}",
        flush=True,
    )


def main():
    if ARGS.case is not None:
        model, dtype, index = ARGS.case.split(",")
        run_case(model, np.dtype(dtype).type, SHAPES[int(index)])
        return
    if ARGS.shapes is not None:
        shapes = [SHAPES[int(k)] for k in ARGS.shapes.split(",")]
    else:
        shapes = SHAPES[:2] if ARGS.quick else SHAPES
    models = [m.strip() for m in ARGS.models.split(",") if m.strip()]
    dtypes = [np.dtype(d.strip()).type for d in ARGS.dtypes.split(",") if d.strip()]
    env = {k: os.environ.get(k, "(unset)") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print(
        f"numpy {np.__version__}, torch {torch.__version__}, threads {ARGS.threads}, "
        f"repeats {ARGS.repeats} ({ARGS.stat} {ARGS.clock} time), huge pages {ARGS.huge_pages}, "
        + ", ".join(f"{k}={v}" for k, v in env.items())
        + f", {blas_kernel()}"
    )
    header = (
        f"{'model':5} {'dtype':7} {'(N, T, D, H)':20} "
        f"{'ours fwd':>9} {'torch fwd':>9} {'no-grad':>8} {'ratio':>6}   "
        f"{'ours f+b':>9} {'torch f+b':>9} {'ratio':>6} {'target':>8}"
    )
    print(header)
    print("-" * len(header))
    # Each case in a fresh process: memory left behind by earlier cases slowed
    # later ones, ours (whose large arrays NumPy backs with huge pages, which a
    # fragmented memory must first compact) up to twice, torch's less.
    options = [
        f"--threads={ARGS.threads}", f"--repeats={ARGS.repeats}", f"--clock={ARGS.clock}", f"--stat={ARGS.stat}",
        f"--huge-pages={ARGS.huge_pages}",
    ]  # fmt: skip
    for model in models:
        for dtype in dtypes:
            for shape in shapes:
                case = f"--case={model},{np.dtype(dtype).name},{SHAPES.index(shape)}"
                subprocess.run([sys.executable, os.path.abspath(__file__), *options, case], check=True)
    print(
        "times in ms; ratio = ours / torch (requires_grad forward; forward + backward); "
        "target: the bound on the forward + backward ratio"
    )


if __name__ == "__main__":
    main()
