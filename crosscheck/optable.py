"""The op table: one record of facts per op, and the targets and properties built from it.

Tests and the report iterate over these records; nobody writes a test once per
implementation. A *target* is one implementation of one op on one backend:
ours (``refs``, ``torch_impl``, ``jax_impl``, paired with the op by name, as in
API.md) or a framework's native twin (``torch.gather``, ``jnp.einsum``, ...).
A *property* is a check that a drawn case must pass on a target.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from crosscheck.backends import Backend
from crosscheck.compare import Comparison, assert_close
from crosscheck.tolerance import EXACT, Tolerance, rounding_bound

#: our three implementations: name -> (framework, module)
OURS: dict[str, tuple[str, str]] = {
    "refs": ("numpy", "refs"),
    "torch_impl": ("torch", "torch_impl"),
    "jax_impl": ("jax", "crosscheck.jax_impl"),
}


class Case(NamedTuple):
    """One drawn call: positional arguments in API order (arrays as NumPy)."""

    args: tuple
    noncontiguous: bool = False  # torch backends pass the arrays as strided views

    def map_arrays(self, f: Callable[[np.ndarray], Any]) -> tuple:
        """The arguments with every NumPy array -- also inside dicts, lists, tuples -- as ``f(array)``."""
        return tuple(map_tree(a, f, np.ndarray) for a in self.args)


def map_tree(tree, f: Callable, leaf: type | tuple[type, ...]):
    """``tree`` with every ``leaf`` instance ``x`` replaced by ``f(x)``; dicts (of any
    subclass), lists, tuples and namedtuples rebuilt around them; anything else kept."""
    if isinstance(tree, leaf):
        return f(tree)
    if isinstance(tree, dict):
        out = copy.copy(tree)
        out.update((k, map_tree(v, f, leaf)) for k, v in tree.items())
        return out
    if isinstance(tree, tuple) and hasattr(type(tree), "_fields"):
        return type(tree)(*(map_tree(v, f, leaf) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(map_tree(v, f, leaf) for v in tree)
    return tree


def call_of(drawn) -> Case | BadCase:
    """The op call inside what a property's strategy drew (a case, or a tuple led by one)."""
    return drawn if isinstance(drawn, (Case, BadCase)) else drawn[0]


class KnownDifference(Exception):
    """A native was asked for a call it documents it cannot take (``Native.unsupported``)."""


class BadCase(NamedTuple):
    """A drawn bad call and what every implementation must raise for it."""

    args: tuple
    exception: type[Exception]
    argument: str  # the argument the message must name
    why: str  # what is wrong, for the test id and the report


@dataclass(frozen=True)
class Native:
    """A framework's own op, adapted (where needed) to the API's argument order."""

    name: str  # how the matrix and the reproducer name it, e.g. "torch.gather"
    framework: str  # "numpy" | "torch" | "jax"
    fn: Callable
    note: str = ""  # where the native's semantics had to be adapted
    #: holds itself to API.md's bad-input contract (the meta-tests' planted impls do)
    checks_input: bool = False
    #: ``unsupported(case, target) -> reason | None``: a call the native cannot take on
    #: that target (a rank, dtype or device it lacks). Checked whenever the native is
    #: called -- also as another property's sibling -- and counted in the report as a
    #: known difference instead of being checked.
    unsupported: Callable[[Case, Target], str | None] = lambda case, target: None
    #: ``known_difference(property_name, drawn, target) -> reason | None``: a documented
    #: bug of the native that only one property meets (e.g. a wrong gradient); counted
    #: like ``unsupported``
    known_difference: Callable[[str, Any, Target], str | None] = lambda prop, drawn, target: None


@dataclass(frozen=True)
class OpSpec:
    """Everything the harness knows about one op of API.md."""

    name: str
    topic: str  # the file name shared by refs/, torch_impl/, crosscheck/jax_impl/
    arg_names: tuple[str, ...]
    cases: Callable[[], Any]  # () -> strategy of Case (valid by construction)
    bad_cases: Callable[[], Any]  # () -> strategy of BadCase
    natives: tuple[Native, ...] = ()
    #: rounding steps per output element; None when the op only moves data (exact)
    rounding_terms: Callable[[Case], int] | None = None
    #: the op applied to |args|, for the error bound; default: refs on abs(float arrays)
    magnitude: Callable[[Case], np.ndarray] | None = None
    #: ``example(scale)``: a deterministic case of about ``scale`` M elements (bench, size tests)
    example: Callable[..., Case] | None = None
    #: ``bench_cases() -> [(label, Case), ...]``: the sizes ``nox -s bench`` times (default:
    #: ``example(1.0)``); ours against the native twin on the same framework and device
    bench_cases: Callable[[], list[tuple[str, Case]]] | None = None
    #: names on ``torch`` / ``torch.Tensor`` that ``torch_impl`` must not call (its native twins)
    forbidden_torch: tuple[str, ...] = ()
    known_differences: str = ""
    #: ``tolerance_of(case, expected)``: the tolerance (or a tree of them, shaped like the
    #: result) where the op's result is not one array summed ``rounding_terms`` times
    tolerance_of: Callable[[Case, Any], Any] | None = None
    #: compare with refs run in float64 (the question "is the algorithm right"); False for
    #: ops that only move data of several dtypes at once (each leaf keeps its own dtype)
    float64_reference: bool = True

    def ref(self, *args):
        return getattr(importlib.import_module("refs"), self.name)(*args)

    def result_dtype(self, case: Case) -> np.dtype | None:
        """The dtype every result array must have; None: each the reference's own."""
        if not self.float64_reference:
            return None
        arrays = [a for a in case.args if isinstance(a, np.ndarray)]
        return arrays[0].dtype

    def expected(self, case: Case) -> np.ndarray:
        """The reference result, computed in float64 for floating inputs."""
        if not self.float64_reference:
            return self.ref(*case.args)
        return self.ref(*case.map_arrays(_to_float64))

    def tolerance(self, case: Case, expected: np.ndarray) -> Tolerance:
        if self.tolerance_of is not None:
            return self.tolerance_of(case, expected)
        dtype = self.result_dtype(case)
        if dtype is None:
            return EXACT
        if self.rounding_terms is None or not np.issubdtype(dtype, np.floating):
            return EXACT
        if self.magnitude is not None:
            magnitude = self.magnitude(case)
        else:
            magnitude = self.ref(*case.map_arrays(lambda a: np.abs(_to_float64(a)) if _floating(a) else a))
        return rounding_bound(dtype, self.rounding_terms(case), magnitude)


