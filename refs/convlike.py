"""Convolution-like ops as the course's slides build them: extract blocks, apply an op, combine.

``unfold`` (im2col) extracts the blocks, ``fold`` (col2im) adds blocks back
into an image, and ``conv`` / ``max_pool`` apply a linear map / a max to each
block that ``unfold`` extracted. Everything works for 1, 2 and 3 spatial dims;
``kernel_size``, ``dilation``, ``padding`` and ``stride`` are each an int or a
tuple with one int per spatial dim.

As in torch, an input without its batch dim (``(C, *size)`` for ``unfold``,
``conv``, ``max_pool``; ``(C * K, L)`` for ``fold``) is computed as
``input[None]`` and the batch dim dropped from the result. How the number of
spatial dims, and so whether a batch dim is there, is read: ``conv`` from
``weight``; ``unfold`` / ``max_pool`` from ``spatial_dims``, else a tuple
argument, else ``input.ndim - 2``; ``fold`` from its first tuple argument,
else 2 (details in :mod:`refs.checks.convlike`).

Notation used in the formulas: ``i`` is a block position (one index per
spatial dim, ``l`` its row-major number among the ``L = prod(blocks)``
blocks), ``j`` a kernel offset (one index per spatial dim, row-major number
among the ``K = prod(kernel_size)`` offsets), and block ``i``, offset ``j``
reads the image at ``pos = stride * i - padding + dilation * j`` (per dim);
positions outside the image are the padding.
"""

from __future__ import annotations

import numpy as np

from refs.checks.convlike import check_conv, check_fold, check_max_pool, check_unfold, per_dim


