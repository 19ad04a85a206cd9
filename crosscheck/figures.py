"""``python -m crosscheck.figures --out DIR [--quick]``: the lecture's pictures, drawn from the suite.

Every picture is two steps: a ``*_data()`` function computes what it shows by
running the suite's own code -- ``refs`` on position-valued inputs, so that an
output element *is* the address of what it read -- and a ``draw_*`` function
turns those arrays into a matplotlib figure. ``tests/test_figures.py`` holds
each ``*_data()`` against ``refs``, so a picture cannot drift from the code it
explains. The figures, each written as PNG and SVG:

* ``fold_overlaps``: how many 2x2 blocks cover each pixel when the deck folds
  ``blocks = torch.rand(2, 3*2*2, 2*3)`` into a 3x4 image, and the answer to the
  deck's "What is the value in output[1, 1]?": the sum of four block entries,
  named by row and column;
* ``im2col_layout``: which input element each row (channel, kernel offset) and
  column (block) of ``unfold`` holds, for the deck's (1, 2, 3, 4) image, kernel 2;
* ``gather_map`` / ``scatter_add_map``: which source element lands where, for the
  deck's ``dim=1`` examples at a small size, with one and the same index;
* ``vectorization``: time per call against input size for the loops of
  ``refs``, vectorized NumPy (the harness's oracles), ``torch_impl``,
  ``jax_impl`` and the frameworks' natives, measured where it runs (the table is
  printed and written as ``vectorization.csv``). Every library times on one
  thread unless ``--threads`` says otherwise (see :func:`vectorization_data`);
  ``--quick`` times small sizes only, in seconds.

Matplotlib draws on the Agg canvas, without pyplot; the files carry no date,
so regenerating unchanged figures changes no byte of them (the timings, of
course, change with every run).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

import refs

FIGURES = ("fold_overlaps", "im2col_layout", "gather_map", "scatter_add_map", "vectorization")
FORMATS = ("png", "svg")

# one colour per channel / per implementation, readable in print and for colour-blind readers
_PALETTE = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB")


# ------------------------------------------------------------------ fold_overlaps


class Contribution(NamedTuple):
    """One block entry that ``fold`` adds into the asked pixel."""

    column: int  # l: the block's column in ``blocks`` (its row-major number)
    block: tuple[int, int]  # the block's position (row, column) among the 2 x 3 blocks
    offset: tuple[int, int]  # the pixel's offset (kh, kw) inside that block
    row: int  # j: the row within a channel; channel c's row is c * K + j


class FoldOverlaps(NamedTuple):
    counts: np.ndarray  # (H, W): how many blocks cover each pixel, refs.overlap_counts
    pixel: tuple[int, int]  # the pixel the deck asks about
    contributions: tuple[Contribution, ...]  # the block entries that land on it
    kernel_volume: int  # K = kH * kW: rows per channel
    blocks: np.ndarray  # (N, C * K, L), a concrete blocks tensor
    answer: np.ndarray  # (N, C): output[n, c, *pixel] = the sum of its contributions


def fold_overlaps_data(blocks=None, output_size=(3, 4), kernel_size=2, pixel=(1, 1)):
    """The deck's fold example: overlap counts and which entries of ``blocks`` make ``output[..., 1, 1]``.

    Which block entry lands where is read off ``refs.unfold`` of an image that
    holds its own flat positions: ``fold`` adds entry ``(j, l)`` exactly where
    ``unfold`` read it from (fold is unfold's adjoint).

    Args:
        blocks: ``(N, C * K, L)``; default: the deck's ``(2, 3 * 2 * 2, 2 * 3)``,
            uniform in [0, 1) from a fixed seed.
        output_size, kernel_size: the deck's ``(3, 4)`` and ``2`` (an int).
        pixel: the position asked about.
    """
    if blocks is None:
        blocks = np.random.default_rng(0).random((2, 3 * 2 * 2, 2 * 3))
    blocks = np.asarray(blocks)
    k = kernel_size
    positions = np.arange(math.prod(output_size)).reshape((1, 1) + tuple(output_size))
    read = refs.unfold(positions, k)[0]  # (K, L): the flat position entry (j, l) belongs to
    grid = tuple(n - k + 1 for n in output_size)  # block positions per dim (stride 1, no padding)
    target = int(np.ravel_multi_index(pixel, output_size))
    contributions = tuple(
        Contribution(column, _unravel(column, grid), _unravel(row, (k, k)), row)
        for column, row in sorted((int(c), int(r)) for r, c in np.argwhere(read == target))
    )
    K = k * k
    n, rows, _ = blocks.shape
    per_channel = blocks.reshape(n, rows // K, K, -1)
    answer = sum(per_channel[:, :, c.row, c.column] for c in contributions)
    counts = refs.overlap_counts(tuple(output_size), k)
    return FoldOverlaps(counts, tuple(pixel), contributions, K, blocks, answer)


def _unravel(flat, shape) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(flat), shape))


def draw_fold_overlaps(data: FoldOverlaps):
    fig = _figure(9.5, 5.4)
    grid = fig.add_gridspec(2, 3, width_ratios=(2.2, 1, 1), hspace=0.45, wspace=0.25,
                            bottom=0.2)
    ax = fig.add_subplot(grid[:, 0])
    counts = data.counts
    h, w = counts.shape
    ax.imshow(counts, cmap="Blues", vmin=0, vmax=counts.max() + 1)
    for r, c in np.ndindex(h, w):
        ax.text(c, r, str(counts[r, c]), ha="center", va="center", fontsize=16,
                color="white" if counts[r, c] >= 3 else "black")
    pr, pc = data.pixel
    ax.add_patch(_rect(pc - 0.5, pr - 0.5, 1, 1, edge=_PALETTE[1], width=3.5))
    _grid_ticks(ax, h, w)
    ax.set_title("blocks covering each pixel\nrefs.overlap_counts((3, 4), kernel_size=2)",
                 fontsize=10)
    for k, con in enumerate(data.contributions[:4]):
        sub = fig.add_subplot(grid[k // 2, 1 + k % 2])
        sub.imshow(np.zeros((h, w)), cmap="Greys", vmin=0, vmax=1)
        br, bc = con.block
        side = int(math.isqrt(data.kernel_volume))
        sub.add_patch(_rect(bc - 0.5, br - 0.5, side, side, face="#DDE6F2", edge=_PALETTE[0],
                            width=2))
        sub.add_patch(_rect(pc - 0.5, pr - 0.5, 1, 1, edge=_PALETTE[1], width=2.5))
        sub.text(pc, pr, f"({con.offset[0]},{con.offset[1]})", ha="center", va="center",
                 fontsize=8)
        _grid_ticks(sub, h, w, labels=False)
        sub.set_title(f"block l={con.column} {con.block}\noffset {con.offset}: row "
                      f"{data.kernel_volume}c+{con.row}", fontsize=8.5)
    terms = " + ".join(f"blocks[n, {data.kernel_volume}c+{con.row}, {con.column}]"
                       for con in data.contributions)
    fig.suptitle("F.fold(blocks, output_size=(3, 4), kernel_size=2): "
                 "what is output[..., 1, 1]?", fontsize=12)
    fig.text(0.5, 0.075, f"{len(data.contributions)} blocks cover pixel {data.pixel}, so "
             f"for every sample n and channel c it is the sum of {len(data.contributions)} "
             f"block entries (row c*{data.kernel_volume} + j, j = kh*2 + kw; column l):",
             ha="center", fontsize=9.5)
    fig.text(0.5, 0.03, f"output[n, c, 1, 1] = {terms}", ha="center", fontsize=9.5,
             family="monospace", color=_PALETTE[1])
    return fig


# ------------------------------------------------------------------ im2col_layout


class Im2colLayout(NamedTuple):
    image: np.ndarray  # (N, C, H, W): every element its own flat position
    columns: np.ndarray  # (C * K, L) of sample 0: refs.unfold(image, kernel_size)[0]
    rows: tuple[tuple[int, int, int], ...]  # row r of columns: (c, kh, kw)
    blocks: tuple[tuple[int, int], ...]  # column l of columns: the block's (row, column)
    kernel_size: int


def im2col_layout_data(shape=(1, 2, 3, 4), kernel_size=2):
    """``refs.unfold`` of an image whose values are their flat positions: entry (r, l)
    names the input element that row ``r`` (channel, kernel offset) of block ``l`` holds."""
    image = np.arange(math.prod(shape)).reshape(shape)
    columns = refs.unfold(image, kernel_size)[0]
    k = kernel_size
    rows = tuple((c, kh, kw) for c in range(shape[1]) for kh in range(k) for kw in range(k))
    grid = (shape[2] - k + 1, shape[3] - k + 1)
    blocks = tuple(np.ndindex(*grid))
    return Im2colLayout(image, columns, rows, blocks, k)


def draw_im2col_layout(data: Im2colLayout, highlight: int = 4):
    n, channels, h, w = data.image.shape
    fig = _figure(10.5, 5.2)
    grid = fig.add_gridspec(channels, 2, width_ratios=(1, 1.9), wspace=0.3, hspace=0.5,
                            bottom=0.17)
    block = data.blocks[highlight]
    k = data.kernel_size
    for c in range(channels):
        ax = fig.add_subplot(grid[c, 0])
        ax.imshow(np.zeros((h, w)), cmap="Greys", vmin=0, vmax=1)
        for r, q in np.ndindex(h, w):
            ax.text(q, r, str(data.image[0, c, r, q]), ha="center", va="center", fontsize=11,
                    color=_PALETTE[c % len(_PALETTE)])
        ax.add_patch(_rect(block[1] - 0.5, block[0] - 0.5, k, k, edge=_PALETTE[c], width=2.5,
                           face=_tint(_PALETTE[c])))
        _grid_ticks(ax, h, w)
        ax.set_title(f"image[0, {c}] (values = flat positions)", fontsize=9)
    ax = fig.add_subplot(grid[:, 1])
    cols = data.columns
    ax.imshow(np.zeros(cols.shape), cmap="Greys", vmin=0, vmax=1, aspect="auto")
    per_channel = len(data.rows) // channels
    for r, col in np.ndindex(*cols.shape):
        c = data.rows[r][0]
        ax.text(col, r, str(cols[r, col]), ha="center", va="center", fontsize=10,
                color=_PALETTE[c % len(_PALETTE)])
    ax.add_patch(_rect(highlight - 0.5, -0.5, 1, cols.shape[0], edge=_PALETTE[3], width=2.5))
    for c in range(1, channels):
        ax.axhline(c * per_channel - 0.5, color="black", linewidth=1.2)
    ax.set_xticks(range(cols.shape[1]), [f"l={col}\n{b}" for col, b in enumerate(data.blocks)],
                  fontsize=8)
    ax.set_yticks(range(cols.shape[0]), [f"{r}: c={c} ({kh},{kw})"
                                         for r, (c, kh, kw) in enumerate(data.rows)], fontsize=8)
    ax.set_xticks(np.arange(cols.shape[1] + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(cols.shape[0] + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="#999999", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    ax.set_title(f"refs.unfold(image, kernel_size={k})[0]: rows (c, kh, kw), columns = blocks",
                 fontsize=9)
    fig.suptitle(f"im2col: block l={highlight} {block} is column {highlight}; its rows list "
                 f"channel 0's {k}x{k} window, then channel 1's", fontsize=11)
    fig.text(0.5, 0.015, f"memory order N, C, kH, kW, L: the deck's blocks.view(N, C, -1, L) "
             f"splits the rows at the black line, one ({data.kernel_size ** 2}, "
             f"{cols.shape[1]}) matrix per channel", ha="center", fontsize=9)
    return fig


# ------------------------------------------------------------ gather / scatter_add

#: the deck's dim=1 examples at a small size: src (4, 4, 6) and index (4, 10, 6) become
#: (2, 4, 1) and (2, 6, 1); index values in [0, 4) as on the slides, one fixed draw
INDEX = np.random.default_rng(23).integers(0, 4, size=(2, 6, 1))


class GatherMap(NamedTuple):
    source: np.ndarray  # src (2, 4, 1): every element its own flat position
    index: np.ndarray  # (2, 6, 1)
    out: np.ndarray  # refs.gather(source, 1, index): the flat position each out element read
    arrows: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]  # (src position, out position)


def gather_map_data(index=INDEX, src_shape=(2, 4, 1), dim=1):
    """``refs.gather`` on a position-valued ``src``: ``out[p]`` is the flat position it read."""
    index = np.asarray(index)
    source = np.arange(math.prod(src_shape)).reshape(src_shape)
    out = refs.gather(source, dim, index)
    arrows = tuple((_unravel(out[p], src_shape), tuple(int(i) for i in p))
                   for p in np.ndindex(*out.shape))
    return GatherMap(source, index, out, arrows)


class ScatterAddMap(NamedTuple):
    src: np.ndarray  # (2, 6, 1): element p holds 2**p, a bit of its own
    index: np.ndarray  # (2, 6, 1)
    out: np.ndarray  # refs.scatter_add(zeros (2, 4, 1), 1, index, src): the bits that landed
    counts: np.ndarray  # refs.scatter_add(zeros, 1, index, ones): how many landed per element
    arrows: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]  # (src position, out position)


def scatter_add_map_data(index=INDEX, out_shape=(2, 4, 1), dim=1):
    """``refs.scatter_add`` of ``src = 2 ** position`` into zeros: the bits of ``out[q]`` are
    the flat positions of the ``src`` elements added into it (sums of distinct powers of two
    never carry), so the arrows come out of refs' result, duplicates included."""
    index = np.asarray(index)
    if index.size > 62:
        raise ValueError(f"scatter_add_map_data(): {index.size} source elements do not fit "
                         f"the bits of an int64")
    src = (2 ** np.arange(index.size, dtype=np.int64)).reshape(index.shape)
    zeros = np.zeros(out_shape, dtype=np.int64)
    out = refs.scatter_add(zeros, dim, index, src)
    counts = refs.scatter_add(zeros, dim, index, np.ones_like(src))
    arrows = tuple((_unravel(bit, index.shape), tuple(int(i) for i in q))
                   for q in np.ndindex(*out.shape)
                   for bit in range(index.size) if int(out[q]) >> bit & 1)
    return ScatterAddMap(src, index, out, counts, tuple(sorted(arrows)))


def _draw_index_map(fig, top_shape, bottom_shape, arrows, top_label, bottom_label,
                    bottom_text, colour_by_top):
    """One row per ``i``: the top tensor's elements (along dim 1) above the bottom one's,
    an arrow for each (top position, bottom position)."""
    rows = top_shape[0]
    axes = fig.subplots(rows, 1)
    width = max(top_shape[1], bottom_shape[1])
    for i, ax in enumerate(np.atleast_1d(axes)):
        top_x = _centred(top_shape[1], width)
        bottom_x = _centred(bottom_shape[1], width)
        for j in range(top_shape[1]):
            colour = _PALETTE[j % len(_PALETTE)] if colour_by_top else "#555555"
            ax.add_patch(_rect(top_x[j] - 0.4, 1.6, 0.8, 0.8, edge=colour, width=1.5,
                               face=_tint(colour) if colour_by_top else "#F4F4F4"))
            ax.text(top_x[j], 2.0, f"{top_label}[{i},{j},0]", ha="center", va="center",
                    fontsize=7.5)
        for j in range(bottom_shape[1]):
            colour = "#555555" if colour_by_top else _PALETTE[j % len(_PALETTE)]
            ax.add_patch(_rect(bottom_x[j] - 0.4, -0.4, 0.8, 0.8, edge=colour, width=1.2,
                               face="#F4F4F4" if colour_by_top else _tint(colour)))
            ax.text(bottom_x[j], 0.0, bottom_text(i, j), ha="center", va="center", fontsize=7.5)
        for (si, sj, _), (_, dj, _) in arrows:
            if si != i:
                continue
            start = (top_x[sj], 1.6)
            end = (bottom_x[dj], 0.4)
            colour = _PALETTE[(sj if colour_by_top else dj) % len(_PALETTE)]
            ax.annotate("", xy=end, xytext=start,
                        arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.3,
                                        shrinkA=0, shrinkB=0))
        ax.text(-0.9, 2.0, top_label, ha="right", va="center", fontsize=9)
        ax.text(-0.9, 0.0, bottom_label, ha="right", va="center", fontsize=9)
        ax.set_xlim(-1.5, width - 0.4)
        ax.set_ylim(-0.7, 2.7)
        ax.set_title(f"i = {i}", fontsize=9, loc="left")
        ax.axis("off")
    return axes


