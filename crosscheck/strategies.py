"""Building blocks for the ops' hypothesis strategies.

Sizes come from a short list so that shapes repeat across examples: every new
shape costs JAX one compilation (~50 ms on CPU), a repeated one ~20 us.
Values are drawn by hypothesis (so they shrink), bounded away from overflow,
with subnormals excluded, and often integer-valued so that any summation order
gives the same bits.

The builders below return one strategy object per distinct argument list
(``functools.cache``): hypothesis validates each new strategy object it meets
and works out its properties, and with a fresh strategy built in every draw
that bookkeeping took a third of the time spent drawing examples.
"""

from __future__ import annotations

import functools

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


@functools.cache
def sizes(*, min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy[int]:
    """A dim size from SIZES; zero is drawn about 1 time in 13 per dim.

    Zero-size dims are an edge case worth meeting in every run, but an empty array
    tests nothing else: with zero as likely as any other size, over half of the
    drawn rank-3 cases were empty and a planted bug hid from 100 examples.
    """
    allowed = [s for s in SIZES if s >= min_size and (max_size is None or s <= max_size)]
    return st.sampled_from(tuple(s for s in allowed for _ in range(1 if s == 0 else 3)))


@functools.cache
def shapes(rank: int, *, min_size: int = 0) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*[sizes(min_size=min_size)] * rank)


def pick(options) -> st.SearchStrategy:
    """``st.sampled_from(options)``, one strategy object for each distinct tuple of options.

    The options are told apart by type too (``1``, ``1.0`` and ``True`` are equal
    keys to Python, not to a bad-input test); unhashable options get a new strategy.
    """
    options = tuple(options)
    try:
        return _pick(_typed(options), options)
    except TypeError:  # unhashable
        return st.sampled_from(options)


@functools.cache
def _pick(key: tuple, options: tuple) -> st.SearchStrategy:
    return st.sampled_from(options)


def _typed(options: tuple) -> tuple:
    return tuple((type(o), _typed(o) if isinstance(o, tuple) else o) for o in options)


#: ``st.booleans()``, one strategy object for every draw
BOOLEANS = st.booleans()


def values(dtype, shape, *, low: int = -8, high: int = 8, integral: bool = False) -> st.SearchStrategy[np.ndarray]:
    """An array of ``dtype``: small integers, or (for floats) also fractions.

    ``integral=True`` keeps float arrays integer-valued too, so that products and sums
    are exact in every order and dtype (for properties that compare exactly).
    """
    return _values(np.dtype(dtype), _shape(shape), int(low), int(high), bool(integral))


@functools.cache
def _values(dtype, shape, low, high, integral):
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
    return _index_values(np.dtype(dtype), _shape(shape), int(size), duplicates)


@functools.cache
def _index_values(dtype, shape, size, duplicates):
    if int(np.prod(shape)) == 0:
        return st.just(np.zeros(shape, dtype=dtype))
    if duplicates:  # every index the same: duplicates everywhere
        return st.integers(0, size - 1).map(lambda v: np.full(shape, v, dtype=dtype))
    return _every_element(dtype, shape, st.integers(0, size - 1))


def _shape(shape) -> tuple[int, ...]:
    return tuple(int(n) for n in shape)


def _every_element(dtype, shape, elements) -> st.SearchStrategy[np.ndarray]:
    # By default hypothesis fills most of an array with one repeated value and draws
    # only a few elements: a transposed or misplaced read then often reads the same
    # value and passes. Drawing every element (our arrays have at most a few hundred)
    # is what lets the planted bugs be caught reliably.
    return hnp.arrays(dtype, shape, elements=elements, fill=st.nothing())
