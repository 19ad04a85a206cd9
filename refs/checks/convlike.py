"""Argument checks for ``unfold``, ``fold``, ``conv`` and ``max_pool`` (torch's rules, in N-d).

Each ``check_*`` validates the call and returns a :class:`Geometry`: every
argument normalized to one int per spatial dim and the number of blocks along
each dim, so that the three implementations loop, stride or slice over the very
same numbers. A block ``i`` (one index per spatial dim) and a kernel offset
``j`` address the padded input at ``stride * i + dilation * j``, and

    blocks[d] = floor((size[d] + 2 * padding[d] - dilation[d] * (kernel_size[d] - 1) - 1)
                      / stride[d]) + 1

which must be at least one: the kernel, dilated, has to fit inside the padded
input. Batch size 0 is allowed; every other dim must be non-empty (as in torch).

**The spatial rank, and unbatched inputs** (torch's rule, for 1 to 3 spatial
dims). The number of spatial dims is read

* for ``conv``: from ``weight.ndim - 2`` (weight is ``(C_out, C_in / groups,
  *kernel)``), as torch does;
* for ``unfold`` / ``max_pool``: from the keyword ``spatial_dims``; else from the
  length of any tuple argument (``kernel_size``, ``dilation``, ``padding``,
  ``stride``; tuples of different lengths are a ``ValueError``); else, every
  argument an int, from ``input.ndim - 2``: the input is read as batched;
* for ``fold``: from the first tuple among ``output_size``, ``kernel_size``,
  ``dilation``, ``padding``, ``stride``, else 2, as ``F.fold``; its input is
  ``(N, C * prod(kernel_size), L)`` or, unbatched, ``(C * prod(kernel_size), L)``.

An input of rank ``spatial + 2`` is batched, ``(N, C, *spatial)``. One of rank
``spatial + 1`` is unbatched, ``(C, *spatial)``: it is computed as
``input[None]`` and the batch dim is dropped from the result, exactly as torch
does; its :class:`Geometry` has ``unbatched=True`` and ``batch=1`` (the batch
of ``input[None]``). Any other rank is a ``ValueError`` naming ``input``, its
shape and where the spatial rank was read from. So a 3-d ``x`` is a batch of
1-d signals for ``unfold(x, 2)`` (all ints: today's reading), and one
``(C, H, W)`` image for ``unfold(x, (2, 2))`` or ``unfold(x, 2, spatial_dims=2)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from refs.checks.common import dtype_name, fail, shape_of

#: spatial ranks the generalized ops accept: (N, C, L), (N, C, H, W), (N, C, D, H, W)
SPATIAL_RANKS = (1, 2, 3)


class Geometry(NamedTuple):
    """Sliding blocks over an image of ``size``, one int per spatial dim in every field."""

    batch: int
    channels: int
    size: tuple[int, ...]  # the image's spatial size, before padding
    kernel_size: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    stride: tuple[int, ...]
    blocks: tuple[int, ...]  # number of block positions along each spatial dim
    # the input had no batch dim: compute on input[None] (batch == 1), drop the batch dim after
    unbatched: bool = False

    @property
    def spatial_dims(self) -> int:
        return len(self.size)

    @property
    def kernel_volume(self) -> int:
        """Elements of one block per channel: prod(kernel_size)."""
        return math.prod(self.kernel_size)

    @property
    def num_blocks(self) -> int:
        """``L``, the number of blocks per image: prod(blocks)."""
        return math.prod(self.blocks)

    @property
    def span(self) -> tuple[int, ...]:
        """Extent of one dilated block: dilation * (kernel_size - 1) + 1."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation))

    @property
    def padded(self) -> tuple[int, ...]:
        return tuple(n + 2 * p for n, p in zip(self.size, self.padding))


