"""Planted wrong implementations: the harness's test of itself.

A cross-check that cannot fail is worse than none (einops' backend test
discarded its own comparison for years). Every topic has a module here whose
``PLANTED`` lists :class:`~crosscheck.optable.Plant` records: a gather with the
index transposed, a scatter that overwrites, a loader that batches per
worker... :func:`catch` runs a plant through every property of its op, as the
op table would run a real implementation, and reports which properties caught
it. The meta-tests require each plant to be caught -- and each plant with an
``axis`` to be missed by the default selection and caught by the regression
one.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, settings

from crosscheck import modes, runner
from crosscheck.backends import Backend
from crosscheck.ops import BY_NAME, properties
from crosscheck.ops import historic as historic_cases
from crosscheck.optable import Plant, Target
from crosscheck.selection import DEFAULT, Selection

MODULES = tuple(
    importlib.import_module(f"{__name__}.{m.name}")
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
)
PLANTED: tuple[Plant, ...] = tuple(p for module in MODULES for p in module.PLANTED)

#: the backend a plant of each framework runs on
BACKEND = {"numpy": "numpy", "torch": "torch-cpu", "jax": "jax-cpu"}


@dataclass(frozen=True)
class Catch:
    property: str
    target: str  # the plant with its mode
    message: str  # the first line of what the property said


def targets(plant: Plant, selection: Selection = DEFAULT) -> list[Target]:
    """The plant as a target, in every mode of the selection that its framework has and that
    what it stands for runs in (a stand-in for a JAX native runs where the natives do)."""
    backend = Backend(BACKEND[plant.framework])
    native = plant.native
    return [Target(BY_NAME[plant.op], native.name, backend, native, mode)
            for mode in selection.modes_for(plant.framework, native)
            if modes.supports(mode, plant.framework)]


def catch(plant: Plant, selection: Selection = DEFAULT, *, max_examples: int = 200,
          first: bool = True, historic: bool = True, seed: int | None = None) -> list[Catch]:
    """The properties that catch ``plant`` under ``selection`` (each run without shrinking).

    A catch is an ``AssertionError`` (a ``Mismatch`` is one); a crash of another kind on
    valid input does not count. With ``first``, stop at the first catch; without
    ``historic``, only drawn examples run; ``seed``: every property seeded with it, as the
    report seeds its cells (None: the profile's randomness).
    """
    quick = settings(settings.default, max_examples=max_examples, database=None,
                     phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
                     deadline=None, suppress_health_check=list(HealthCheck))
    caught = []
    for target in targets(plant, selection):
        for prop in properties([plant.op], selection):
            if target.mode not in prop.modes or not prop.applies(target):
                continue
            try:
                runner.run(prop, target, selection=selection, profile=quick, seed=seed,
                           historic=historic_cases(prop) if historic else ())
            except Exception as e:  # noqa: BLE001 - a crash on valid input does not count
                found = assertions_in(e)
                if found:
                    caught.append(Catch(prop.name, target.name, str(found[0]).splitlines()[0]))
                    if first:
                        return caught
    return caught


def assertions_in(exc: BaseException) -> list[AssertionError]:
    """The AssertionErrors in ``exc`` (hypothesis may group several): a plant caught by a comparison."""
    if isinstance(exc, AssertionError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        return [a for e in exc.exceptions for a in assertions_in(e)]
    return []
