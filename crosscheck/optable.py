"""The op table's records: one :class:`OpSpec` per op, and the targets and properties built from it.

Tests and the report iterate over these records; nobody writes a test once per
implementation. A *target* is one implementation of one op on one backend in
one execution mode: ours (``refs``, ``torch_impl``, ``jax_impl``, paired with
the op by name, as in API.md) or a framework's native twin (``torch.gather``,
``jnp.einsum``, ...), eager or compiled (:mod:`crosscheck.modes`). A
*property* is a check that a drawn case must pass on a target; it may call the
target once (agrees with refs) or many times (a loader's epochs, a gradient, a
hook's lifetime). A *fault* is one way to break a valid call, with the
exception API.md promises for it. A *historic case* is a published bug,
replayed before anything is drawn.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from crosscheck import modes as modes_
from crosscheck import sizes
from crosscheck.backends import Backend
from crosscheck.compare import Comparison, assert_close
from crosscheck.layouts import CONTIGUOUS, Layout
from crosscheck.strategies import pick
from crosscheck.tolerance import EXACT, Tolerance, rounding_bound
from refs.trees import map_tree

#: our three implementations: name -> (framework, module)
OURS: dict[str, tuple[str, str]] = {
    "refs": ("numpy", "refs"),
    "torch_impl": ("torch", "torch_impl"),
    "jax_impl": ("jax", "crosscheck.jax_impl"),
}


# ------------------------------------------------------------------------- calls


@dataclass(frozen=True)
class Case:
    """One drawn call: positional arguments in API order (arrays as NumPy).

    ``layouts`` gives each top-level argument's torch memory layout (missing:
    contiguous); ``names`` the op's argument names, so that predicates read
    ``case["dilation"]`` rather than a position; ``size`` the size tier; a
    large case carries a ``recipe``, the source that rebuilds its arguments,
    for the reproducer.
    """

    args: tuple
    layouts: tuple[Layout | None, ...] = ()
    names: tuple[str, ...] = ()
    size: str = "small"
    recipe: str | None = None

    def __getitem__(self, name: str):
        if not self.names:
            raise KeyError(f"Case[{name!r}]: this case has no argument names")
        for i, arg in enumerate(self.names):
            if arg == name:
                return self.args[i]
            if arg == f"*{name}":
                return self.args[i:]
        raise KeyError(f"Case[{name!r}]: the arguments are {self.names}")

    def named(self, names: tuple[str, ...]) -> Case:
        return self if self.names else replace(self, names=tuple(names))

    def layout(self, i: int) -> Layout:
        return (self.layouts[i] if i < len(self.layouts) else None) or CONTIGUOUS

    def map_arrays(self, f: Callable[[np.ndarray], Any]) -> tuple:
        """The arguments with every NumPy array -- also inside dicts, lists, tuples -- as ``f(array)``."""
        return tuple(map_tree(a, f, np.ndarray) for a in self.args)

    def with_args(self, *args) -> Case:
        """The same call (layouts, names) with other arguments."""
        return replace(self, args=tuple(args))


@dataclass(frozen=True)
class Fault:
    """One way to break a valid call, and what API.md says every implementation must raise.

    ``apply(draw, call)`` gets the valid call as a dict of named arguments and
    returns the broken one (a dict), or ``(dict, argument)`` where the argument
    the message must name depends on the draw (``samples[3]``), or ``(dict,
    argument, quoted)`` where the message must also quote the offending value
    (``index[0, 1] = 7``), or None where the fault cannot apply to this call. ``needs_values``: detectable only with
    the array's values in hand (an index out of range), not from shapes and
    dtypes -- under ``jax.jit`` the values are traced.
    """

    name: str
    argument: str
    exception: type[Exception]
    apply: Callable[[Callable, dict], Any]
    needs_values: bool = False


@dataclass(frozen=True)
class BadCase:
    """A drawn bad call and the fault that broke it."""

    case: Case
    fault: Fault
    argument: str  # the argument the message must name
    quoted: str | None = None  # the value, as the message must quote it (None: not checked)

    @property
    def args(self) -> tuple:
        return self.case.args

    @property
    def exception(self) -> type[Exception]:
        return self.fault.exception

    @property
    def why(self) -> str:
        return self.fault.name


def bad_case(args: tuple, exception: type[Exception], argument: str, why: str,
             names: tuple[str, ...] = (), needs_values: bool = False,
             quoted: str | None = None) -> BadCase:
    """A :class:`BadCase` written out by hand (a historic case, a fixed example)."""
    fault = Fault(why, argument, exception, lambda draw, call: None, needs_values)
    return BadCase(Case(tuple(args), names=tuple(names)), fault, argument, quoted)


def bad_calls(names: tuple[str, ...], valid: Callable[[], Any], faults: tuple[Fault, ...]):
    """A strategy of :class:`BadCase`: a ``valid()`` call with one of ``faults`` applied."""

    @st.composite
    def draw_bad(draw):
        fault = draw(pick(faults), label="fault")
        case = draw(valid())
        call = dict(zip(names, case.args))
        if names and names[-1].startswith("*"):  # varargs: the rest under the bare name
            call.pop(names[-1])
            call[names[-1][1:]] = tuple(case.args[len(names) - 1:])
        broken = fault.apply(draw, call)
        assume(broken is not None)
        broken, argument, quoted = (*broken, None, None)[:3] if isinstance(broken, tuple) else (
            broken, fault.argument, None)
        args = [broken[n] for n in names if not n.startswith("*")]
        if names and names[-1].startswith("*"):
            args += list(broken[names[-1][1:]])
        return BadCase(Case(tuple(args), names=names), fault, argument, quoted)

    return draw_bad()


def call_of(drawn) -> Case:
    """The op call inside what a property's strategy drew (a case, a bad case, or a tuple led by one)."""
    if isinstance(drawn, BadCase):
        return drawn.case
    if isinstance(drawn, Case):
        return drawn
    return call_of(drawn[0]) if isinstance(drawn, tuple) and drawn else drawn


