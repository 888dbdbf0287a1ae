"""The loop against the parallel scan for ``h_t = a_t * h_{t-1} + b_t``: where does the scan start to win?

Run from the repository root (``make bench-scan`` runs it on the CPU)::

    .venv/bin/python benchmarks/scan_crossover.py [--device cpu|cuda] [--quick]
        [--threads 1] [--repeats 5] [--out benchmarks/results/scan_<device>.json]

For each width (N sequences of H channels) and each length T (powers of two
from 8, while N T H <= 2^24), it times, in the same run, the median of ``--repeats`` runs after
one warm-up:

- on the CPU, NumPy (float64): ``rnncourse.numpy.linear_recurrence`` (the
  loop), ``parallel_scan`` (work-efficient, Blelloch) and
  ``hillis_steele_scan``;
- PyTorch (float32 on the device): ``rnncourse.torch.linear_recurrence`` (the
  loop), ``parallel_scan(backend="chunked")`` and, on CUDA with Triton,
  ``parallel_scan(backend="triton")``; each forward only (``fwd``, no
  autograd) and forward and backward (``f+b``, gradients of a, b, h0 for a
  fixed upstream gradient).

The *crossover* of a scan against its loop is the shortest measured T from
which the scan is faster at every longer measured T (None if it never is).
The results, with the machine, the versions and the settings, go to
``--out`` as JSON; chapter 8 of the book reads ``scan_cpu.json`` and, where
it exists, ``scan_cuda.json``, so the book build itself times nothing.

CPU timings are CPU time of the process with ``--threads`` threads (1 by
default: the steadiest on a shared machine); CUDA timings are wall time
between synchronisations. Compare only numbers from one file.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import rnncourse.numpy as rn  # noqa: E402
import rnncourse.torch as rt  # noqa: E402

WIDTHS = [(1, 8), (8, 64), (32, 512)]  # (N, H)
QUICK_WIDTHS = [(1, 8), (8, 64)]
MAX_ELEMENTS = 2**24  # N T H at most: 128 MiB per float64 array (a scan holds several)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="two widths, T up to 2048, 3 repeats")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for NumPy's BLAS-free loops and PyTorch")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default 5, quick 3)")
    p.add_argument("--max-log2-t", type=int, default=None, help="longest sequence, 2^k (default 14, quick 11)")
    p.add_argument("--out", default=None, help="default benchmarks/results/scan_<device>.json")
    args = p.parse_args()
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.max_log2_t = args.max_log2_t or (11 if args.quick else 14)
    args.out = args.out or os.path.join(ROOT, "benchmarks", "results", f"scan_{args.device}.json")
    return args


def clock(device):
    if device == "cuda":
        def now():
            torch.cuda.synchronize()
            return time.perf_counter()
        return now
    return time.process_time


def median_seconds(fn, repeats, now):
    fn()  # warm-up: allocation, Triton's compilation
    times = []
    for _ in range(repeats):
        start = now()
        fn()
        times.append(now() - start)
    return statistics.median(times)


def cases(device, N, T, H):
    """{(library, method, pass): callable} for one shape."""
    out = {}
    if device == "cpu":
        rng = np.random.default_rng(0)
        arrays = rng.uniform(-1, 1, (N, T, H)), rng.standard_normal((N, T, H)), rng.standard_normal((N, H))
        out[("numpy", "loop", "fwd")] = lambda: rn.linear_recurrence(*arrays)
        out[("numpy", "blelloch", "fwd")] = lambda: rn.parallel_scan(*arrays)
        out[("numpy", "hillis_steele", "fwd")] = lambda: rn.hillis_steele_scan(*arrays)
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(N, T, H, generator=g) * 2 - 1).to(device).requires_grad_()
    b = torch.randn(N, T, H, generator=g).to(device).requires_grad_()
    h0 = torch.randn(N, H, generator=g).to(device).requires_grad_()
    dh = torch.randn(N, T, H, generator=g).to(device)
    methods = {"loop": rt.linear_recurrence, "chunked": lambda *t: rt.parallel_scan(*t, backend="chunked")}
    if device == "cuda" and rt.scan_backend(a) == "triton":
        methods["triton"] = lambda *t: rt.parallel_scan(*t, backend="triton")
    for name, f in methods.items():
        def fwd(f=f):
            with torch.no_grad():
                f(a, b, h0)

        def fb(f=f):
            torch.autograd.grad(f(a, b, h0), (a, b, h0), dh)

        out[("torch", name, "fwd")] = fwd
        out[("torch", name, "f+b")] = fb
    return out


def crossover(rows, library, method, pass_, N, H, loop="loop"):
    """The shortest T from which ``method`` beats ``loop`` at every longer measured T; None if never."""
    times = {}
    for r in rows:
        if (r["library"], r["pass"], r["N"], r["H"]) == (library, pass_, N, H):
            times.setdefault(r["T"], {})[r["method"]] = r["seconds"]
    lengths = sorted(T for T, t in times.items() if method in t and loop in t)
    best = None
    for T in reversed(lengths):
        if times[T][method] < times[T][loop]:
            best = T
        else:
            break
    return best


def main():
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA GPU here")
    torch.set_num_threads(args.threads)
    now = clock(args.device)
    load_at_start = os.getloadavg()[0]
    widths = QUICK_WIDTHS if args.quick else WIDTHS
    lengths = [2**k for k in range(3, args.max_log2_t + 1)]
    rows = []
    print(f"device {args.device}, {args.threads} thread(s), median of {args.repeats}; seconds")
    for N, H in widths:
        for T in lengths:
            if N * T * H > MAX_ELEMENTS:
                break
            line = []
            for (library, method, pass_), fn in cases(args.device, N, T, H).items():
                seconds = median_seconds(fn, args.repeats, now)
                rows.append(dict(library=library, method=method, pass_=pass_, N=N, T=T, H=H, seconds=seconds))
                line.append(f"{library[:2]}/{method}/{pass_} {seconds:.2e}")
            print(f"N={N:3d} H={H:4d} T={T:6d}  " + "  ".join(line), flush=True)
    for r in rows:
        r["pass"] = r.pop("pass_")
    crossovers = []
    for N, H in widths:
        pairs = [("torch", m, p) for m in ("chunked", "triton") for p in ("fwd", "f+b")]
        if args.device == "cpu":
            pairs = [("numpy", "blelloch", "fwd"), ("numpy", "hillis_steele", "fwd")] + pairs
        for library, method, pass_ in pairs:
            if any(r["method"] == method and r["library"] == library for r in rows):
                crossovers.append(dict(library=library, method=method, pass_=pass_, N=N, H=H,
                                       T=crossover(rows, library, method, pass_, N, H)))
    for c in crossovers:
        c["pass"] = c.pop("pass_")
        print(f"crossover {c['library']} {c['method']} {c['pass']} at N={c['N']}, H={c['H']}: T = {c['T']}")
    if args.device == "cuda":
        machine = torch.cuda.get_device_name()
    else:
        machine = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                machine = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
    result = dict(device=args.device, machine=machine, threads=args.threads, repeats=args.repeats,
                  clock="CPU time of the process" if args.device == "cpu" else "wall time, synchronised",
                  dtype={"numpy": "float64", "torch": "float32"}, numpy=np.__version__, torch=torch.__version__,
                  date=datetime.date.today().isoformat(), quick=args.quick,
                  load_average=[round(load_at_start, 2), round(os.getloadavg()[0], 2)],  # 1-minute, at start and end
                  cpu_count=os.cpu_count(), rows=rows, crossovers=crossovers)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