def _centred(count: int, width: int) -> np.ndarray:
    return np.arange(count) + (width - count) / 2


def draw_gather_map(data: GatherMap):
    fig = _figure(8.0, 4.8)
    src_shape = data.source.shape

    def text(i, j):
        return f"out[{i},{j},0]\n= src[{i},{data.index[i, j, 0]},0]"

    _draw_index_map(fig, src_shape, data.out.shape, data.arrows, "src", "out", text,
                    colour_by_top=True)
    fig.suptitle("gather(src, dim=1, index): out[i, j, k] = src[i, index[i, j, k], k]   "
                 "(src (2, 4, 1), index (2, 6, 1))", fontsize=10.5)
    fig.text(0.5, 0.015, "index[:, :, 0] = " + str(data.index[:, :, 0].tolist())
             + "\nan element of src may be read several times, or never", ha="center",
             fontsize=9)
    return fig


def draw_scatter_add_map(data: ScatterAddMap):
    fig = _figure(8.0, 4.8)

    def text(i, j):
        added = [str(s[1]) for s, d in data.arrows if d == (i, j, 0)]
        return f"out[{i},{j},0]\n" + (f"+= j {', '.join(added)}" if added else "nothing")

    _draw_index_map(fig, data.src.shape, data.out.shape, data.arrows, "src", "out", text,
                    colour_by_top=False)
    fig.suptitle("scatter_add(zeros(2, 4, 1), dim=1, index, src): "
                 "out[i, index[i, j, k], k] += src[i, j, k]", fontsize=10.5)
    fig.text(0.5, 0.015, "the same index as gather_map, the arrows reversed: scatter_add is "
             "gather's backward.\nDuplicates add up: out[i, q, 0] += src[i, j, 0] for each j "
             "listed.", ha="center", fontsize=9)
    return fig


