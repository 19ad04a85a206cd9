"""Argument checks for ``gather`` and ``scatter_add`` (torch's rules).

``check_gather`` / ``check_scatter_add`` validate everything static (ranks,
sizes, dtypes, ``dim``) and return the normalized ``dim``; ``check_index_values``
validates the index values, which needs them on the host. The implementations
call both, in that order, before any kernel runs.
"""

from __future__ import annotations

import numpy as np

from refs.checks.common import (
    dtype_name,
    fail,
    normalize_dim,
    position,
    require_integer_dtype,
    require_same_rank,
    shape_of,
    to_host,
)


def _index_fits(fn: str, index, dim: int, other, other_arg: str, *, skip_dim: bool) -> None:
    for d, (n_index, n_other) in enumerate(zip(shape_of(index), shape_of(other))):
        if skip_dim and d == dim:
            continue
        if n_index > n_other:
            where = f"in dim {d} (dim is {dim})" if skip_dim else f"in dim {d}"
            fail(
                ValueError,
                fn,
                f"index.size({d}) = {n_index} is larger than {other_arg}.size({d}) = "
                f"{n_other} {where}; index has shape {shape_of(index)}, {other_arg} has "
                f"shape {shape_of(other)}",
            )


def check_gather(input, dim, index, *, fn: str = "gather") -> int:
    """Static checks of ``gather(input, dim, index)``; returns ``dim`` in ``[0, rank)``."""
    require_integer_dtype(fn, "index", index)
    require_same_rank(fn, "index", index, "input", input)
    d = normalize_dim(fn, dim, len(input.shape))
    _index_fits(fn, index, d, input, "input", skip_dim=True)
    return d


def check_scatter_add(input, dim, index, src, *, fn: str = "scatter_add") -> int:
    """Static checks of ``scatter_add(input, dim, index, src)``; returns the normalized dim."""
    require_integer_dtype(fn, "index", index)
    require_same_rank(fn, "index", index, "input", input)
    require_same_rank(fn, "src", src, "input", input)
    if dtype_name(src) != dtype_name(input):
        fail(
            TypeError,
            fn,
            f"src must have input's dtype: src is {dtype_name(src)}, input is "
            f"{dtype_name(input)}",
        )
    d = normalize_dim(fn, dim, len(input.shape))
    _index_fits(fn, index, d, input, "input", skip_dim=True)
    _index_fits(fn, index, d, src, "src", skip_dim=False)
    return d


def check_index_values(fn: str, index, dim: int, size: int, bounds=None) -> None:
    """Every value of ``index`` must lie in ``[0, size)``; negatives are not wrapped.

    ``bounds`` is ``(min, max)`` when the caller already reduced the index on its
    device (one pass, one host sync); otherwise it is computed here.
    """
    if int(np.prod(shape_of(index))) == 0:
        return
    if bounds is None:
        bounds = (index.min(), index.max())
    lo, hi = (int(b) for b in bounds)
    if 0 <= lo and hi < size:
        return
    host = to_host(index)
    bad = np.argwhere((host < 0) | (host >= size))[0]
    value = int(host[tuple(bad)])
    at = position("index", tuple(bad)) if host.ndim else "index"
    why = "negative indices are not wrapped" if value < 0 else f"valid: [0, {size})"
    fail(
        IndexError,
        fn,
        f"{at} = {value} is out of range for dim {dim} of size {size} ({why})",
    )