@dataclass(frozen=True)
class Target:
    """One implementation of one op on one backend."""

    op: OpSpec
    impl: str  # "refs" | "torch_impl" | "jax_impl" | a native's name
    backend: Backend
    native: Native | None = None

    @property
    def framework(self) -> str:
        return self.backend.framework

    @property
    def label(self) -> str:
        return f"{self.op.name}:{self.impl}@{self.backend.name}"

    @property
    def fn(self) -> Callable:
        if self.native is not None:
            return self.native.fn
        self.backend_ready()
        return getattr(importlib.import_module(OURS[self.impl][1]), self.op.name)

    def sibling(self, other: OpSpec | str) -> Target:
        """The same implementation of ``other`` (e.g. gather's scatter_add, for the adjoint).

        A native pairs with its framework's native of ``other``; where the framework has
        none, with our implementation on the same framework.
        """
        if isinstance(other, str):
            from crosscheck.ops import BY_NAME  # the table imports this module

            other = BY_NAME[other]
        if self.native is not None:
            for native in other.natives:
                if native.framework == self.framework:
                    return Target(other, native.name, self.backend, native)
        ours = next(name for name, (fw, _) in OURS.items() if fw == self.framework)
        return Target(other, self.impl if self.native is None else ours, self.backend)

    def backend_ready(self):
        from crosscheck.backends import load_jax, load_torch

        if self.framework == "torch":
            load_torch()
        elif self.framework == "jax":
            load_jax()

    def convert(self, case: Case) -> tuple:
        """The case's arrays on this backend; raises KnownDifference for an unsupported call."""
        if self.native is not None:
            reason = self.native.unsupported(case, self)
            if reason:
                raise KnownDifference(reason)
        self.backend_ready()
        return case.map_arrays(lambda a: self.backend.asarray(a, noncontiguous=case.noncontiguous))

    def call(self, case: Case) -> np.ndarray:
        """Run the op on this backend and bring the result back as NumPy (every array of it)."""
        return self.backend.to_host(self.fn(*self.convert(case)))


@dataclass(frozen=True)
class Property:
    """A check every drawn case must pass on every target it applies to."""

    op: str
    name: str
    doc: str
    cases: Callable[[], Any]  # () -> strategy
    check: Callable[[Target, Any], Comparison]
    applies: Callable[[Target], bool] = field(default=lambda target: True)


def agrees_with_ref(op: OpSpec) -> Property:
    def check(target: Target, case: Case) -> Comparison:
        expected = op.expected(case)
        actual = target.call(case)
        return assert_close(actual, expected, op.tolerance(case, expected), dtype=op.result_dtype(case))

    return Property(
        op.name,
        "agrees_with_ref",
        "equals refs (computed in float64) within the op's tolerance",
        op.cases,
        check,
    )


def rejects_bad_input(op: OpSpec) -> Property:
    def check(target: Target, bad: BadCase) -> Comparison:
        args = target.convert(Case(bad.args))
        try:
            target.fn(*args)
        except bad.exception as e:
            message = str(e)
            if f"{op.name}()" not in message or bad.argument not in message:
                raise AssertionError(
                    f"{target.label} raised {type(e).__name__} for {bad.why}, but the "
                    f"message does not name {op.name}() and {bad.argument!r}: {message}"
                ) from e
            return Comparison()
        except Exception as e:
            raise AssertionError(
                f"{target.label} raised {type(e).__name__} for {bad.why}, expected "
                f"{bad.exception.__name__}: {e}"
            ) from e
        raise AssertionError(f"{target.label} answered a bad input silently ({bad.why})")

    return Property(
        op.name,
        "rejects_bad_input",
        "raises API.md's exception class, naming the function and the argument",
        op.bad_cases,
        check,
        applies=lambda target: target.native is None or target.native.checks_input,
    )


def targets(op: OpSpec, backends: list[Backend]) -> list[Target]:
    """Ours and the natives, on every backend of their framework."""
    out = []
    for backend in backends:
        for impl, (framework, _) in OURS.items():
            if framework == backend.framework:
                out.append(Target(op, impl, backend))
        for native in op.natives:
            if native.framework == backend.framework:
                out.append(Target(op, native.name, backend, native))
    return out


def _floating(a) -> bool:
    return isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)


def _to_float64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if _floating(a) else a