# ------------------------------------------------------------------ vectorization


class Timing(NamedTuple):
    op: str
    impl: str  # a label: "refs (loops)", "torch_impl", "torch.gather", ...
    n: int
    seconds: float  # median per call
    role: str = ""  # one of ROLES: what the line is, whatever the op


#: the kinds of implementation timed, each with its line style in the figure
ROLES = {
    "refs": dict(color="black", linestyle="-", marker="o"),
    "numpy": dict(color="#228833", linestyle="--", marker="s"),
    "torch_impl": dict(color="#EE6677", linestyle="-", marker="o"),
    "torch native": dict(color="#EE6677", linestyle="--", marker="s"),
    "jax_impl": dict(color="#4477AA", linestyle="-", marker="o"),
    "jax native": dict(color="#4477AA", linestyle="--", marker="s"),
}


class _Ladder(NamedTuple):
    sizes: tuple[int, ...]
    quick: tuple[int, ...]
    make: object  # n -> the call's arguments
    work: object  # n -> a number proportional to the loops' work
    axis: str  # the x axis' label


def _einsum_case(n: int) -> tuple:
    rng = np.random.default_rng(n)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    return ("ij,jk->ik", a, b)


def _unfold_case(n: int) -> tuple:
    image = np.random.default_rng(n).standard_normal((1, 4, n, n)).astype(np.float32)
    return (image, 3, 1, 1, 1)  # kernel_size, dilation, padding, stride