class KnownDifference(Exception):
    """A documented reason why this example is not checked on this target (counted, not failed)."""


# ------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Native:
    """A framework's own op (or a planted stand-in), adapted to the API's argument order."""

    name: str  # how the matrix and the reproducer name it, e.g. "torch.gather"
    framework: str  # "numpy" | "torch" | "jax"
    fn: Callable
    note: str = ""  # where the native's semantics had to be adapted
    #: holds itself to API.md's bad-input contract (the planted impls do)
    checks_input: bool = False
    #: the framework's own op, run in the selection's native modes
    #: (``Selection.native_modes``); False for the oracle and for planted stand-ins for ours
    frameworks_own: bool = True
    #: ``unsupported(case, target) -> reason | None``: a call the native cannot take on
    #: that target (a rank, dtype or device it lacks). Checked whenever the native is
    #: called -- also as another property's sibling -- and counted as a known difference.
    unsupported: Callable[[Case, Target], str | None] = lambda case, target: None
    #: ``known_difference(property_name, drawn, target) -> reason | None``: a documented
    #: bug of the native that only one property meets (e.g. a wrong gradient)
    known_difference: Callable[[str, Any, Target], str | None] = lambda prop, drawn, target: None
    #: the execution modes it can run in (compiled modes only on its own framework)
    modes: tuple[str, ...] = modes_.MODES
    #: for topics whose properties use several names (``SmallNet``, ``capture_outputs``):
    #: an object holding them, as ``torch_impl.capture`` does
    api: Any = None


@dataclass(frozen=True)
class Plant:
    """A deliberately wrong implementation that the properties must catch (the meta-tests).

    ``axis`` names what only the regression run reaches -- ``"mode:jit"``, ``"mode:eager"``
    (for a stand-in for a JAX native, which the default run calls under ``jax.jit``),
    ``"layout:expanded"``, ``"layout:channels_last"``, ``"size:large"`` -- for a plant
    that is wrong only there: the default run must miss it and the regression run
    catch it, which proves the axis is needed and works.
    """

    op: str
    bug: str
    fn: Callable
    framework: str = "numpy"
    axis: str | None = None
    api: Any = None  # for topics whose properties use several names (see Native.api)
    #: ``"ours"``: a stand-in for one of our implementations (it checks its input and runs
    #: in their modes); ``"native"``: for a framework's own op (it checks nothing and runs
    #: in the natives' modes, ``Selection.native_modes``)
    stands_for: str = "ours"

    def __post_init__(self):
        if self.stands_for not in ("ours", "native"):
            raise ValueError(f"Plant {self.bug!r}: stands_for must be 'ours' or 'native', "
                             f"not {self.stands_for!r}")

    @property
    def native(self) -> Native:
        ours = self.stands_for == "ours"
        return Native(f"planted: {self.bug}", self.framework, self.fn, checks_input=ours,
                      frameworks_own=not ours, api=self.api)


