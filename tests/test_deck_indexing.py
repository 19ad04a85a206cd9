"""The deck's "Gather" and "Scatter (Add)" slides, run as written, against all three."""

from __future__ import annotations

import numpy as np
import pytest

import refs
from crosscheck.backends import Backend
from crosscheck.ops import BY_NAME
from crosscheck.optable import Case, Target

IMPLS = [("refs", "numpy"), ("torch_impl", "torch-cpu"), ("jax_impl", "jax-cpu")]


def _run(op, impl, backend, *args):
    target = Target(BY_NAME[op], impl, Backend(backend))
    return target.call(Case(args))


@pytest.mark.parametrize(("impl", "backend"), IMPLS)
@pytest.mark.parametrize(("dim", "index_shape"), [(0, (1, 4, 6)), (1, (4, 10, 6))])
def test_gather_slides(impl, backend, dim, index_shape, require_backend):
    require_backend(Backend(backend))
    rng = np.random.default_rng(dim)
    src = rng.random((4, 4, 6)).astype(np.float32)
    index = rng.integers(0, 4, size=index_shape)
    # naive, exactly as on the slide
    out = np.zeros(index_shape, dtype=np.float32)
    for i in range(index_shape[0]):
        for j in range(index_shape[1]):
            for k in range(index_shape[2]):
                read = [i, j, k]
                read[dim] = index[i, j, k]
                out[i, j, k] = src[tuple(read)]
    np.testing.assert_array_equal(_run("gather", impl, backend, src, dim, index), out)


@pytest.mark.parametrize(("impl", "backend"), IMPLS)
@pytest.mark.parametrize(("dim", "src_shape"), [(0, (1, 4, 6)), (1, (4, 10, 6))])
def test_scatter_add_slides(impl, backend, dim, src_shape, require_backend):
    require_backend(Backend(backend))
    rng = np.random.default_rng(10 + dim)
    src = rng.integers(-5, 5, size=src_shape).astype(np.float32)  # integer-valued: any order is exact
    index = rng.integers(0, 4, size=src_shape)
    out = np.zeros((4, 4, 6), dtype=np.float32)
    for i in range(src_shape[0]):
        for j in range(src_shape[1]):
            for k in range(src_shape[2]):
                write = [i, j, k]
                write[dim] = index[i, j, k]
                out[tuple(write)] += src[i, j, k]
    zeros = np.zeros((4, 4, 6), dtype=np.float32)
    np.testing.assert_array_equal(_run("scatter_add", impl, backend, zeros, dim, index, src), out)


def test_scatter_add_is_the_backward_of_gather_as_the_slide_says(require_backend):
    require_backend(Backend("torch-cpu"))
    import torch

    import torch_impl

    src = torch.rand(4, 4, 6, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 4, (4, 10, 6))
    torch_impl.gather(src, 1, index).sum().backward()
    counts = refs.scatter_add(np.zeros((4, 4, 6)), 1, index.numpy(), np.ones((4, 10, 6)))
    np.testing.assert_array_equal(src.grad.numpy(), counts)