def _gather_case(n: int) -> tuple:
    rng = np.random.default_rng(n)
    src = rng.standard_normal((n, n)).astype(np.float32)
    return (src, 1, rng.integers(0, n, size=(n, n)))


LADDERS = {
    "einsum": _Ladder((4, 8, 16, 32, 64, 128, 256, 512), (4, 8), _einsum_case,
                      lambda n: n**3, "n: einsum('ij,jk->ik', (n, n), (n, n)), float32"),
    "unfold": _Ladder((4, 8, 16, 32, 64, 128, 256, 512), (4, 8), _unfold_case,
                      lambda n: 4 * 9 * n * n, "n: unfold((1, 4, n, n), kernel_size=3, padding=1)"),
    "gather": _Ladder((8, 16, 32, 64, 128, 256, 512, 1024, 2048), (8, 16), _gather_case,
                      lambda n: n * n, "n: gather((n, n), dim=1, index (n, n))"),
}
#: a loop is run at the next size only if its time, extrapolated from the last size by the
#: work, stays below this many seconds
LOOP_SECONDS = 1.5


def vectorization_targets(op_name: str):
    """``[(label, role, Target)]`` timed for ``op_name``: refs, the NumPy oracle, torch_impl,
    jax_impl, and the first torch and JAX native; those whose framework is missing left out."""
    from crosscheck.backends import Backend
    from crosscheck.ops import BY_NAME, ORACLE, oracle_native
    from crosscheck.optable import Target

    op = BY_NAME[op_name]
    numpy, torch, jax = Backend("numpy"), Backend("torch-cpu"), Backend("jax-cpu")
    oracle = next((n for n in op.natives if n.fn is op.oracle), None)
    targets = [("refs (loops)", "refs", Target(op, "refs", numpy))]
    if oracle is not None:
        targets.append((oracle.name, "numpy", Target(op, oracle.name, numpy, oracle)))
    else:
        targets.append((f"{op.oracle.__name__} (NumPy)", "numpy",
                        Target(op, ORACLE, numpy, oracle_native(op))))
    for backend, impl in ((torch, "torch_impl"), (jax, "jax_impl")):
        if backend.missing() is None:
            targets.append((impl, impl, Target(op, impl, backend)))
    for backend in (torch, jax):
        native = next((n for n in op.natives if n.framework == backend.framework), None)
        if native is not None and backend.missing() is None:
            targets.append((native.name, f"{backend.framework} native",
                            Target(op, native.name, backend, native)))
    return targets


