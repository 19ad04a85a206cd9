"""The loading properties test themselves, beyond ``tests/test_planted.py``.

``test_planted.py`` proves that every plant is caught by some property. Here,
the other direction: every loading property catches a plant chosen for it, so
that none of them is vacuous (the properties that start workers or take the
device would otherwise be proven only by the implementations passing them).
And the control: the scaffolding the planted loaders are assembled from passes
every property with correct pieces, so a catch means the bug, not the
scaffolding.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings

from crosscheck import backends, runner
from crosscheck.ops import properties
from crosscheck.optable import Plant
from crosscheck.planted import BACKEND, PLANTED, assertions_in, catch, targets
from crosscheck.planted.loading import scaffold_loader

OPS = ["default_collate", "make_loader", "epoch_order"]

#: (op, property) -> the plant that property must catch on its own
WITNESS = {
    ("default_collate", "agrees_with_ref"): "tuples become lists",
    ("default_collate", "rejects_bad_input"): "dict keys samples[0] lacks dropped",
    ("default_collate", "follows_jax_dtypes_without_x64"): "device_put narrows without x64, silently",
    ("epoch_order", "agrees_with_ref"): "epoch ignored",
    ("epoch_order", "rejects_bad_input"): "shuffled with NumPy's global RNG",
    ("epoch_order", "is_a_keyed_permutation"): "an index visited twice",
    ("make_loader", "agrees_with_ref"): "samples reordered in a batch",
    ("make_loader", "rejects_bad_input"): "checks left to refs.batches and epoch_order",
    ("make_loader", "visits_each_index_once"): "an index visited twice",
    ("make_loader", "getitem_error_keeps_its_class"): "a dataset error re-raised as RuntimeError",
    ("make_loader", "workers_stop_when_a_batch_fails"): "workers outlive a failed batch",
    ("make_loader", "workers_copy_the_dataset"): "num_workers neither checked nor used",
    ("make_loader", "rejects_bad_num_workers"): "num_workers neither checked nor used",
    ("make_loader", "leaves_global_rngs_alone"): "a seed drawn from NumPy's global RNG",
    ("make_loader", "rejects_bad_input_when_built"): "arguments checked at the first batch",
    ("make_loader", "batches_rejects_bad_order"): "batches() accepts a repeated index",
    ("make_loader", "resumes_mid_epoch"): "short tail dropped",
    ("make_loader", "keyed_augmentation_ignores_workers"): "batches per worker (grain)",
    ("make_loader", "batches_on_the_device"): "a device name taken for the default device",
}

#: fewer examples than test_planted.py's: each run is one property on one plant
QUICK = settings(settings.default, max_examples=100, database=None,
                 phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
                 deadline=None, suppress_health_check=list(HealthCheck))

PROPERTIES = properties(OPS)


def _plant(op: str, bug: str) -> Plant:
    return next(p for p in PLANTED if p.op == op and p.bug == bug)


def test_every_loading_property_has_a_witness():
    missing = {(p.op, p.name) for p in PROPERTIES} - set(WITNESS)
    assert not missing, f"properties without a plant that proves they can fail: {missing}"


@pytest.mark.parametrize("prop", PROPERTIES, ids=lambda p: f"{p.op}-{p.name}")
def test_property_catches_its_witness(prop, require_backend):
    plant = _plant(prop.op, WITNESS[prop.op, prop.name])
    require_backend(backends.Backend(BACKEND[plant.framework]))
    (target,) = targets(plant)
    assert prop.applies(target), f"{prop.name} does not apply to the plant {plant.bug!r}"
    try:
        runner.run(prop, target, profile=QUICK)
    except Exception as e:  # noqa: BLE001 - a crash on valid input does not count
        if assertions_in(e):
            return
        raise
    pytest.fail(f"{prop.op}.{prop.name} did not catch the planted bug {plant.bug!r}")


def test_the_scaffolding_with_correct_pieces_passes_every_property():
    control = Plant("make_loader", "control: the scaffolding, correct", scaffold_loader())
    assert catch(control, max_examples=60, first=False) == []
