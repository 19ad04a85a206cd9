"""gather and scatter_add from flat offsets + ``take`` / ``index_add`` (no gather/scatter).

Both ops address one element of ``input`` per element of ``index``. Its flat
(row-major) offset is ``index * stride[dim] + sum_{d != dim} coord_d * stride[d]``,
where ``coord_d`` is the element's own position on dim ``d``: one broadcast add
over the index, then one ``take`` (gather) or one ``index_add`` (scatter_add,
which accumulates duplicates). Index values are checked on the host first, so a
bad index never reaches a kernel (on CUDA that would be a device-side assert).
"""

from __future__ import annotations

import torch

from torch_impl._host import check_gather, check_index_values, check_scatter_add, require_array


def gather(input: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """``out[i, j, k] = input[i, index[i, j, k], k]`` (``dim=1``), as ``refs.gather``.

    >>> gather(torch.tensor([[1, 2], [3, 4]]), 1, torch.tensor([[0, 0], [1, 0]]))
    tensor([[1, 1],
            [4, 3]])
    """
    require_array("gather", "input", input, torch.Tensor)
    require_array("gather", "index", index, torch.Tensor)
    d = check_gather(input, dim, index)
    check_index_values("gather", index, d, _size(input, d), _bounds(index))
    if input.dim() == 0:
        return input.clone()
    return input.take(_flat_offsets(index, d, input.shape))


def scatter_add(
    input: torch.Tensor, dim: int, index: torch.Tensor, src: torch.Tensor
) -> torch.Tensor:
    """``out = input.clone(); out[i, index[i, j, k], k] += src[i, j, k]`` (``dim=1``).

    Only the index-shaped corner of ``src`` is read; duplicates add up.

    >>> scatter_add(torch.zeros(3), 0, torch.tensor([0, 2, 0]), torch.tensor([1.0, 2.0, 3.0]))
    tensor([4., 0., 2.])
    """
    for arg, value in (("input", input), ("index", index), ("src", src)):
        require_array("scatter_add", arg, value, torch.Tensor)
    d = check_scatter_add(input, dim, index, src)
    check_index_values("scatter_add", index, d, _size(input, d), _bounds(index))
    if input.dim() == 0:
        return input + src
    corner = src[tuple(slice(0, n) for n in index.shape)]
    offsets = _flat_offsets(index, d, input.shape).reshape(-1)
    flat = input.reshape(-1).index_add(0, offsets, corner.reshape(-1))
    return flat.view(input.shape)


def _size(a: torch.Tensor, d: int) -> int:
    return a.shape[d] if a.dim() else 1


def _bounds(index: torch.Tensor):
    # One reduction and one host sync: the price of never reaching a device assert.
    if index.numel() == 0:
        return None
    lo, hi = torch.aminmax(index if index.dtype.is_signed else index.to(torch.int64))
    return lo.item(), hi.item()


def _flat_offsets(index: torch.Tensor, dim: int, shape: torch.Size) -> torch.Tensor:
    """Row-major offsets into a tensor of ``shape`` for every element of ``index``."""
    strides = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    # not 0-d, so that int64 wins the type promotion against an int32 / uint8 index
    base = torch.zeros([1] * index.dim(), dtype=torch.int64, device=index.device)
    for d, n in enumerate(index.shape):  # a fixed, small number of dims
        if d != dim:
            view = [1] * index.dim()
            view[d] = n
            base = base + torch.arange(n, device=index.device).view(view) * strides[d]
    return torch.add(base, index, alpha=strides[dim])