def num_blocks(size: int, kernel_size: int, dilation: int, padding: int, stride: int) -> int:
    """floor((size + 2p - d(k-1) - 1) / s) + 1 -- torch's ``div_rtn``, negative when it does not fit."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def per_dim(fn: str, arg: str, value, n: int, *, how: str | None = None) -> tuple[int, ...]:
    """An int, or a tuple/list of ``n`` ints, as a tuple of ``n`` ints.

    ``how`` says where ``n`` was read from; a wrong length quotes it.
    """
    if _is_int(value):
        return (int(value),) * n
    if isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        if len(value) != n:
            source = f"; {fn} reads {_dims(n)} from {how}" if how else ""
            fail(
                ValueError,
                fn,
                f"{arg} = {tuple(value)!r} has {len(value)} entries, expected an int or "
                f"{n} ints (one per spatial dim{source})",
            )
        return tuple(int(v) for v in value)
    fail(TypeError, fn, f"{arg} must be an int or a tuple of {n} ints, got {value!r}")


def check_unfold(input, kernel_size, dilation=1, padding=0, stride=1, *, fn: str = "unfold",
                 spatial_dims=None) -> Geometry:
    """Checks of ``unfold(input, kernel_size, dilation, padding, stride, spatial_dims=...)``.

    The spatial rank: ``spatial_dims``, else the length of the tuple arguments,
    else ``input.ndim - 2`` (see the module docstring).
    """
    rank, how = _spatial_rank(fn, input, spatial_dims, kernel_size=kernel_size,
                              dilation=dilation, padding=padding, stride=stride)
    n, c, size, unbatched = _image(fn, input, rank, how)
    return _sliding(fn, n, c, size, kernel_size, dilation, padding, stride, how=how,
                    unbatched=unbatched)


def check_fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1,
               *, fn: str = "fold") -> Geometry:
    """Checks of ``fold``; the returned geometry describes the *output* image.

    The spatial rank is the length of the first tuple among ``output_size``,
    ``kernel_size``, ``dilation``, ``padding``, ``stride``; when all are ints it
    is 2, as in ``F.fold``. The input is ``(N, C * prod(kernel_size), L)``, or
    ``(C * prod(kernel_size), L)`` unbatched.
    """
    shape = shape_of(input)
    if len(shape) not in (2, 3):
        fail(ValueError, fn, f"input must have shape (N, C * prod(kernel_size), L), or (C * "
                             f"prod(kernel_size), L) unbatched, got shape {shape} (rank "
                             f"{len(shape)})")
    unbatched = len(shape) == 2
    batch, rows, count = (1,) + shape if unbatched else shape
    row_dim, count_dim = len(shape) - 2, len(shape) - 1  # input.size(...) as messages name it
    given = dict(output_size=output_size, kernel_size=kernel_size, dilation=dilation,
                 padding=padding, stride=stride)
    first = next(((name, v) for name, v in given.items() if isinstance(v, (tuple, list))), None)
    if first is None:
        rank, how = 2, f"the default, as F.fold ({_all_ints(given)})"
    else:
        rank, how = len(first[1]), f"{first[0]} = {tuple(first[1])!r}"
    if rank not in SPATIAL_RANKS:
        fail(ValueError, fn, f"output_size = {output_size!r} must have 1, 2 or 3 spatial dims; "
                             f"{fn} reads {_dims(rank)} from {how}")
    size = per_dim(fn, "output_size", output_size, rank, how=how)
    if any(s < 1 for s in size):
        fail(ValueError, fn, f"output_size = {size} must be positive in every spatial dim")
    k = per_dim(fn, "kernel_size", kernel_size, rank, how=how)
    _positive(fn, "kernel_size", k)
    volume = math.prod(k)
    if rows == 0 or rows % volume:
        fail(
            ValueError,
            fn,
            f"input.size({row_dim}) = {rows} must be a positive multiple of prod(kernel_size) = "
            f"{volume} (kernel_size {k}); input has shape {shape}",
        )
    geometry = _sliding(fn, batch, rows // volume, size, k, dilation, padding, stride,
                        input_arg="output_size", how=how, unbatched=unbatched)
    if count != geometry.num_blocks:
        counts = " * ".join(map(str, geometry.blocks))
        fail(
            ValueError,
            fn,
            f"input.size({count_dim}) = {count} does not match the number of blocks that "
            f"output_size {size} holds: {counts} = {geometry.num_blocks} (kernel_size "
            f"{geometry.kernel_size}, dilation {geometry.dilation}, padding {geometry.padding}, "
            f"stride {geometry.stride})",
        )
    return geometry


class ConvGeometry(NamedTuple):
    blocks: Geometry  # the unfold that feeds the matrix product
    out_channels: int
    groups: int


def check_conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
               *, fn: str = "conv") -> ConvGeometry:
    """Checks of ``conv``: torch's ``conv1d/2d/3d`` rules, the spatial rank ``weight.ndim - 2``."""
    w = shape_of(weight)
    if len(w) - 2 not in SPATIAL_RANKS:
        fail(ValueError, fn, f"weight must have shape (C_out, C_in / groups, *kernel) with 1, 2 "
                             f"or 3 spatial dims (rank 3, 4 or 5), got shape {w} (rank {len(w)}); "
                             f"{fn} reads the spatial rank from weight, as torch does")
    how = f"weight of shape {w} (weight.ndim - 2)"
    n, c, size, unbatched = _image(fn, input, len(w) - 2, how)
    channel_dim = 0 if unbatched else 1
    if dtype_name(weight) != dtype_name(input):
        fail(TypeError, fn, f"weight must have input's dtype: weight is {dtype_name(weight)}, "
                            f"input is {dtype_name(input)}")
    if not _is_int(groups) or groups < 1:
        fail(ValueError, fn, f"groups = {groups!r} must be a positive int")
    if c % groups or w[0] % groups or w[0] == 0:
        fail(ValueError, fn, f"groups = {groups} must divide both in_channels = {c} and "
                             f"out_channels = weight.size(0) = {w[0]} (both positive)")
    if w[1] * groups != c:
        fail(ValueError, fn, f"weight.size(1) = {w[1]} times groups = {groups} must equal the "
                             f"input's channels input.size({channel_dim}) = {c}; weight has shape "
                             f"{w}, input {shape_of(input)}")
    if any(k < 1 for k in w[2:]):
        fail(ValueError, fn, f"weight has an empty kernel: shape {w}")
    if bias is not None:
        if shape_of(bias) != (w[0],):
            fail(ValueError, fn, f"bias must have shape (out_channels,) = ({w[0]},), got "
                                 f"{shape_of(bias)}")
        if dtype_name(bias) != dtype_name(input):
            fail(TypeError, fn, f"bias must have input's dtype: bias is {dtype_name(bias)}, "
                                f"input is {dtype_name(input)}")
    geometry = _sliding(fn, n, c, size, w[2:], dilation, padding, stride, kernel_arg="weight",
                        how=how, unbatched=unbatched)
    return ConvGeometry(geometry, w[0], int(groups))