@dataclass(frozen=True)
class Historic:
    """A published bug or surprise in one of our ops, replayed before any drawn example.

    ``drawn()`` builds what the property's strategy would draw (a :class:`Case`,
    a :class:`BadCase`, or the property's tuple). Expected values come from the
    refs, never from the framework that had the bug.
    """

    op: str
    property: str
    name: str
    url: str
    summary: str
    drawn: Callable[[], Any]


@dataclass(frozen=True)
class OpSpec:
    """Everything the harness knows about one op of API.md."""

    name: str
    topic: str  # the file name shared by refs/, torch_impl/, crosscheck/jax_impl/
    arg_names: tuple[str, ...]
    cases: Callable[[], Any]  # () -> strategy of Case (valid by construction)
    bad_cases: Callable[[], Any] | None = None  # () -> strategy of BadCase
    natives: tuple[Native, ...] = ()
    #: rounding steps per output element; None when the op only moves data (exact)
    rounding_terms: Callable[[Case], int] | None = None
    #: ``tolerance_of(case, expected)``: the tolerance (or a tree of them, shaped like the
    #: result) where the result is not one array summed ``rounding_terms`` times
    tolerance_of: Callable[[Case, Any], Any] | None = None
    #: compare with the truth run in float64 (the question "is the algorithm right");
    #: False for ops that only move data of several dtypes at once (each leaf keeps its own)
    float64_reference: bool = True
    #: names on ``torch`` / ``torch.Tensor`` that ``torch_impl`` must not call (its native twins)
    forbidden_torch: tuple[str, ...] = ()
    #: which of OURS implement the op, and adapters to the op's calling convention
    impls: tuple[str, ...] = tuple(OURS)
    adapters: dict[str, Callable[[Any], Callable]] = field(default_factory=dict)
    #: the execution modes that make sense for the op (a loader is no kernel to compile)
    modes: tuple[str, ...] = modes_.MODES
    #: the truth at sizes the loops cannot reach: vectorized NumPy, run in float64; it is
    #: itself a target on the small tier, held against refs
    oracle: Callable | None = None
    #: ``large(rng) -> args``: a call of 2**16-2**20 elements (see crosscheck.sizes)
    large: Callable[[np.random.Generator], tuple] | None = None
    #: promises bitwise-repeatable results on every device (pure data movement)
    deterministic: bool = False
    #: result dicts must list their keys in the expected order (a collate keeps samples[0]'s)
    ordered_keys: bool = False
    #: the frameworks whose implementation starts worker processes (torch's DataLoader
    #: workers): a parallel report runs those cells first, while a fork is cheap
    starts_processes: tuple[str, ...] = ()

    def truth(self, size: str = "small") -> Callable:
        """The function that defines the result: refs (small) or the vectorized oracle (large)."""
        if size == "large" and self.oracle is not None:
            return self.oracle
        return self.ref

    @property
    def ref(self) -> Callable:
        module = importlib.import_module("refs")
        if "refs" in self.adapters:
            return self.adapters["refs"](module)
        return getattr(module, self.name)

    def result_dtype(self, case: Case) -> np.dtype | None:
        """The dtype every result array must have; None: each the reference's own."""
        if not self.float64_reference:
            return None
        arrays = [a for a in case.args if isinstance(a, np.ndarray)]
        return arrays[0].dtype

    def expected(self, case: Case):
        """The true result: refs (or the oracle, for a large case), in float64 for floats."""
        truth = self.truth(case.size)
        if not self.float64_reference:
            return truth(*case.args)
        return truth(*case.map_arrays(to_float64))

    def tolerance(self, case: Case, expected) -> Tolerance:
        if self.tolerance_of is not None:
            return self.tolerance_of(case, expected)
        dtype = self.result_dtype(case)
        if dtype is None or self.rounding_terms is None or not np.issubdtype(dtype, np.floating):
            return EXACT
        magnitude = self.truth(case.size)(
            *case.map_arrays(lambda a: np.abs(to_float64(a)) if _floating(a) else a))
        return rounding_bound(dtype, self.rounding_terms(case), magnitude)


