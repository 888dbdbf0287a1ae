"""How fast are rnncourse.torch's LSTM and GRU next to torch.nn's (cuDNN on a GPU)?

Run from the repository root::

    .venv/bin/python benchmarks/torch_vs_cudnn.py [--device cpu|cuda] [--dtype float32|bfloat16] [--quick]
        [--models lstm,gru,rnn] [--shapes "64,128,256,256;64,100,512,512"]

For each model (LSTM, GRU; RNN with ``--models``) and shape (N, T, D, H) = (batch, time steps,
input size, hidden size) it prints, in milliseconds, the median of
``--repeats`` timed runs after warm-up runs, ours and torch's timed
alternately (so that a noisy neighbour slows both alike), and the ratios
ours / torch (below 1: ours is faster):

- ``fwd``: the forward pass in training mode (autograd on, inputs and
  parameters requiring gradients), one layer, time-major input;
- ``f+b``: forward and backward, to the input and every parameter, for a
  fixed random upstream gradient of the output.

Both models are built from the same seed, so they have the same weights; the
column ``max|dy|`` is the largest difference of their outputs (a guard that
the two compute the same thing, not a test).

On the CPU both run in this process with the same number of threads
(``--threads``, default: torch's). Each new large CPU buffer costs a page
fault per 4 KiB page on first use, a large share of the time at these
shapes; PyTorch asks for transparent huge pages instead only when
``THP_MEM_ALLOC_ENABLE=1`` is set before it starts, which speeds up
``torch.nn.LSTM`` more than ours. The header says whether it is set:
measure both ways (``THP_MEM_ALLOC_ENABLE=1 make bench-torch``). On a GPU, timings use CUDA events with
``torch.cuda.synchronize()`` around them, and TF32 (which cuDNN would
otherwise use for float32 by default, and matrix products would not) is set
the same way for both from ``--tf32`` (default off) and printed.

``--quick`` leaves out the largest shape and takes 3 repeats. ``--clock cpu``
(with ``--threads 1``) times the CPU time of the process instead of the wall
time: on a loaded machine the time spent waiting for a core is left out. ``--cuda-graphs``
adds ours captured as a CUDA graph by ``torch.cuda.make_graphed_callables``
(what a user can do without changing the module): on a GPU the time loop is
bound by launching its many small kernels one by one, which a graph removes.
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from rnncourse.torch import _recurrence  # noqa: E402
from rnncourse.torch.rnn import GRU, LSTM, RNN  # noqa: E402

SHAPES = [(32, 64, 64, 128), (64, 128, 256, 256), (64, 100, 512, 512), (16, 1024, 768, 768)]
MODELS = {"lstm": (LSTM, torch.nn.LSTM), "gru": (GRU, torch.nn.GRU), "rnn": (RNN, torch.nn.RNN)}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--quick", action="store_true", help="leave out the largest shape; 3 repeats")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default 7, quick 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (cuDNN chooses its algorithms)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for both (default: torch's)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 for both (GPU, float32)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="CPU only: wall time, or the CPU time of the process (with --threads 1, the steadiest "
                        "on a shared machine: time spent waiting for a core is not counted)")
    p.add_argument("--models", default="lstm,gru", help="comma-separated subset of lstm,gru,rnn")
    p.add_argument("--shapes", default=None, type=parse_shapes,
                   help='shapes "N,T,D,H;N,T,D,H" instead of the default list (e.g. the two of the 1.2x target)')
    p.add_argument("--cuda-graphs", action="store_true", help="also time ours captured as a CUDA graph")
    args = p.parse_args()
    unknown = set(args.models.split(",")) - set(MODELS)
    if unknown:
        p.error(f"--models {args.models!r}: {', '.join(sorted(unknown))} unknown; expected a subset of lstm,gru,rnn")
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    return args


def parse_shapes(text):
    """``"64,128,256,256;64,100,512,512"`` -> ``[(64, 128, 256, 256), (64, 100, 512, 512)]``."""
    try:
        shapes = [tuple(int(n) for n in part.split(",")) for part in text.split(";") if part.strip()]
    except ValueError:
        shapes = []
    if not shapes or any(len(shape) != 4 or min(shape) < 1 for shape in shapes):
        raise argparse.ArgumentTypeError(f"{text!r}: expected shapes N,T,D,H of positive ints separated by ';'")
    return shapes


def make_timer(device, clock="wall"):
    """``timer(fn) -> milliseconds`` for one call of ``fn``: wall time, or the process's CPU time."""
    if device == "cuda":

        def timer(fn):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end)

        return timer

    now = time.process_time if clock == "cpu" else time.perf_counter

    def timer(fn):
        t0 = now()
        fn()
        return (now() - t0) * 1e3

    return timer


