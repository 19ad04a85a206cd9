"""Trees: dicts (of any subclass), lists, tuples and namedtuples around leaves.

The one place that knows how to take such a container apart and build the same
type again. The collates build their batches with it (so a tuple stays a tuple,
an ``OrderedDict`` an ``OrderedDict``), and the harness moves a tree of arrays
between NumPy, torch and JAX with it. Framework-free: a leaf is whatever the
caller says it is.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any


def is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def is_container(x) -> bool:
    return isinstance(x, (dict, list, tuple))


def items(tree) -> list[tuple[Any, Any]]:
    """``(key, child)`` pairs of a container: dict keys, or positions."""
    if isinstance(tree, dict):
        return list(tree.items())
    return list(enumerate(tree))


def rebuild(like, children):
    """A container of ``like``'s type holding ``children`` (a dict of values, or a sequence).

    A dict subclass (``OrderedDict``, ``defaultdict``) stays that subclass, with
    its state (a ``defaultdict``'s factory); a namedtuple the same namedtuple.
    """
    if isinstance(like, dict):
        if type(like) is dict:
            return dict(children)
        out = copy.copy(like)
        out.clear()
        out.update(children)
        return out
    if is_namedtuple(like):
        return type(like)(*children)
    return type(like)(children)  # tuple, list, or a subclass of one


def map_tree(tree, f: Callable, leaf: type | tuple[type, ...]):
    """``tree`` with every ``leaf`` instance ``x`` replaced by ``f(x)``; containers
    rebuilt around them (:func:`rebuild`); anything else kept as it is."""
    if isinstance(tree, leaf):
        return f(tree)
    if isinstance(tree, dict):
        return rebuild(tree, {k: map_tree(v, f, leaf) for k, v in tree.items()})
    if isinstance(tree, (list, tuple)):
        return rebuild(tree, [map_tree(v, f, leaf) for v in tree])
    return tree


def leaves(tree, leaf: type | tuple[type, ...]) -> list:
    """Every ``leaf`` instance in ``tree``, depth first, in container order."""
    if isinstance(tree, leaf):
        return [tree]
    if is_container(tree):
        return [x for _, child in items(tree) for x in leaves(child, leaf)]
    return []
