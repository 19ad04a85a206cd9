"""The suite tests itself: each planted wrong implementation must be caught."""

from __future__ import annotations

import pytest
from hypothesis import settings

from crosscheck import runner
from crosscheck.ops import properties
from crosscheck.planted import assertions_in, planted_targets


@pytest.mark.parametrize("target", planted_targets(), ids=lambda t: f"{t.op.name}-{t.impl}")
def test_planted_bug_is_caught(target):
    caught = []
    for prop in properties([target.op.name]):
        if not prop.applies(target):
            continue
        try:
            # more examples than the profile: a planted bug that only some shapes expose
            # (a transposed index needs two dims of size >= 2) must be found every run
            runner.run(prop, target, max_examples=max(settings.default.max_examples, 200))
        except Exception as e:  # noqa: BLE001 - a crash on valid input does not count
            if assertions_in(e):
                caught.append(prop.name)
    assert caught, f"no property caught the planted bug {target.impl!r} in {target.op.name}"