def check_max_pool(input, kernel_size, stride=None, padding=0, dilation=1,
                   *, fn: str = "max_pool", spatial_dims=None) -> Geometry:
    """Checks of ``max_pool``: stride defaults to ``kernel_size``; ``padding <= kernel_size // 2``.

    The spatial rank is read as in :func:`check_unfold` (a default stride,
    ``None`` or empty, does not count as a tuple).

    torch 2.13 enforces the padding rule on the raw kernel in every rank
    ("pad should be smaller than or equal to half of kernel size"), which is
    stricter than the ``((k - 1) * d + 1) // 2`` of ``pooling_output_shape``
    whenever ``dilation > 1``; we follow the rule torch applies.
    """
    default_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    rank, how = _spatial_rank(fn, input, spatial_dims, kernel_size=kernel_size,
                              stride=None if default_stride else stride, padding=padding,
                              dilation=dilation)
    n, c, size, unbatched = _image(fn, input, rank, how)
    k = per_dim(fn, "kernel_size", kernel_size, rank, how=how)
    _positive(fn, "kernel_size", k)
    s = k if default_stride else per_dim(fn, "stride", stride, rank, how=how)
    p = per_dim(fn, "padding", padding, rank, how=how)
    _non_negative(fn, "padding", p)
    for axis, (kd, pd) in enumerate(zip(k, p)):
        if pd > kd // 2:
            fail(ValueError, fn, f"padding {p} is more than half of kernel_size {k} in spatial "
                                 f"dim {axis}: {pd} > {kd} // 2 (a window could then lie "
                                 f"wholly in the padding)")
    return _sliding(fn, n, c, size, k, dilation, p, s, how=how, unbatched=unbatched)


# ------------------------------------------------------------------ helpers

#: the letters of the spatial dims in messages, as torch's docs name them
_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _dims(n: int) -> str:
    return f"{n} spatial dim{'s' * (n != 1)}"


def _layout(rank: int, batched: bool) -> str:
    return f"({'N, ' * batched}C, {', '.join(_AXES[rank])})"


def _all_ints(given: dict) -> str:
    names = list(given)
    return f"{', '.join(names[:-1])} and {names[-1]} all ints"


