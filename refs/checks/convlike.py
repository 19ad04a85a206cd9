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


def per_dim(fn: str, arg: str, value, n: int) -> tuple[int, ...]:
    """An int, or a tuple/list of ``n`` ints, as a tuple of ``n`` ints."""
    if _is_int(value):
        return (int(value),) * n
    if isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        if len(value) != n:
            fail(
                ValueError,
                fn,
                f"{arg} = {tuple(value)!r} has {len(value)} entries, expected an int or "
                f"{n} ints (one per spatial dim)",
            )
        return tuple(int(v) for v in value)
    fail(TypeError, fn, f"{arg} must be an int or a tuple of {n} ints, got {value!r}")


def check_unfold(input, kernel_size, dilation=1, padding=0, stride=1, *, fn: str = "unfold") -> Geometry:
    """Checks of ``unfold(input, kernel_size, dilation, padding, stride)``."""
    n, c, size = _image(fn, input)
    return _sliding(fn, n, c, size, kernel_size, dilation, padding, stride)


def check_fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1,
               *, fn: str = "fold") -> Geometry:
    """Checks of ``fold``; the returned geometry describes the *output* image.

    The spatial rank is the length of the first tuple among ``output_size``,
    ``kernel_size``, ``dilation``, ``padding``, ``stride``; when all are ints it
    is 2, as in ``F.fold``.
    """
    shape = shape_of(input)
    if len(shape) != 3:
        fail(ValueError, fn, f"input must have shape (N, C * prod(kernel_size), L), got shape "
                             f"{shape} (rank {len(shape)})")
    given = (output_size, kernel_size, dilation, padding, stride)
    rank = next((len(v) for v in given if isinstance(v, (tuple, list))), 2)
    if rank not in SPATIAL_RANKS:
        fail(ValueError, fn, f"output_size = {output_size!r} must have 1, 2 or 3 spatial dims")
    size = per_dim(fn, "output_size", output_size, rank)
    if any(s < 1 for s in size):
        fail(ValueError, fn, f"output_size = {size} must be positive in every spatial dim")
    k = per_dim(fn, "kernel_size", kernel_size, rank)
    _positive(fn, "kernel_size", k)
    volume = math.prod(k)
    if shape[1] == 0 or shape[1] % volume:
        fail(
            ValueError,
            fn,
            f"input.size(1) = {shape[1]} must be a positive multiple of prod(kernel_size) = "
            f"{volume} (kernel_size {k}); input has shape {shape}",
        )
    geometry = _sliding(fn, shape[0], shape[1] // volume, size, k, dilation, padding, stride,
                        input_arg="output_size")
    if shape[2] != geometry.num_blocks:
        counts = " * ".join(map(str, geometry.blocks))
        fail(
            ValueError,
            fn,
            f"input.size(2) = {shape[2]} does not match the number of blocks that output_size "
            f"{size} holds: {counts} = {geometry.num_blocks} (kernel_size {geometry.kernel_size}, "
            f"dilation {geometry.dilation}, padding {geometry.padding}, stride {geometry.stride})",
        )
    return geometry


class ConvGeometry(NamedTuple):
    blocks: Geometry  # the unfold that feeds the matrix product
    out_channels: int
    groups: int


def check_conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
               *, fn: str = "conv") -> ConvGeometry:
    """Checks of ``conv``: torch's ``conv1d/2d/3d`` rules, the rank taken from ``input``."""
    n, c, size = _image(fn, input)
    w = shape_of(weight)
    if len(w) != len(size) + 2:
        fail(ValueError, fn, f"weight must have shape (C_out, C_in / groups, *kernel) of rank "
                             f"{len(size) + 2} for input of shape {shape_of(input)}, got {w}")
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
                             f"input's channels {c}; weight has shape {w}, input "
                             f"{shape_of(input)}")
    if any(k < 1 for k in w[2:]):
        fail(ValueError, fn, f"weight has an empty kernel: shape {w}")
    if bias is not None:
        if shape_of(bias) != (w[0],):
            fail(ValueError, fn, f"bias must have shape (out_channels,) = ({w[0]},), got "
                                 f"{shape_of(bias)}")
        if dtype_name(bias) != dtype_name(input):
            fail(TypeError, fn, f"bias must have input's dtype: bias is {dtype_name(bias)}, "
                                f"input is {dtype_name(input)}")
    geometry = _sliding(fn, n, c, size, w[2:], dilation, padding, stride, kernel_arg="weight")
    return ConvGeometry(geometry, w[0], int(groups))


def check_max_pool(input, kernel_size, stride=None, padding=0, dilation=1,
                   *, fn: str = "max_pool") -> Geometry:
    """Checks of ``max_pool``: stride defaults to ``kernel_size``; ``padding <= kernel_size // 2``.

    torch 2.13 enforces the padding rule on the raw kernel in every rank
    ("pad should be smaller than or equal to half of kernel size"), which is
    stricter than the ``((k - 1) * d + 1) // 2`` of ``pooling_output_shape``
    whenever ``dilation > 1``; we follow the rule torch applies.
    """
    n, c, size = _image(fn, input)
    rank = len(size)
    k = per_dim(fn, "kernel_size", kernel_size, rank)
    _positive(fn, "kernel_size", k)
    s = k if stride is None or stride == () else per_dim(fn, "stride", stride, rank)
    p = per_dim(fn, "padding", padding, rank)
    _non_negative(fn, "padding", p)
    for axis, (kd, pd) in enumerate(zip(k, p)):
        if pd > kd // 2:
            fail(ValueError, fn, f"padding {p} is more than half of kernel_size {k} in spatial "
                                 f"dim {axis}: {pd} > {kd} // 2 (a window could then lie "
                                 f"wholly in the padding)")
    return _sliding(fn, n, c, size, k, dilation, p, s)


# ------------------------------------------------------------------ helpers


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _image(fn: str, input) -> tuple[int, int, tuple[int, ...]]:
    shape = shape_of(input)
    if len(shape) - 2 not in SPATIAL_RANKS:
        fail(ValueError, fn, f"input must have shape (N, C, *spatial) with 1, 2 or 3 spatial "
                             f"dims, got shape {shape} (rank {len(shape)})")
    if any(s == 0 for s in shape[1:]):
        fail(ValueError, fn, f"input must have non-zero channels and spatial sizes (only the "
                             f"batch may be 0), got shape {shape}")
    return shape[0], shape[1], shape[2:]


def _positive(fn, arg, values):
    if any(v < 1 for v in values):
        fail(ValueError, fn, f"{arg} = {values} must be positive in every spatial dim")


def _non_negative(fn, arg, values):
    if any(v < 0 for v in values):
        fail(ValueError, fn, f"{arg} = {values} must be non-negative in every spatial dim")


def _sliding(fn, batch, channels, size, kernel_size, dilation, padding, stride,
             *, kernel_arg="kernel_size", input_arg="input") -> Geometry:
    rank = len(size)
    k = per_dim(fn, kernel_arg, kernel_size, rank)
    d = per_dim(fn, "dilation", dilation, rank)
    p = per_dim(fn, "padding", padding, rank)
    s = per_dim(fn, "stride", stride, rank)
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
    return Geometry(int(batch), int(channels), tuple(size), k, d, p, s, blocks)
