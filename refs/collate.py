r"""How a collate reads a sample: the kinds of values it may hold, and the walk that batches them.

All three ``default_collate``\ s walk the samples with :func:`collate_tree` and
differ only in what they do with one column of leaves (NumPy loops,
``torch.stack``, ``np.stack`` before one ``device_put``). The rules a batch of
samples must satisfy are checked first, by :func:`refs.checks.loading.check_samples`.
"""

from __future__ import annotations

import numpy as np

from refs.trees import is_namedtuple, rebuild


def kind_of(x) -> str | None:
    """How a collate treats ``x``: a container kind, a leaf kind, or ``None`` (unsupported).

    ``"array"`` is anything with ``shape`` and ``dtype`` (NumPy arrays and
    scalars, torch tensors, JAX arrays). Text is tested first (``np.str_`` is a
    ``str`` *and* a NumPy scalar), then arrays, then Python numbers, because
    ``np.float64`` is a subclass of ``float``.
    """
    if isinstance(x, (str, bytes)):
        return "str"
    if isinstance(x, (np.ndarray, np.generic)) or (hasattr(x, "shape") and hasattr(x, "dtype")):
        return "array"
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int"
    if isinstance(x, float):
        return "float"
    if isinstance(x, dict):
        return "dict"
    if isinstance(x, tuple):
        return "namedtuple" if is_namedtuple(x) else "tuple"
    if isinstance(x, list):
        return "list"
    return None


def collate_tree(column: list, leaf, path: str = ""):
    """The batch of ``column`` (``column[i]``: sample ``i``'s value at ``path``).

    Containers are rebuilt like ``column[0]`` and recursed into; text stays a
    list; every other leaf column goes to ``leaf(kind, column, path)``, the one
    thing the three collates do differently (NumPy loops, ``torch.stack``,
    ``np.stack`` before one ``device_put``). The samples are already checked.
    """
    first = column[0]
    kind = kind_of(first)
    if kind == "dict":
        return rebuild(first, {k: collate_tree([s[k] for s in column], leaf, f"{path}[{k!r}]")
                               for k in first})
    if kind in ("tuple", "namedtuple", "list"):
        return rebuild(first, [collate_tree([s[j] for s in column], leaf, f"{path}[{j}]")
                               for j in range(len(first))])
    if kind == "str":
        return list(column)
    return leaf(kind, column, path)
