"""``make_loader`` on ``torch.utils.data.DataLoader``, batch for batch equal to ``refs.batches``.

Three choices make the DataLoader give exactly the reference's batches:

* **Order.** The sampler is the list ``refs.epoch_order(n, seed=seed,
  epoch=epoch)`` (or ``range(n)``); DataLoader's ``BatchSampler`` cuts it into
  batches in the main process and hands whole batches to the workers, and the
  batches come back in sampler order whatever the number of workers. A loader
  is one epoch: iterating it again repeats that epoch; build the next epoch
  with ``make_loader(..., epoch=epoch + 1)``.
* **Collate.** :func:`default_collate` keeps the structure of the first
  sample, as ``refs.default_collate`` does: a tuple stays a tuple (torch's own
  collate returns a list), a namedtuple stays that namedtuple, extra or
  missing dict keys are an error (torch's drops them), Python floats become
  float64, ints int64, bools bool, text a list of ``str``.
* **Seeds.** Workers get torch's usual seeds (``base_seed + worker_id`` for
  torch and ``random``, a derived seed for NumPy's legacy global RNG), with
  ``base_seed`` drawn from a generator keyed by ``(seed, epoch)``: a run is
  reproducible and the global torch RNG is never advanced. Those seeds differ
  per worker, so a transform that draws from them depends on which worker
  read the sample, i.e. on ``num_workers``; a random generator the dataset
  owns (``self.rng = np.random.default_rng()``) is copied into every worker,
  so workers repeat one another's draws. Key augmentations by ``(seed, epoch,
  index)`` instead; the tests show both.

Workers are started with ``fork`` where the platform has it (Linux; Python
3.14 changed the Linux default to ``forkserver``, macOS and Windows use
``spawn``). A forked worker starts in milliseconds and needs no pickling of
the dataset, while ``spawn`` / ``forkserver`` start a fresh interpreter that
imports torch again; workers do not persist across epochs (one loader is one
epoch; ``persistent_workers=True`` keeps them only for repeated passes over that
epoch), so that cost comes back every epoch. Measured on a 2-core CPU machine,
one epoch of 4 tiny batches with 2 workers: fork 0.03 s, forkserver 0.8 s,
spawn 1.1 s.

Forking a process in which JAX has started makes JAX warn (``os.fork() was
called ... JAX is multithreaded``): the workers here only run the dataset's
``__getitem__`` and the torch collate, never JAX, which is the case the Flax
data-loading guide calls safe. A dataset that itself calls JAX must not be
used with ``num_workers > 0``.

An exception raised by ``dataset[i]`` reaches the caller with its own class:
unchanged with ``num_workers=0``; with workers, torch re-raises the same class
with the message ``Caught IndexError in DataLoader worker process 0. Original
Traceback ...`` followed by the original traceback and message (an exception
class that cannot be built from one string arrives as a ``RuntimeError``).
Batches before the failing one are delivered first, as without workers, and
the workers are stopped before the exception reaches the caller (see
``_EpochLoader``: a plain DataLoader leaves them to the cyclic GC).
"""

from __future__ import annotations

import multiprocessing
import traceback

import numpy as np
import torch
from torch.utils.data import DataLoader

from refs.checks.common import fail
from refs.collate import collate_tree
from refs.loading import epoch_order
from torch_impl._host import check_flag, check_int, check_loader, check_samples

#: the start method of the workers: fork where there is one (see the module docstring)
_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else None

_SCALAR_DTYPES = {"bool": torch.bool, "int": torch.int64, "float": torch.float64}


def default_collate(samples):
    """``out[i, ...] = samples[i][...]`` per leaf, as ``refs.default_collate``, with tensors.

    Array leaves (NumPy, torch) are stacked with ``torch.stack`` and keep
    their dtype; Python ``bool``/``int``/``float`` become ``bool``/``int64``/
    ``float64`` tensors; text stays a list; dicts, tuples, namedtuples and
    lists keep their type.

    Raises:
        TypeError: ``samples`` not a sequence, an unsupported leaf, a string array.
        ValueError: no samples, a sample whose structure differs from ``samples[0]``.

    >>> default_collate([(np.array([1.0, 2.0]), 0), (np.array([3.0, 4.0]), 1)])
    (tensor([[1., 2.],
            [3., 4.]], dtype=torch.float64), tensor([0, 1]))
    """
    check_samples("default_collate", samples)
    return collate_tree(list(samples), _collate_leaf)


