"""Batched loading: what is not a cell of the op table.

The loaders, the collates and the shuffle are cells of the table
(``crosscheck/ops/loading.py``: ``make_loader``, ``default_collate`` and
``epoch_order``, run by ``tests/test_properties.py``). What stays here are
fixed facts: the shuffle's pinned stream, and torch's own collate behaving as
the table's notes about it say.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import refs
from crosscheck.backends import Backend


def test_epoch_order_is_pinned():
    """The stream is part of the contract: a changed shuffle changes every recorded run."""
    assert refs.epoch_order(10, seed=0).tolist() == [6, 1, 5, 7, 3, 4, 2, 0, 9, 8]
    assert refs.epoch_order(10, seed=0, epoch=1).tolist() == [7, 4, 8, 5, 3, 0, 1, 2, 9, 6]


def test_torch_builtin_collate_differs_as_documented(require_backend):
    """What ``refs.default_collate``'s table and the native's ``unsupported`` note say about
    torch's own collate, checked, so that the notes cannot outlive the behaviour."""
    require_backend(Backend("torch-cpu"))
    import torch
    from torch.utils.data import default_collate as builtin

    pairs = builtin([(np.zeros(2), 1), (np.ones(2), 2)])
    assert type(pairs) is list, "torch's collate turns a tuple sample into a list"
    dropped = builtin([{"a": 1}, {"a": 2, "extra": 3}])
    assert list(dropped) == ["a"], "torch's collate drops keys samples[0] lacks"
    promoted = builtin([(1,), (2.5,)])
    assert promoted[0].dtype == torch.float32, (
        "an int label next to a float one: torch.tensor([1, 2.5]) promotes to the default "
        "float32, neither int64 (samples[0]'s type) nor float64 (a float column's dtype)"
    )
    assert builtin([0.5, 1.5]).dtype == torch.float64


@pytest.mark.parametrize("impl", ["refs", "torch_impl", "crosscheck.jax_impl"])
def test_an_array_of_strings_is_not_stacked(impl, require_backend):
    """A fixed example, not a cell: torch and JAX hold no string arrays, so the table (which
    converts every sample array to the target's framework) cannot hand one to them; a
    dataset can, as a NumPy sample."""
    framework = {"refs": None, "torch_impl": "torch-cpu", "crosscheck.jax_impl": "jax-cpu"}[impl]
    if framework:
        require_backend(Backend(framework))
    collate = importlib.import_module(impl).default_collate
    with pytest.raises(TypeError, match=r"default_collate\(\): samples\[0\]\['x'\] is an array "
                                        r"of dtype <U1"):
        collate([{"x": np.array(["a", "b"])}, {"x": np.array(["c", "d"])}])


@pytest.mark.parametrize("name", ["make_loader", "batches"])
def test_the_table_knows_which_implementations_define_each_loading_function(name):
    """The table decides which properties apply without importing our implementations (the
    report's parent loads no framework); what it assumes is what the modules define."""
    from crosscheck.ops.loading import DEFINES
    from crosscheck.optable import OURS

    defines = set()
    for impl, (framework, module) in OURS.items():
        if framework != "numpy" and importlib.util.find_spec(framework) is None:
            pytest.skip(f"{framework} is not installed: {module} cannot be read")
        if hasattr(importlib.import_module(module), name):
            defines.add(impl)
    assert defines == set(DEFINES[name])
