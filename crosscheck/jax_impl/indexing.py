"""gather and scatter_add as single ``lax.gather`` / ``lax.scatter_add`` calls.

Each element of ``index`` becomes a full coordinate (``index`` on ``dim``, an
iota on every other dim), so one XLA gather or scatter does the work: no Python
loop over elements, ``jax.jit``-compatible, differentiable in the data.

Index values are checked on the host whenever they are concrete; then the
kernel runs with ``mode=PROMISE_IN_BOUNDS``. Under ``jit`` with a traced index
nothing can be checked before the kernel, so the kernel falls back to
``FILL_OR_DROP`` (a bad index reads NaN / the integer minimum and its update is
dropped, never touching memory out of bounds). Wrap the jitted function in
``checkify.checkify(..., errors=checkify.index_checks)`` to turn those into errors.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from refs.checks.indexing import check_gather, check_index_values, check_scatter_add


def gather(input, dim, index):
    """``out[i, j, k] = input[i, index[i, j, k], k]`` (``dim=1``), as ``refs.gather``.

    >>> gather(jnp.array([[1, 2], [3, 4]]), 1, jnp.array([[0, 0], [1, 0]])).tolist()
    [[1, 1], [4, 3]]
    """
    input, index = jnp.asarray(input), jnp.asarray(index)
    d = check_gather(input, dim, index)
    mode = _checked_mode("gather", index, d, _size(input, d))
    return _gather(input, index, d, mode)


def scatter_add(input, dim, index, src):
    """``out = input.copy(); out[i, index[i, j, k], k] += src[i, j, k]`` (``dim=1``).

    >>> scatter_add(jnp.zeros(3), 0, jnp.array([0, 2, 0]), jnp.array([1.0, 2.0, 3.0])).tolist()
    [4.0, 0.0, 2.0]
    """
    input, index, src = jnp.asarray(input), jnp.asarray(index), jnp.asarray(src)
    d = check_scatter_add(input, dim, index, src)
    mode = _checked_mode("scatter_add", index, d, _size(input, d))
    return _scatter_add(input, index, src, d, mode)


def _size(a, d):
    return a.shape[d] if a.ndim else 1


def _checked_mode(fn, index, dim, size):
    if isinstance(index, jax.core.Tracer):
        return lax.GatherScatterMode.FILL_OR_DROP
    bounds = None if index.size == 0 else _minmax(index)
    check_index_values(fn, index, dim, size, bounds)
    return lax.GatherScatterMode.PROMISE_IN_BOUNDS


@jax.jit
def _minmax(index):
    return jnp.min(index), jnp.max(index)


def _coordinates(index, dim):
    """``index.shape + (rank,)`` full coordinates: ``index`` on ``dim``, iotas elsewhere."""
    idx_dtype = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    index = index.astype(idx_dtype)
    columns = [
        index if d == dim else lax.broadcasted_iota(idx_dtype, index.shape, d)
        for d in range(index.ndim)
    ]
    return jnp.stack(columns, axis=-1)


def _dimension_numbers(rank):
    every = tuple(range(rank))
    gather = lax.GatherDimensionNumbers(
        offset_dims=(), collapsed_slice_dims=every, start_index_map=every
    )
    scatter = lax.ScatterDimensionNumbers(
        update_window_dims=(), inserted_window_dims=every, scatter_dims_to_operand_dims=every
    )
    return gather, scatter


@partial(jax.jit, static_argnums=(2, 3))
def _gather(input, index, dim, mode):
    if input.ndim == 0:
        return input
    dnums, _ = _dimension_numbers(input.ndim)
    return lax.gather(
        input, _coordinates(index, dim), dnums, slice_sizes=(1,) * input.ndim, mode=mode
    )


@partial(jax.jit, static_argnums=(3, 4))
def _scatter_add(input, index, src, dim, mode):
    if input.ndim == 0:
        return input + src
    corner = src[tuple(slice(0, n) for n in index.shape)]
    _, dnums = _dimension_numbers(input.ndim)
    return lax.scatter_add(input, _coordinates(index, dim), corner, dnums, mode=mode)