def _block(framework: str):
    if framework == "jax":
        import jax

        return jax.block_until_ready
    return lambda out: out  # NumPy and torch on the CPU return when done


def time_call(fn, args, block, *, min_time: float, max_reps: int = 200) -> float:
    """Median seconds per call of ``fn(*args)``, after one warm-up call (compilation, caches)."""
    block(fn(*args))
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < 3 or (time.perf_counter() - start < min_time and len(samples) < max_reps):
        t0 = time.perf_counter()
        block(fn(*args))
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def vectorization_data(quick: bool = False, ops=tuple(LADDERS), log=None,
                       threads: int | None = 1, passes: int | None = None) -> list[Timing]:
    """Time every target of :func:`vectorization_targets` on the op's size ladder.

    First, at the smallest size, every target's result is held against refs with
    the op's own tolerance (the harness's ``agrees_with_ref`` property): what is
    timed computes the same thing. A point is the median of repeated calls after
    a warm-up call (:func:`time_call`); the loops run at a size only while their
    time, extrapolated from the size before by the work, stays under
    ``LOOP_SECONDS``.

    Args:
        quick: the ladders' small sizes and short measurements (a few seconds).
        ops: which of :data:`LADDERS`.
        log: called with a line per point, or None.
        threads: torch's intra-op threads while timing (restored after); ``None``
            leaves torch's default. One by default, as the loops and NumPy's own
            loops run: on a machine shared with other jobs, torch's thread pool
            waits for descheduled threads (``F.unfold`` of a tiny image took 20 ms
            with 2 threads on a busy 2-core machine, 0.01 ms with one). NumPy's
            BLAS and JAX read their thread counts when they start: :func:`main`
            sets them (:func:`pinned_environment`).
        passes: the ladders are timed this many times, at different moments, and
            each point keeps its smallest median, so that a burst of load from
            another job does not make a spike (default: 1 if quick, else 2).
    """
    passes = passes or (1 if quick else 2)
    with _torch_threads(threads):
        runs = [_time_ladders(quick, ops, log) for _ in range(passes)]
    best: dict[tuple[str, str, int], Timing] = {}
    for run in runs:
        for t in run:
            key = (t.op, t.impl, t.n)
            if key not in best or t.seconds < best[key].seconds:
                best[key] = t
    return list(best.values())


