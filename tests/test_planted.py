"""The suite tests itself: each planted wrong implementation must be caught.

A plant with an ``axis`` is wrong only where the regression run goes (an
expanded index, a large input, jax.jit, channels_last): the default selection
must miss it and the regression selection's cells on that axis catch it, which
proves that the axis is needed and that it works. Both runs leave out the historic cases here,
which would otherwise hand the default run the very layout it does not draw.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import settings

from crosscheck import backends, report
from crosscheck.planted import BACKEND, PLANTED, catch
from crosscheck.selection import DEFAULT, REGRESSION, Selection

EXAMPLES = max(settings.default.max_examples, 200)


def axis_selection(axis: str) -> Selection:
    """The regression run's cells on one axis: the default selection with that axis opened
    as the regression selection opens it (every layout, the large tier mixed into the
    small one, the compiled mode), in the regression tier. Its cells are the regression
    run's; the whole regression selection per plant would compile every shape again in
    every mode (the channels_last plant took 535 s there) for cells that cannot matter."""
    kind, value = axis.split(":")
    opened = replace(DEFAULT, name=f"regression: {axis}", tier="regression")
    if kind == "layout":
        assert value in REGRESSION.layouts, axis
        return replace(opened, layouts=REGRESSION.layouts)
    if kind == "size":
        assert value in REGRESSION.sizes, axis
        return replace(opened, sizes=DEFAULT.sizes + (value,))
    if kind == "mode":  # every target in that mode, natives too
        assert value in REGRESSION.modes, axis
        return replace(opened, modes=(value,), native_modes=())
    raise ValueError(f"unknown axis {axis!r}")


def _ready(plant, require_backend):
    require_backend(backends.Backend(BACKEND[plant.framework]))


@pytest.mark.parametrize("plant", [p for p in PLANTED if p.axis is None],
                         ids=lambda p: f"{p.op}-{p.bug}")
def test_planted_bug_is_caught(plant, require_backend):
    """By the default run exactly as ``python -m crosscheck`` runs it: its examples a cell,
    its seed, its historic cases. The report's default budget stands on this (a plant that
    only some shapes expose, such as a transposed index needing two dims >= 2, must be
    among the shapes the report draws, or get a historic case)."""
    _ready(plant, require_backend)
    assert catch(plant, DEFAULT, max_examples=report.EXAMPLES, seed=report.SEED), (
        f"the default report ({report.EXAMPLES} examples a cell, seed {report.SEED}) does "
        f"not catch the planted bug {plant.bug!r} in {plant.op}")


@pytest.mark.parametrize("plant", [p for p in PLANTED if p.axis is not None],
                         ids=lambda p: f"{p.op}-{p.axis}-{p.bug}")
def test_axis_plant_needs_the_regression_run(plant, require_backend):
    _ready(plant, require_backend)
    missed = catch(plant, DEFAULT, max_examples=EXAMPLES, historic=False)
    assert not missed, (f"the default run already catches {plant.bug!r} ({missed[0]}): it "
                        f"does not prove that the {plant.axis} axis is needed")
    caught = catch(plant, axis_selection(plant.axis), max_examples=EXAMPLES, historic=False)
    assert caught, f"the regression run ({plant.axis}) did not catch {plant.bug!r} in {plant.op}"


def _alternating(op_name: str):
    """refs' op, except that every second call adds 1 to the first element: a kernel whose
    answer depends on a race or on state left by the call before."""
    import numpy as np

    import refs

    calls = [0]

    def fn(*args):
        out = np.array(getattr(refs, op_name)(*args), copy=True)
        calls[0] += 1
        if calls[0] % 2 == 0 and out.size:
            out.reshape(-1)[0] += 1
        return out

    return fn


@pytest.mark.parametrize(("op", "deterministic"), [("gather", True), ("scatter_add", False)])
def test_repeatable_fails_a_promise_and_reports_the_rest(op, deterministic, require_backend):
    """The generic ``repeatable`` property: a second call that differs fails an op that
    promises determinism (gather moves data), and is reported, not failed, for one that
    does not (scatter_add: CUDA's atomics may add in any order)."""
    from crosscheck import runner
    from crosscheck.ops import BY_NAME, properties
    from crosscheck.optable import NOT_REPEATABLE, Plant
    from crosscheck.planted import targets

    require_backend(backends.Backend("numpy"))
    assert BY_NAME[op].deterministic is deterministic
    prop = next(p for p in properties([op], REGRESSION) if p.name == "repeatable")
    plant = Plant(op, "answers differently on a second call", _alternating(op))
    (target,) = targets(plant)
    small = Selection("small", DEFAULT.modes, DEFAULT.layouts, DEFAULT.sizes, "regression")
    if deterministic:
        with pytest.raises(AssertionError, match="second call vs first"):
            runner.run(prop, target, selection=small, max_examples=EXAMPLES)
    else:
        outcome = runner.run(prop, target, selection=small, max_examples=EXAMPLES)
        assert outcome.observed.get(NOT_REPEATABLE, 0) > 0
