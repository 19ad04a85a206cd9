"""Every property of the op table on every implementation x backend it applies to."""

from __future__ import annotations

import pytest

from crosscheck import backends, runner
from crosscheck.ops import cells

CELLS = cells(backends.selected())


@pytest.mark.parametrize(
    ("prop", "target"),
    [pytest.param(p, t, id=f"{p.op}-{p.name}-{t.impl}-{t.backend.name}",
                  marks=[pytest.mark.cuda] if t.backend.device == "cuda" else [])
     for p, t in CELLS],
)
def test_property(prop, target, require_backend):
    require_backend(target.backend)
    outcome = runner.run(prop, target)
    assert outcome.examples > 0, "hypothesis ran no example: the property tested nothing"