def _time_ladders(quick, ops, log) -> list[Timing]:
    from crosscheck.ops import BY_NAME
    from crosscheck.optable import Case, agrees_with_ref

    min_time = 0.01 if quick else 0.3
    budget = 0.05 if quick else LOOP_SECONDS
    rows: list[Timing] = []
    for name in ops:
        ladder = LADDERS[name]
        sizes = ladder.quick if quick else ladder.sizes
        op = BY_NAME[name]
        targets = vectorization_targets(name)
        check = agrees_with_ref(op).check  # the harness's own property
        for _, _, target in targets:
            check(target, Case(ladder.make(sizes[0]), names=op.arg_names))
        for label, role, target in targets:
            block = _block(target.framework)
            last = None
            for n in sizes:
                if last is not None and role == "refs" and (
                        last.seconds * ladder.work(n) / ladder.work(last.n) > budget):
                    break
                case = Case(ladder.make(n), names=op.arg_names)
                seconds = time_call(target.fn, target.convert(case), block, min_time=min_time)
                last = Timing(name, label, n, seconds, role)
                rows.append(last)
                if log:
                    log(f"{name:7} {label:36} n={n:5}  {seconds * 1e3:12.4f} ms")
    return rows


@contextmanager
def _torch_threads(threads: int | None):
    from crosscheck.backends import Backend

    if threads is None or Backend("torch-cpu").missing() is not None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def vectorization_table(rows: list[Timing]) -> str:
    """The timings as Markdown: one table per op, sizes down, implementations across (ms)."""
    out = []
    for op in dict.fromkeys(r.op for r in rows):
        mine = [r for r in rows if r.op == op]
        impls = list(dict.fromkeys(r.impl for r in mine))
        sizes = sorted({r.n for r in mine})
        at = {(r.impl, r.n): r.seconds for r in mine}
        out.append(f"{op}: ms per call ({LADDERS[op].axis})\n")
        out.append("| n | " + " | ".join(impls) + " |")
        out.append("| ---: |" + " ---: |" * len(impls))
        for n in sizes:
            cells = [_ms(at[(i, n)]) if (i, n) in at else "" for i in impls]
            out.append(f"| {n} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def draw_vectorization(rows: list[Timing]):
    ops = list(dict.fromkeys(r.op for r in rows))
    fig = _figure(5.0 * len(ops), 4.8)
    axes = np.atleast_1d(fig.subplots(1, len(ops)))
    for ax, op in zip(axes, ops):
        for role, style in ROLES.items():
            mine = sorted((r.n, r.seconds, r.impl) for r in rows if r.op == op and r.role == role)
            if mine:
                n, seconds, label = zip(*mine)
                ax.plot(n, seconds, label=label[0], markersize=4, **style)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(LADDERS[op].axis, fontsize=8)
        ax.set_ylabel("seconds per call (median)")
        ax.set_title(op)
        ax.grid(True, which="major", alpha=0.4)
        ax.legend(fontsize=7)
    fig.suptitle("The first lesson: the same op as Python loops and vectorized (CPU; solid: "
                 "the suite's, dashed: NumPy and the frameworks' natives)", fontsize=11)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ drawing helpers


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _rect(x, y, w, h, *, edge, width=1.5, face="none"):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, facecolor=face, edgecolor=edge, linewidth=width)


