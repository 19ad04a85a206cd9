"""gather and scatter_add as single ``lax.gather`` / ``lax.scatter_add`` calls.

gather reads with XLA's batching dims (every dim but ``dim`` is a batch dim, as
in ``take_along_axis``); scatter_add adds into the flattened input at row-major
offsets ``index * stride[dim] + sum_{d != dim} coord_d * stride[d]`` (XLA's
batched scatter is several times slower on CPU). No Python loop over elements,
``jax.jit``-compatible, differentiable in the data.

Index values are checked on the host whenever they are concrete (one fused
min/max pass); then the kernel runs with ``mode=PROMISE_IN_BOUNDS``. Under
``jit`` with a traced index nothing can be checked before the kernel, so the
kernel falls back to ``FILL_OR_DROP`` (a bad index reads NaN / the integer
minimum and its update is dropped, never touching memory out of bounds). Wrap
the jitted function in ``checkify.checkify(..., errors=checkify.index_checks)``
to turn those into errors.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from crosscheck.jax_impl._framework import as_array, on_host
from refs.checks.indexing import check_gather, check_index_values, check_scatter_add


def gather(input, dim, index):
    """``out[i, j, k] = input[i, index[i, j, k], k]`` (``dim=1``), as ``refs.gather``.

    >>> gather(jnp.array([[1, 2], [3, 4]]), 1, jnp.array([[0, 0], [1, 0]])).tolist()
    [[1, 1], [4, 3]]
    """
    input, index = as_array(input), as_array(index)
    d = check_gather(input, dim, index)
    mode = _checked_mode("gather", index, d, _size(input, d))
    return _gather(input, index, d, mode)


def scatter_add(input, dim, index, src):
    """``out = input.copy(); out[i, index[i, j, k], k] += src[i, j, k]`` (``dim=1``).

    >>> scatter_add(jnp.zeros(3), 0, jnp.array([0, 2, 0]), jnp.array([1.0, 2.0, 3.0])).tolist()
    [4.0, 0.0, 2.0]
    """
    input, index, src = as_array(input), as_array(index), as_array(src)
    d = check_scatter_add(input, dim, index, src)
    mode = _checked_mode("scatter_add", index, d, _size(input, d))
    return _scatter_add(input, index, src, d, mode)


def _size(a, d):
    return a.shape[d] if a.ndim else 1


#: the largest index whose bounds NumPy reads on the host: NumPy's min and max read it
#: twice, XLA's variadic reduction once; measured on the 2-core CPU, NumPy took half the
#: time up to 2**21 int64 elements (0.26 vs 0.52 ms at 2**20) and more from 2**22 on
#: (3.7 vs 3.0 ms; 6.6 vs 3.2 ms at 8M)
HOST_BOUNDS_MAX = 2**21


def _checked_mode(fn, index, dim, size):
    if isinstance(index, jax.core.Tracer):
        return lax.GatherScatterMode.FILL_OR_DROP
    if index.size == 0:
        bounds = None
    elif index.size <= HOST_BOUNDS_MAX and on_host(index):
        # a small host array is read where it lies, with no reduction program to compile
        # for its shape (~20 ms each time a new shape comes, as in the cross-check)
        host = np.asarray(index)
        bounds = (host.min(), host.max())
    else:  # reduced on its device: one pass, and two numbers cross to the host
        bounds = _minmax(index)
    check_index_values(fn, index, dim, size, bounds)
    return lax.GatherScatterMode.PROMISE_IN_BOUNDS


@jax.jit
def _minmax(index):
    # one variadic reduction: min and max in a single pass over the index
    return lax.reduce(
        (index, index),
        (jnp.array(jnp.iinfo(index.dtype).max, index.dtype),
         jnp.array(jnp.iinfo(index.dtype).min, index.dtype)),
        lambda a, b: (jnp.minimum(a[0], b[0]), jnp.maximum(a[1], b[1])),
        tuple(range(index.ndim)),
    )


@partial(jax.jit, static_argnums=(2, 3))
def _gather(input, index, dim, mode):
    if input.ndim == 0:
        return input
    batch = tuple(d for d in range(input.ndim) if d != dim)
    # batch dims must match in size: read only the index-shaped part of input
    cropped = input[tuple(slice(None) if d == dim else slice(0, n) for d, n in enumerate(index.shape))]
    dnums = lax.GatherDimensionNumbers(
        offset_dims=(),
        collapsed_slice_dims=(dim,),
        start_index_map=(dim,),
        operand_batching_dims=batch,
        start_indices_batching_dims=batch,
    )
    return lax.gather(cropped, index[..., None], dnums, slice_sizes=(1,) * input.ndim, mode=mode)


@partial(jax.jit, static_argnums=(3, 4))
def _scatter_add(input, index, src, dim, mode):
    if input.ndim == 0:
        return input + src
    corner = src[tuple(slice(0, n) for n in index.shape)]
    dnums = lax.ScatterDimensionNumbers(
        update_window_dims=(), inserted_window_dims=(0,), scatter_dims_to_operand_dims=(0,)
    )
    offsets = _flat_offsets(index, dim, input.shape)[..., None]
    flat = lax.scatter_add(input.reshape(-1), offsets, corner, dnums, mode=mode)
    return flat.reshape(input.shape)


def _flat_offsets(index, dim, shape):
    """Row-major offsets into an array of ``shape`` for every element of ``index``."""
    dtype = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    strides = [int(np.prod(shape[d + 1 :])) for d in range(len(shape))]
    offsets = index.astype(dtype) * strides[dim]
    for d in range(index.ndim):  # a fixed, small number of dims
        if d != dim:
            offsets = offsets + lax.broadcasted_iota(dtype, index.shape, d) * strides[d]
    return offsets
