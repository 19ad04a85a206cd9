"""unfold / fold / conv / max_pool from strided views (no F.unfold, F.fold, F.conv*, F.max_pool*).

``unfold`` pads once and reads the blocks through one ``as_strided`` view of
shape ``(N, C, *kernel_size, *blocks)``: kernel offset ``j`` and block ``i``
land on ``stride * i + dilation * j`` of the padded image, which is a strided
address, so the only copy is the final ``reshape`` into ``(N, C * K, L)``.
``fold`` is its adjoint: one strided ``add_`` per kernel offset (a fixed, small
count, independent of the data), then a crop of the padding. ``conv`` and
``max_pool`` are the deck's "extract blocks, apply an op, combine": unfold
plus a batched matrix product, unfold plus ``amax``.

An unbatched input (``(C, *size)``; ``(C * K, L)`` for ``fold``) runs as
``input[None]`` and loses the batch dim again, as in torch; the spatial rank is
read as in :mod:`refs.checks.convlike` (``conv``: from ``weight``; ``unfold`` /
``max_pool``: ``spatial_dims``, else a tuple argument, else ``input.ndim - 2``;
``fold``: its first tuple argument, else 2).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from refs.checks.convlike import Geometry
from torch_impl._host import check_conv, check_fold, check_max_pool, check_unfold, require_array
from torch_impl.einsum import integer_matmul


def unfold(input: torch.Tensor, kernel_size, dilation=1, padding=0, stride=1, *,
           spatial_dims=None) -> torch.Tensor:
    """``out[n, c * K + j, l] = input[n, c, stride * i - padding + dilation * j]``, as ``refs.unfold``.

    ``input`` is ``(N, C, *size)``, or ``(C, *size)`` unbatched (then the result
    is ``(C * K, L)``); the spatial rank is ``spatial_dims``, else the length of
    the tuple arguments, else ``input.ndim - 2``.

    >>> unfold(torch.arange(4).reshape(1, 1, 4), kernel_size=2, stride=2)
    tensor([[[0, 2],
             [1, 3]]])
    >>> unfold(torch.zeros(3, 3, 4), kernel_size=(2, 2)).shape  # one (C, H, W) image
    torch.Size([12, 6])
    """
    require_array("unfold", "input", input, torch.Tensor)
    g = check_unfold(input, kernel_size, dilation, padding, stride, spatial_dims=spatial_dims)
    x = input[None] if g.unbatched else input
    out = _blocks(_pad(x, g.padding, 0), g).reshape(g.batch, g.channels * g.kernel_volume,
                                                      g.num_blocks)
    return out[0] if g.unbatched else out


def fold(input: torch.Tensor, output_size, kernel_size, dilation=1, padding=0,
         stride=1) -> torch.Tensor:
    """``out[n, c, stride * i - padding + dilation * j] += input[n, c * K + j, l]``, as ``refs.fold``.

    ``input`` is ``(N, C * K, L)``, or ``(C * K, L)`` unbatched (then the result
    is ``(C, *output_size)``); the spatial rank is the length of the first tuple
    argument, else 2.

    >>> fold(torch.ones(1, 4, 6), (3, 4), kernel_size=2)[0, 0]
    tensor([[1., 2., 2., 1.],
            [2., 4., 4., 2.],
            [1., 2., 2., 1.]])
    """
    require_array("fold", "input", input, torch.Tensor)
    g = check_fold(input, output_size, kernel_size, dilation, padding, stride)
    if g.unbatched:  # as torch: a batch of one, its batch dim dropped
        return fold(input[None], g.size, g.kernel_size, g.dilation, g.padding, g.stride)[0]
    if input.numel() == 0:
        # nothing to add; and Inductor (torch 2.13, dynamic=True) fails to compile the strided
        # add_ below on an empty input ("AssertionError: 2 not in VR[0, 0]")
        # (the sum of no element: a zero that keeps the result in input's autograd graph)
        return input.sum(dtype=input.dtype).expand((g.batch, g.channels) + g.size).contiguous()
    cols = input.reshape((g.batch, g.channels) + g.kernel_size + g.blocks)
    out = input.new_zeros((g.batch, g.channels) + g.padded)
    for offset in itertools.product(*map(range, g.kernel_size)):
        # every block's element at this offset: one strided slice of the padded image
        where = tuple(slice(d * j, d * j + s * (b - 1) + 1, s)
                      for d, j, s, b in zip(g.dilation, offset, g.stride, g.blocks))
        out[(slice(None), slice(None)) + where].add_(cols[(slice(None), slice(None)) + offset])
    return out[(slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in
                                                  zip(g.padding, g.size))]


def conv(input: torch.Tensor, weight: torch.Tensor, bias=None, stride=1, padding=0, dilation=1,
         groups=1) -> torch.Tensor:
    """Cross-correlation as unfold + one batched matrix product per group, as ``refs.conv``.

    The spatial rank is ``weight.ndim - 2``; ``input`` is ``(N, C_in, *size)``,
    or ``(C_in, *size)`` unbatched (then the result is ``(C_out, *blocks)``).

    >>> conv(torch.arange(5.0).reshape(1, 1, 5), torch.tensor([[[1.0, -1.0]]]))
    tensor([[[-1., -1., -1., -1.]]])
    """
    require_array("conv", "input", input, torch.Tensor)
    require_array("conv", "weight", weight, torch.Tensor)
    require_array("conv", "bias", bias, torch.Tensor, optional=True)
    cg = check_conv(input, weight, bias, stride, padding, dilation, groups)
    g, G = cg.blocks, cg.groups
    if g.unbatched:  # as torch: a batch of one, its batch dim dropped
        return conv(input[None], weight, bias, g.stride, g.padding, g.dilation, groups)[0]
    rows = g.channels // G * g.kernel_volume
    # channel-major rows: the rows of group g are one contiguous range
    cols = unfold(input, g.kernel_size, g.dilation, g.padding, g.stride)
    cols = cols.reshape(g.batch, G, rows, g.num_blocks)
    w = weight.reshape(G, cg.out_channels // G, rows)
    out = _matmul(w, cols).reshape((g.batch, cg.out_channels) + g.blocks)
    if bias is not None:
        out = out + bias.reshape((cg.out_channels,) + (1,) * g.spatial_dims)
    return out


def max_pool(input: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1, *,
             spatial_dims=None) -> torch.Tensor:
    """Max over each block of the input padded with -inf (the integer minimum for ints).

    ``input`` is ``(N, C, *size)``, or ``(C, *size)`` unbatched; the spatial
    rank is read as in :func:`unfold`.

    >>> max_pool(torch.tensor([[[-3.0, -1.0, -2.0]]]), kernel_size=2, stride=1, padding=1)
    tensor([[[-3., -1., -1., -2.]]])
    """
    require_array("max_pool", "input", input, torch.Tensor)
    g = check_max_pool(input, kernel_size, stride, padding, dilation, spatial_dims=spatial_dims)
    x = input[None] if g.unbatched else input
    low = float("-inf") if x.dtype.is_floating_point else torch.iinfo(x.dtype).min
    blocks = _blocks(_pad(x, g.padding, low), g)  # (N, C, *kernel, *blocks)
    kernel_dims = tuple(range(2, 2 + g.spatial_dims))
    out = blocks.amax(dim=kernel_dims)
    return out[0] if g.unbatched else out


def _pad(x: torch.Tensor, padding, value) -> torch.Tensor:
    if not any(padding):
        return x
    # F.pad lists the last dim first
    return F.pad(x, [p for p in reversed(padding) for _ in (0, 1)], value=value)


def _blocks(x: torch.Tensor, g: Geometry) -> torch.Tensor:
    """The view ``(N, C, *kernel_size, *blocks)`` of the padded image ``x``; no copy.

    Built on ``x``'s own strides, so it is right for any strided ``x`` (a
    non-contiguous input needs no copy either).
    """
    n_stride, c_stride, *spatial = x.stride()
    size = (g.batch, g.channels) + g.kernel_size + g.blocks
    strides = ((n_stride, c_stride)
               + tuple(st * d for st, d in zip(spatial, g.dilation))
               + tuple(st * s for st, s in zip(spatial, g.stride)))
    return x.as_strided(size, strides, x.storage_offset())


def _matmul(w: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``(G, O, R) @ (N, G, R, L) -> (N, G, O, L)``.

    CUDA has no integer matrix product (``addmm_cuda`` is not implemented for
    integers), so integers on an accelerator multiply and sum instead, as
    ``einsum`` does: more memory, same exact result, same dtype.
    """
    if _integral_off_cpu(cols):
        return integer_matmul(w, cols)
    return torch.matmul(w, cols)


def _integral_off_cpu(x: torch.Tensor) -> bool:
    return not x.dtype.is_floating_point and x.device.type != "cpu"