def _collate_leaf(kind, column, path):
    if kind == "array":
        # as_tensor shares a NumPy array's memory; the one copy is the stack
        return torch.stack([torch.as_tensor(x) for x in column])
    return torch.tensor(column, dtype=_SCALAR_DTYPES[kind])


#: DataLoader options that would change which samples land in which batch, and why
_CONTRACT_OPTIONS = {
    "sampler": "the order is make_loader's own: refs.epoch_order(n, seed=seed, epoch=epoch) "
               "with shuffle=True, else 0, 1, ...; choose it with shuffle, seed and epoch",
    "batch_sampler": "batches are cut from the order by batch_size and drop_last",
    "collate_fn": "batches are collated by torch_impl.default_collate, so that they equal "
                  "refs.default_collate's",
    "generator": "the workers' seeds are keyed by (seed, epoch), so that a run is "
                 "reproducible and the global torch RNG is left alone",
    "in_order": "batches must arrive in the order of the epoch (in_order=False lets a fast "
                "worker's batch overtake a slow one's)",
}

#: DataLoader options make_loader passes through: where and when batches are made, not what
_PASS_THROUGH = ("pin_memory", "pin_memory_device", "persistent_workers", "prefetch_factor",
                 "timeout", "multiprocessing_context", "worker_init_fn")


def make_loader(
    dataset, batch_size, *, shuffle=False, seed=0, epoch=0, drop_last=False, num_workers=0,
    pin_memory=False, pin_memory_device="", persistent_workers=False, prefetch_factor=None,
    timeout=0, multiprocessing_context=None, worker_init_fn=None, **options,
):
    """A ``DataLoader`` yielding ``refs.batches(dataset, batch_size, order=..., drop_last=...)`` as tensors.

    ``order`` is ``refs.epoch_order(len(dataset), seed=seed, epoch=epoch)`` if
    ``shuffle`` else ``range(len(dataset))``; the batches are the same for any
    ``num_workers`` and any of the pass-through options below.

    Args:
        dataset: map-style: ``len(dataset)`` and ``dataset[i]``.
        batch_size: samples per batch, a positive int.
        shuffle: visit the indices in ``epoch_order`` instead of ``0, 1, ...``.
        seed, epoch: ints ``>= 0``; they key the shuffle and the workers' seeds.
        drop_last: leave out the last batch if it is short.
        num_workers: worker processes (``0``: read in the calling process).

    Passed to the ``DataLoader`` as they are (keyword-only; see its docs), as
    they change where and when batches are made, not what they hold:
    ``pin_memory``, ``pin_memory_device``, ``persistent_workers`` (workers kept
    between iterations of this loader; needs ``num_workers > 0``),
    ``prefetch_factor`` (batches loaded ahead per worker; needs ``num_workers >
    0``), ``timeout`` (seconds to wait for a worker's batch),
    ``multiprocessing_context`` (default here: ``fork`` where there is one, see
    the module docstring; a ``spawn`` context needs a picklable dataset) and
    ``worker_init_fn(worker_id)``, called in each worker after its seeds are
    set from ``(seed, epoch)``.

    Not accepted, because each would break the equality with ``refs.batches``:
    ``sampler``, ``batch_sampler`` (the order and the cut are ours),
    ``collate_fn`` (ours keeps the reference's structure and dtypes),
    ``generator`` (the workers' seeds are keyed by ``(seed, epoch)``) and
    ``in_order``. ``shuffle`` is ours, once.

    Raises:
        TypeError: a dataset without ``__len__``/``__getitem__``; an argument
            of the wrong type (a float ``batch_size``, an int ``shuffle``, a
            non-callable ``worker_init_fn``, ...); a DataLoader option that
            would change the batches, or an unknown one.
        ValueError: ``batch_size < 1``; a negative ``seed``, ``epoch``,
            ``num_workers`` or ``timeout``; ``persistent_workers`` or
            ``prefetch_factor`` without workers; ``prefetch_factor < 1``.

    >>> [b.tolist() for b in make_loader([10, 11, 12, 13, 14], 2)]
    [[10, 11], [12, 13], [14]]
    """
    fn = "make_loader"
    _reject(fn, options)
    a = check_loader(fn, dataset, batch_size, shuffle, seed, epoch, drop_last)
    num_workers = check_int(fn, "num_workers", num_workers, minimum=0)
    passed = _check_pass_through(fn, num_workers, pin_memory, pin_memory_device,
                                 persistent_workers, prefetch_factor, timeout, worker_init_fn)
    if multiprocessing_context is None and num_workers:
        multiprocessing_context = _START_METHOD
    order = epoch_order(a.n, seed=a.seed, epoch=a.epoch).tolist() if a.shuffle else range(a.n)
    return _EpochLoader(
        dataset,
        batch_size=a.batch_size,
        sampler=order,
        drop_last=a.drop_last,
        collate_fn=default_collate,
        num_workers=num_workers,
        multiprocessing_context=multiprocessing_context,
        generator=_worker_seed_generator(a.seed, a.epoch),
        **passed,
    )


