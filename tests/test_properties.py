"""Every property of the op table on every target (implementation x backend x mode) it applies to."""

from __future__ import annotations

import pytest

from crosscheck import backends, runner
from crosscheck.ops import cells, historic
from crosscheck.selection import REGRESSION

#: every cell of the regression tier exists as a test id; the test session runs those of
#: its selection (conftest.py: --tier) and skips the others with the reason
CELLS = cells(backends.selected(), selection=REGRESSION)


@pytest.mark.parametrize(
    ("prop", "target"),
    [pytest.param(p, t, id=f"{p.op}-{p.name}-{t.name}-{t.backend.name}",
                  marks=[pytest.mark.cuda] if t.backend.device == "cuda" else [])
     for p, t in CELLS],
)
def test_property(prop, target, selection, require_target):
    require_target(prop, target, selection)
    outcome = runner.run(prop, target, selection=selection, historic=historic(prop))
    assert outcome.drawn > 0, "hypothesis ran no example: the property tested nothing"
