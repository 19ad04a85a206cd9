"""Argument checks for batched loading, and the structure rules of ``default_collate``.

The loaders of all three implementations call the same ``check_*`` functions
when they are built (not when the first batch is drawn), so a bad
``batch_size`` fails at the line that asked for it. The three collates call
:func:`check_samples` before they stack anything and dispatch on
:func:`refs.collate.kind_of`, so they agree on what a sample may hold and on what comes
back: a sample whose structure differs from ``samples[0]`` is a ``ValueError``
everywhere (torch's own ``default_collate`` silently drops extra dict keys and
promotes an int label next to a float one).

Error classes: ``TypeError`` for a value of the wrong type, ``ValueError`` for a
value of the right type that breaks a rule, ``IndexError`` for an ``order``
entry outside the dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from refs.checks.common import INTEGER_DTYPES, dtype_name, fail, shape_of, to_host
from refs.collate import kind_of

#: array dtypes a collate stacks; strings and objects are not numbers to stack
STACKABLE_DTYPES = INTEGER_DTYPES | {"bool", "float16", "float32", "float64", "complex64", "complex128"}

#: what a column of Python scalars becomes (torch's ``default_collate`` agrees)
PYTHON_SCALAR_DTYPES = {"bool": np.bool_, "int": np.int64, "float": np.float64}

_INT64 = np.iinfo(np.int64)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _describe(value) -> str:
    """``float 1.5`` -- the type and the value, as messages quote an argument."""
    return f"{type(value).__name__} {value!r}"


def check_int(fn: str, arg: str, value, *, minimum: int) -> int:
    """``value`` as a Python int ``>= minimum``; bools and floats are rejected.

    Raises:
        TypeError: not an int (a bool, a float, ``None``, ...).
        ValueError: an int below ``minimum``.
    """
    if not _is_int(value):
        fail(TypeError, fn, f"{arg} must be an int, got {_describe(value)}")
    if value < minimum:
        rule = "positive" if minimum == 1 else f">= {minimum}"
        fail(ValueError, fn, f"{arg} must be {rule}, got {arg} = {int(value)}")
    return int(value)


def check_batch_size(fn: str, batch_size) -> int:
    return check_int(fn, "batch_size", batch_size, minimum=1)


def check_flag(fn: str, arg: str, value) -> bool:
    """``shuffle`` / ``drop_last``: a bool, not a truthy stand-in (``1``, ``"no"``)."""
    if not isinstance(value, (bool, np.bool_)):
        fail(TypeError, fn, f"{arg} must be a bool, got {_describe(value)}")
    return bool(value)


def check_dataset(fn: str, dataset) -> int:
    """A map-style dataset: ``len(dataset)`` and ``dataset[i]``; returns its length."""
    kind = type(dataset)  # as len() does: a class passed for an instance has no __len__
    if not (hasattr(kind, "__len__") and hasattr(kind, "__getitem__")):
        fail(
            TypeError,
            fn,
            "dataset must be map-style, with __len__ and __getitem__; got a "
            f"{type(dataset).__name__}",
        )
    return len(dataset)


def check_order(fn: str, order, n: int) -> list[int]:
    """``order`` as a list of distinct ints in ``[0, n)``: a permutation, or part of one.

    A part (e.g. ``epoch_order(...)[k:]`` to resume an epoch) is fine; a repeat
    is not, because one epoch visits each index at most once.

    Raises:
        TypeError: not a sequence or a 1-d integer array (a set has no order, a
            generator would be used up), or an entry that is not an int.
        ValueError: an index that appears twice, an array that is not 1-d.
        IndexError: an entry outside ``[0, n)``; negatives are not wrapped.
    """
    if hasattr(order, "shape") and hasattr(order, "dtype"):
        if dtype_name(order) not in INTEGER_DTYPES:
            fail(TypeError, fn, f"order must hold integers, got an array of dtype {dtype_name(order)}")
        if len(order.shape) != 1:
            fail(ValueError, fn, f"order must be 1-d, got an array of shape {shape_of(order)}")
        entries = [int(i) for i in to_host(order)]
    elif isinstance(order, Sequence) and not isinstance(order, (str, bytes)):
        entries = list(order)
    else:
        fail(
            TypeError,
            fn,
            f"order must be a sequence of indices (list, tuple, range or 1-d integer "
            f"array), got a {type(order).__name__}",
        )
    first_seen: dict[int, int] = {}
    for pos, i in enumerate(entries):
        if not _is_int(i):
            fail(TypeError, fn, f"order[{pos}] must be an int, got {_describe(i)}")
        if not 0 <= i < n:
            why = "negative indices are not wrapped" if i < 0 else f"valid: [0, {n})"
            fail(IndexError, fn, f"order[{pos}] = {int(i)} is out of range for a dataset of length {n} ({why})")
        if int(i) in first_seen:
            fail(
                ValueError,
                fn,
                f"order[{pos}] = {int(i)} repeats order[{first_seen[int(i)]}]; an epoch visits "
                "each index at most once",
            )
        first_seen[int(i)] = pos
    return [int(i) for i in entries]


class LoaderArgs(NamedTuple):
    n: int  # len(dataset)
    batch_size: int
    shuffle: bool
    seed: int
    epoch: int
    drop_last: bool


def check_loader(fn: str, dataset, batch_size, shuffle, seed, epoch, drop_last) -> LoaderArgs:
    """The arguments every ``make_loader`` shares, checked in signature order."""
    return LoaderArgs(
        check_dataset(fn, dataset),
        check_batch_size(fn, batch_size),
        check_flag(fn, "shuffle", shuffle),
        check_int(fn, "seed", seed, minimum=0),
        check_int(fn, "epoch", epoch, minimum=0),
        check_flag(fn, "drop_last", drop_last),
    )


_SUPPORTED = (
    "a sample may hold arrays, Python bool/int/float, str/bytes, and dicts, tuples "
    "and lists of them"
)


def check_samples(fn: str, samples) -> None:
    """Every sample has ``samples[0]``'s structure, and every leaf can be stacked.

    Same structure means: the same container types, the same dict keys, the
    same lengths; array leaves of the same shape and dtype (NumPy, torch or JAX
    alike), Python scalar leaves of the same type (``1`` next to ``1.0`` is a
    mismatch, not a promotion).

    Raises:
        TypeError: ``samples`` not a non-string sequence; a leaf of an unsupported
            type in ``samples[0]``; an array of a non-numeric dtype.
        ValueError: no samples; a sample whose structure differs from
            ``samples[0]`` (messages point at both); a Python int outside int64.
    """
    if not isinstance(samples, Sequence) or isinstance(samples, (str, bytes)):
        fail(TypeError, fn, f"samples must be a list or tuple of samples, got a {type(samples).__name__}")
    if len(samples) == 0:
        fail(ValueError, fn, "samples is empty; a batch needs at least one sample")
    _check_column(fn, list(samples), "")


def _where(i: int, path: str) -> str:
    return f"samples[{i}]{path}"


def _type_name(x) -> str:
    """``an int``, ``a float``, ``an OrderedDict``: the type with its article."""
    name = type(x).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def _check_column(fn: str, column: list, path: str) -> None:
    """``column[i]`` is sample ``i``'s value at ``path``; all must look like ``column[0]``."""
    first = column[0]
    kind = kind_of(first)
    if kind is None:
        fail(TypeError, fn, f"{_where(0, path)} is {_type_name(first)}; {_SUPPORTED}")
    if kind == "array":
        name = dtype_name(first)
        if name not in STACKABLE_DTYPES:
            fail(
                TypeError,
                fn,
                f"{_where(0, path)} is an array of dtype {name}; only bool, integer, float "
                "and complex arrays can be stacked (keep text as str)",
            )
    for i, x in enumerate(column[1:], start=1):
        if kind == "array":
            if kind_of(x) != "array":
                _differs(fn, i, path, f"is {_type_name(x)}", f"is an array of dtype {dtype_name(first)}")
            if shape_of(x) != shape_of(first):
                _differs(fn, i, path, f"has shape {shape_of(x)}", f"has shape {shape_of(first)}")
            if dtype_name(x) != dtype_name(first):
                _differs(fn, i, path, f"has dtype {dtype_name(x)}", f"has dtype {dtype_name(first)}")
        elif type(x) is not type(first):
            _differs(fn, i, path, f"is {_type_name(x)}", f"is {_type_name(first)}")
    if kind == "int":
        for i, x in enumerate(column):
            if not _INT64.min <= x <= _INT64.max:
                fail(ValueError, fn, f"{_where(i, path)} = {x} does not fit in int64")
    elif kind == "dict":
        keys = list(first)
        for i, x in enumerate(column[1:], start=1):
            if set(x) != set(keys):
                extra = [k for k in x if k not in first]
                missing = [k for k in keys if k not in x]
                parts = [f"extra {extra}"] * bool(extra) + [f"missing {missing}"] * bool(missing)
                _differs(fn, i, path, f"has keys {list(x)}", f"has keys {keys}", ", ".join(parts))
        for k in keys:
            _check_column(fn, [x[k] for x in column], f"{path}[{k!r}]")
    elif kind in ("tuple", "namedtuple", "list"):
        for i, x in enumerate(column[1:], start=1):
            if len(x) != len(first):
                what = _type_name(first)
                _differs(fn, i, path, f"is {what} of {len(x)}", f"is {what} of {len(first)}")
        for j in range(len(first)):
            _check_column(fn, [x[j] for x in column], f"{path}[{j}]")


def _differs(fn: str, i: int, path: str, this: str, first: str, detail: str = "") -> None:
    fail(
        ValueError,
        fn,
        f"{_where(i, path)} {this}, but {_where(0, path)} {first}"
        + (f" ({detail})" if detail else "")
        + "; every sample must have the structure of samples[0]",
    )
