"""Runs one property on one target under hypothesis, for pytest and the report alike."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import seed as hypothesis_seed

from crosscheck.compare import Comparison
from crosscheck.optable import KnownDifference, Property, Target
from crosscheck.reproduce import reproducers


@dataclass
class Outcome:
    """What one (property, target) run measured."""

    examples: int = 0
    comparison: Comparison = Comparison()
    known: dict[str, int] = field(default_factory=dict)  # documented native deviations seen


def run(
    prop: Property,
    target: Target,
    *,
    max_examples: int | None = None,
    seed: int | None = None,
    profile: settings | None = None,
) -> Outcome:
    """Run ``prop`` on ``target``; a failing case raises with its reproducers attached.

    ``profile`` replaces the loaded hypothesis profile for this run only.
    """
    outcome = Outcome()

    @given(case=prop.cases())
    def check(case):
        outcome.examples += 1
        reason = target.native and target.native.known_difference(prop.name, case, target)
        if reason:
            outcome.known[reason] = outcome.known.get(reason, 0) + 1
            return
        try:
            outcome.comparison = outcome.comparison.merge(prop.check(target, case))
        except KnownDifference as known:  # a native (this one or a sibling) cannot take it
            outcome.known[str(known)] = outcome.known.get(str(known), 0) + 1
        except Exception as e:
            # attached to the exception itself, so pytest and the report (which runs
            # hypothesis quietly) both show it, once, for the shrunk case
            e.add_note(reproducers(target, case))
            raise

    # each (property, target) gets its own key in the example database
    check._hypothesis_internal_add_digest = f"{prop.op}.{prop.name}.{target.label}".encode()
    if profile is not None or max_examples is not None:
        base = profile if profile is not None else settings.default
        check = settings(base, **({} if max_examples is None else {"max_examples": max_examples}))(check)
    if seed is not None:
        check = hypothesis_seed(seed)(check)
    check()
    return outcome
