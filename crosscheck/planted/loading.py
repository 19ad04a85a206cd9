"""Planted wrong collates, loaders and shuffles: the bugs users meet, each to be caught.

The loaders take the table's calling convention ``(dataset, batch_size,
shuffle, seed, epoch, drop_last, num_workers)`` and return the epoch's list of
batches (``crosscheck.ops.loading.collect``). Most are assembled by
:func:`scaffold_loader` from replaceable pieces (the order, the chunking, the
collate), which is correct with the default pieces: ``tests/test_planted_loading.py``
checks that, so that a catch means the bug, not the scaffolding. A plant whose
``api`` is set is wrong only in the part of the API it replaces there
(``make_loader`` called without iterating, ``batches`` with an ``order``, a
device); its table function is correct.
"""

from __future__ import annotations

import atexit
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np

import refs
from crosscheck.ops.loading import collect, jax_make_loader, quiet_workers, refs_make_loader
from crosscheck.optable import Plant
from refs.checks.loading import check_int, check_loader, check_samples
from refs.trees import leaves, map_tree

# ----------------------------------------------------------------- collates


def tuples_as_lists(samples):
    """torch's own rule: the batch of tuple samples is a list."""

    def listify(x):
        if type(x) is tuple:
            return [listify(v) for v in x]
        if isinstance(x, dict):
            return type(x)((k, listify(v)) for k, v in x.items())
        return x

    return listify(refs.default_collate(samples))


def float32(samples):
    """Every float64 leaf narrowed to float32, as a loader with x64 off would."""
    return map_tree(refs.default_collate(samples),
                    lambda a: a.astype(np.float32) if a.dtype == np.float64 else a, np.ndarray)


def plain_dict(samples):
    """An OrderedDict sample batched into a plain dict: the container type lost."""
    batch = refs.default_collate(samples)
    return dict(batch) if isinstance(batch, OrderedDict) else batch


def first_keys_only(samples):
    """torch's habit: dict keys that samples[0] lacks are dropped instead of rejected."""

    def trim(x, like):
        if isinstance(x, dict) and isinstance(like, dict):
            return type(x)((k, trim(x[k], like[k])) for k in like if k in x)
        return x

    return refs.default_collate([samples[0]] + [trim(s, samples[0]) for s in samples[1:]])


def reversed_samples(samples):
    """The samples stacked in reverse order."""
    return refs.default_collate(list(samples)[::-1])


def jax_device_put_narrows_silently(samples):
    """refs' batch handed to ``jax.device_put`` as it is: right with x64 on, but with x64
    off a value beyond int32 wraps and one beyond float32 becomes inf, silently."""
    import jax

    check_samples("default_collate", samples)
    return map_tree(refs.default_collate(samples), jax.device_put, np.ndarray)


# ------------------------------------------------------------------ shuffles


def epoch_blind_order(n, seed, epoch):
    return refs.epoch_order(n, seed=seed)


def global_rng_order(n, seed, epoch):
    """Shuffling with NumPy's global RNG: depends on whatever drew from it before."""
    return np.random.permutation(n).astype(np.int64)  # noqa: NPY002 - the bug planted here


def repeating_order(n, seed, epoch):
    order = refs.epoch_order(n, seed=seed, epoch=epoch)
    if n >= 2:
        order[-1] = order[0]
    return order


# ------------------------------------------------------------------- loaders


def _in_order(order_fn, n, shuffle, seed, epoch) -> list[int]:
    return order_fn(n, seed, epoch).tolist() if shuffle else list(range(n))


def _promised_order(n, seed, epoch):
    return refs.epoch_order(n, seed=seed, epoch=epoch)


def scaffold_loader(order_fn=_promised_order, collate=refs.default_collate, *, keep_tail=True,
                    within=list):
    """A loader from replaceable pieces; with the default pieces it is correct."""

    def make_loader(dataset, batch_size, shuffle, seed, epoch, drop_last, num_workers):
        a = check_loader("make_loader", dataset, batch_size, shuffle, seed, epoch, drop_last)
        order = _in_order(order_fn, a.n, a.shuffle, a.seed, a.epoch)
        chunks = [order[s:s + a.batch_size] for s in range(0, a.n, a.batch_size)]
        if chunks and len(chunks[-1]) < a.batch_size and (a.drop_last or not keep_tail):
            chunks.pop()
        return collect(collate([dataset[i] for i in within(c)]) for c in chunks)

    return make_loader


