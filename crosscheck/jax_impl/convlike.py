"""unfold / fold / conv / max_pool from strided ``lax.slice``/``lax.pad`` (no convolution, no patches).

For a fixed geometry (a static argument of the jitted kernels) every kernel
offset ``j`` reads the blocks' elements as one strided slice of the padded
image, starting at ``dilation * j`` with step ``stride``; ``unfold`` stacks them
one spatial dim at a time (``sum(kernel_size)`` slices, a static count: the
program grows with the kernel, never with the data). ``fold`` is the transpose: each offset's
values are placed back by ``lax.pad`` with interior padding ``stride - 1`` and
summed. ``conv`` is unfold plus one ``dot_general`` (full float32 precision
on every device), ``max_pool`` unfold plus a max, taken one spatial dim at a
time (a max over a box is separable). All are jit- and
grad-compatible; arguments are checked on the host before anything runs.

An unbatched input (``(C, *size)``; ``(C * K, L)`` for ``fold``) runs as
``input[None]`` and loses the batch dim again, as in torch; the spatial rank is
read as in :mod:`refs.checks.convlike` (``conv``: from ``weight``; ``unfold`` /
``max_pool``: ``spatial_dims``, else a tuple argument, else ``input.ndim - 2``;
``fold``: its first tuple argument, else 2).
"""

from __future__ import annotations

import functools
import itertools
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from crosscheck.jax_impl._framework import as_array
from refs.checks.convlike import Geometry, check_conv, check_fold, check_max_pool, check_unfold


def unfold(input, kernel_size, dilation=1, padding=0, stride=1, *, spatial_dims=None):
    """``out[n, c * K + j, l] = input[n, c, stride * i - padding + dilation * j]``, as ``refs.unfold``.

    ``input`` is ``(N, C, *size)``, or ``(C, *size)`` unbatched (then the result
    is ``(C * K, L)``); the spatial rank is ``spatial_dims``, else the length of
    the tuple arguments, else ``input.ndim - 2``.

    >>> unfold(jnp.arange(4).reshape(1, 1, 4), kernel_size=2, stride=2).tolist()
    [[[0, 2], [1, 3]]]
    >>> unfold(jnp.zeros((3, 3, 4)), kernel_size=(2, 2)).shape  # one (C, H, W) image
    (12, 6)
    """
    input = as_array(input)
    g = check_unfold(input, kernel_size, dilation, padding, stride, spatial_dims=spatial_dims)
    return _unbatched(_unfold, input, g)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """``out[n, c, stride * i - padding + dilation * j] += input[n, c * K + j, l]``, as ``refs.fold``.

    ``input`` is ``(N, C * K, L)``, or ``(C * K, L)`` unbatched (then the result
    is ``(C, *output_size)``); the spatial rank is the length of the first tuple
    argument, else 2.

    >>> fold(jnp.ones((1, 4, 6)), (3, 4), kernel_size=2)[0, 0].tolist()
    [[1.0, 2.0, 2.0, 1.0], [2.0, 4.0, 4.0, 2.0], [1.0, 2.0, 2.0, 1.0]]
    """
    input = as_array(input)
    g = check_fold(input, output_size, kernel_size, dilation, padding, stride)
    return _unbatched(_fold, input, g)


