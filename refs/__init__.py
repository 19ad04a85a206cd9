"""The truth by construction: every op as explicit loops over NumPy arrays."""

from refs.convlike import conv, fold, max_pool, unfold
from refs.einsum import einsum, matmul
from refs.indexing import gather, scatter_add

__all__ = ["conv", "einsum", "fold", "gather", "matmul", "max_pool", "scatter_add", "unfold"]
