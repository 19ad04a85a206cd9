"""Training and inference: what the op table's cells cannot say about themselves.

Every property of train_step, train_loop and inference_loop -- one step and a
loop against a float64 refs step with an a-priori rounding bound (the
derivation is in ``crosscheck/ops/training.py``), the shadowing argument for
loops, the gradient against central differences, bad input everywhere and
NaN under ``jax.jit`` -- is a cell of the op table, run by
``tests/test_properties.py``; every planted bug is a record of
``crosscheck/planted/training.py``, run by ``tests/test_planted.py``. Here:
each training property catches a plant chosen for it on its own, so that none
is vacuous; the historic cases are clear of kinks (so the bounds hold); and
refs' choices at a tie, which the properties draw clear of.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings

import refs.training as refs_training
from crosscheck import backends, runner
from crosscheck.compare import assert_close
from crosscheck.ops import properties
from crosscheck.ops.training import HISTORIC, step_bounds
from crosscheck.planted import BACKEND, PLANTED, assertions_in, targets
from crosscheck.selection import DEFAULT, REGRESSION, Selection
from crosscheck.tolerance import EXACT

OPS = ["train_step", "train_loop", "inference_loop"]

#: (op, property) -> the plant that property must catch on its own
WITNESS = {
    ("train_step", "agrees_with_ref"): "the step goes uphill",
    ("train_step", "rejects_bad_input"): "jax step without its label checks",
    ("train_step", "leaves_its_arguments_alone"): "the caller's weights overwritten",
    ("train_step", "poisons_bad_values_under_jit"): "traced labels clipped into range under jax.jit",
    ("train_step", "grad_matches_central_differences"): "conv weight gradient with the kernel flipped",
    ("train_step", "repeatable"): None,
    ("train_loop", "agrees_with_ref"): "mean of the per-batch means",
    ("train_loop", "rejects_bad_input"): "batches never checked",
    ("train_loop", "leaves_its_arguments_alone"): "the steps overwrite the caller's weights",
    ("train_loop", "takes_a_loader"): "batches indexed, a stream refused",
    ("train_loop", "is_the_step_repeated"): "the deck's loop: only the last batch counts",
    ("train_loop", "repeatable"): None,
    ("inference_loop", "agrees_with_ref"): "the deck's division: batch means over samples",
    ("inference_loop", "rejects_bad_input"): "batches never checked",
    ("inference_loop", "leaves_its_arguments_alone"): "the evaluation trains the weights",
    ("inference_loop", "takes_a_loader"): "batches indexed, a stream refused",
    ("inference_loop", "repeatable"): None,
}
"""``None``: the generic ``repeatable`` property, proven once for every op in
``tests/test_planted.py::test_repeatable_fails_a_promise_and_reports_the_rest``."""

QUICK = settings(settings.default, max_examples=100, database=None,
                 phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
                 deadline=None, suppress_health_check=list(HealthCheck))

PROPERTIES = [p for p in properties(OPS, REGRESSION) if WITNESS.get((p.op, p.name))]

#: every mode, small cases only: a witness needs no large case, and drawing one is slow
SMALL = Selection("small, every mode", REGRESSION.modes, DEFAULT.layouts)


def test_every_training_property_has_a_witness():
    missing = {(p.op, p.name) for p in properties(OPS, REGRESSION)} - set(WITNESS)
    assert not missing, f"properties without a plant that proves they can fail: {missing}"


@pytest.mark.parametrize("prop", PROPERTIES, ids=lambda p: f"{p.op}-{p.name}")
def test_property_catches_its_witness(prop, require_backend):
    bug = WITNESS[prop.op, prop.name]
    plant = next(p for p in PLANTED if p.op == prop.op and p.bug == bug)
    require_backend(backends.Backend(BACKEND[plant.framework]))
    chosen = [t for t in targets(plant, SMALL) if t.mode in prop.modes and prop.applies(t)]
    assert chosen, f"{prop.name} does not apply to the plant {bug!r}"
    try:
        runner.run(prop, chosen[0], selection=SMALL, profile=QUICK)
    except Exception as e:  # noqa: BLE001 - a crash on valid input does not count
        if assertions_in(e):
            return
        raise
    pytest.fail(f"{prop.op}.{prop.name} did not catch the planted bug {bug!r}")


@pytest.mark.parametrize("historic", [h for h in HISTORIC if h.property != "rejects_bad_input"],
                         ids=lambda h: h.name)
def test_the_historic_cases_are_clear_of_kinks(historic):
    """The bounds assume every ReLU input and pooling window away from a tie by more than
    twice the forward bound, and every top logit ahead of the runner-up: the historic
    cases are replayed without ``assume``, so they must be."""
    case = historic.drawn()
    params = case["params"]
    pairs = [(case["x"], case["y"])] if "x" in case.names else list(case["batches"])
    dtype = np.asarray(params["conv1.weight"]).dtype
    for x, y in pairs:
        flags = []
        step_bounds(params, x, y, dtypes=(dtype,), clear=flags.append)
        assert flags and all(flags), historic.name


def test_refs_backward_at_a_pool_tie_and_a_relu_zero_is_torchs(require_backend):
    """The properties draw clear of both; here the choices themselves: a max-pool tie gives
    the gradient to the first maximum in window order, a ReLU input of exactly 0 passes none."""
    torch = pytest.importorskip("torch")

    # window 0: three 1s (the first at the top left); window 1: 2s in three places, the
    # first at the top right; window 2: all 0 (what ReLU leaves of a dead window)
    x = np.array([[[[1.0, 1.0, 0.0, 2.0, 0.0, 0.0],
                    [1.0, 0.0, 2.0, 2.0, 0.0, 0.0]]]])
    grad = np.array([[[[3.0, 5.0, 7.0]]]])
    t = torch.from_numpy(x).requires_grad_(True)
    torch.nn.functional.max_pool2d(t, 2).backward(torch.from_numpy(grad))
    assert_close(refs_training._max_pool_backward(grad, x), t.grad.numpy(), EXACT,
                 path="max-pool gradient at ties")
    z = np.array([-1.0, 0.0, 2.0])
    t = torch.from_numpy(z).requires_grad_(True)
    torch.relu(t).backward(torch.ones(3, dtype=torch.float64))
    assert_close(refs_training._relu_backward(np.ones(3), z), t.grad.numpy(), EXACT,
                 path="ReLU gradient at 0")
