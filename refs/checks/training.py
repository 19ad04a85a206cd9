"""Argument checks of the training topic (:mod:`refs.training` and its twins), shared by all three.

``train_step``, ``train_loop`` and ``inference_loop`` check everything before
they compute, and raise the same class from every implementation:

* ``IndexError``: a label outside ``[0, K)``, ``K`` the network's classes;
* ``TypeError``: labels that are not an integer array, ``lr`` or
  ``penalty_weight`` that is not a real number (a bool, a string, an array with
  dims), ``batches`` that is not iterable; bad ``params`` / ``x`` as
  ``forward`` raises them (:mod:`refs.checks.capture`);
* ``ValueError``: labels of the wrong shape, ``lr`` or ``penalty_weight``
  negative or not finite, an item of ``batches`` that is not a pair ``(x, y)``,
  no batch at all; bad ``params`` / ``x`` as ``forward`` raises them.

A negative ``penalty_weight`` is refused like a negative ``lr``: it would
reward large activations and make the loss unbounded below.

In a loop each batch is checked just before its step, with ``batches[i]: ``
in the message. Nothing is mutated (every step returns new weights), so an
error in batch ``i`` leaves no half-trained result behind.

Values are read on the host only when they are concrete: under ``jax.jit`` the
labels, ``lr`` and ``penalty_weight`` are tracers whose values do not exist
yet, so the JAX implementation passes ``concrete=False`` for them and turns a
bad value into NaN in every result instead (see ``crosscheck.jax_impl.training``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

from refs.checks.capture import check_input, check_params
from refs.checks.common import (
    INTEGER_DTYPES,
    dtype_name,
    fail,
    require_integer_dtype,
    shape_of,
    to_host,
)
from refs.network import Architecture

#: array dtypes that hold a real number (``lr`` may be a 0-d array of one, e.g. a JAX tracer)
REAL_DTYPES = INTEGER_DTYPES | {"float16", "bfloat16", "float32", "float64"}


class Step(NamedTuple):
    """What a checked step knows: the network, and ``lr`` / ``penalty_weight`` as floats
    (``None`` where the value is not concrete)."""

    arch: Architecture
    lr: float | None
    penalty_weight: float | None


def check_train_step(fn: str, params, x, y, lr, penalty_weight, *,
                     concrete=lambda a: True) -> Step:
    """All of ``train_step``'s arguments; ``concrete(a)`` says whether ``a``'s values can be read."""
    arch = check_params(fn, params)
    check_input(fn, x, arch)
    check_labels(fn, y, shape_of(x)[0], arch.classes, concrete=concrete(y))
    return Step(arch, check_rate(fn, "lr", lr, concrete=concrete(lr)),
                check_rate(fn, "penalty_weight", penalty_weight,
                           concrete=concrete(penalty_weight)))


def check_loop(fn: str, params, lr=0.0, penalty_weight=0.0) -> Step:
    """The arguments of a loop that do not change from batch to batch."""
    return Step(check_params(fn, params), check_rate(fn, "lr", lr),
                check_rate(fn, "penalty_weight", penalty_weight))


def check_labels(fn: str, y, n: int, classes: int, *, concrete: bool = True) -> None:
    """``y``: an integer array of shape ``(N,)`` with every value in ``[0, K)``."""
    if not (hasattr(y, "shape") and hasattr(y, "dtype")):
        fail(TypeError, fn, f"y must be an integer array of {n} class indices, got "
                            f"{type(y).__name__}")
    require_integer_dtype(fn, "y", y)
    shape = shape_of(y)
    if shape != (n,):
        fail(ValueError, fn, f"y has shape {shape}, expected ({n},): one class index per image "
                             f"of x (N = {n})")
    if not concrete:
        return
    values = to_host(y)
    bad = np.flatnonzero((values < 0) | (values >= classes))
    if bad.size:
        i = int(bad[0])
        fail(IndexError, fn, f"y[{i}] = {int(values[i])} is out of range for K = {classes} "
                             f"classes (expected 0 <= y < {classes})")


def check_rate(fn: str, arg: str, value, *, concrete: bool = True) -> float | None:
    """``lr`` / ``penalty_weight``: a real number, finite and ``>= 0``; returned as a float
    (``None`` when not ``concrete``)."""
    if isinstance(value, (bool, np.bool_)):
        fail(TypeError, fn, f"{arg} must be a real number, got bool {value!r}")
    if isinstance(value, numbers.Real):
        number = float(value)
    elif hasattr(value, "shape") and hasattr(value, "dtype"):
        if dtype_name(value) not in REAL_DTYPES:
            fail(TypeError, fn, f"{arg} must be a real number, got an array of dtype "
                                f"{dtype_name(value)}")
        if shape_of(value) != ():
            fail(TypeError, fn, f"{arg} must be a real number, got an array of shape "
                                f"{shape_of(value)}")
        if not concrete:
            return None
        number = float(to_host(value))
    else:
        fail(TypeError, fn, f"{arg} must be a real number, got {type(value).__name__} {value!r}")
    if not math.isfinite(number) or number < 0:
        fail(ValueError, fn, f"{arg} = {number!r} must be finite and >= 0")
    return number


def check_batches(fn: str, batches) -> Iterator[tuple[int, Any]]:
    """``enumerate(batches)``; a ``TypeError`` at once if ``batches`` is not iterable."""
    if not isinstance(batches, Iterable):
        fail(TypeError, fn, f"batches must be an iterable of (x, y) pairs, got "
                            f"{type(batches).__name__}")
    return enumerate(batches)


def check_batch(fn: str, i: int, batch, arch: Architecture) -> tuple[Any, Any]:
    """Batch ``i`` of a loop: a pair ``(x, y)`` that fits the network; returns ``(x, y)``."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        fail(ValueError, fn, f"batches[{i}] must be a pair (x, y), got {_describe(batch)} "
                             f"(a single batch goes in a list: [(x, y)])")
    x, y = batch
    with _in_batch(fn, i):
        check_input(fn, x, arch)
        check_labels(fn, y, shape_of(x)[0], arch.classes)
    return x, y


def check_samples(fn: str, samples: int) -> int:
    """The loop saw at least one sample: an epoch over nothing has no mean loss."""
    if samples == 0:
        fail(ValueError, fn, "batches is empty: an epoch over no samples has no mean loss and "
                             "no accuracy")
    return samples


@contextmanager
def _in_batch(fn: str, i: int):
    """Re-raise a check's error with ``batches[i]: `` after the function's name, same class."""
    prefix = f"{fn}(): "
    try:
        yield
    except (TypeError, ValueError, IndexError) as e:
        message = str(e)
        if not message.startswith(prefix):
            raise
        raise type(e)(f"{prefix}batches[{i}]: {message[len(prefix):]}") from None


def _describe(value) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{type(value).__name__} of shape {shape_of(value)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"{type(value).__name__} {value!r}"
