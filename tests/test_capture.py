"""Hook-like capture: what the op table's cells cannot say about themselves.

Every property of the capture topic -- forward, penalty, capture_outputs and
init_params on every implementation, backend and mode, their gradients, the
hooks' lifetime, the clone that in-place ops cannot reach -- is a cell of the
op table (``crosscheck/ops/capture.py``, run by ``tests/test_properties.py``),
and every planted bug a record of ``crosscheck/planted/capture.py`` (run by
``tests/test_planted.py``). What stays here checks the cells' own fixtures.
"""

from __future__ import annotations

import numpy as np

import refs.capture as refs_capture
from crosscheck.ops.capture import HISTORIC, HISTORIC_NET, clear_of_kinks, forward_bounds


def test_the_historic_gradient_case_is_clear_of_kinks():
    """The historic cases replayed by the gradient properties must not be discarded by their
    ``assume``: at a kink they would check nothing."""
    kept = refs_capture.forward(HISTORIC_NET.params64(), HISTORIC_NET.x64())[1]
    assert clear_of_kinks(kept, forward_bounds(HISTORIC_NET))
    assert any(h.property == "grads_on_every_path" for h in HISTORIC)


def test_refs_init_params_gives_the_same_numbers_in_both_dtypes():
    """The fixtures' promise (the 2**-12 grid): float32 and float64 weights of one seed are the
    same numbers, so one network runs in both dtypes and a step of 2**-10 stays exact. The
    init_params cells then hold every implementation to refs, exactly, in each dtype."""
    for seed in range(5):
        w32 = refs_capture.init_params(seed, in_channels=2, channels=(3, 1), num_classes=5,
                                       image_size=(7, 4), dtype="float32")
        w64 = refs_capture.init_params(seed, in_channels=2, channels=(3, 1), num_classes=5,
                                       image_size=(7, 4), dtype="float64")
        assert list(w32) == list(w64)
        assert all(np.array_equal(w32[k].astype(np.float64), w64[k]) for k in w64)
