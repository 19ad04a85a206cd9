"""Runs one property on one target under hypothesis, for pytest and the report alike."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, note, settings
from hypothesis import seed as hypothesis_seed

from crosscheck.compare import Comparison
from crosscheck.optable import Property, Target
from crosscheck.reproduce import reproducers


@dataclass
class Outcome:
    """What one (property, target) run measured."""

    examples: int = 0
    comparison: Comparison = Comparison()
    known: dict[str, int] = field(default_factory=dict)  # documented native deviations seen


def run(prop: Property, target: Target, *, max_examples: int | None = None, seed: int | None = None) -> Outcome:
    """Run ``prop`` on ``target``; a failing case raises with its reproducers attached."""
    outcome = Outcome()

    @given(case=prop.cases())
    def check(case):
        note(reproducers(target, case))
        outcome.examples += 1
        if target.native is not None:
            reason = target.native.known_difference(prop.name, case, target)
            if reason:
                outcome.known[reason] = outcome.known.get(reason, 0) + 1
                return
        outcome.comparison = outcome.comparison.merge(prop.check(target, case))

    # each (property, target) gets its own key in the example database
    check._hypothesis_internal_add_digest = f"{prop.op}.{prop.name}.{target.label}".encode()
    if max_examples is not None:
        check = settings(max_examples=max_examples)(check)
    if seed is not None:
        check = hypothesis_seed(seed)(check)
    check()
    return outcome
