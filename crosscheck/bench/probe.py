"""``python -m crosscheck.bench.probe``: where torch_impl's time goes, stage by stage.

The bench says how far ours is from the native and from the copy bandwidth; this says
which stage of gather, scatter_add, unfold and fold costs it, beside the native and a
plain copy of the same bytes, and times the alternatives that a faster version would
use (advanced indexing for gather, ``index_put_`` for scatter_add, one strided copy per
kernel offset for unfold), so that the next change is made on a measurement. Times are
the bench's (:func:`crosscheck.bench.time_call`: medians after a warm-up, synchronized
on CUDA), in milliseconds; GB/s count the bytes each stage must move.
"""

from __future__ import annotations

import argparse
import itertools

from crosscheck import backends
from crosscheck.bench import copy_bandwidth, time_call
from crosscheck.bench.cases import EXAMPLES, GPU_SCALES, bench_cases


def _row(name: str, seconds: float, nbytes: int | None = None) -> None:
    gbs = f"{nbytes / seconds / 1e9:9.1f} GB/s" if nbytes else ""
    print(f"  {name:58} {seconds * 1e3:8.3f} ms {gbs}".rstrip(), flush=True)


def _indexing(backend, timed, scale: float) -> None:
    import torch

    import torch_impl
    from torch_impl import indexing

    case = EXAMPLES["gather"](scale)
    x, _, idx = (backend.asarray(a) if hasattr(a, "shape") else a for a in case.args)
    out_bytes = x.element_size() * idx.numel()
    print(f"gather, example({scale}): x {tuple(x.shape)} {x.dtype}, index {idx.dtype} "
          f"({idx.nbytes / 1e6:.0f} MB)")
    _row("ours (torch_impl.gather)", timed(torch_impl.gather, x, 1, idx))
    _row("native torch.gather", timed(torch.gather, x, 1, idx), idx.nbytes + 2 * out_bytes)
    _row("  stage: range check (aminmax, one host sync)", timed(indexing._bounds, idx), idx.nbytes)
    _row("  stage: int64 flat offsets", timed(indexing._flat_offsets, idx, 1, x.shape),
         2 * idx.nbytes)
    offsets = indexing._flat_offsets(idx, 1, x.shape)
    _row("  stage: take", timed(x.take, offsets), offsets.nbytes + 2 * out_bytes)
    grids = tuple(idx if d == 1 else torch.arange(n, device=idx.device).view(
        [n if k == d else 1 for k in range(idx.dim())]) for d, n in enumerate(idx.shape))
    _row("  variant: x[grid0, index, grid2] (no offsets)", timed(x.__getitem__, grids),
         idx.nbytes + 2 * out_bytes)
    zeros = torch.zeros_like(x)
    print(f"scatter_add, example({scale})")
    _row("ours (torch_impl.scatter_add)", timed(torch_impl.scatter_add, zeros, 1, idx, x))
    _row("native torch.scatter_add", timed(torch.scatter_add, zeros, 1, idx, x))
    _row("  stage: index_add of the offsets",
         timed(zeros.reshape(-1).index_add, 0, offsets.reshape(-1), x.reshape(-1)))
    _row("  variant: index_put_(grids, accumulate=True)",
         timed(lambda: zeros.clone().index_put_(grids, x, accumulate=True)))


def _unfold(backend, timed, label, case) -> None:
    import torch.nn.functional as F

    import torch_impl
    from torch_impl import convlike

    x, k, dilation, padding, stride = (backend.asarray(a) if hasattr(a, "shape") else a
                                       for a in case.args)
    out = torch_impl.unfold(x, k, dilation, padding, stride)
    moved = x.nbytes + out.nbytes
    print(f"unfold {label}")
    _row("ours (torch_impl.unfold)", timed(torch_impl.unfold, x, k, dilation, padding, stride), moved)
    _row("native F.unfold", timed(F.unfold, x, k, dilation, padding, stride), moved)
    _row("  a plain copy of the output's bytes", timed(out.clone), 2 * out.nbytes)
    g = convlike.check_unfold(x, k, dilation, padding, stride)
    padded = convlike._pad(x, g.padding, 0)
    _row("  stage: pad", timed(convlike._pad, x, g.padding, 0), x.nbytes + padded.nbytes)
    view = convlike._blocks(padded, g)
    _row("  stage: the strided copy (reshape of the window view)",
         timed(view.reshape, out.shape), padded.nbytes + out.nbytes)

    def per_offset():
        dst = view.new_empty(view.shape)
        for offset in itertools.product(*map(range, g.kernel_size)):
            at = (slice(None), slice(None)) + offset
            dst[at].copy_(view[at])
        return dst

    _row("  variant: one strided copy per kernel offset", timed(per_offset),
         padded.nbytes + out.nbytes)


def _fold(backend, timed, label, case) -> None:
    import torch.nn.functional as F

    import torch_impl

    args = [backend.asarray(a) if hasattr(a, "shape") else a for a in case.args]
    cols = args[0]
    out = torch_impl.fold(*args)
    print(f"fold {label}")
    _row("ours (torch_impl.fold)", timed(torch_impl.fold, *args), cols.nbytes + out.nbytes)
    _row("native F.fold", timed(F.fold, *args), cols.nbytes + out.nbytes)
    _row("  a plain copy of cols' bytes", timed(cols.clone), 2 * cols.nbytes)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m crosscheck.bench.probe",
                                description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--scale", type=float, default=None,
                   help="size of every case, as the bench's examples (default: the bench's own "
                        "cases; a small scale is a quick check that the probe runs)")
    args = p.parse_args(argv)
    backend = backends.Backend(f"torch-{args.device}")
    if backend.missing():
        p.error(f"{backend.name}: {backend.missing()}")
    backend.load()
    import torch

    def timed(fn, *fn_args):
        return time_call(fn, fn_args, backend, min_time=0.05)

    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"{backend.name} ({name}), torch {torch.__version__}")
    _row("device copy of 256 MB, as the bench measures it (GB/s: read + write)",
         2 * 2**28 / (copy_bandwidth(backend) * 1e9), 2 * 2**28)
    scalar = torch.zeros((), device=args.device)
    _row("one host sync (.item() of a 0-d tensor)", timed(scalar.item))
    if args.scale is None:
        scales = (1.0, GPU_SCALES["gather"])
        convlike_cases = [("unfold", *bench_cases("unfold")[0]), ("fold", *bench_cases("fold")[0])]
    else:
        scales = (args.scale,)
        convlike_cases = [(op, f"example({args.scale})", EXAMPLES[op](args.scale))
                          for op in ("unfold", "fold")]
    for scale in scales:
        _indexing(backend, timed, scale)
    for op, label, case in convlike_cases:
        (_unfold if op == "unfold" else _fold)(backend, timed, label, case)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
