"""The course's ops as vectorized, jit-compatible JAX built from lax primitives."""

from crosscheck.jax_impl.indexing import gather, scatter_add

__all__ = ["gather", "scatter_add"]
