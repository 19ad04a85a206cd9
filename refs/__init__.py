"""The truth by construction: every op as explicit loops over NumPy arrays."""

from refs.indexing import gather, scatter_add

__all__ = ["gather", "scatter_add"]
