"""The course's ops as vectorized, jit-compatible JAX built from lax primitives."""

from crosscheck.jax_impl.convlike import conv, fold, max_pool, unfold
from crosscheck.jax_impl.einsum import einsum, matmul
from crosscheck.jax_impl.indexing import gather, scatter_add

__all__ = ["conv", "einsum", "fold", "gather", "matmul", "max_pool", "scatter_add", "unfold"]