def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation as unfold + one ``dot_general`` over the groups, as ``refs.conv``.

    The spatial rank is ``weight.ndim - 2``; ``input`` is ``(N, C_in, *size)``,
    or ``(C_in, *size)`` unbatched (then the result is ``(C_out, *blocks)``).

    >>> conv(jnp.arange(5.0).reshape(1, 1, 5), jnp.array([[[1.0, -1.0]]])).tolist()
    [[[-1.0, -1.0, -1.0, -1.0]]]
    """
    input, weight = as_array(input), as_array(weight)
    bias = None if bias is None else as_array(bias)
    cg = check_conv(input, weight, bias, stride, padding, dilation, groups)
    g = cg.blocks
    x = input[None] if g.unbatched else input
    out = _conv(x, weight, bias, g._replace(unbatched=False), cg.out_channels, cg.groups)
    return out[0] if g.unbatched else out


def max_pool(input, kernel_size, stride=None, padding=0, dilation=1, *, spatial_dims=None):
    """Max over each block of the input padded with -inf (the integer minimum for ints).

    ``input`` is ``(N, C, *size)``, or ``(C, *size)`` unbatched; the spatial
    rank is read as in :func:`unfold`.

    >>> max_pool(jnp.array([[[-3.0, -1.0, -2.0]]]), kernel_size=2, stride=1, padding=1).tolist()
    [[[-3.0, -1.0, -1.0, -2.0]]]
    """
    input = as_array(input)
    g = check_max_pool(input, kernel_size, stride, padding, dilation, spatial_dims=spatial_dims)
    return _unbatched(_max_pool, input, g)


# ------------------------------------------------------------------ kernels


def _unbatched(kernel, x, g: Geometry):
    """``kernel(x, g)`` on a batched ``x``; an unbatched one runs as ``x[None]``, as in torch.

    The kernels see ``unbatched=False`` only.
    """
    return _one_image(kernel, x, g) if g.unbatched else kernel(x, g)


@partial(jax.jit, static_argnums=(0, 2))
def _one_image(kernel, x, g: Geometry):
    # adding and dropping the batch dim inside the program: eagerly they were two more
    # programs to compile for every new shape
    return kernel(x[None], g._replace(unbatched=False))[0]


def _offsets(g: Geometry):
    return itertools.product(*map(range, g.kernel_size))


def _pad(x, padding, value):
    config = [(0, 0, 0), (0, 0, 0)] + [(p, p, 0) for p in padding]
    return lax.pad(x, jnp.asarray(value, x.dtype), config)


def _blocks(x, g: Geometry):
    """``(N, C, *kernel_size, *blocks)`` from the padded image ``x``, one spatial dim at a time.

    Along dim ``a`` the ``k_a`` offsets are ``k_a`` strided slices, stacked into a
    new kernel axis: ``sum(k)`` slices instead of ``prod(k)``, and less data moved
    than stacking all offsets of all dims at once.
    """
    r = g.spatial_dims
    for a in range(r):
        # x: (N, C, k_0..k_{a-1}, blocks_0..blocks_{a-1}, padded_a, ..., padded_{r-1})
        axis = 2 + 2 * a
        d, s, b = g.dilation[a], g.stride[a], g.blocks[a]
        pieces = [lax.slice_in_dim(x, d * j, d * j + s * (b - 1) + 1, s, axis)
                  for j in range(g.kernel_size[a])]
        x = jnp.stack(pieces, axis=2 + a)
    return x


@partial(jax.jit, static_argnums=1)
def _unfold(x, g: Geometry):
    blocks = _blocks(_pad(x, g.padding, 0), g)
    return blocks.reshape(g.batch, g.channels * g.kernel_volume, g.num_blocks)


@partial(jax.jit, static_argnums=1)
def _fold(cols, g: Geometry):
    cols = cols.reshape((g.batch, g.channels, g.kernel_volume) + g.blocks)
    out = jnp.zeros((g.batch, g.channels) + g.padded, cols.dtype)
    zero = jnp.zeros((), cols.dtype)
    for j, offset in enumerate(_offsets(g)):
        # block i's element lands on d * j + s * i: low pad d * j, s - 1 between blocks
        config = [(0, 0, 0), (0, 0, 0)] + [
            (d * o, n - (d * o + s * (b - 1) + 1), s - 1)
            for d, o, s, b, n in zip(g.dilation, offset, g.stride, g.blocks, g.padded)]
        out = out + lax.pad(cols[:, :, j], zero, config)
    start = (0, 0) + g.padding
    return lax.slice(out, start, (g.batch, g.channels) + tuple(
        p + n for p, n in zip(g.padding, g.size)))


@partial(jax.jit, static_argnums=(3, 4, 5))
def _conv(x, weight, bias, g: Geometry, out_channels: int, groups: int):
    rows = g.channels // groups * g.kernel_volume
    # channel-major rows: the rows of group g are one contiguous range
    cols = _unfold(x, g).reshape(g.batch, groups, rows, g.num_blocks)
    w = weight.reshape(groups, out_channels // groups, rows)
    # (N, G, R, L) x (G, O, R) -> (G, N, L, O): batch over G, contract over R
    out = lax.dot_general(cols, w, (((2,), (2,)), ((1,), (0,))),
                          precision=lax.Precision.HIGHEST)
    out = jnp.transpose(out, (1, 0, 3, 2)).reshape((g.batch, out_channels) + g.blocks)
    if bias is not None:
        out = out + bias.reshape((out_channels,) + (1,) * g.spatial_dims)
    return out


@partial(jax.jit, static_argnums=1)
def _max_pool(x, g: Geometry):
    low = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
    x = _pad(x, g.padding, low)
    # The max over a box is the max over each of its dims in turn, so each dim's
    # block axis is reduced right after it is built: the (N, C, *kernel, *blocks)
    # array of _blocks is never materialized (8x faster on CPU), same values.
    for a in range(g.spatial_dims):
        axis = 2 + a
        d, s, b = g.dilation[a], g.stride[a], g.blocks[a]
        pieces = [lax.slice_in_dim(x, d * j, d * j + s * (b - 1) + 1, s, axis)
                  for j in range(g.kernel_size[a])]
        x = functools.reduce(jnp.maximum, pieces)
    return x