@dataclass(frozen=True)
class Target:
    """One implementation of one op on one backend, in one execution mode."""

    op: OpSpec
    impl: str  # "refs" | "torch_impl" | "jax_impl" | a native's name
    backend: Backend
    native: Native | None = None
    mode: str = "eager"

    @property
    def framework(self) -> str:
        return self.backend.framework

    @property
    def starts_processes(self) -> bool:
        return self.framework in self.op.starts_processes

    @property
    def name(self) -> str:
        """The implementation with its mode: ``jax_impl``, ``jax_impl[jit]``, ``torch.gather[compile]``."""
        return self.impl if self.mode == "eager" else f"{self.impl}[{self.mode}]"

    @property
    def label(self) -> str:
        return f"{self.op.name}:{self.name}@{self.backend.name}"

    @property
    def api(self):
        """The namespace of the implementation (``torch_impl`` ...), for properties that need
        more than the op itself (``SmallNet`` beside ``capture_outputs``)."""
        if self.native is not None:
            return self.native.api
        self.backend.load()
        return importlib.import_module(OURS[self.impl][1])

    @property
    def raw_fn(self) -> Callable:
        """The function as written, before any compilation."""
        if self.native is not None:
            return self.native.fn
        module = self.api
        if self.impl in self.op.adapters:
            return self.op.adapters[self.impl](module)
        return getattr(module, self.op.name)

    @property
    def fn(self) -> Callable:
        return modes_.wrap(self.raw_fn, self.mode)

    def unavailable(self) -> str | None:
        """Why this target cannot run here (a backend or a compiler missing), or None."""
        return self.backend.missing() or (None if self.mode == "eager" else modes_.unavailable(self.mode))

    def sibling(self, other: OpSpec) -> Target:
        """The same implementation of ``other`` (gather's scatter_add, for the adjoint), same mode.

        A native pairs with its framework's native of ``other``; where the framework has
        none, with our implementation on the same framework.
        """
        if self.native is not None:
            for native in other.natives:
                if native.framework == self.framework:
                    return Target(other, native.name, self.backend, native, self.mode)
        ours = next(name for name, (fw, _) in OURS.items() if fw == self.framework)
        return Target(other, self.impl if self.native is None else ours, self.backend, None, self.mode)

    def check_supported(self, case: Case) -> None:
        """Raise KnownDifference for a call this native documents it cannot take."""
        if self.native is not None:
            reason = self.native.unsupported(case.named(self.op.arg_names), self)
            if reason:
                raise KnownDifference(reason)

    def convert(self, case: Case) -> tuple:
        """The case's arrays on this backend, each top-level one in its layout."""
        self.check_supported(case)
        self.backend.load()
        return tuple(
            self.backend.asarray(a, case.layout(i)) if isinstance(a, np.ndarray)
            else map_tree(a, self.backend.asarray, np.ndarray)
            for i, a in enumerate(case.args)
        )

    def call(self, case: Case):
        """Run the op on this backend and bring the result back as NumPy (every array of it)."""
        return self.backend.to_host(self.fn(*self.convert(case)))


@dataclass(frozen=True)
class Property:
    """A check every drawn case must pass on every target it applies to.

    ``check(target, drawn)`` returns the :class:`Comparison` it made (with
    ``notes`` for what it observed but does not fail on), raises
    :class:`KnownDifference` for an example it must not judge, and raises
    ``AssertionError`` (``Mismatch``) when the target breaks the property.
    """

    op: str
    name: str
    doc: str
    cases: Callable[[], Any]  # () -> strategy
    check: Callable[[Target, Any], Comparison]
    applies: Callable[[Target], bool] = field(default=lambda target: True)
    #: draw torch layouts for the Case the strategy yields (its values then suit any layout)
    layouts: bool = False
    #: () -> strategy of large-tier cases, mixed in where the selection has the large tier
    large: Callable[[], Any] | None = None
    #: "default": every run; "regression": only runs of the regression tier
    tier: str = "default"
    #: the modes it runs in (default: every mode the target has)
    modes: tuple[str, ...] = modes_.MODES
    #: at most this many drawn examples per run, whatever the run asks for (for checks
    #: that start processes: a loader's workers cost a fork and a join each)
    max_examples: int | None = None


