"""Planted wrong unfolds, folds, convs and max-pools; each must be caught by a property of its op.

Each validates its arguments first, as the contract asks.
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


def unfold_pads_one_side(input, kernel_size, dilation=1, padding=0, stride=1):
    g = check_unfold(input, kernel_size, dilation, padding, stride)
    padded = np.pad(input, [(0, 0), (0, 0)] + [(0, 2 * p) for p in g.padding])
    return refs.unfold(padded, g.kernel_size, g.dilation, 0, g.stride)


def unfold_drops_last_block(input, kernel_size, dilation=1, padding=0, stride=1):
    g = check_unfold(input, kernel_size, dilation, padding, stride)
    # L_d = floor((size + 2p - d(k-1) - 1) / s), the "+ 1" forgotten
    blocks = tuple(max(b - 1, 0) for b in g.blocks)
    cols = refs.unfold(input, kernel_size, dilation, padding, stride)
    keep = cols.reshape(cols.shape[:2] + g.blocks)[(..., *(slice(0, b) for b in blocks))]
    return keep.reshape(cols.shape[:2] + (math.prod(blocks),))


def fold_last_write_wins(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    g = check_fold(input, output_size, kernel_size, dilation, padding, stride)
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
    return out


def fold_crops_wrong_side(input, output_size, kernel_size, dilation=1, padding=0,
                                   stride=1):
    g = check_fold(input, output_size, kernel_size, dilation, padding, stride)
    full = refs.fold(input, g.padded, g.kernel_size, g.dilation, 0, g.stride)
    return full[(..., *(slice(0, n) for n in g.size))]  # should start at padding


def conv_ignores_groups(input, weight, bias=None, stride=1, padding=0, dilation=1,
                                 groups=1):
    cg = check_conv(input, weight, bias, stride, padding, dilation, groups)
    first = input[:, : input.shape[1] // cg.groups]  # every group reads group 0's channels
    return refs.conv(np.concatenate([first] * cg.groups, axis=1), weight, bias, stride, padding,
                     dilation, groups)


def conv_ignores_dilation(input, weight, bias=None, stride=1, padding=0, dilation=1,
                                   groups=1):
    check_conv(input, weight, bias, stride, padding, dilation, groups)
    return refs.conv(input, weight, bias, stride, padding, 1, groups)


def max_pool_zero_padding(input, kernel_size, stride=None, padding=0, dilation=1):
    g = check_max_pool(input, kernel_size, stride, padding, dilation)
    padded = np.pad(input, [(0, 0), (0, 0)] + [(p, p) for p in g.padding])  # 0, not -inf
    return refs.max_pool(padded, g.kernel_size, g.stride, 0, g.dilation)


def max_pool_stride_one(input, kernel_size, stride=None, padding=0, dilation=1):
    check_max_pool(input, kernel_size, stride, padding, dilation)
    return refs.max_pool(input, kernel_size, 1 if stride is None else stride, padding, dilation)


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
)
