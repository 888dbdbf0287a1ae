"""rnncourse's fused Triton LSTM and GRU against cuDNN and a plain PyTorch loop, on a CUDA GPU.

Run from the repository root, on a machine with a CUDA GPU::

    .venv/bin/python benchmarks/triton_vs_cudnn.py [--quick] [--models lstm,gru]
        [--dtypes float32,bfloat16,float16] [--tf32] [--repeats 7]
        [--out benchmarks/results/triton_vs_cudnn.json]

For each model, shape (N, T, D, H) = (batch, time steps, input size, hidden
size) and dtype, three implementations of one layer (same weights, same
input, time-major, training mode, autograd on):

- ``ours``: ``rnncourse.torch.LSTM`` / ``GRU``, which on CUDA runs the Triton
  kernels of ``rnncourse.torch.triton`` (the variant it picks is printed).
  Until the barrier variants have passed the native tests on a GPU, ``auto``
  picks the per-step variant (``BARRIERS_RUN_ON_A_GPU``): run the tests
  first, then measure with ``RNNCOURSE_TRITON=persistent`` as well;
- ``cudnn``: ``torch.nn.LSTM`` / ``GRU`` (cuDNN; the algorithm PyTorch asks
  for is printed, from ``rnncourse.torch.triton.perf.cudnn_rnn_algorithm``);
- ``loop``: a plain PyTorch loop over the time steps with
  ``torch.nn.LSTMCell`` / ``GRUCell`` (what one writes without a fused RNN).

It prints, in milliseconds, the median over ``--repeats`` runs (the three
timed in turn after warm-up runs; CUDA events, synchronised) of ``fwd`` (the
forward pass) and ``f+b`` (forward and backward to the input and every
parameter, for a fixed upstream gradient), the ratios ours/cudnn and
loop/ours from the same run, and the fraction of the hardware limit our time
reaches::

    limit = max(FLOPs / peak, steps * step floor)      fraction = limit / ours

- FLOPs: ``rnncourse.torch.triton.perf.recurrence_flops``, the matrix
  products only, the input projection included, the same for everyone.
- peak: measured here, the best rate of a large matrix product
  (8192 x 8192 x 8192) in the dtype (with the same TF32 setting).
- step floor: measured here, the time of one step of a chain of dependent
  steps that do no work: two programs of one Triton kernel each publish a
  number in global memory and wait for the other's (the cheapest exchange
  between two SMs, which every step of a recurrence spread over several SMs
  needs). ``steps`` is T for fwd and 2T for f+b.

TF32 (``torch.backends.cuda.matmul.allow_tf32`` and
``torch.backends.cudnn.allow_tf32``) is set the same way for all three from
``--tf32`` (default off) and recorded. The results, with the GPU's name and
the versions, go to ``--out`` as JSON (the book's appendix reads it).
``--quick`` takes three shapes and 3 repeats. Without CUDA it stops at once.
"""

import argparse
import datetime
import json
import os
import statistics
import sys

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

SHAPES = [(1, 256, 256, 256), (32, 64, 64, 128), (64, 128, 256, 256), (64, 100, 512, 512), (16, 1024, 768, 768),
          (256, 256, 1024, 1024)]