def agrees_with_ref(op: OpSpec) -> Property:
    def check(target: Target, case: Case) -> Comparison:
        expected = op.expected(case)
        actual = target.call(case)
        return assert_close(actual, expected, op.tolerance(case, expected),
                            dtype=op.result_dtype(case), ordered_keys=op.ordered_keys)

    return Property(
        op.name, "agrees_with_ref",
        "equals refs (computed in float64; the vectorized oracle at large sizes) within the "
        "op's tolerance",
        op.cases, check, layouts=True, large=_large(op),
    )


def _large(op: OpSpec):
    return None if op.large is None else lambda: large_cases(op)


def large_cases(op: OpSpec):
    """A strategy of ``op``'s large-tier cases, each rebuilt from its seed (crosscheck.sizes)."""
    return st.integers(0, sizes.SEEDS - 1).map(lambda seed: Case(
        op.large(sizes.rng(seed)), names=op.arg_names, size="large",
        recipe=f"crosscheck.ops.large_args({op.name!r}, {seed})"))


#: under jax.jit an array argument is a tracer: its values exist only inside the kernel
TRACED_VALUES = ("under jax.jit the array is traced: its values cannot be checked before the "
                 "kernel runs (jax_impl fills / drops instead; checkify.index_checks turns that "
                 "into an error)")


def rejects_bad_input(op: OpSpec) -> Property:
    def check(target: Target, bad: BadCase) -> Comparison:
        if bad.fault.needs_values and target.mode == "jit":
            raise KnownDifference(TRACED_VALUES)
        args = target.convert(bad.case)
        try:
            target.fn(*args)
        except bad.exception as e:
            message = str(e)
            if f"{op.name}()" not in message or bad.argument not in message:
                raise AssertionError(
                    f"{target.label} raised {type(e).__name__} for {bad.why}, but the "
                    f"message does not name {op.name}() and {bad.argument!r}: {message}"
                ) from e
            if bad.quoted is not None and bad.quoted not in message:
                raise AssertionError(
                    f"{target.label} raised {type(e).__name__} for {bad.why}, but the "
                    f"message does not quote the value {bad.quoted!r}: {message}"
                ) from e
            return Comparison()
        except Exception as e:
            raise AssertionError(
                f"{target.label} raised {type(e).__name__} for {bad.why}, expected "
                f"{bad.exception.__name__}: {e}"
            ) from e
        raise AssertionError(f"{target.label} answered a bad input silently ({bad.why})")

    return Property(
        op.name, "rejects_bad_input",
        "raises API.md's exception class, naming the function and the argument",
        op.bad_cases, check,
        applies=lambda target: target.native is None or target.native.checks_input,
    )


NOT_REPEATABLE = "not bitwise repeatable"


def repeatable(op: OpSpec) -> Property:
    def check(target: Target, case: Case) -> Comparison:
        args = target.convert(case)
        first = target.backend.to_host(target.fn(*args))
        second = target.backend.to_host(target.fn(*args))
        try:
            assert_close(second, first, EXACT, path="second call vs first")
        except AssertionError:
            if op.deterministic:
                raise
            return Comparison(notes=(NOT_REPEATABLE,))
        return Comparison()

    return Property(
        op.name, "repeatable",
        "the same call twice gives the same bits (reported, not failed, unless the op "
        "promises determinism)",
        op.cases, check, layouts=True, large=_large(op), tier="regression",
    )


def generic_properties(op: OpSpec) -> list[Property]:
    """The properties every op gets."""
    props = [agrees_with_ref(op)]
    if op.bad_cases is not None:
        props.append(rejects_bad_input(op))
    props.append(repeatable(op))
    return props


def to_float64(a):
    return a.astype(np.float64) if _floating(a) else a


def _floating(a) -> bool:
    return isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)

