"""The deck's "Vectorization" examples, run on refs, torch_impl and jax_impl.

Each expected value comes from NumPy's own operators (``@``, broadcasting,
``np.einsum``) in float64, not from refs, so refs is checked here too.
"""

from __future__ import annotations

import numpy as np
import pytest

from crosscheck.backends import Backend
from crosscheck.compare import assert_close
from crosscheck.ops import BY_NAME
from crosscheck.optable import OURS, Case, Target
from crosscheck.tolerance import rounding_bound

B, N, K, M = 3, 4, 5, 6
SIZE_I, SIZE_J, SIZE_L, SIZE_M = 2, 3, 4, 5  # the third example's (K is shared)
BACKENDS = {"refs": "numpy", "torch_impl": "torch-cpu", "jax_impl": "jax-cpu"}


def _rand(*shape):
    return np.random.default_rng(sum(shape) + len(shape)).random(shape)


def _run(impl, op, *args, require_backend):
    backend = Backend(BACKENDS[impl])
    require_backend(backend)
    return Target(BY_NAME[op], impl, backend).call(Case(args))


def _check(actual, expected, shape, terms, magnitude):
    assert actual.dtype == np.float64
    assert actual.shape == shape
    assert_close(actual, expected, rounding_bound(np.float64, terms, magnitude))


IMPLS = pytest.mark.parametrize("impl", list(OURS))


@IMPLS
def test_einsum_matrix_vector(impl, require_backend):
    """``torch.einsum('ij,j', mat, vec)``: N."""
    mat, vec = _rand(N, M), _rand(M)
    out = _run(impl, "einsum", "ij,j", mat, vec, require_backend=require_backend)
    _check(out, mat @ vec, (N,), M, np.abs(mat) @ np.abs(vec))


@IMPLS
def test_einsum_bnk_bkm_implicit_sums_b(impl, require_backend):
    """``torch.einsum('bnk, bkm', mat1, mat2)``, with the deck's space and implicit output.

    The deck labels the result B×N×M, but in implicit mode ``b`` appears twice
    and is summed like ``k``; the output is the letters seen once, sorted:
    ``'mn'``, an M×N matrix. ``'bnk,bkm->bnm'`` is the batched product the deck means.
    """
    mat1, mat2 = _rand(B, N, K), _rand(B, K, M)
    out = _run(impl, "einsum", "bnk, bkm", mat1, mat2, require_backend=require_backend)
    expected = sum(mat1[b] @ mat2[b] for b in range(B)).T
    _check(out, expected, (M, N), B * K + 1, expected)  # nonnegative data: |terms| = terms
    batched = _run(impl, "einsum", "bnk,bkm->bnm", mat1, mat2, require_backend=require_backend)
    _check(batched, mat1 @ mat2, (B, N, M), K + 1, mat1 @ mat2)


@IMPLS
def test_einsum_three_operands(impl, require_backend):
    """``out[i, j, k] = sum_l sum_m x[i, k, m, l, j] * y[i, l, j, k] * z[i]``."""
    x, y, z = (_rand(SIZE_I, K, SIZE_M, SIZE_L, SIZE_J), _rand(SIZE_I, SIZE_L, SIZE_J, K),
               _rand(SIZE_I))
    out = _run(impl, "einsum", "ikmlj,iljk,i->ijk", x, y, z, require_backend=require_backend)
    expected = np.zeros((SIZE_I, SIZE_J, K))
    for i, j, k in np.ndindex(SIZE_I, SIZE_J, K):
        expected[i, j, k] = sum(x[i, k, m, l_, j] * y[i, l_, j, k] * z[i]
                                for l_ in range(SIZE_L) for m in range(SIZE_M))
    _check(out, expected, (SIZE_I, SIZE_J, K), 2 + SIZE_L * SIZE_M, expected)


@IMPLS
@pytest.mark.parametrize(
    ("a_shape", "b_shape", "out_shape"),
    [
        ((N, M), (M,), (N,)),  # mat @ vec
        ((N, K), (K, M), (N, M)),  # mat1 @ mat2
        ((B, N, K), (B, K, M), (B, N, M)),  # bmat1 @ bmat2
        ((B, N, K), (K, M), (B, N, M)),  # bmat1 @ mat2: one matrix for the whole batch
    ],
    ids=["mat@vec", "mat1@mat2", "bmat1@bmat2", "bmat1@mat2"],
)
def test_matmul_snippets(impl, a_shape, b_shape, out_shape, require_backend):
    a, b = _rand(*a_shape), _rand(*b_shape)
    out = _run(impl, "matmul", a, b, require_backend=require_backend)
    _check(out, a @ b, out_shape, a_shape[-1], a @ b)
    spelled = "...nk,km->...nm" if len(b_shape) == 2 else "...nk,...k->...n" if len(b_shape) == 1 \
        else "...nk,...km->...nm"
    via_einsum = _run(impl, "einsum", spelled, a, b, require_backend=require_backend)
    _check(via_einsum, a @ b, out_shape, a_shape[-1], a @ b)


@IMPLS
def test_broadcasting_n1_with_1m(impl, require_backend):
    """The deck's ``a + b`` with N×1 and 1×M gives N×M; einsum multiplies where ``+`` adds.

    ``'ij,ij->ij'`` broadcasts the size-1 dims exactly as ``a + b`` does, so
    the product equals ``a * b`` and, with a column of ones, the sum is
    ``einsum(a, ones(1, M)) + einsum(ones(N, 1), b)``.
    """
    a, b = _rand(N, 1), _rand(1, M)
    out = _run(impl, "einsum", "ij,ij->ij", a, b, require_backend=require_backend)
    _check(out, a * b, (N, M), 1, a * b)
    left = _run(impl, "einsum", "ij,ij->ij", a, np.ones((1, M)), require_backend=require_backend)
    right = _run(impl, "einsum", "ij,ij->ij", np.ones((N, 1)), b, require_backend=require_backend)
    _check(left + right, a + b, (N, M), 1, a + b)
