"""The loading properties test themselves: each planted wrong loader or collate must be caught.

The planted implementations are the bugs users meet (``research`` notes,
section 2.4): a short last batch lost, a shuffle that ignores the epoch,
torch's tuple-to-list collate and float64 narrowed to float32 inside a loader
(the collate alone is the op table's: ``crosscheck/ops/loading.py``), samples
reordered inside a batch, grain-style batching per worker, an order that visits an
index twice, a worker error re-raised as another class. Each is run through
the very ``prop_*`` functions of ``test_loading.py`` under hypothesis, and at
least one of them must fail with an ``AssertionError``. A control (the same
scaffolding with correct pieces) must pass, so a catch means the bug, not the
scaffolding.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from test_loading import (
    REFS,
    Impl,
    loader_cases,
    order_cases,
    prop_batches_match_refs,
    prop_epoch_order_is_a_keyed_permutation,
    prop_epoch_visits_each_index_once,
    prop_getitem_error_keeps_its_class,
    refs_loader,
)

from crosscheck.planted import assertions_in
from refs.loading import default_collate, epoch_order

# --- scaffolding: a loader assembled from replaceable pieces ---------------------------


def loop_loader(collate=default_collate, order_fn=epoch_order, *, keep_tail=True, chunk=None):
    """A loader in ``make_loader``'s calling convention; correct with the default pieces."""

    def make(dataset, batch_size, *, shuffle=False, seed=0, epoch=0, drop_last=False, num_workers=0):
        order = order_fn(len(dataset), seed=seed, epoch=epoch).tolist() if shuffle else list(range(len(dataset)))
        chunks = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
        if chunks and len(chunks[-1]) < batch_size and (drop_last or not keep_tail):
            chunks.pop()
        return [collate([dataset[i] for i in (chunk or list)(c)]) for c in chunks]

    return make


def grain_like(dataset, batch_size, *, shuffle=False, seed=0, epoch=0, drop_last=False, num_workers=0):
    """Records dealt round-robin to the workers, each worker batching its own share (grain#953)."""
    order = epoch_order(len(dataset), seed=seed, epoch=epoch).tolist() if shuffle else list(range(len(dataset)))
    workers = max(num_workers, 1)
    per_worker = []
    for w in range(workers):
        share = order[w::workers]
        chunks = [share[s : s + batch_size] for s in range(0, len(share), batch_size)]
        if drop_last and chunks and len(chunks[-1]) < batch_size:
            chunks.pop()
        per_worker.append(chunks)
    rounds = max((len(c) for c in per_worker), default=0)
    chunks = [c[r] for r in range(rounds) for c in per_worker if r < len(c)]
    return [default_collate([dataset[i] for i in c]) for c in chunks]


def _map_tree(tree, leaf):
    if isinstance(tree, dict):
        return type(tree)((k, _map_tree(v, leaf)) for k, v in tree.items())
    if isinstance(tree, (tuple, list)):
        items = [_map_tree(v, leaf) for v in tree]
        return type(tree)(*items) if hasattr(type(tree), "_fields") else type(tree)(items)
    return leaf(tree)


def tuples_become_lists(samples):
    """torch's default_collate habit: a tuple sample gives a list batch."""

    def relist(tree):
        if isinstance(tree, dict):
            return type(tree)((k, relist(v)) for k, v in tree.items())
        if isinstance(tree, (tuple, list)):
            return [relist(v) for v in tree]
        return tree

    return relist(default_collate(samples))


def float64_becomes_float32(samples):
    """JAX without x64, or a ``.float()`` too many: float64 leaves narrowed."""
    narrow = lambda a: a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == np.float64 else a
    return _map_tree(default_collate(samples), narrow)


def epoch_blind_order(n, *, seed, epoch=0):
    return epoch_order(n, seed=seed, epoch=0)


def global_rng_order(n, *, seed, epoch=0):
    """Shuffling with NumPy's global RNG: depends on whatever drew from it before."""
    return np.random.permutation(n).astype(np.int64)  # noqa: NPY002 - the bug planted here


def repeating_order(n, *, seed, epoch=0):
    order = epoch_order(n, seed=seed, epoch=epoch)
    if n >= 2:
        order[-1] = order[0]
    return order


def error_becomes_runtime_error(dataset, batch_size, **kwargs):
    """What torch does with an exception it cannot rebuild from one string."""

    def run():
        try:
            yield from refs_loader(dataset, batch_size, **kwargs)
        except Exception as e:  # noqa: BLE001 - the bug planted here
            raise RuntimeError(f"Caught {type(e).__name__} in a worker: {e}") from e

    return run()


def error_is_swallowed(dataset, batch_size, **kwargs):
    def run():
        try:
            yield from refs_loader(dataset, batch_size, **kwargs)
        except Exception:  # noqa: BLE001 - the bug planted here
            return

    return run()