def _tint(colour: str, amount: float = 0.8) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return tuple(c + (1 - c) * amount for c in to_rgb(colour))


def _grid_ticks(ax, h: int, w: int, labels: bool = True) -> None:
    ax.set_xticks(np.arange(w + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(h + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="#888888", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    if labels:
        ax.set_xticks(range(w))
        ax.set_yticks(range(h))
        ax.tick_params(labelsize=8)
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def save(fig, out: Path, name: str) -> list[Path]:
    """``fig`` as ``out/name.png`` and ``out/name.svg``, without a date in either."""
    import matplotlib

    paths = []
    with matplotlib.rc_context({"svg.hashsalt": "crosscheck-figures"}):
        for fmt in FORMATS:
            path = out / f"{name}.{fmt}"
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            fig.savefig(path, format=fmt, dpi=150, metadata=metadata)
            paths.append(path)
    return paths


def make_all(out: Path, *, quick: bool = False, threads: int | None = 1, log=print) -> list[Path]:
    """Every figure into ``out`` (created), and ``vectorization.csv``; the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    written += save(draw_fold_overlaps(fold_overlaps_data()), out, "fold_overlaps")
    written += save(draw_im2col_layout(im2col_layout_data()), out, "im2col_layout")
    written += save(draw_gather_map(gather_map_data()), out, "gather_map")
    written += save(draw_scatter_add_map(scatter_add_map_data()), out, "scatter_add_map")
    rows = vectorization_data(quick=quick, log=log, threads=threads)
    written += save(draw_vectorization(rows), out, "vectorization")
    table = out / "vectorization.csv"
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["op", "impl", "role", "n", "seconds"])
        writer.writerows((r.op, r.impl, r.role, r.n, f"{r.seconds:.6g}") for r in rows)
    written.append(table)
    log("")
    log(vectorization_table(rows))
    return written


#: set in the interpreter :func:`main` starts with the thread counts fixed
_PINNED = "CROSSCHECK_FIGURES_THREADS"


def pinned_environment(threads: int) -> dict[str, str]:
    """The environment in which NumPy's BLAS and XLA start with ``threads`` threads.

    Both read their thread counts once, when they start (OpenBLAS when NumPy is
    imported), so they are set for a fresh interpreter. A BLAS with all its
    threads on a busy machine is as erratic as torch's pool: a 128 x 128 float32
    product (``np.einsum(..., optimize=True)``) took 30 ms on the 2-core machine
    with OpenBLAS's default, 0.07 ms with one thread.
    """
    env = dict(os.environ)
    env[_PINNED] = str(threads)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["XLA_FLAGS"] = " ".join(filter(None, [
        env.get("XLA_FLAGS"), "--xla_cpu_multi_thread_eigen=false",
        f"intra_op_parallelism_threads={threads}"]))
    return env


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m crosscheck.figures",
                                description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/figures", help="directory to write into "
                   "(default: docs/figures)")
    p.add_argument("--quick", action="store_true",
                   help="time small sizes only (seconds instead of minutes)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for NumPy's BLAS, torch and JAX while timing (default 1, as "
                        "the loops run; 0: the libraries' defaults)")
    args = p.parse_args(argv)
    threads = args.threads or None
    if threads and argv is None and os.environ.get(_PINNED) != str(threads):
        # from the command line: once more, in an interpreter whose BLAS and XLA start with
        # that many threads (called with argv, as the tests do, it runs here as it is)
        command = [sys.executable, "-m", "crosscheck.figures", *sys.argv[1:]]
        return subprocess.run(command, env=pinned_environment(threads), check=False).returncode
    for path in make_all(Path(args.out), quick=args.quick, threads=threads):
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