QUICK_SHAPES = [(1, 256, 256, 256), (64, 128, 256, 256), (16, 1024, 768, 768)]
# the targets: where launch overhead dominates (the loop must be 10x slower), and the FlashRNN comparison
SMALL_AND_MEDIUM = [(1, 256, 256, 256), (32, 64, 64, 128), (64, 128, 256, 256), (64, 100, 512, 512)]
FLASHRNN_SHAPE = (16, 1024, 768, 768)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="three shapes, 3 repeats")
    p.add_argument("--models", default="lstm,gru")
    p.add_argument("--dtypes", default="float32,bfloat16,float16")
    p.add_argument("--tf32", action="store_true", help="allow TF32 for all three (float32)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default 7, quick 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (compilation, cuDNN's choices)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "triton_vs_cudnn.json"))
    args = p.parse_args()
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    return args


def time_ms(fn):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


def median_times(fns, repeats, warmup):
    """Median ms of each function; the functions timed in turn, so that drift hits all alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            times[k].append(time_ms(fn))
    return [statistics.median(t) for t in times]


def measure_peak_tflops(dtype, size=8192, repeats=10):
    a = torch.randn(size, size, device="cuda", dtype=dtype)
    b = torch.randn(size, size, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    best = min(time_ms(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / (best * 1e-3) / 1e12


def measure_step_floor_us(programs, steps=20000):
    """Microseconds per step of a kernel whose programs only exchange a number and wait for each other."""
    from rnncourse.torch.triton.kernels import MAX_SPIN, barrier_chain_kernel

    def run(T):
        buf = torch.zeros(2 * programs, dtype=torch.int32, device="cuda")
        sync = torch.zeros(2, dtype=torch.int32, device="cuda")
        barrier_chain_kernel[(programs,)](buf, sync, T, MAX_SPIN=MAX_SPIN)
        return sync

    run(10)  # compile
    times = [time_ms(lambda: run(steps)) - time_ms(lambda: run(1)) for _ in range(3)]
    if int(run(steps)[1]) != 0:
        raise RuntimeError("the step-floor kernel timed out at its barrier")
    return min(times) * 1e3 / (steps - 1)


class PlainLoop(torch.nn.Module):
    """The cell stepped by a Python loop; weights copied from a torch.nn.LSTM/GRU."""

    def __init__(self, model, reference):
        super().__init__()
        D, H = reference.input_size, reference.hidden_size
        factory = dict(device=reference.weight_ih_l0.device, dtype=reference.weight_ih_l0.dtype)
        self.lstm = model == "lstm"
        self.cell = (torch.nn.LSTMCell if self.lstm else torch.nn.GRUCell)(D, H, **factory)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(self.cell, name).copy_(getattr(reference, name + "_l0"))

    def forward(self, x):
        h = x.new_zeros(x.shape[1], self.cell.hidden_size)
        state = (h, h) if self.lstm else h
        outputs = []
        for x_t in x:
            state = self.cell(x_t, state)
            outputs.append(state[0] if self.lstm else state)
        return torch.stack(outputs), state


def bench(model, shape, dtype, args):
    from rnncourse.torch import GRU, LSTM

    N, T, D, H = shape
    torch.manual_seed(0)
    ours = (LSTM if model == "lstm" else GRU)(D, H, device="cuda", dtype=dtype)
    cudnn = (torch.nn.LSTM if model == "lstm" else torch.nn.GRU)(D, H, device="cuda", dtype=dtype)
    cudnn.load_state_dict(ours.state_dict())
    loop = PlainLoop(model, cudnn)
    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(T, N, D, device="cuda", dtype=dtype, generator=g).requires_grad_()
    dout = torch.randn(T, N, H, device="cuda", dtype=dtype, generator=g)

    def forward(m):
        return lambda: m(x)

    def forward_backward(m):
        def run():
            m(x)[0].backward(dout)
            x.grad = None
            m.zero_grad(set_to_none=True)

        return run

    modules = {"ours": ours, "cudnn": cudnn, "loop": loop}
    failed = {}
    for name, m in list(modules.items()):  # one that cannot run this case is reported, not fatal
        try:
            forward_backward(m)()
        except Exception as e:
            failed[name] = f"{type(e).__name__}: {str(e)[:200]}"
            del modules[name]
            torch.cuda.empty_cache()
    diff = None
    if "ours" in modules and "cudnn" in modules:
        with torch.no_grad():
            diff = (ours(x)[0].float() - cudnn(x)[0].float()).abs().max().item()
    names = list(modules)
    fwd = dict(zip(names, median_times([forward(m) for m in modules.values()], args.repeats, args.warmup)))
    fb = dict(zip(names, median_times([forward_backward(m) for m in modules.values()], args.repeats, args.warmup)))
    return fwd, fb, diff, failed


def plan_name(model, shape, dtype):
    from rnncourse.torch.triton import make_plan

    N, T, D, H = shape
    tensor_cores = dtype != torch.float32 or torch.backends.cuda.matmul.allow_tf32
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    p = make_plan(4 if model == "lstm" else 3, N, H, torch.empty((), dtype=dtype).element_size(), sms,
                  tensor_cores=tensor_cores)
    n_b, n_h = p.grid(N, H)
    return f"{p.variant} {n_b}x{n_h}"


def main():
    args = parse_args()
    if not torch.cuda.is_available():
        sys.exit("triton_vs_cudnn.py needs a CUDA GPU; none is visible here (torch.cuda.is_available() is False).")
    from rnncourse.torch import triton as fast
    from rnncourse.torch.triton.perf import cudnn_rnn_algorithm, hardware_limit_ms, recurrence_flops

    if not fast.available():
        sys.exit("triton_vs_cudnn.py needs Triton (pip install -r requirements.txt).")
    if fast.get_mode() == "off":
        sys.exit("RNNCOURSE_TRITON=off: unset it to measure the kernels.")
    import triton

    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    props = torch.cuda.get_device_properties(0)
    capability = (props.major, props.minor)
    dtypes = [getattr(torch, name) for name in args.dtypes.split(",")]
    models = args.models.split(",")
    shapes = QUICK_SHAPES if args.quick else SHAPES

    print(f"{props.name} ({props.multi_processor_count} SMs, sm_{props.major}{props.minor}); "
          f"torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, Triton {triton.__version__}; "
          f"TF32 {'on' if args.tf32 else 'off'} for all three")
    peak = {str(d).replace("torch.", ""): measure_peak_tflops(d) for d in dtypes}
    floor_two = measure_step_floor_us(2)
    floor_all = measure_step_floor_us(props.multi_processor_count)
    print("measured peak (TFLOP/s): " + ", ".join(f"{k} {v:.0f}" for k, v in peak.items()))
    print(f"measured step floor: {floor_two:.2f} us (2 programs), {floor_all:.2f} us ({props.multi_processor_count} "
          "programs, one per SM)")
    print(f"median of {args.repeats} runs after {args.warmup} warm-up runs; times in ms")
    header = (f"{'model':5} {'dtype':8} {'(N, T, D, H)':>22} {'ours':>18} | {'fwd: ours':>9} {'cudnn':>8} {'loop':>8} "
              f"{'o/c':>5} {'l/o':>6} {'limit':>6} | {'f+b: ours':>9} {'cudnn':>8} {'loop':>8} {'o/c':>5} {'l/o':>6} "
              f"{'limit':>6} | cudnn algo (fwd/bwd)  max|dy|")
    print(header)
    print("-" * len(header))
    rows = []
    for model in models:
        for dtype in dtypes:
            name = str(dtype).replace("torch.", "")
            for shape in shapes:
                N, T, D, H = shape
                row = dict(model=model, dtype=name, N=N, T=T, D=D, H=H)
                algo = [cudnn_rnn_algorithm(model, N, T, D, H, name, capability, props.multi_processor_count, f)
                        for f in (True, False)]
                row.update(variant=plan_name(model, shape, dtype), cudnn_algorithm_forward=algo[0],
                           cudnn_algorithm_backward=algo[1])
                fwd, fb, diff, failed = bench(model, shape, dtype, args)
                if failed:
                    row["errors"] = failed
                    print(f"{model:5} {name:8} {str(shape):>22} could not run: {failed}", flush=True)
                if "ours" not in fwd:
                    rows.append(row)
                    continue
                for key, times, steps, backward in (("fwd", fwd, T, False), ("fb", fb, 2 * T, True)):
                    flops = recurrence_flops(model, N, T, D, H, backward)
                    limit = hardware_limit_ms(flops, peak[name], steps, floor_two)
                    entry = dict(ours_ms=times["ours"], gflops=flops / 1e9, limit_ms=limit,
                                 fraction_of_limit=limit / times["ours"])
                    if "cudnn" in times:
                        entry.update(cudnn_ms=times["cudnn"], ours_over_cudnn=times["ours"] / times["cudnn"])
                    if "loop" in times:
                        entry.update(loop_ms=times["loop"], loop_over_ours=times["loop"] / times["ours"])
                    row[key] = entry
                row["max_abs_output_difference"] = diff
                rows.append(row)
                f, b = row["fwd"], row["fb"]
                print(f"{model:5} {name:8} {str(shape):>22} {row['variant']:>18} | {f['ours_ms']:9.3f} "
                      f"{_num(f, 'cudnn_ms', 8, 3)} {_num(f, 'loop_ms', 8, 2)} {_num(f, 'ours_over_cudnn', 5, 2)} "
                      f"{_num(f, 'loop_over_ours', 6, 1)} {f['fraction_of_limit']:6.2f} | {b['ours_ms']:9.3f} "
                      f"{_num(b, 'cudnn_ms', 8, 3)} {_num(b, 'loop_ms', 8, 2)} {_num(b, 'ours_over_cudnn', 5, 2)} "
                      f"{_num(b, 'loop_over_ours', 6, 1)} {b['fraction_of_limit']:6.2f} | {algo[0]}/{algo[1]}  "
                      f"{'-' if diff is None else f'{diff:.1e}'}", flush=True)

    targets = check_targets(rows)
    print("\nthe issue's targets:")
    for line in targets:
        print(f"  {'met    ' if line['met'] else 'NOT met'}  {line['target']}: {line['detail']}")
    result = dict(
        gpu=props.name, sm_count=props.multi_processor_count, capability=f"{props.major}.{props.minor}",
        torch=torch.__version__, cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
        triton=triton.__version__, tf32=args.tf32, repeats=args.repeats, warmup=args.warmup,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        peak_tflops=peak, step_floor_us=floor_two, step_floor_all_sms_us=floor_all,
        definitions=dict(
            times="median ms over repeats; forward in training mode; f+b: forward and backward to the input and "
                  "every parameter; one layer, time-major, same weights and input for all three",
            ours="rnncourse.torch on CUDA: the Triton kernels of rnncourse.torch.triton",
            cudnn="torch.nn.LSTM / torch.nn.GRU", loop="torch.nn.LSTMCell / GRUCell in a Python loop",
            flops="2 T N G H (D + H) forward, 3x that forward+backward: the matrix products, input projection "
                  "included, the same for all",
            limit="max(FLOPs / peak, steps * step_floor_us): steps = T (fwd), 2T (f+b)",
            peak="best rate of an 8192^3 matrix product in the dtype, measured in the same run",
            step_floor="us per step of a Triton kernel whose 2 programs only exchange a number through global "
                       "memory and wait for each other, measured in the same run",
            fraction_of_limit="limit_ms / ours_ms (1 would be the hardware limit)",
        ),
        rows=rows, targets=targets,
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print(f"\nwrote {args.out}")


def _num(entry, key, width, digits):
    """A column of the table, or a dash where that implementation could not run."""
    return f"{entry[key]:{width}.{digits}f}" if key in entry else f"{'-':>{width}}"


def check_targets(rows):
    """The issue's three targets, judged on the rows measured (a target with no row is not judged)."""
    ok = [r for r in rows if "fwd" in r]
    with_cudnn = [r for r in ok if "ours_over_cudnn" in r["fwd"]]
    with_loop = [r for r in ok if "loop_over_ours" in r["fwd"]]
    lines = []
    flash = [r for r in with_cudnn if (r["N"], r["T"], r["D"], r["H"]) == FLASHRNN_SHAPE
             and r["dtype"] in ("bfloat16", "float16") and r["model"] == "lstm"]
    if flash:
        worst = max(max(r["fwd"]["ours_over_cudnn"], r["fb"]["ours_over_cudnn"]) for r in flash)
        lines.append(dict(target="at most 1.5x cuDNN at (16, 1024, 768, 768), LSTM, bf16/fp16", met=worst <= 1.5,
                          detail=f"worst ours/cudnn {worst:.2f}"))
    standard = [r for r in with_cudnn if r["cudnn_algorithm_forward"] == "standard"]
    if standard:
        worst = max(max(r["fwd"]["ours_over_cudnn"], r["fb"]["ours_over_cudnn"]) for r in standard)
        lines.append(dict(target="faster than cuDNN wherever it uses its standard algorithm", met=worst < 1.0,
                          detail=f"worst ours/cudnn {worst:.2f} over {len(standard)} rows"))
    small = [r for r in with_loop if (r["N"], r["T"], r["D"], r["H"]) in SMALL_AND_MEDIUM]
    if small:
        worst = min(min(r["fwd"]["loop_over_ours"], r["fb"]["loop_over_ours"]) for r in small)
        lines.append(dict(target="at least 10x faster than the plain loop on the small and medium shapes",
                          met=worst >= 10, detail=f"smallest loop/ours {worst:.1f} over {len(small)} rows"))
    return lines


if __name__ == "__main__":
    main()