def unfold(input, kernel_size, dilation=1, padding=0, stride=1, *, spatial_dims=None):
    """Extract sliding blocks: ``(N, C, *size) -> (N, C * K, L)``, laid out as N, C, k..., L.

    ::

        out[n, c * K + j, l] = input[n, c, stride * i - padding + dilation * j]
                               (0 where that position is in the padding)

    Block positions ``i`` run over ``L_d`` values along spatial dim ``d``, ``L``
    in all::

        L_d = floor((size_d + 2 padding_d - dilation_d (kernel_size_d - 1) - 1) / stride_d) + 1
        L = prod_d L_d

    Args:
        input: array of shape ``(N, C, *size)`` with 1, 2 or 3 spatial dims
            (``N`` may be 0), or ``(C, *size)`` unbatched, giving ``(C * K, L)``.
        kernel_size: the block's extent per spatial dim.
        dilation: distance between adjacent elements of a block.
        padding: zeros added on both sides of every spatial dim.
        stride: distance between adjacent blocks.
        spatial_dims: the number of spatial dims (1, 2 or 3). ``None``: the
            length of the tuple arguments, or, when all are ints,
            ``input.ndim - 2`` (a batched input). An input of rank
            ``spatial_dims + 1`` is unbatched.

    Raises:
        TypeError: an argument that is not an int or a tuple of ints.
        ValueError: a bad rank, tuple arguments of different lengths, a
            non-positive kernel_size / dilation / stride, a negative padding,
            or a dilated kernel larger than the padded input.

    The deck's example: 3 channels of 2x2 blocks, 2x3 block positions in a 3x4 image.

    >>> unfold(np.zeros((2, 3, 3, 4)), kernel_size=2).shape
    (2, 12, 6)
    >>> unfold(np.arange(4).reshape(1, 1, 4), kernel_size=2, stride=2)
    array([[[0, 2],
            [1, 3]]])

    One ``(C, H, W)`` image, unbatched, as ``F.unfold`` takes it; with every
    argument an int the same array would be a batch of 3 one-dim signals:

    >>> unfold(np.zeros((3, 3, 4)), kernel_size=(2, 2)).shape
    (12, 6)
    >>> unfold(np.zeros((3, 3, 4)), kernel_size=2, spatial_dims=2).shape
    (12, 6)
    >>> unfold(np.zeros((3, 3, 4)), kernel_size=2).shape
    (3, 6, 3)
    """
    input = np.asarray(input)
    g = check_unfold(input, kernel_size, dilation, padding, stride, spatial_dims=spatial_dims)
    if g.unbatched:  # as torch: a batch of one, its batch dim dropped
        return unfold(input[None], g.kernel_size, g.dilation, g.padding, g.stride)[0]
    K, L = g.kernel_volume, g.num_blocks
    out = np.zeros((g.batch, g.channels * K, L), dtype=input.dtype)
    # the position depends on (j, l) only: found once, then read for every n and c
    for j, offset in enumerate(np.ndindex(*g.kernel_size)):
        for l, block in enumerate(np.ndindex(*g.blocks)):  # noqa: E741 - l as in the formula
            pos = _position(g, block, offset)
            if not _inside(pos, g.size):
                continue  # in the padding: out stays 0
            for n in range(g.batch):
                for c in range(g.channels):
                    out[n, c * K + j, l] = input[(n, c) + pos]
    return out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Add blocks back into an image: ``(N, C * K, L) -> (N, C, *output_size)``.

    The adjoint of :func:`unfold`, not its inverse: start from zeros and add
    every block element to its place, so where blocks overlap their elements
    add up (and elements that land in the padding are dropped)::

        out[n, c, stride * i - padding + dilation * j] += input[n, c * K + j, l]

    Args:
        input: array of shape ``(N, C * K, L)``, ``K = prod(kernel_size)``, or
            ``(C * K, L)`` unbatched, giving ``(C, *output_size)`` (as ``F.fold``).
        output_size: the image's spatial size; its length (or that of the first
            tuple argument) gives the spatial rank, 2 when every argument is an int.
        kernel_size, dilation, padding, stride: as in :func:`unfold`; together
            with ``output_size`` they must give exactly ``L`` blocks.

    Raises:
        TypeError: an argument that is not an int or a tuple of ints.
        ValueError: ``input.size(1)`` not a multiple of ``K``, ``input.size(2)``
            not the number of blocks in ``output_size``, or a bad geometry as in
            :func:`unfold`.

    The deck asks "What is the value in output[1, 1]?" for 2x2 blocks folded
    into a 3x4 image: four blocks cover that position, so it is the sum of
    four block elements. Folding ones counts the blocks on each position:

    >>> fold(np.ones((1, 4, 6)), output_size=(3, 4), kernel_size=2)[0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    """
    input = np.asarray(input)
    g = check_fold(input, output_size, kernel_size, dilation, padding, stride)
    if g.unbatched:  # as torch: a batch of one, its batch dim dropped
        return fold(input[None], g.size, g.kernel_size, g.dilation, g.padding, g.stride)[0]
    K = g.kernel_volume
    out = np.zeros((g.batch, g.channels) + g.size, dtype=input.dtype)
    for j, offset in enumerate(np.ndindex(*g.kernel_size)):
        for l, block in enumerate(np.ndindex(*g.blocks)):  # noqa: E741 - l as in the formula
            pos = _position(g, block, offset)
            if not _inside(pos, g.size):
                continue  # in the padding: dropped
            for n in range(g.batch):
                for c in range(g.channels):
                    out[(n, c) + pos] += input[n, c * K + j, l]
    return out


def overlap_counts(output_size, kernel_size, dilation=1, padding=0, stride=1):
    """How many blocks cover each position of an image: ``fold`` of ones.

    This answers the deck's question about ``output[1, 1]`` for 2x2 blocks
    (stride 1) in a 3x4 image. The four blocks that cover position (1, 1),
    marked ``X``, each contribute one element to it::

        block (0, 0)   block (0, 1)   block (1, 0)   block (1, 1)
        # # . .        . # # .        . . . .        . . . .
        # X . .        . X # .        # X . .        . X # .
        . . . .        . . . .        # # . .        . # # .

    >>> print(overlap_counts((3, 4), kernel_size=2))
    [[1 2 2 1]
     [2 4 4 2]
     [1 2 2 1]]

    so ``output[..., 1, 1]`` is the sum of four block elements, and
    ``fold(unfold(x)) == x * overlap_counts(...)``. With ``stride ==
    kernel_size`` the blocks tile the image and every count is one.
    """
    given = (output_size, kernel_size, dilation, padding, stride)
    rank = next((len(v) for v in given if isinstance(v, (tuple, list))), 2)  # as fold's
    size = per_dim("overlap_counts", "output_size", output_size, rank)
    g = check_unfold(np.zeros((1, 1) + size), kernel_size, dilation, padding, stride,
                     fn="overlap_counts", spatial_dims=rank)
    blocks = np.ones((1, g.kernel_volume, g.num_blocks), dtype=np.int64)
    return fold(blocks, size, g.kernel_size, g.dilation, g.padding, g.stride)[0, 0]


def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Convolution (cross-correlation, as in torch) as unfold + a linear map per block.

    With ``cols = unfold(input, kernel, dilation, padding, stride)``, ``G =
    groups``, ``Cg = C_in / G`` input channels and ``Og = C_out / G`` output
    channels per group, and ``o`` in group ``g = o // Og``::

        out[n, o, l] = bias[o] + sum_{r < Cg * K} weight[o].flat[r] * cols[n, g * Cg * K + r, l]

    because ``cols`` rows are laid out channel-major (C, then the kernel
    offsets), the rows of group ``g`` are one contiguous range and each match
    ``weight[o]`` flattened. The result is reshaped to ``(N, C_out, *blocks)``.

    Args:
        input: array of shape ``(N, C_in, *size)``, 1 to 3 spatial dims, or
            ``(C_in, *size)`` unbatched, giving ``(C_out, *blocks)``.
        weight: array ``(C_out, C_in / groups, *kernel_size)`` of input's dtype;
            its rank gives the number of spatial dims, as in torch.
        bias: ``None`` or an array ``(C_out,)`` of input's dtype.
        stride, padding, dilation: as in :func:`unfold`.
        groups: splits the channels into ``groups`` independent convolutions.

    Raises:
        TypeError: weight or bias of another dtype, an argument not an int / tuple.
        ValueError: shapes that do not fit, groups not dividing both channel
            counts, a bad geometry as in :func:`unfold`.

    >>> conv(np.arange(5.0).reshape(1, 1, 5), np.array([[[1.0, -1.0]]]))
    array([[[-1., -1., -1., -1.]]])
    >>> conv(np.arange(5.0).reshape(1, 5), np.array([[[1.0, -1.0]]]))  # unbatched (C, L)
    array([[-1., -1., -1., -1.]])
    """
    input, weight = np.asarray(input), np.asarray(weight)
    bias = None if bias is None else np.asarray(bias)
    cg = check_conv(input, weight, bias, stride, padding, dilation, groups)
    g = cg.blocks
    if g.unbatched:  # as torch: a batch of one, its batch dim dropped
        return conv(input[None], weight, bias, g.stride, g.padding, g.dilation, groups)[0]
    cols = unfold(input, g.kernel_size, g.dilation, g.padding, g.stride)
    rows = (g.channels // cg.groups) * g.kernel_volume  # rows per group
    per_group = cg.out_channels // cg.groups
    w = weight.reshape(cg.out_channels, rows)
    out = np.zeros((g.batch, cg.out_channels, g.num_blocks), dtype=input.dtype)
    for n in range(g.batch):
        for o in range(cg.out_channels):
            first = (o // per_group) * rows
            for l in range(g.num_blocks):  # noqa: E741 - l as in the formula
                total = bias[o] if bias is not None else out.dtype.type(0)
                for r in range(rows):
                    total += w[o, r] * cols[n, first + r, l]
                out[n, o, l] = total
    return out.reshape((g.batch, cg.out_channels) + g.blocks)


def max_pool(input, kernel_size, stride=None, padding=0, dilation=1, *, spatial_dims=None):
    """Max pooling as unfold + a max per block; the padding counts as -inf.

    Pad with the lowest value of the dtype (-inf for floats, the integer
    minimum for ints), unfold without padding, view the blocks as
    ``(N, C, K, L)`` (the deck's ``blocks.view``), and take the max over ``K``::

        out[n, c, l] = max_j padded[n, c, stride * i + dilation * j]

    Zero padding would be wrong: a window of negative values at the border
    would return 0.

    Args:
        input: array ``(N, C, *size)``, 1 to 3 spatial dims, or ``(C, *size)``
            unbatched, giving ``(C, *blocks)``.
        kernel_size, padding, dilation: as in :func:`unfold`;
            ``padding <= kernel_size // 2`` per dim (torch's rule).
        stride: as in :func:`unfold`; ``None`` means ``kernel_size``.
        spatial_dims: as in :func:`unfold` (a default stride is no tuple).

    Raises:
        TypeError: an argument not an int or a tuple of ints.
        ValueError: a bad rank or geometry as in :func:`unfold`, or padding
            more than half the kernel.

    >>> max_pool(np.array([[[-3.0, -1.0, -2.0]]]), kernel_size=2, stride=1, padding=1)
    array([[[-3., -1., -1., -2.]]])
    >>> max_pool(np.array([[-3.0, -1.0, -2.0]]), kernel_size=2, stride=1, padding=1,
    ...          spatial_dims=1)  # unbatched (C, L)
    array([[-3., -1., -1., -2.]])
    """
    input = np.asarray(input)
    g = check_max_pool(input, kernel_size, stride, padding, dilation, spatial_dims=spatial_dims)
    if g.unbatched:  # as torch: a batch of one, its batch dim dropped
        return max_pool(input[None], g.kernel_size, g.stride, g.padding, g.dilation)[0]
    pad = [(0, 0), (0, 0)] + [(p, p) for p in g.padding]
    padded = np.pad(input, pad, constant_values=lowest(input.dtype))
    cols = unfold(padded, g.kernel_size, g.dilation, 0, g.stride)
    blocks = cols.reshape(g.batch, g.channels, g.kernel_volume, g.num_blocks)
    out = np.zeros((g.batch, g.channels, g.num_blocks), dtype=input.dtype)
    for n in range(g.batch):
        for c in range(g.channels):
            for l in range(g.num_blocks):  # noqa: E741 - l as in the formula
                best = blocks[n, c, 0, l]
                for j in range(1, g.kernel_volume):
                    # a NaN wins, as in torch (and a NaN never compares greater)
                    if blocks[n, c, j, l] > best or np.isnan(blocks[n, c, j, l]):
                        best = blocks[n, c, j, l]
                out[n, c, l] = best
    return out.reshape((g.batch, g.channels) + g.blocks)


def lowest(dtype):
    """The value padding takes in max pooling: -inf, or the integer minimum."""
    dtype = np.dtype(dtype)
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def _position(g, block, offset):
    return tuple(s * i - p + d * j
                 for s, i, p, d, j in zip(g.stride, block, g.padding, g.dilation, offset))


def _inside(pos, size):
    return all(0 <= q < n for q, n in zip(pos, size))