def grain_like(dataset, batch_size, shuffle, seed, epoch, drop_last, num_workers):
    """Records dealt round-robin to the workers, each worker batching its own share
    (google/grain#953)."""
    a = check_loader("make_loader", dataset, batch_size, shuffle, seed, epoch, drop_last)
    order = _in_order(_promised_order, a.n, a.shuffle, a.seed, a.epoch)
    workers = max(num_workers, 1)
    per_worker = []
    for w in range(workers):
        share = order[w::workers]
        chunks = [share[s:s + a.batch_size] for s in range(0, len(share), a.batch_size)]
        if a.drop_last and chunks and len(chunks[-1]) < a.batch_size:
            chunks.pop()
        per_worker.append(chunks)
    rounds = max((len(c) for c in per_worker), default=0)
    chunks = [c[r] for r in range(rounds) for c in per_worker if r < len(c)]
    return collect(refs.default_collate([dataset[i] for i in c]) for c in chunks)


def error_becomes_runtime_error(*args):
    """What torch does with an exception it cannot rebuild from one string."""
    try:
        return refs_make_loader(refs)(*args)
    except Exception as e:  # noqa: BLE001 - the bug planted here
        raise RuntimeError(f"Caught {type(e).__name__} in a worker: {e}") from e


def error_ends_the_epoch(dataset, batch_size, shuffle, seed, epoch, drop_last, num_workers):
    """A failing sample ends the epoch quietly: the batches before it, then nothing."""
    a = check_loader("make_loader", dataset, batch_size, shuffle, seed, epoch, drop_last)
    order = refs.epoch_order(a.n, seed=a.seed, epoch=a.epoch) if a.shuffle else None
    batches = []
    try:
        for batch in refs.batches(dataset, a.batch_size, order=order, drop_last=a.drop_last):
            batches.append(batch)
    except Exception:  # noqa: BLE001 - the bug planted here
        pass
    return batches


def seeds_from_the_global_rng(*args):
    """Correct batches, but a worker seed drawn from NumPy's global RNG on the way."""
    np.random.randint(2**31)  # noqa: NPY002 - the bug planted here
    return refs_make_loader(refs)(*args)


def checks_left_to_refs(dataset, batch_size, shuffle, seed, epoch, drop_last, num_workers):
    """refs.batches and epoch_order composed without make_loader's own checks: seed and
    epoch go unchecked without shuffle, and the messages name batches() or epoch_order()."""
    order = refs.epoch_order(len(dataset), seed=seed, epoch=epoch) if shuffle else None
    return collect(refs.batches(dataset, batch_size, order=order, drop_last=drop_last))


def _checked_when_iterated(dataset, batch_size, *, shuffle=False, seed=0, epoch=0,
                           drop_last=False, num_workers=0):
    """make_loader as a generator function: nothing is checked until the first batch."""
    yield from refs_make_loader(refs)(dataset, batch_size, shuffle, seed, epoch, drop_last,
                                      num_workers)


def _batches_accepting_repeats(dataset, batch_size, *, order=None, drop_last=False):
    """refs.batches, except that an index repeated in ``order`` passes."""
    entries = None
    if isinstance(order, (list, tuple)) and all(type(i) is int for i in order):
        entries = list(order)
    elif isinstance(order, np.ndarray) and order.ndim == 1 and order.dtype.kind in "iu":
        entries = [int(i) for i in order]
    if entries and len(set(entries)) < len(entries):
        refs.batches(dataset, batch_size, order=list(dict.fromkeys(entries)), drop_last=drop_last)
        from refs.loading import _batches

        return _batches(dataset, batch_size, entries, drop_last)
    return refs.batches(dataset, batch_size, order=order, drop_last=drop_last)


def torch_workers_ignored(dataset, batch_size, shuffle, seed, epoch, drop_last, num_workers):
    """torch_impl's loader with num_workers neither checked nor used: all reading happens
    in this process, so nothing that depends on workers is ever exercised."""
    import torch_impl

    return collect(torch_impl.make_loader(dataset, batch_size, shuffle=shuffle, seed=seed,
                                          epoch=epoch, drop_last=drop_last))


_LEFT_RUNNING: list = []


def _stop_left_running() -> None:
    while _LEFT_RUNNING:
        _LEFT_RUNNING.pop()._shutdown_workers()


atexit.register(_stop_left_running)


