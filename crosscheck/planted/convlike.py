"""Planted wrong unfolds, folds, convs and max-pools; each must be caught by a property of its op.

Each validates its arguments first, as the contract asks, and takes unbatched inputs as the
op does (computing on ``input[None]``), so that it is wrong only where its bug is.
"""

from __future__ import annotations

import math

import numpy as np

import refs
from crosscheck.optable import Plant
from refs.checks.convlike import check_conv, check_fold, check_max_pool, check_unfold


def unfold_kernel_major(input, kernel_size, dilation=1, padding=0, stride=1):
    g = check_unfold(input, kernel_size, dilation, padding, stride)
    cols = refs.unfold(input, kernel_size, dilation, padding, stride)
    blocks = cols.reshape(g.batch, g.channels, g.kernel_volume, g.num_blocks)
    return blocks.transpose(0, 2, 1, 3).reshape(cols.shape)  # rows K-major: (k, c)


def _batched(x, g):
    return x[None] if g.unbatched else x


def _unbatched(out, g):
    return out[0] if g.unbatched else out


def unfold_pads_one_side(input, kernel_size, dilation=1, padding=0, stride=1):
    g = check_unfold(input, kernel_size, dilation, padding, stride)
    padded = np.pad(_batched(input, g), [(0, 0), (0, 0)] + [(0, 2 * p) for p in g.padding])
    return _unbatched(refs.unfold(padded, g.kernel_size, g.dilation, 0, g.stride), g)


def unfold_drops_last_block(input, kernel_size, dilation=1, padding=0, stride=1):
    g = check_unfold(input, kernel_size, dilation, padding, stride)
    # L_d = floor((size + 2p - d(k-1) - 1) / s), the "+ 1" forgotten
    blocks = tuple(max(b - 1, 0) for b in g.blocks)
    cols = refs.unfold(_batched(input, g), g.kernel_size, g.dilation, g.padding, g.stride)
    keep = cols.reshape(cols.shape[:2] + g.blocks)[(..., *(slice(0, b) for b in blocks))]
    return _unbatched(keep.reshape(cols.shape[:2] + (math.prod(blocks),)), g)


def fold_last_write_wins(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    g = check_fold(input, output_size, kernel_size, dilation, padding, stride)
    input = _batched(input, g)
    out = np.zeros((g.batch, g.channels) + g.size, input.dtype)
    K = g.kernel_volume
    for n in range(g.batch):
        for c in range(g.channels):
            for j, offset in enumerate(np.ndindex(*g.kernel_size)):
                for l, block in enumerate(np.ndindex(*g.blocks)):  # noqa: E741 - l as in the formula
                    pos = tuple(s * i - p + d * o for s, i, p, d, o in
                                zip(g.stride, block, g.padding, g.dilation, offset))
                    if all(0 <= q < m for q, m in zip(pos, g.size)):
                        out[(n, c) + pos] = input[n, c * K + j, l]  # = where += belongs
    return _unbatched(out, g)


def fold_crops_wrong_side(input, output_size, kernel_size, dilation=1, padding=0,
                                   stride=1):
    g = check_fold(input, output_size, kernel_size, dilation, padding, stride)
    full = refs.fold(input, g.padded, g.kernel_size, g.dilation, 0, g.stride)
    return full[(..., *(slice(0, n) for n in g.size))]  # should start at padding


def conv_ignores_groups(input, weight, bias=None, stride=1, padding=0, dilation=1,
                                 groups=1):
    cg = check_conv(input, weight, bias, stride, padding, dilation, groups)
    axis = 0 if cg.blocks.unbatched else 1  # the channels
    first = np.take(input, range(input.shape[axis] // cg.groups), axis=axis)
    # every group reads group 0's channels
    return refs.conv(np.concatenate([first] * cg.groups, axis=axis), weight, bias, stride,
                     padding, dilation, groups)


def conv_ignores_dilation(input, weight, bias=None, stride=1, padding=0, dilation=1,
                                   groups=1):
    check_conv(input, weight, bias, stride, padding, dilation, groups)
    return refs.conv(input, weight, bias, stride, padding, 1, groups)


def max_pool_zero_padding(input, kernel_size, stride=None, padding=0, dilation=1):
    g = check_max_pool(input, kernel_size, stride, padding, dilation)
    pad = [(0, 0), (0, 0)] + [(p, p) for p in g.padding]
    padded = np.pad(_batched(input, g), pad)  # 0, not -inf
    return _unbatched(refs.max_pool(padded, g.kernel_size, g.stride, 0, g.dilation), g)


def max_pool_stride_one(input, kernel_size, stride=None, padding=0, dilation=1):
    check_max_pool(input, kernel_size, stride, padding, dilation)
    return refs.max_pool(input, kernel_size, 1 if stride is None else stride, padding, dilation)


# --- wrong only where the regression run goes ---------------------------------------


def torch_max_pool_misreads_channels_last(input, kernel_size, stride=None, padding=0,
                                          dilation=1):
    """torch_impl.max_pool, except that an input stored channels_last (and not also plain
    contiguous, as a one-channel image can be) is read as if its storage were row-major:
    the shape of pytorch/pytorch#109586 and #67239, where only the memory format changed."""
    import torch

    import torch_impl

    if input.dim() in (4, 5):
        fmt = torch.channels_last if input.dim() == 4 else torch.channels_last_3d
        if input.is_contiguous(memory_format=fmt) and not input.is_contiguous():
            row_major = [1] * input.dim()
            for d in range(input.dim() - 2, -1, -1):
                row_major[d] = row_major[d + 1] * input.shape[d + 1]
            input = input.as_strided(input.shape, row_major, input.storage_offset())
    return torch_impl.max_pool(input, kernel_size, stride, padding, dilation)


PLANTED = (
    Plant("unfold", "kernel-major rows instead of channel-major", unfold_kernel_major),
    Plant("unfold", "all the padding on one side", unfold_pads_one_side),
    Plant("unfold", "output size off by one (last block dropped)", unfold_drops_last_block),
    Plant("fold", "overlaps overwrite (last write wins)", fold_last_write_wins),
    Plant("fold", "padding cropped from the wrong side", fold_crops_wrong_side),
    Plant("conv", "groups ignored (all read group 0)", conv_ignores_groups),
    Plant("conv", "dilation ignored", conv_ignores_dilation),
    Plant("max_pool", "pads with 0 instead of -inf", max_pool_zero_padding),
    Plant("max_pool", "default stride 1 instead of kernel_size", max_pool_stride_one),
    Plant("max_pool", "reads a channels_last input as row-major",
          torch_max_pool_misreads_channels_last, "torch", axis="layout:channels_last"),
)