def median_times(fns, timer, repeats, warmup):
    """Median milliseconds of each function, the functions timed in turn."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            times[k].append(timer(fn))
    return [statistics.median(t) for t in times]


class OutputOnly(torch.nn.Module):
    """The module's output alone (what make_graphed_callables handles simply)."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)[0]


def bench(model, shape, args, timer):
    N, T, D, H = shape
    ours_cls, torch_cls = MODELS[model]
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    ours = ours_cls(D, H, device=args.device, dtype=dtype)
    torch.manual_seed(0)
    theirs = torch_cls(D, H, device=args.device, dtype=dtype)
    g = torch.Generator(device=args.device).manual_seed(1)
    x = torch.randn(T, N, D, device=args.device, dtype=dtype, generator=g).requires_grad_()
    dout = torch.randn(T, N, H, device=args.device, dtype=dtype, generator=g)

    def forward(m):
        return lambda: m(x)

    def forward_backward(m):
        def run():
            out, _ = m(x)
            out.backward(dout)
            x.grad = None
            m.zero_grad(set_to_none=True)

        return run

    with torch.no_grad():
        diff = (ours(x)[0].float() - theirs(x)[0].float()).abs().max().item()
    fwd_ours, fwd_torch = median_times([forward(ours), forward(theirs)], timer, args.repeats, args.warmup)
    fb_ours, fb_torch = median_times(
        [forward_backward(ours), forward_backward(theirs)], timer, args.repeats, args.warmup
    )
    graphed = None
    if args.cuda_graphs:
        try:
            graphed = torch.cuda.make_graphed_callables(OutputOnly(ours), (x.detach().clone().requires_grad_(),))
        except Exception as e:  # report, do not stop the benchmark
            print(f"  CUDA graph capture failed for {model} {shape}: {type(e).__name__}: {e}")
    if graphed is not None:

        def graphed_fb():
            graphed(x).backward(dout)
            x.grad = None
            ours.zero_grad(set_to_none=True)

        fwd_graph, fb_graph = median_times([lambda: graphed(x), graphed_fb], timer, args.repeats, args.warmup)
        graph_times = (fwd_graph, fb_graph)
    else:
        graph_times = None
    return fwd_ours, fwd_torch, fb_ours, fb_torch, diff, graph_times


def main():
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    if args.clock == "cpu" and args.device != "cpu":
        sys.exit("--clock cpu: CPU time measures only the CPU; on a GPU the timings use CUDA events")
    if args.cuda_graphs and args.device != "cuda":
        sys.exit("--cuda-graphs needs --device cuda")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        where = f"{torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()}"
        settings = (f"TF32: matmul {torch.backends.cuda.matmul.allow_tf32}, "
                    f"cudnn {torch.backends.cudnn.allow_tf32} (same for both)")
    else:
        where = f"CPU, {torch.get_num_threads()} threads for both"
        ours_onednn = _recurrence._on_onednn(torch.empty(1, dtype=getattr(torch, args.dtype)))
        settings = (
            f"oneDNN (mkldnn) available to torch.nn: {torch.backends.mkldnn.is_available()}, "
            f"ours multiplies in oneDNN: {ours_onednn}, "
            f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '(unset)')}"
        )
    print(f"torch {torch.__version__}; {where}; dtype {args.dtype}; {settings}")
    clock = "CUDA events" if args.device == "cuda" else f"{args.clock} clock"
    print(f"median of {args.repeats} runs after {args.warmup} warm-up runs; times in ms ({clock}); "
          "ratio = ours / torch.nn")
    shapes = args.shapes or (SHAPES[:-1] if args.quick else SHAPES)
    timer = make_timer(args.device, args.clock)
    header = (f"{'model':5} {'(N, T, D, H)':>20} | {'ours fwd':>9} {'torch fwd':>9} {'ratio':>6} | "
              f"{'ours f+b':>9} {'torch f+b':>9} {'ratio':>6} | {'max|dy|':>8}")
    if args.cuda_graphs:
        header += f" | {'graph fwd':>9} {'ratio':>6} {'graph f+b':>9} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for model in args.models.split(","):
        for shape in shapes:
            fo, ft, bo, bt, diff, graph = bench(model, shape, args, timer)
            line = (f"{model:5} {str(shape):>20} | {fo:9.2f} {ft:9.2f} {fo / ft:6.2f} | "
                    f"{bo:9.2f} {bt:9.2f} {bo / bt:6.2f} | {diff:8.1e}")
            if graph is not None:
                line += f" | {graph[0]:9.2f} {graph[0] / ft:6.2f} {graph[1]:9.2f} {graph[1] / bt:6.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
