"""The one comparison: structure, then shape, then dtype, then values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosscheck.tolerance import Tolerance, for_dtype


class Mismatch(AssertionError):
    """Two results that should agree do not; the message says where and by how much."""


@dataclass(frozen=True)
class Comparison:
    """What a passing comparison measured: elements compared and the worst error / allowed."""

    elements: int = 0
    worst_ratio: float = 0.0  # max |diff| / allowed over the elements; 0 when all exact
    #: what the check observed without failing on it (e.g. "not bitwise repeatable")
    notes: tuple[str, ...] = ()

    def merge(self, other: Comparison) -> Comparison:
        return Comparison(
            self.elements + other.elements, max(self.worst_ratio, other.worst_ratio),
            self.notes + other.notes,
        )


def _part(tol, key):
    """The tolerance for one part of a structured result: a tree of tolerances is indexed."""
    return tol[key] if isinstance(tol, (dict, list, tuple)) else tol


def assert_close(actual, expected, tol: Tolerance | None = None, *, dtype=None, path="result",
                 ordered_keys: bool = False):
    """Assert ``actual`` matches ``expected``; return the :class:`Comparison`.

    Args:
        actual, expected: NumPy arrays, scalars, or dicts / lists / tuples of them.
        tol: the tolerance, or a dict / list / tuple of them shaped like ``expected``;
            default: the per-dtype table (exact for integers).
        dtype: the dtype ``actual`` must have (default: ``expected``'s). Lets a
            float32 result be held against a float64 reference.
        path: how the message names the compared value.
        ordered_keys: dicts must list their keys in ``expected``'s order (where the
            order is promised, e.g. a batch keeps its first sample's key order).

    Raises:
        Mismatch: with the count of differing elements and the worst one.
    """
    if isinstance(expected, dict):
        if type(actual) is not type(expected) or set(actual) != set(expected):
            raise Mismatch(f"{path}: expected a {type(expected).__name__} with keys {sorted(expected, key=repr)}, "
                           f"got {_kind(actual)}")
        if ordered_keys and list(actual) != list(expected):
            raise Mismatch(f"{path}: keys in the order {list(actual)}, expected {list(expected)}")
        result = Comparison()
        for key in expected:
            result = result.merge(assert_close(actual[key], expected[key], _part(tol, key), dtype=dtype,
                                               path=f"{path}[{key!r}]", ordered_keys=ordered_keys))
        return result
    if isinstance(expected, (list, tuple)):
        if type(actual) is not type(expected) or len(actual) != len(expected):
            raise Mismatch(f"{path}: expected a {type(expected).__name__} of {len(expected)}, got {_kind(actual)}")
        result = Comparison()
        for i, (a, e) in enumerate(zip(actual, expected)):
            result = result.merge(assert_close(a, e, _part(tol, i), dtype=dtype, path=f"{path}[{i}]",
                                               ordered_keys=ordered_keys))
        return result

    if isinstance(expected, (np.ndarray, np.generic)) and isinstance(actual, (dict, list, tuple)):
        raise Mismatch(f"{path}: expected an array {expected.dtype}{list(np.shape(expected))}, "
                       f"got {_kind(actual)}")
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise Mismatch(f"{path}: shape {actual.shape} != expected {expected.shape}")
    want = np.dtype(dtype) if dtype is not None else expected.dtype
    if actual.dtype != want:
        raise Mismatch(f"{path}: dtype {actual.dtype} != expected {want}")
    if tol is None:
        tol = for_dtype(want)
    if actual.size == 0:
        return Comparison()

    if not np.issubdtype(want, np.inexact) or tol.is_exact:
        if np.issubdtype(want, np.inexact):
            bad = ~((actual == expected) | (np.isnan(actual) & np.isnan(expected)))
        else:
            bad = actual != expected
        if bad.any():
            _raise(path, actual, expected, bad, None, tol)
        return Comparison(actual.size, 0.0)

    a, e = actual.astype(np.float64), expected.astype(np.float64)
    same = (a == e) | (np.isnan(a) & np.isnan(e))  # also equal infinities
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(a - e))
    diff = np.where(np.isnan(diff), np.inf, diff)
    allowed = np.broadcast_to(tol.allowed(e), e.shape)
    bad = diff > allowed
    if bad.any():
        _raise(path, actual, expected, bad, diff, tol, allowed)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / allowed)
    return Comparison(actual.size, float(ratio.max()))


def _raise(path, actual, expected, bad, diff, tol, allowed=None):
    n_bad = int(bad.sum())
    if diff is None:
        worst = tuple(int(i) for i in np.argwhere(bad)[0])
        detail = ""
    else:
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            scored = np.where(bad, diff / np.where(allowed > 0, allowed, np.finfo(np.float64).tiny), -1)
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(scored)), bad.shape))
        detail = f", |diff| = {diff[worst]:.6g} > allowed {allowed[worst]:.3g}"
    where = f"[{', '.join(map(str, worst))}]" if worst else "(0-d)"
    raise Mismatch(
        f"{path}: {n_bad} of {bad.size} elements differ ({tol.why}); worst at {where}: "
        f"actual {actual[worst]!r}, expected {expected[worst]!r}{detail}"
    )


def _kind(x):
    if isinstance(x, dict):
        return f"a {type(x).__name__} with keys {sorted(x, key=repr)}"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of {len(x)}"
    return type(x).__name__