def _spatial_rank(fn: str, input, spatial_dims, **given) -> tuple[int, str]:
    """The spatial rank of ``unfold`` / ``max_pool`` and where it was read from, for messages.

    ``spatial_dims`` if given, else the length of the tuple arguments among
    ``given`` (which must agree), else ``input.ndim - 2`` (the input is batched).
    """
    if spatial_dims is not None:
        if not _is_int(spatial_dims):
            fail(TypeError, fn, f"spatial_dims must be None or an int (1, 2 or 3), got "
                                f"{type(spatial_dims).__name__} {spatial_dims!r}")
        if spatial_dims not in SPATIAL_RANKS:
            fail(ValueError, fn, f"spatial_dims = {spatial_dims} must be 1, 2 or 3")
        return int(spatial_dims), f"spatial_dims={int(spatial_dims)}"
    tuples = {name: tuple(v) for name, v in given.items() if isinstance(v, (tuple, list))}
    if tuples:
        if len({len(v) for v in tuples.values()}) > 1:
            listing = ", ".join(f"{name} = {v!r} ({len(v)} entries)" for name, v in tuples.items())
            fail(ValueError, fn, f"the tuple arguments disagree on the number of spatial dims: "
                                 f"{listing}; give each one entry per spatial dim, or an int")
        name, v = next(iter(tuples.items()))
        if len(v) not in SPATIAL_RANKS:
            fail(ValueError, fn, f"{name} = {v!r} has {len(v)} entries, but 1, 2 or 3 spatial "
                                 f"dims are supported (one entry per spatial dim)")
        return len(v), f"{name} = {v!r}"
    shape = shape_of(input)
    rank = len(shape) - 2
    names = _all_ints({name: v for name, v in given.items() if v is not None})
    if rank not in SPATIAL_RANKS:
        fail(ValueError, fn, f"input has shape {shape} (rank {len(shape)}), but with {names} "
                             f"{fn} reads it as batched (N, C, *spatial) with input.ndim - 2 = "
                             f"{rank} spatial dims, and 1, 2 or 3 are supported; for an "
                             f"unbatched (C, *spatial) input pass spatial_dims= or a tuple "
                             f"kernel_size")
    return rank, f"input.ndim - 2 ({names}: input read as batched)"


def _image(fn: str, input, rank: int, how: str) -> tuple[int, int, tuple[int, ...], bool]:
    """``(batch, channels, size, unbatched)`` of an input with ``rank`` spatial dims."""
    shape = shape_of(input)
    if len(shape) not in (rank + 1, rank + 2):
        fail(ValueError, fn, f"input has shape {shape} (rank {len(shape)}), but {fn} reads "
                             f"{_dims(rank)} from {how}: expected {_layout(rank, False)} "
                             f"(unbatched, rank {rank + 1}) or {_layout(rank, True)} (rank "
                             f"{rank + 2})")
    unbatched = len(shape) == rank + 1
    if unbatched:
        if any(s == 0 for s in shape):
            fail(ValueError, fn, f"input has shape {shape}, read as unbatched "
                                 f"{_layout(rank, False)} ({fn} reads {_dims(rank)} from {how}); "
                                 f"its channels and spatial sizes must be non-zero")
        return 1, shape[0], shape[1:], True
    if any(s == 0 for s in shape[1:]):
        fail(ValueError, fn, f"input must have non-zero channels and spatial sizes (only the "
                             f"batch may be 0), got shape {shape}")
    return shape[0], shape[1], shape[2:], False


def _positive(fn, arg, values):
    if any(v < 1 for v in values):
        fail(ValueError, fn, f"{arg} = {values} must be positive in every spatial dim")


def _non_negative(fn, arg, values):
    if any(v < 0 for v in values):
        fail(ValueError, fn, f"{arg} = {values} must be non-negative in every spatial dim")


def _sliding(fn, batch, channels, size, kernel_size, dilation, padding, stride,
             *, kernel_arg="kernel_size", input_arg="input", how=None,
             unbatched=False) -> Geometry:
    rank = len(size)
    k = per_dim(fn, kernel_arg, kernel_size, rank, how=how)
    d = per_dim(fn, "dilation", dilation, rank, how=how)
    p = per_dim(fn, "padding", padding, rank, how=how)
    s = per_dim(fn, "stride", stride, rank, how=how)
    _positive(fn, kernel_arg, k)
    _positive(fn, "dilation", d)
    _non_negative(fn, "padding", p)
    _positive(fn, "stride", s)
    for axis in range(rank):
        span = d[axis] * (k[axis] - 1) + 1
        padded = size[axis] + 2 * p[axis]
        if span > padded:
            what = f"{kernel_arg} {k}" if kernel_arg == "kernel_size" else \
                f"{kernel_arg}'s kernel {k}"
            fail(
                ValueError,
                fn,
                f"{what} with dilation {d} spans {span} but the padded {input_arg} has size "
                f"{padded} in spatial dim {axis} ({input_arg} size {size[axis]} + 2 * padding "
                f"{p[axis]}): no block fits",
            )
    blocks = tuple(num_blocks(*args) for args in zip(size, k, d, p, s))
    return Geometry(int(batch), int(channels), tuple(size), k, d, p, s, blocks, unbatched)