def _numpy_impl(name, make=None, collate=default_collate):
    return Impl(name, make or loop_loader(collate), collate, lambda: np.ndarray)


# --- the planted bugs, each with the properties expected to catch it ------------------

ANY = loader_cases()
INDEX_CASES = loader_cases(kinds=("int",))
WORKER_CASES = loader_cases(workers=(2, 3))

PLANTED = [
    # (bug, property, implementation, strategy)
    ("short tail dropped", prop_batches_match_refs, _numpy_impl("drops_tail", loop_loader(keep_tail=False)), ANY),
    ("short tail dropped", prop_epoch_visits_each_index_once, _numpy_impl("drops_tail", loop_loader(keep_tail=False)), INDEX_CASES),
    ("epoch ignored", prop_batches_match_refs, _numpy_impl("epoch_blind", loop_loader(order_fn=epoch_blind_order)), ANY),
    ("epoch ignored", prop_epoch_order_is_a_keyed_permutation, epoch_blind_order, order_cases()),
    ("global RNG shuffle", prop_epoch_order_is_a_keyed_permutation, global_rng_order, order_cases()),
    ("tuple becomes list", prop_batches_match_refs, _numpy_impl("relist", collate=tuples_become_lists), ANY),
    ("float64 narrowed", prop_batches_match_refs, _numpy_impl("narrow", collate=float64_becomes_float32), ANY),
    ("reordered in batch", prop_batches_match_refs, _numpy_impl("reversed", loop_loader(chunk=lambda c: c[::-1])), ANY),
    ("per-worker batching", prop_batches_match_refs, _numpy_impl("grain_like", grain_like), WORKER_CASES),
    ("per-worker batching", prop_epoch_visits_each_index_once, _numpy_impl("grain_like", grain_like), loader_cases(workers=(2, 3), kinds=("int",))),
    ("index repeated", prop_epoch_order_is_a_keyed_permutation, repeating_order, order_cases()),
    ("index repeated", prop_epoch_visits_each_index_once, _numpy_impl("repeats", loop_loader(order_fn=repeating_order)), INDEX_CASES),
]

#: the scaffolding with correct pieces: every property must pass it
CONTROLS = [
    (prop_batches_match_refs, _numpy_impl("loop", loop_loader()), ANY),
    (prop_batches_match_refs, _numpy_impl("grain_like_1_worker", grain_like), loader_cases(workers=(0, 1))),
    (prop_epoch_visits_each_index_once, _numpy_impl("loop", loop_loader()), INDEX_CASES),
    (prop_epoch_order_is_a_keyed_permutation, epoch_order, order_cases()),
]


def _run(prop, impl, strategy) -> AssertionError | None:
    """The first counterexample hypothesis finds, or None; no shrinking: finding is enough."""

    # more examples than the profile: a bug that only some draws expose (a tuple sample,
    # a ragged tail with shuffle on) must be found on every run, not by luck
    @settings(max_examples=max(settings.default.max_examples, 150), phases=[Phase.explicit, Phase.generate], database=None)
    @given(case=strategy)
    def run(case):
        prop(impl, case)

    try:
        run()
    except Exception as e:  # noqa: BLE001 - a crash on valid input does not count as a catch
        found = assertions_in(e)
        if not found:
            raise
        return found[0]
    return None


def _id(entry) -> str:
    bug, prop = entry[0], entry[1]
    return f"{bug.replace(' ', '_')}-{prop.__name__.removeprefix('prop_')}"


@pytest.mark.parametrize(("bug", "prop", "impl", "strategy"), PLANTED, ids=[_id(p) for p in PLANTED])
def test_planted_bug_is_caught(bug, prop, impl, strategy):
    assert _run(prop, impl, strategy) is not None, f"{prop.__name__} did not catch the planted bug: {bug}"


@pytest.mark.parametrize(
    ("prop", "impl", "strategy"),
    CONTROLS,
    ids=[f"{p.__name__.removeprefix('prop_')}-{getattr(i, 'name', getattr(i, '__name__', ''))}" for p, i, _ in CONTROLS],
)
def test_correct_scaffolding_passes(prop, impl, strategy):
    failure = _run(prop, impl, strategy)
    assert failure is None, f"{prop.__name__} fails a correct implementation: {failure}"


@pytest.mark.parametrize(
    "impl",
    [_numpy_impl("rewraps", error_becomes_runtime_error), _numpy_impl("swallows", error_is_swallowed)],
    ids=["error_becomes_RuntimeError", "error_swallowed"],
)
@pytest.mark.parametrize("error", [IndexError, KeyError])
def test_planted_error_handling_is_caught(impl, error):
    with pytest.raises(AssertionError):
        prop_getitem_error_keeps_its_class(impl, error, num_workers=0)
    prop_getitem_error_keeps_its_class(REFS, error, num_workers=0)  # the control passes
