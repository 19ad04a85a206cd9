"""The course's ops as vectorized, jit-compatible JAX; a loader of jax.Array batches; a pure forward with its intermediates."""

from crosscheck.jax_impl import _framework  # noqa: F401 - first, so a missing jax names its extra
from crosscheck.jax_impl.capture import forward, init_params, penalty
from crosscheck.jax_impl.convlike import conv, fold, max_pool, unfold
from crosscheck.jax_impl.einsum import einsum, matmul
from crosscheck.jax_impl.indexing import gather, scatter_add
from crosscheck.jax_impl.loading import default_collate, make_loader
from crosscheck.jax_impl.training import inference_loop, train_loop, train_step

__all__ = [
    "conv",
    "default_collate",
    "einsum",
    "fold",
    "forward",
    "gather",
    "inference_loop",
    "init_params",
    "make_loader",
    "matmul",
    "max_pool",
    "penalty",
    "scatter_add",
    "train_loop",
    "train_step",
    "unfold",
]
