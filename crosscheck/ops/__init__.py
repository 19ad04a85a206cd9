"""The op table, gathered from one module per course topic, and the cells it spans.

Every module in this package is a topic (``indexing``, ``einsum``, ``convlike``,
...) and exports ``OPS`` (its :class:`~crosscheck.optable.OpSpec` records),
``PROPERTIES`` (its own properties beyond those every op gets) and ``HISTORIC``
(its named historic cases). A *cell* is one property on one target; the
selection (:mod:`crosscheck.selection`) decides which modes and property tiers
make cells, and what each cell draws.
"""

from __future__ import annotations

import importlib
import pkgutil

from crosscheck import modes, sizes
from crosscheck.backends import Backend
from crosscheck.optable import (
    OURS,
    Historic,
    Native,
    OpSpec,
    Property,
    Target,
    generic_properties,
)
from crosscheck.selection import DEFAULT, Selection

TOPICS = tuple(
    importlib.import_module(f"{__name__}.{m.name}")
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    if not m.name.startswith("_")
)
OPS: tuple[OpSpec, ...] = tuple(op for topic in TOPICS for op in topic.OPS)
BY_NAME: dict[str, OpSpec] = {op.name: op for op in OPS}
HISTORIC: tuple[Historic, ...] = tuple(h for topic in TOPICS for h in getattr(topic, "HISTORIC", ()))

ORACLE = "oracle"


def properties(ops: list[str] | None = None, selection: Selection = DEFAULT) -> list[Property]:
    """Every property of the chosen ops: those every op gets, then each topic's own."""
    chosen = [op for op in OPS if ops is None or op.name in ops]
    props = [p for op in chosen for p in generic_properties(op)]
    props += [p for topic in TOPICS for p in topic.PROPERTIES if ops is None or p.op in ops]
    return [p for p in props if selection.wants(p.tier)]


def oracle_native(op: OpSpec) -> Native:
    """The op's vectorized NumPy oracle as a target of its own, held against refs."""
    return Native(ORACLE, "numpy", op.oracle,
                  "vectorized NumPy: the truth of the large tier, checked against refs here",
                  frameworks_own=False)


def targets(op: OpSpec, backends: list[Backend], selection: Selection = DEFAULT) -> list[Target]:
    """Ours, the natives and the oracle, on every backend of their framework, in every mode
    of the selection (``Selection.modes_for``) that the op and the implementation can run in."""
    out = []
    for backend in backends:
        fw = backend.framework
        impls = [(impl, None) for impl, (framework, _) in OURS.items()
                 if framework == fw and impl in op.impls]
        impls += [(n.name, n) for n in op.natives if n.framework == fw]
        if fw == "numpy" and op.oracle is not None and all(n.fn is not op.oracle for n in op.natives):
            impls.append((ORACLE, oracle_native(op)))  # unless a NumPy native is the oracle
        for impl, native in impls:
            for mode in selection.modes_for(fw, native):
                if (modes.supports(mode, fw) and mode in op.modes
                        and (native is None or mode in native.modes)):
                    out.append(Target(op, impl, backend, native, mode))
    return out


def cells(backends: list[Backend], ops: list[str] | None = None,
          selection: Selection = DEFAULT) -> list[tuple[Property, Target]]:
    """(property, target) pairs to run: each property on every target it applies to."""
    return [
        (prop, target)
        for prop in properties(ops, selection)
        for target in targets(BY_NAME[prop.op], backends, selection)
        if target.mode in prop.modes and prop.applies(target)
    ]


def historic(prop: Property) -> tuple[Historic, ...]:
    """The historic cases a property replays first."""
    return tuple(h for h in HISTORIC if h.op == prop.op and h.property == prop.name)


def implementation(op_name: str, impl: str):
    """Our ``impl`` of ``op_name`` in the op's calling convention (adapters applied), for reproducers."""
    framework = OURS[impl][0]
    backend = Backend("numpy" if framework == "numpy" else f"{framework}-cpu")
    return Target(BY_NAME[op_name], impl, backend).raw_fn


def large_args(op_name: str, seed: int) -> tuple:
    """The arguments of ``op_name``'s large case number ``seed`` (what a reproducer calls)."""
    return BY_NAME[op_name].large(sizes.rng(seed))


__all__ = ["BY_NAME", "HISTORIC", "OPS", "TOPICS", "cells", "historic", "implementation",
           "large_args", "properties", "targets"]
