"""The suite tests itself: each planted wrong implementation must be caught.

A plant with an ``axis`` is wrong only where the regression run goes (an
expanded index, a large input, jax.jit, channels_last): the default selection
must miss it and the regression selection catch it, which proves that the axis
is needed and that it works. Both runs leave out the historic cases here,
which would otherwise hand the default run the very layout it does not draw.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from crosscheck import backends
from crosscheck.planted import BACKEND, PLANTED, catch
from crosscheck.selection import DEFAULT, REGRESSION

EXAMPLES = max(settings.default.max_examples, 200)


def _ready(plant, require_backend):
    require_backend(backends.Backend(BACKEND[plant.framework]))


@pytest.mark.parametrize("plant", [p for p in PLANTED if p.axis is None],
                         ids=lambda p: f"{p.op}-{p.bug}")
def test_planted_bug_is_caught(plant, require_backend):
    _ready(plant, require_backend)
    # more examples than the profile: a planted bug that only some shapes expose
    # (a transposed index needs two dims of size >= 2) must be found every run
    assert catch(plant, DEFAULT, max_examples=EXAMPLES), (
        f"no property caught the planted bug {plant.bug!r} in {plant.op}")


@pytest.mark.parametrize("plant", [p for p in PLANTED if p.axis is not None],
                         ids=lambda p: f"{p.op}-{p.axis}-{p.bug}")
def test_axis_plant_needs_the_regression_run(plant, require_backend):
    _ready(plant, require_backend)
    missed = catch(plant, DEFAULT, max_examples=EXAMPLES, historic=False)
    assert not missed, (f"the default run already catches {plant.bug!r} ({missed[0]}): it "
                        f"does not prove that the {plant.axis} axis is needed")
    caught = catch(plant, REGRESSION, max_examples=EXAMPLES, historic=False)
    assert caught, f"the regression run ({plant.axis}) did not catch {plant.bug!r} in {plant.op}"
