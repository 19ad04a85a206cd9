"""Runs one property on one target under hypothesis, for pytest and the report alike.

The named historic cases of the property come first (hypothesis's explicit
examples), then the drawn ones. What the selection asks for is drawn here,
once for every property: torch memory layouts over the case's arrays, and
the large size tier beside the small one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from hypothesis import example, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from crosscheck import layouts as layouts_
from crosscheck import modes
from crosscheck.compare import Comparison
from crosscheck.optable import Case, Historic, KnownDifference, Property, Target, call_of
from crosscheck.reproduce import reproducers
from crosscheck.selection import DEFAULT, Selection
from crosscheck.strategies import pick


class Unavailable(Exception):
    """The target cannot run on this machine (a backend or a compiler missing)."""


@dataclass
class Outcome:
    """What one (property, target) run measured."""

    drawn: int = 0  # examples run, historic ones included
    compared: int = 0  # examples whose check ran to the end
    historic: int = 0  # historic cases replayed
    comparison: Comparison = Comparison()
    known: dict[str, int] = field(default_factory=dict)  # documented differences, not checked
    observed: dict[str, int] = field(default_factory=dict)  # noted, not failed
    layouts: dict[str, int] = field(default_factory=dict)  # non-contiguous layouts drawn
    large: int = 0  # examples of the large tier

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


def strategy(prop: Property, target: Target, selection: Selection = DEFAULT):
    """What ``prop`` draws for ``target`` under ``selection``."""
    small = prop.cases()
    drawn = small
    wants_large = (prop.large is not None and "large" in selection.sizes
                   and target.impl != "refs" and not _is_oracle(target))
    if wants_large:
        # one example in `large_every` from the large tier; the rest stay small and fast
        drawn = st.integers(1, selection.large_every).flatmap(
            lambda k: prop.large() if k == 1 else small)
    if prop.layouts and target.framework == "torch" and set(selection.layouts) != {"contiguous"}:
        drawn = _with_layouts(drawn, tuple(selection.layouts))
    return drawn


def _is_oracle(target: Target) -> bool:
    return target.native is not None and target.native.fn is target.op.oracle


@st.composite
def _with_layouts(draw, cases, kinds: tuple[str, ...]):
    drawn = draw(cases)
    case = drawn if isinstance(drawn, Case) else drawn[0]
    chosen, args = [], []
    for a in case.args:
        if isinstance(a, np.ndarray):
            layout = draw(draw_layout(a, kinds), label="layout")
            a = layout.prepare(a)
        else:
            layout = None
        chosen.append(layout)
        args.append(a)
    laid = replace(case, args=tuple(args), layouts=tuple(chosen))
    return laid if isinstance(drawn, Case) else (laid, *drawn[1:])


@st.composite
def draw_layout(draw, a: np.ndarray, kinds: tuple[str, ...]) -> layouts_.Layout:
    kind = draw(pick(tuple(k for k in kinds if layouts_.applicable(k, a)) or ("contiguous",)))
    if kind == "expanded":
        dims = tuple(d for d, n in enumerate(a.shape) if n > 1)
        return layouts_.Layout(kind, dim=draw(pick(dims)))
    if kind == "permuted":
        perm = tuple(draw(st.permutations(range(a.ndim))))
        if perm == tuple(range(a.ndim)):
            perm = perm[::-1]  # the identity would be plain contiguous
        return layouts_.Layout(kind, perm=perm)
    if kind == "offset":
        return layouts_.Layout(kind, offset=draw(pick((1, 3, 8))))
    return layouts_.Layout(kind)


def run(
    prop: Property,
    target: Target,
    *,
    selection: Selection = DEFAULT,
    max_examples: int | None = None,
    seed: int | None = None,
    profile: settings | None = None,
    historic: tuple[Historic, ...] = (),
) -> Outcome:
    """Run ``prop`` on ``target``; a failing case raises with its reproducers attached.

    ``profile`` replaces the loaded hypothesis profile for this run only;
    ``historic`` cases are replayed before anything is drawn.
    """
    why = target.unavailable()
    if why:
        raise Unavailable(why)
    outcome = Outcome()

    def one(drawn):
        outcome.drawn += 1
        case = call_of(drawn)
        if isinstance(case, Case):
            outcome.large += case.size == "large"
            for layout in case.layouts:
                if layout is not None and layout.kind != "contiguous":
                    outcome.count(outcome.layouts, layout.kind)
        reason = target.native and target.native.known_difference(prop.name, drawn, target)
        if reason:
            outcome.count(outcome.known, reason)
            return
        try:
            result = prop.check(target, drawn)
        except KnownDifference as known:  # a native (this one or a sibling) cannot take it
            outcome.count(outcome.known, str(known))
            return
        except Exception as e:
            crash = modes.compiler_failure(target.mode, e)
            if crash:  # a published compiler crash on this valid call: counted, with its link
                outcome.count(outcome.known, crash)
                return
            # attached to the exception itself, so pytest and the report (which runs
            # hypothesis quietly) both show it, once, for the shrunk case
            e.add_note(reproducers(target, drawn))
            raise
        outcome.compared += 1
        outcome.comparison = outcome.comparison.merge(replace(result, notes=()))
        for note in result.notes:
            outcome.count(outcome.observed, note)

    @given(drawn=strategy(prop, target, selection))
    def check(drawn):
        one(drawn)

    for h in historic:
        check = example(drawn=h.drawn())(check)

    # each (property, target) gets its own key in the example database
    check._hypothesis_internal_add_digest = f"{prop.op}.{prop.name}.{target.label}".encode()
    # the seed first: hypothesis's seed() drops the example database of any settings
    # applied before it, and a regression run must replay (and keep) what it found
    if seed is not None:
        check = hypothesis_seed(seed)(check)
    base = profile if profile is not None else settings.default
    budget = base.max_examples if max_examples is None else max_examples
    if prop.max_examples is not None:
        budget = min(budget, prop.max_examples)
    if target.mode == "compile" and selection.compile_examples is not None:
        budget = min(budget, selection.compile_examples)
    check = settings(base, max_examples=budget)(check)
    check()
    outcome.historic = len(historic)  # explicit examples always run, before any drawn one
    return outcome
