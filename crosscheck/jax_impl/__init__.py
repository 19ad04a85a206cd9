"""The course's ops as vectorized, jit-compatible JAX; a loader of jax.Array batches; a pure forward with its intermediates."""

from crosscheck.jax_impl.capture import forward, init_params, penalty
from crosscheck.jax_impl.convlike import conv, fold, max_pool, unfold
from crosscheck.jax_impl.einsum import einsum, matmul
from crosscheck.jax_impl.indexing import gather, scatter_add
from crosscheck.jax_impl.loading import default_collate, make_loader

__all__ = [
    "conv",
    "default_collate",
    "einsum",
    "fold",
    "forward",
    "gather",
    "init_params",
    "make_loader",
    "matmul",
    "max_pool",
    "penalty",
    "scatter_add",
    "unfold",
]
