"""``python -m crosscheck.bench``: our vectorized ops against their native twins.

For every op and every present torch / JAX backend, times ``torch_impl`` /
``jax_impl`` and the framework's own op on the same case in one run, and prints
the ratio (ours / native: below 1 is faster) and the achieved bandwidth
(bytes of all inputs and the output, per second) next to the device's copy
bandwidth. Times are medians of repeated calls after a warm-up; ours include
their argument checks (one host sync for an index's range), as a user pays them.

Fresh memory. PyTorch's CPU allocator has no cache: every large output is a new
``mmap`` whose pages the kernel zeroes on first touch, 4 KiB at a time. On the
2-core CI machine that costs about 0.25 ms per MB, the same for our op and the
native, and for a big output (unfold's 115 MB) it is most of both times, which
squeezes every ratio towards 1. ``--torch-hugepages`` sets PyTorch's own
``THP_MEM_ALLOC_ENABLE=1`` (allocations of 2 MB and more are aligned and
``madvise``d to transparent huge pages), so the ratio measures the ops rather
than the page faults. The header prints the first-touch cost in either mode;
``nox -s bench`` runs both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

from crosscheck import backends as backends_mod
from crosscheck.bench.cases import EXAMPLES, bench_cases
from crosscheck.ops import OPS
from crosscheck.optable import Target


def _timer(backend):
    if backend.framework == "torch":
        torch = backends_mod.load_torch()

        def sync(out):
            if backend.device == "cuda":
                torch.cuda.synchronize()
            return out

        return sync

    def block(out):
        import jax

        return jax.block_until_ready(out)

    return block


def time_call(fn, args, backend, *, min_time=0.2, max_reps=50) -> float:
    """Median seconds of ``fn(*args)``, after one warm-up call (compilation, caches)."""
    done = _timer(backend)
    done(fn(*args))
    samples = []
    start = time.perf_counter()
    while len(samples) < 3 or (time.perf_counter() - start < min_time and len(samples) < max_reps):
        t0 = time.perf_counter()
        done(fn(*args))
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def copy_bandwidth(backend) -> float:
    """GB/s of a plain 256 MB device copy (read + write), the ceiling for data movement."""
    n = 32 * 2**20
    x = backend.asarray(np.ones(n, dtype=np.float64))
    if backend.framework == "torch":
        fn = lambda a: a.clone()
    else:
        import jax

        fn = jax.jit(lambda a: a + 0)
    return 2 * x.nbytes / time_call(fn, (x,), backend) / 1e9


THP_ENV = "THP_MEM_ALLOC_ENABLE"  # read once by c10's CPU allocator (alloc_cpu.cpp)
THP_SYSFS = "/sys/kernel/mm/transparent_hugepage/enabled"


def use_torch_hugepages() -> None:
    """Ask PyTorch's CPU allocator for huge pages; must happen before torch allocates."""
    if "torch" in sys.modules:
        raise RuntimeError("--torch-hugepages must be set before torch is imported")
    os.environ[THP_ENV] = "1"


def allocator_mode() -> str:
    """The torch CPU allocator mode and whether the kernel honours it."""
    try:
        with open(THP_SYSFS) as f:
            kernel = f.read().strip()
    except OSError:
        kernel = "unknown"
    mode = "huge pages" if os.environ.get(THP_ENV) == "1" else "default (4 KiB pages)"
    return f"{mode}; kernel THP: {kernel}"


def first_touch_ms_per_100mb(backend) -> float:
    """Milliseconds to allocate and fill 100 MB minus filling a warm 100 MB buffer."""
    torch = backends_mod.load_torch()
    n = 100 * 2**20 // 4
    warm = torch.empty(n)
    fresh = time_call(lambda: torch.empty(n).fill_(1.0), (), backend)
    reuse = time_call(lambda: warm.fill_(1.0), (), backend)
    return (fresh - reuse) * 1e3


def nbytes(case, out) -> int:
    arrays = [a for a in case.args if isinstance(a, np.ndarray)]
    return sum(a.nbytes for a in arrays) + int(np.asarray(out).nbytes)


