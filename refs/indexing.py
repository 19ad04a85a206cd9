"""Gather and scatter-add as the loops on the course's "Gather" and "Scatter (Add)" slides."""

from __future__ import annotations

import numpy as np

from refs.checks.indexing import check_gather, check_index_values, check_scatter_add


def gather(input, dim, index):
    """Read ``input`` along ``dim`` at the positions ``index`` holds.

    For a 3-d input::

        out[i, j, k] = input[index[i, j, k], j, k]   # dim = 0
        out[i, j, k] = input[i, index[i, j, k], k]   # dim = 1
        out[i, j, k] = input[i, j, index[i, j, k]]   # dim = 2

    and the same for any rank: the output has ``index``'s shape, and each of
    its positions reads ``input`` at that position with the coordinate on
    ``dim`` replaced by the index value.

    Args:
        input: array of any rank and dtype.
        dim: the dim to gather along; negative counts from the end.
        index: integer array of ``input``'s rank; ``index.shape[d] <=
            input.shape[d]`` for ``d != dim``; values in ``[0, input.shape[dim])``.

    Raises:
        IndexError: an index value out of range (negative values included).
        TypeError: ``index`` not of an integer dtype.
        ValueError: ranks or sizes that do not fit, ``dim`` out of range.

    >>> gather(np.array([[1, 2], [3, 4]]), 1, np.array([[0, 0], [1, 0]]))
    array([[1, 1],
           [4, 3]])
    """
    input, index = np.asarray(input), np.asarray(index)
    d = check_gather(input, dim, index)
    check_index_values("gather", index, d, _size(input, d))
    out = np.zeros(index.shape, dtype=input.dtype)
    for pos in np.ndindex(*index.shape):
        read = list(pos)
        if read:
            read[d] = index[pos]
        out[pos] = input[tuple(read)]
    return out


def scatter_add(input, dim, index, src):
    """Add ``src`` into a copy of ``input`` at the positions ``index`` holds, along ``dim``.

    For a 3-d input, starting from ``out = input.copy()``::

        out[index[i, j, k], j, k] += src[i, j, k]   # dim = 0
        out[i, index[i, j, k], k] += src[i, j, k]   # dim = 1
        out[i, j, index[i, j, k]] += src[i, j, k]   # dim = 2

    for every position ``(i, j, k)`` of ``index``: duplicates in ``index`` add
    up, and only the index-shaped corner of ``src`` is read. It is the adjoint
    of :func:`gather`: ``<gather(x, d, i), y> == <x, scatter_add(0, d, i, y)>``.

    Args:
        input: array of any rank; the result has its shape and dtype.
        dim: the dim to scatter along; negative counts from the end.
        index: integer array of ``input``'s rank; ``index.shape[d] <=
            src.shape[d]`` for every ``d`` and ``<= input.shape[d]`` for
            ``d != dim``; values in ``[0, input.shape[dim])``.
        src: array of ``input``'s rank and dtype.

    Raises:
        IndexError: an index value out of range (negative values included).
        TypeError: ``index`` not of an integer dtype, ``src`` not of ``input``'s dtype.
        ValueError: ranks or sizes that do not fit, ``dim`` out of range.

    >>> scatter_add(np.zeros(3), 0, np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]))
    array([4., 0., 2.])
    """
    input, index, src = np.asarray(input), np.asarray(index), np.asarray(src)
    d = check_scatter_add(input, dim, index, src)
    check_index_values("scatter_add", index, d, _size(input, d))
    out = input.copy()
    for pos in np.ndindex(*index.shape):
        write = list(pos)
        if write:
            write[d] = index[pos]
        out[tuple(write)] += src[pos]
    return out


def _size(a, d):
    """Size of dim ``d``; a 0-d array counts as one element on its one dim."""
    return a.shape[d] if a.ndim else 1
