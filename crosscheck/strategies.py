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


def sizes(*, min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy[int]:
    """A dim size from SIZES; zero is drawn about 1 time in 13 per dim.

    Zero-size dims are an edge case worth meeting in every run, but an empty array
    tests nothing else: with zero as likely as any other size, over half of the
    drawn rank-3 cases were empty and a planted bug hid from 100 examples.
    """
    allowed = [s for s in SIZES if s >= min_size and (max_size is None or s <= max_size)]
    return st.sampled_from([s for s in allowed for _ in range(1 if s == 0 else 3)])


def shapes(rank: int, *, min_size: int = 0) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*[sizes(min_size=min_size)] * rank)


def values(dtype, shape, *, low: int = -8, high: int = 8, integral: bool = False) -> st.SearchStrategy[np.ndarray]:
    """An array of ``dtype``: small integers, or (for floats) also fractions.

    ``integral=True`` keeps float arrays integer-valued too, so that products and sums
    are exact in every order and dtype (for properties that compare exactly).
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        return _every_element(dtype, shape, st.integers(low, high))
    whole = _every_element(dtype, shape, st.integers(low, high).map(float))
    if integral:
        return whole
    fractional = _every_element(
        dtype,
        shape,
        st.floats(low, high, width=dtype.itemsize * 8, allow_subnormal=False, allow_nan=False),
    )
    return st.one_of(whole, fractional)


def index_values(dtype, shape, size: int, *, duplicates: bool) -> st.SearchStrategy[np.ndarray]:
    """Valid indices into a dim of ``size`` (by construction, never filtered)."""
    if int(np.prod(shape)) == 0:
        return st.just(np.zeros(shape, dtype=dtype))
    if duplicates:  # every index the same: duplicates everywhere
        return st.integers(0, size - 1).map(lambda v: np.full(shape, v, dtype=dtype))
    return _every_element(np.dtype(dtype), shape, st.integers(0, size - 1))


def _every_element(dtype, shape, elements) -> st.SearchStrategy[np.ndarray]:
    # By default hypothesis fills most of an array with one repeated value and draws
    # only a few elements: a transposed or misplaced read then often reads the same
    # value and passes. Drawing every element (our arrays have at most a few hundred)
    # is what lets the planted bugs be caught reliably.
    return hnp.arrays(dtype, shape, elements=elements, fill=st.nothing())