def _reject(fn: str, options: dict) -> None:
    """A DataLoader option that would change the batches, or an unknown keyword: TypeError."""
    for name in options:
        if name in _CONTRACT_OPTIONS:
            fail(TypeError, fn, f"{name} is not accepted, as it would change which samples land "
                                f"in which batch: {_CONTRACT_OPTIONS[name]}")
        known = ", ".join(_PASS_THROUGH)
        fail(TypeError, fn, f"unexpected keyword argument {name!r}; the DataLoader options "
                            f"make_loader passes through are {known}")


def _check_pass_through(fn, num_workers, pin_memory, pin_memory_device, persistent_workers,
                        prefetch_factor, timeout, worker_init_fn) -> dict:
    """The pass-through options, checked in our words before DataLoader sees them."""
    pin_memory = check_flag(fn, "pin_memory", pin_memory)
    persistent_workers = check_flag(fn, "persistent_workers", persistent_workers)
    if not isinstance(pin_memory_device, str):
        fail(TypeError, fn, f"pin_memory_device must be a str, got "
                            f"{type(pin_memory_device).__name__} {pin_memory_device!r}")
    if persistent_workers and not num_workers:
        fail(ValueError, fn, "persistent_workers=True needs num_workers > 0 (there are no "
                             "workers to keep)")
    if prefetch_factor is not None:
        prefetch_factor = check_int(fn, "prefetch_factor", prefetch_factor, minimum=1)
        if not num_workers:
            fail(ValueError, fn, f"prefetch_factor = {prefetch_factor} needs num_workers > 0 "
                                 f"(batches are prefetched by workers)")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        fail(TypeError, fn, f"timeout must be a number of seconds, got "
                            f"{type(timeout).__name__} {timeout!r}")
    if not timeout >= 0:
        fail(ValueError, fn, f"timeout must be >= 0 seconds, got timeout = {timeout}")
    if worker_init_fn is not None and not callable(worker_init_fn):
        fail(TypeError, fn, f"worker_init_fn must be callable or None, got "
                            f"{type(worker_init_fn).__name__} {worker_init_fn!r}")
    return dict(pin_memory=pin_memory, pin_memory_device=pin_memory_device,
                persistent_workers=persistent_workers, prefetch_factor=prefetch_factor,
                timeout=timeout, worker_init_fn=worker_init_fn)


class _EpochLoader(DataLoader):
    """A DataLoader whose workers stop as soon as a batch fails, not when the GC gets to them.

    torch re-raises a worker's exception from a frame that holds the exception,
    a reference cycle that keeps the DataLoader iterator alive until the cyclic
    GC collects it; by then the GC may have closed the iterator's queues first,
    the workers never hear the shutdown, and each costs a 5 s join timeout
    before it is killed (measured: 10 s for two workers). Clearing the finished
    frames breaks the cycle and dropping the iterator shuts the workers down
    before the exception reaches the caller. The traceback keeps its lines; the
    locals of torch's own frames are gone.
    """

    def __iter__(self):
        batches = super().__iter__()
        try:
            yield from batches
        except Exception as error:
            traceback.clear_frames(error.__traceback__)
            del batches
            raise


def _worker_seed_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator DataLoader draws ``base_seed`` from: keyed by ``(seed, epoch)``.

    A child of the sequence that keys ``epoch_order``, so it is independent of
    the shuffle; without it DataLoader would draw from the global torch RNG.
    """
    child = np.random.SeedSequence(seed, spawn_key=(epoch,)).spawn(1)[0]
    return torch.Generator().manual_seed(int(child.generate_state(1, np.uint64)[0] >> 1))