def torch_workers_outlive_an_error(dataset, batch_size, shuffle, seed, epoch, drop_last,
                                   num_workers):
    """torch_impl's loader whose workers are left running after a failed batch (until the
    next call: a plain DataLoader leaves them to the cyclic GC, 5 s a worker)."""
    import torch_impl

    _stop_left_running()
    check_int("make_loader", "num_workers", num_workers, minimum=0)
    with quiet_workers():
        loader = torch_impl.make_loader(dataset, batch_size, shuffle=shuffle, seed=seed,
                                        epoch=epoch, drop_last=drop_last, num_workers=num_workers)
        batches = iter(super(type(loader), loader).__iter__())  # DataLoader's own iterator
        try:
            return collect(batches)
        except Exception:
            if num_workers:
                _LEFT_RUNNING.append(batches)
            raise


def _jax_make_loader_taking_names(dataset, batch_size, *, device=None, **options):
    """jax_impl's make_loader, except that a device given by name means the default one."""
    from crosscheck import jax_impl

    return jax_impl.make_loader(dataset, batch_size,
                                device=None if isinstance(device, str) else device, **options)


def _jax_loader(*args):
    from crosscheck import jax_impl

    return jax_make_loader(jax_impl)(*args)


PLANTED = (
    Plant("default_collate", "tuples become lists", tuples_as_lists),
    Plant("default_collate", "float64 leaves narrowed to float32", float32),
    Plant("default_collate", "samples stacked in reverse order", reversed_samples),
    Plant("default_collate", "an OrderedDict batched into a plain dict", plain_dict),
    Plant("default_collate", "dict keys samples[0] lacks dropped", first_keys_only),
    Plant("default_collate", "device_put narrows without x64, silently",
          jax_device_put_narrows_silently, "jax"),
    Plant("epoch_order", "epoch ignored", epoch_blind_order),
    Plant("epoch_order", "shuffled with NumPy's global RNG", global_rng_order),
    Plant("epoch_order", "an index visited twice", repeating_order),
    Plant("make_loader", "short tail dropped", scaffold_loader(keep_tail=False)),
    Plant("make_loader", "epoch ignored", scaffold_loader(epoch_blind_order)),
    Plant("make_loader", "an index visited twice", scaffold_loader(repeating_order)),
    Plant("make_loader", "samples reordered in a batch", scaffold_loader(within=lambda c: c[::-1])),
    Plant("make_loader", "tuples become lists", scaffold_loader(collate=tuples_as_lists)),
    Plant("make_loader", "float64 narrowed to float32", scaffold_loader(collate=float32)),
    Plant("make_loader", "batches per worker (grain)", grain_like),
    Plant("make_loader", "a dataset error re-raised as RuntimeError", error_becomes_runtime_error),
    Plant("make_loader", "a dataset error ends the epoch quietly", error_ends_the_epoch),
    Plant("make_loader", "a seed drawn from NumPy's global RNG", seeds_from_the_global_rng),
    Plant("make_loader", "checks left to refs.batches and epoch_order", checks_left_to_refs),
    Plant("make_loader", "arguments checked at the first batch", refs_make_loader(refs),
          api=SimpleNamespace(make_loader=_checked_when_iterated)),
    Plant("make_loader", "batches() accepts a repeated index", refs_make_loader(refs),
          api=SimpleNamespace(batches=_batches_accepting_repeats)),
    Plant("make_loader", "num_workers neither checked nor used", torch_workers_ignored, "torch"),
    Plant("make_loader", "workers outlive a failed batch", torch_workers_outlive_an_error,
          "torch"),
    Plant("make_loader", "a device name taken for the default device", _jax_loader, "jax",
          api=SimpleNamespace(make_loader=_jax_make_loader_taking_names)),
)


# --- wrong only where the regression run goes ---------------------------------------


def collate_fast_path_when_large(samples):
    """refs' collate, except that a batch of 2**16 elements or more repeats its second-to-last
    sample in the last row (the shape of a copy kernel that switches path with the size)."""
    batch = refs.default_collate(samples)
    if sum(a.size for a in leaves(batch, np.ndarray)) < 2**16 or len(samples) < 2:
        return batch
    return map_tree(batch, lambda a: np.concatenate([a[:-1], a[-2:-1]]), np.ndarray)


PLANTED += (
    Plant("default_collate", "the last sample of a large batch overwritten",
          collate_fast_path_when_large, axis="size:large"),
)
