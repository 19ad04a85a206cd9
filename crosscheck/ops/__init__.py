"""The op table, gathered from one module per course topic, and the cells it spans.

Every module in this package is a topic (``indexing``, ``einsum``, ``convlike``,
...) and exports ``OPS`` (its :class:`~crosscheck.optable.OpSpec` records) and
``PROPERTIES`` (its own properties beyond the two every op gets).
"""

from __future__ import annotations

import importlib
import pkgutil

from crosscheck.backends import Backend
from crosscheck.optable import OpSpec, Property, Target, agrees_with_ref, rejects_bad_input, targets

TOPICS = tuple(
    importlib.import_module(f"{__name__}.{m.name}")
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    if not m.name.startswith("_")
)
OPS: tuple[OpSpec, ...] = tuple(op for topic in TOPICS for op in topic.OPS)
BY_NAME: dict[str, OpSpec] = {op.name: op for op in OPS}


def properties(ops: list[str] | None = None) -> list[Property]:
    """Every property: the two every op has, then each topic's own."""
    chosen = [op for op in OPS if ops is None or op.name in ops]
    generic = [p for op in chosen for p in (agrees_with_ref(op), rejects_bad_input(op))]
    own = [p for topic in TOPICS for p in topic.PROPERTIES if ops is None or p.op in ops]
    return generic + own


def cells(backends: list[Backend], ops: list[str] | None = None) -> list[tuple[Property, Target]]:
    """(property, target) pairs to run: each property on every target it applies to."""
    return [
        (prop, target)
        for prop in properties(ops)
        for target in targets(BY_NAME[prop.op], backends)
        if prop.applies(target)
    ]


__all__ = ["BY_NAME", "OPS", "TOPICS", "cells", "properties"]
