"""Building blocks for the ops' hypothesis strategies.

Sizes come from a short list so that shapes repeat across examples: every new
shape costs JAX one compilation (~50 ms on CPU), a repeated one ~20 us.
Values are drawn by hypothesis (so they shrink), bounded away from overflow,
with subnormals excluded, and often integer-valued so that any summation order
gives the same bits.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

#: dim sizes drawn everywhere: zero, one, and small distinct values so that a
#: transposed or wrongly broadcast result cannot pass by coincidence
SIZES = (0, 1, 2, 3, 5)
FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")
DATA_DTYPES = FLOAT_DTYPES + INT_DTYPES
INDEX_DTYPES = ("int64", "int32", "uint8")


def sizes(*, min_size: int = 0) -> st.SearchStrategy[int]:
    return st.sampled_from([s for s in SIZES if s >= min_size])


def shapes(rank: int, *, min_size: int = 0) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*[sizes(min_size=min_size)] * rank)


def values(dtype, shape, *, low: int = -8, high: int = 8, integral: bool = False) -> st.SearchStrategy[np.ndarray]:
    """An array of ``dtype``: small integers, or (for floats) also fractions.

    ``integral=True`` keeps float arrays integer-valued too, so that products and sums
    are exact in every order and dtype (for properties that compare exactly).
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        return hnp.arrays(dtype, shape, elements=st.integers(low, high))
    whole = hnp.arrays(dtype, shape, elements=st.integers(low, high).map(float))
    if integral:
        return whole
    fractional = hnp.arrays(
        dtype,
        shape,
        elements=st.floats(
            low, high, width=dtype.itemsize * 8, allow_subnormal=False, allow_nan=False
        ),
    )
    return st.one_of(whole, fractional)


def index_values(dtype, shape, size: int, *, duplicates: bool) -> st.SearchStrategy[np.ndarray]:
    """Valid indices into a dim of ``size`` (by construction, never filtered)."""
    if int(np.prod(shape)) == 0:
        return st.just(np.zeros(shape, dtype=dtype))
    if duplicates:  # every index the same: duplicates everywhere
        return st.integers(0, size - 1).map(lambda v: np.full(shape, v, dtype=dtype))
    return hnp.arrays(np.dtype(dtype), shape, elements=st.integers(0, size - 1))
