"""Where torch_impl's time goes on a device: each stage of gather, scatter_add, unfold
and fold timed alone, beside the native and a plain copy of the same bytes.

    python .ci/gpu-probe.py [cuda|cpu]

For the GPU check (.ci/gpu-check): the bench says how far ours is from the native and
from the copy bandwidth; this says which stage costs it, and times the alternatives
that a faster version would use (advanced indexing for gather, one strided copy per
kernel offset for unfold), so that the next change is made on a measurement.
Times are medians of CUDA-synchronized calls after a warm-up, in milliseconds.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, ".")
import torch_impl  # noqa: E402
from crosscheck.bench.cases import EXAMPLES, bench_cases  # noqa: E402
from torch_impl import convlike, indexing  # noqa: E402

DEVICE = sys.argv[1] if len(sys.argv) > 1 else ("cuda" if torch.cuda.is_available() else "cpu")


def ms(fn, *args, reps=30):
    sync = torch.cuda.synchronize if DEVICE == "cuda" else (lambda: None)
    fn(*args)
    sync()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(*args)
        sync()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def on(a):
    return torch.from_numpy(a).to(DEVICE) if hasattr(a, "dtype") and not isinstance(a, torch.Tensor) else a


def row(name, t, nbytes=None):
    gbs = f"{nbytes / t / 1e6:9.1f} GB/s" if nbytes else ""
    print(f"  {name:58} {t:8.3f} ms {gbs}", flush=True)


def main():
    print(f"device: {DEVICE} ({torch.cuda.get_device_name() if DEVICE == 'cuda' else 'cpu'}), "
          f"torch {torch.__version__}")
    big = torch.empty(64 * 2**20, device=DEVICE)
    row("copy of 256 MB (read + write)", ms(big.clone), 2 * big.nbytes)
    scalar = torch.zeros((), device=DEVICE)
    row("one host sync (.item() of a 0-d tensor)", ms(scalar.item))

    for scale in (1.0, 16.0):
        c = EXAMPLES["gather"](scale)
        x, idx = on(c.args[0]), on(c.args[2])
        out_bytes = x.nbytes * idx.numel() // x.numel()
        print(f"gather, example({scale}): x {tuple(x.shape)} f32, index int64 "
              f"({idx.nbytes / 1e6:.0f} MB)")
        row("ours (torch_impl.gather)", ms(torch_impl.gather, x, 1, idx))
        row("native torch.gather", ms(torch.gather, x, 1, idx), idx.nbytes + 2 * out_bytes)
        row("  stage: bounds (aminmax + 2 syncs)", ms(indexing._bounds, idx), idx.nbytes)
        row("  stage: flat offsets (broadcast add)", ms(indexing._flat_offsets, idx, 1, x.shape),
            2 * idx.nbytes)
        offsets = indexing._flat_offsets(idx, 1, x.shape)
        row("  stage: take", ms(x.take, offsets), offsets.nbytes + 2 * out_bytes)
        grids = [torch.arange(n, device=DEVICE).view([-1 if d == k else 1 for k in range(3)])
                 for d, n in enumerate(idx.shape)]
        grids[1] = idx
        row("  variant: x[grid0, index, grid2] (no offsets)", ms(lambda: x[tuple(grids)]),
            idx.nbytes + 2 * out_bytes)
        zeros, src = torch.zeros_like(x), x
        print(f"scatter_add, example({scale})")
        row("ours (torch_impl.scatter_add)", ms(torch_impl.scatter_add, zeros, 1, idx, src))
        row("native torch.scatter_add", ms(torch.scatter_add, zeros, 1, idx, src))
        row("  stage: index_add of the offsets", ms(
            lambda: zeros.reshape(-1).index_add(0, offsets.reshape(-1), src.reshape(-1))))
        row("  variant: index_put_(grids, accumulate=True)", ms(
            lambda: zeros.clone().index_put_(tuple(grids), src, accumulate=True)))

    for label, case in bench_cases("unfold")[:1] + bench_cases("fold"):
        args = [on(a) for a in case.args]
        print(f"{'fold' if '->' in label else 'unfold'} {label}")
        if "->" not in label:
            x, k, dil, pad, st = args
            out = torch_impl.unfold(*args)
            row("ours (torch_impl.unfold)", ms(torch_impl.unfold, *args), x.nbytes + out.nbytes)
            row("native F.unfold", ms(F.unfold, *args), x.nbytes + out.nbytes)
            row("  a plain copy of the output's bytes", ms(out.clone), 2 * out.nbytes)
            g = convlike.check_unfold(x, k, dil, pad, st)
            padded = convlike._pad(x, g.padding, 0)
            row("  stage: pad", ms(convlike._pad, x, g.padding, 0), x.nbytes + padded.nbytes)
            view = convlike._blocks(padded, g)
            row("  stage: the strided copy (reshape of the 6-d view)",
                ms(lambda: view.reshape(out.shape)), padded.nbytes + out.nbytes)

            def per_offset():
                dst = torch.empty((g.batch, g.channels) + g.kernel_size + g.blocks,
                                  dtype=x.dtype, device=DEVICE)
                for off in itertools.product(*map(range, g.kernel_size)):
                    dst[(slice(None), slice(None)) + off].copy_(view[(slice(None), slice(None)) + off])
                return dst

            row("  variant: one 4-d strided copy per kernel offset", ms(per_offset),
                padded.nbytes + out.nbytes)
        else:
            cols = args[0]
            out = torch_impl.fold(*args)
            row("ours (torch_impl.fold)", ms(torch_impl.fold, *args), cols.nbytes + out.nbytes)
            row("native F.fold", ms(F.fold, *args), cols.nbytes + out.nbytes)
            row("  a plain copy of cols' bytes", ms(cols.clone), 2 * cols.nbytes)


if __name__ == "__main__":
    main()