def _first_native_that_runs(op, natives, backend, args):
    """(name, seconds) of the first native twin that accepts the case; (reason, None) if none."""
    reasons = []
    for native in natives:
        try:
            return native.name, time_call(Target(op, native.name, backend, native).fn, args, backend)
        except Exception as e:  # noqa: BLE001 - e.g. F.unfold on 3 spatial dims
            reasons.append(f"{native.name}: {str(e).splitlines()[0][:60]}")
    return "no native: " + "; ".join(reasons), None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m crosscheck.bench", description=__doc__.splitlines()[0])
    p.add_argument("--ops", default=None, help="comma-separated ops (default: all)")
    p.add_argument("--devices", default=None, help="comma-separated devices: cpu, cuda")
    p.add_argument("--backends", default=None,
                   help=f"comma-separated backends that must be present (as {backends_mod.ENV_VAR})")
    p.add_argument("--torch-hugepages", action="store_true",
                   help=f"torch CPU outputs on transparent huge pages ({THP_ENV}=1); see the module doc")
    p.add_argument("--json", default=None, metavar="PATH")
    args = p.parse_args(argv)
    if args.torch_hugepages:
        use_torch_hugepages()

    wanted = set(args.ops.split(",")) if args.ops else None
    devices = set(args.devices.split(",")) if args.devices else None
    rows = []
    header = (f"{'op':12} {'case':34} {'backend':10} {'ours ms':>9} {'native ms':>10} "
              f"{'ratio':>6} {'ours GB/s':>10} {'native GB/s':>11}  native")
    print(header)
    print("-" * len(header))
    for backend in [b for b in backends_mod.selected(args.backends) if b.missing() is None]:
        if backend.framework == "numpy" or (devices and backend.device not in devices):
            continue
        ceiling = copy_bandwidth(backend)
        print(f"{'':12} {'device copy bandwidth':34} {backend.name:10} {'':>9} {'':>10} {'':>6} {ceiling:10.1f}")
        memory = None
        if backend.name == "torch-cpu":
            memory = dict(allocator=allocator_mode(), first_touch_ms_per_100mb=first_touch_ms_per_100mb(backend))
            print(f"{'':12} torch CPU allocator: {memory['allocator']}; fresh memory costs "
                  f"{memory['first_touch_ms_per_100mb']:.1f} ms per 100 MB on first touch")
        impl = "torch_impl" if backend.framework == "torch" else "jax_impl"
        for op in OPS:
            if wanted and op.name not in wanted:
                continue
            natives = [n for n in op.natives if n.framework == backend.framework]
            if not natives or op.name not in EXAMPLES:
                continue
            for label, case in bench_cases(op.name, backend.device):
                ours = Target(op, impl, backend)
                args_ = ours.convert(case)
                t_ours = time_call(ours.fn, args_, backend)
                native, t_native = _first_native_that_runs(op, natives, backend, args_)
                out = backend.to_numpy(ours.fn(*args_))
                moved = nbytes(case, out)
                row = dict(op=op.name, case=label, backend=backend.name, ours_ms=t_ours * 1e3,
                           native=native, copy_gbs=ceiling, ours_gbs=moved / t_ours / 1e9)
                if memory:
                    row.update(memory)
                if t_native is None:
                    rows.append(row)
                    print(f"{op.name:12} {label[:34]:34} {backend.name:10} {row['ours_ms']:9.3f} "
                          f"{'n/a':>10} {'':>6} {row['ours_gbs']:10.1f} {'':>11}  {native}", flush=True)
                    continue
                row.update(native_ms=t_native * 1e3, ratio=t_ours / t_native,
                           native_gbs=moved / t_native / 1e9)
                rows.append(row)
                print(f"{op.name:12} {label[:34]:34} {backend.name:10} {row['ours_ms']:9.3f} "
                      f"{row['native_ms']:10.3f} {row['ratio']:6.2f} {row['ours_gbs']:10.1f} "
                      f"{row['native_gbs']:11.1f}  {native}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0
