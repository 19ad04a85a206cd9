"""gather and scatter_add from torch's advanced indexing (no torch.gather / scatter_add)."""

from __future__ import annotations

import torch

from refs.checks.indexing import check_gather, check_index_values, check_scatter_add


def gather(input: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """``out[i, j, k] = input[i, index[i, j, k], k]`` (``dim=1``), as ``refs.gather``.

    Built as ``input[coords]`` where ``coords`` puts ``index`` on ``dim`` and a
    broadcast ``arange`` on every other dim: one indexing kernel, differentiable,
    and the index values are checked on the host before it runs.

    >>> gather(torch.tensor([[1, 2], [3, 4]]), 1, torch.tensor([[0, 0], [1, 0]]))
    tensor([[1, 1],
            [4, 3]])
    """
    d = check_gather(input, dim, index)
    check_index_values("gather", index, d, _size(input, d), _bounds(index))
    if input.dim() == 0:
        return input.clone()
    return input[_coords(index, d)]


def scatter_add(
    input: torch.Tensor, dim: int, index: torch.Tensor, src: torch.Tensor
) -> torch.Tensor:
    """``out = input.clone(); out[i, index[i, j, k], k] += src[i, j, k]`` (``dim=1``).

    ``index_put`` with ``accumulate=True`` makes duplicates add up; only the
    index-shaped corner of ``src`` is read.

    >>> scatter_add(torch.zeros(3), 0, torch.tensor([0, 2, 0]), torch.tensor([1.0, 2.0, 3.0]))
    tensor([4., 0., 2.])
    """
    d = check_scatter_add(input, dim, index, src)
    check_index_values("scatter_add", index, d, _size(input, d), _bounds(index))
    if input.dim() == 0:
        return input + src
    corner = src[tuple(slice(0, n) for n in index.shape)]
    return input.index_put(_coords(index, d), corner, accumulate=True)


def _size(a: torch.Tensor, d: int) -> int:
    return a.shape[d] if a.dim() else 1


def _bounds(index: torch.Tensor):
    # One reduction and one host sync: the price of never reaching a device assert.
    if index.numel() == 0:
        return None
    if index.dtype == torch.uint8 or not index.dtype.is_signed:
        index = index.to(torch.int64)
    lo, hi = torch.aminmax(index)
    return lo.item(), hi.item()


def _coords(index: torch.Tensor, dim: int) -> tuple[torch.Tensor, ...]:
    """Index tensors that address ``index``'s positions with ``index`` on ``dim``."""
    if index.dtype not in (torch.int64, torch.int32):
        index = index.to(torch.int64)  # uint8 would be read as a boolean mask
    rank = index.dim()
    coords = []
    for d, n in enumerate(index.shape):
        if d == dim:
            coords.append(index)
        else:
            view = [1] * rank
            view[d] = n
            coords.append(torch.arange(n, device=index.device).view(view))
    return tuple(coords)
