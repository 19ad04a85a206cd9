"""Planted wrong gathers and scatter_adds; each must be caught by a property of its op."""

from __future__ import annotations

import numpy as np

import refs
from crosscheck.ops.indexing import _crop, coordinates, jnp_take_along_axis, np_take_along_axis
from crosscheck.optable import Plant
from refs.checks.indexing import check_gather, check_index_values, check_scatter_add


def _swap_last(a):
    if a.ndim == 0:
        return a
    return a.swapaxes(-1, -2).reshape(a.shape) if a.ndim >= 2 else a[::-1]


def gather_index_transposed(input, dim, index):
    return refs.gather(input, dim, _swap_last(index))


def gather_output_transposed(input, dim, index):
    return _swap_last(refs.gather(input, dim, index))


def gather_off_by_one(input, dim, index):
    return refs.gather(input, dim, np.maximum(index.astype(np.int64) - 1, 0))


def gather_reads_neighbour_slice(input, dim, index):
    # the coordinate of another dim is off by one (wrapping): right shape, wrong values
    if input.ndim < 2:
        return refs.gather(input, dim, index)
    return refs.gather(np.roll(input, 1, axis=(dim + 1) % input.ndim), dim, index)


def gather_wraps_negative_index(input, dim, index):
    check_gather(input, dim, index)  # the static checks, but no look at the values
    return np_take_along_axis(input, dim, index)


def scatter_overwrites(input, dim, index, src):
    out = np.zeros_like(input)
    if input.ndim == 0:
        return src.copy()
    out[coordinates(np, index, dim % input.ndim)] = _crop(src, index.shape)
    return out


def scatter_buffered_add(input, dim, index, src):
    # NumPy's fancy-index ``+=`` is buffered: duplicates do not accumulate
    out = input.copy()
    if input.ndim == 0:
        return out + src
    out[coordinates(np, index, dim % input.ndim)] += _crop(src, index.shape)
    return out


def scatter_drops_input(input, dim, index, src):
    return refs.scatter_add(np.zeros_like(input), dim, index, src)


def scatter_reads_wrong_corner(input, dim, index, src):
    far = src[tuple(slice(s - n, s) for s, n in zip(src.shape, index.shape))]
    return refs.scatter_add(input, dim, index, far)


# --- wrong only where the regression run goes ---------------------------------------


def torch_gather_misreads_expanded_index(input, dim, index):
    """torch.gather, except that an expanded index (a stride of 0) reads ``input`` flipped
    along ``dim``: the shape of pytorch/pytorch#129093, where only the strides changed."""
    import torch

    from torch_impl.indexing import _bounds, _size

    # the real gather's checks first: the plant is wrong on its axis only
    d = check_gather(input, dim, index)
    check_index_values("gather", index, d, _size(input, d), _bounds(index))
    if 0 in index.stride() and index.numel() > 1:
        input = torch.flip(input, [dim])
    return torch.gather(input, dim, index if index.dtype != torch.uint8 else index.long())


def scatter_add_drops_last_update_when_large(input, dim, index, src):
    """np.add.at, except that for an input of 2**16 elements or more the last update is lost (the shape
    of a kernel that switches code path with the size)."""
    d = check_scatter_add(input, dim, index, src)
    check_index_values("scatter_add", index, d, input.shape[d] if input.ndim else 1)
    out = input.copy()
    if input.ndim == 0:
        return out + src
    where = coordinates(np, index, dim % input.ndim)
    values = _crop(src, index.shape).copy()
    if input.size >= 2**16:
        values.reshape(-1)[-1] = 0
    np.add.at(out, where, values)
    return out


def jax_gather_wrong_under_jit(input, dim, index):
    """jnp.take_along_axis, except when traced under jax.jit: then the index is off by one
    (the shape of a bug in one execution path only, jax-ml/jax#7229)."""
    import jax
    import jax.numpy as jnp

    from crosscheck.jax_impl.indexing import _checked_mode, _size

    d = check_gather(input, dim, index)
    _checked_mode("gather", index, d, _size(input, d))  # checks a concrete index's values
    if input.ndim == 0:
        return input
    if isinstance(index, jax.core.Tracer):
        index = jnp.clip(index - 1, 0, None)
    return jnp.take_along_axis(_crop(input, index.shape, dim % input.ndim), index, dim)


def jax_take_along_axis_wrong_eagerly(input, dim, index):
    """The table's jnp.take_along_axis, except when called eagerly (the index concrete, not
    traced): then the index is off by one. A native wrong only in JAX's op-by-op path, which
    the default run never takes (it calls JAX's natives under jax.jit)."""
    import jax
    import jax.numpy as jnp

    if not isinstance(index, jax.core.Tracer):
        index = jnp.clip(jnp.asarray(index) - 1, 0, None)
    return jnp_take_along_axis(input, dim, index)


PLANTED = (
    Plant("gather", "index transposed", gather_index_transposed),
    Plant("gather", "output transposed", gather_output_transposed),
    Plant("gather", "index off by one", gather_off_by_one),
    Plant("gather", "another dim's coordinate off by one", gather_reads_neighbour_slice),
    Plant("gather", "negative index wrapped silently", gather_wraps_negative_index),
    Plant("scatter_add", "overwrites instead of adding", scatter_overwrites),
    Plant("scatter_add", "buffered += (duplicates lost)", scatter_buffered_add),
    Plant("scatter_add", "starts from zeros, drops input", scatter_drops_input),
    Plant("scatter_add", "reads src from the far corner", scatter_reads_wrong_corner),
    Plant("gather", "misreads an expanded index", torch_gather_misreads_expanded_index,
          "torch", axis="layout:expanded"),
    Plant("scatter_add", "drops the last update past 2**16 elements",
          scatter_add_drops_last_update_when_large, axis="size:large"),
    Plant("gather", "index off by one under jax.jit", jax_gather_wrong_under_jit, "jax",
          axis="mode:jit"),
    Plant("gather", "jnp.take_along_axis off by one when called eagerly",
          jax_take_along_axis_wrong_eagerly, "jax", axis="mode:eager", stands_for="native"),
)
