"""Where the natives differ from our three -- a bad index (API.md), a tied max -- documented by test.

CPU only: on CUDA, torch.gather with an out-of-range index ends in a device-side
assert that poisons the process, which is exactly why our implementations check
first; that case is documented in the README, not run.
"""

from __future__ import annotations

import numpy as np
import pytest

import refs
from crosscheck.backends import Backend

X = np.arange(6.0).reshape(2, 3)
BAD = np.array([[0, 3], [1, 0]])  # 3 is out of range for dim 1 of size 3
NEG = np.array([[0, -1], [1, 0]])


def test_ours_raise_index_error(require_backend):
    with pytest.raises(IndexError, match=r"gather\(\): index\[0, 1\] = 3 is out of range"):
        refs.gather(X, 1, BAD)
    with pytest.raises(IndexError, match="negative indices are not wrapped"):
        refs.gather(X, 1, NEG)


def test_torch_gather_raises_runtime_error_not_index_error(require_backend):
    require_backend(Backend("torch-cpu"))
    import torch

    with pytest.raises(RuntimeError, match="out of bounds") as info:
        torch.gather(torch.tensor(X), 1, torch.tensor(BAD))
    assert not isinstance(info.value, IndexError)
    with pytest.raises(RuntimeError, match="out of bounds"):  # torch#55143: negatives too
        torch.gather(torch.tensor(X), 1, torch.tensor(NEG))


def test_jnp_take_along_axis_fills_nan_and_wraps_negatives(require_backend):
    require_backend(Backend("jax-cpu"))
    import jax.numpy as jnp

    out = np.asarray(jnp.take_along_axis(jnp.asarray(X), jnp.asarray(BAD), 1))
    assert np.isnan(out[0, 1])  # silently NaN, no error
    wrapped = np.asarray(jnp.take_along_axis(jnp.asarray(X), jnp.asarray(NEG), 1))
    assert wrapped[0, 1] == X[0, 2]  # -1 read the last element


def test_jax_at_add_drops_out_of_range_updates(require_backend):
    require_backend(Backend("jax-cpu"))
    import jax.numpy as jnp

    out = jnp.zeros(3).at[jnp.array([0, 5])].add(jnp.array([1.0, 2.0]))
    np.testing.assert_array_equal(np.asarray(out), [1.0, 0.0, 0.0])  # the 2.0 vanished


def test_numpy_wraps_negative_indices():
    np.testing.assert_array_equal(np.take_along_axis(X, NEG, 1)[0, 1], X[0, 2])


def test_numpy_fancy_index_add_loses_duplicates_where_scatter_add_counts():
    out = np.zeros(3)
    out[np.array([0, 0, 0])] += 1.0  # buffered: one add, not three
    assert out[0] == 1.0
    assert refs.scatter_add(np.zeros(3), 0, np.array([0, 0, 0]), np.ones(3))[0] == 3.0


def test_jax_impl_under_jit_fills_instead_of_reading_out_of_bounds(require_backend):
    """With a traced index nothing can be checked before the kernel: NaN, never garbage."""
    require_backend(Backend("jax-cpu"))
    import jax

    from crosscheck import jax_impl

    out = jax.jit(jax_impl.gather, static_argnums=1)(X, 1, BAD)
    assert np.isnan(np.asarray(out)[0, 1])
    with pytest.raises(IndexError):  # the same call, eager: the index is concrete
        jax_impl.gather(X, 1, BAD)


def test_max_pool_gradient_at_a_tie_is_a_choice(require_backend):
    """At a tie the max has no gradient, only subgradients, and the frameworks pick differently.

    The natives (``F.max_pool1d``, ``lax.reduce_window``'s select-and-scatter) give the whole
    cotangent to the first maximal element; ours, built as unfold + ``amax`` / ``jnp.max``,
    split it evenly between the tied elements. Both are valid subgradients, so the suite's
    gradient properties draw distinct values (``crosscheck/ops/convlike.py``) or, for the
    capture network, cases clear of ties (``tests/test_capture.py``).
    """
    require_backend(Backend("torch-cpu"))
    require_backend(Backend("jax-cpu"))
    import jax
    import jax.numpy as jnp
    import torch
    import torch.nn.functional as F
    from jax import lax

    import torch_impl
    from crosscheck import jax_impl

    x = np.array([[[1.0, 3.0, 3.0, 2.0]]])  # one window of 4, tied maximum at 1 and 2
    first, split = [[[0.0, 1.0, 0.0, 0.0]]], [[[0.0, 0.5, 0.5, 0.0]]]

    def torch_grad(pool):
        t = torch.tensor(x, requires_grad=True)
        pool(t).sum().backward()
        return t.grad.numpy()

    def jax_grad(pool):
        return np.asarray(jax.grad(lambda a: pool(a).sum())(jnp.asarray(x)))

    np.testing.assert_array_equal(torch_grad(lambda t: F.max_pool1d(t, 4)), first)
    np.testing.assert_array_equal(
        jax_grad(lambda a: lax.reduce_window(a, -jnp.inf, lax.max, (1, 1, 4), (1, 1, 4), "VALID")), first)
    np.testing.assert_array_equal(torch_grad(lambda t: torch_impl.max_pool(t, 4)), split)
    np.testing.assert_array_equal(jax_grad(lambda a: jax_impl.max_pool(a, 4)), split)
