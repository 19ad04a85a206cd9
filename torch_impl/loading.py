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

from refs.checks.loading import check_int, check_loader, check_samples
from refs.collate import collate_tree
from refs.loading import epoch_order

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


def make_loader(
    dataset, batch_size, *, shuffle=False, seed=0, epoch=0, drop_last=False, num_workers=0
):
    """A ``DataLoader`` yielding ``refs.batches(dataset, batch_size, order=..., drop_last=...)`` as tensors.

    ``order`` is ``refs.epoch_order(len(dataset), seed=seed, epoch=epoch)`` if
    ``shuffle`` else ``range(len(dataset))``; the batches are the same for any
    ``num_workers``.

    Args:
        dataset: map-style: ``len(dataset)`` and ``dataset[i]``.
        batch_size: samples per batch, a positive int.
        shuffle: visit the indices in ``epoch_order`` instead of ``0, 1, ...``.
        seed, epoch: ints ``>= 0``; they key the shuffle and the workers' seeds.
        drop_last: leave out the last batch if it is short.
        num_workers: worker processes (``0``: read in the calling process).

    Raises:
        TypeError: a dataset without ``__len__``/``__getitem__``; an argument
            of the wrong type (a float ``batch_size``, an int ``shuffle``, ...).
        ValueError: ``batch_size < 1``; a negative ``seed``, ``epoch`` or
            ``num_workers``.

    >>> [b.tolist() for b in make_loader([10, 11, 12, 13, 14], 2)]
    [[10, 11], [12, 13], [14]]
    """
    a = check_loader("make_loader", dataset, batch_size, shuffle, seed, epoch, drop_last)
    num_workers = check_int("make_loader", "num_workers", num_workers, minimum=0)
    order = epoch_order(a.n, seed=a.seed, epoch=a.epoch).tolist() if a.shuffle else range(a.n)
    return _EpochLoader(
        dataset,
        batch_size=a.batch_size,
        sampler=order,
        drop_last=a.drop_last,
        collate_fn=default_collate,
        num_workers=num_workers,
        multiprocessing_context=_START_METHOD if num_workers else None,
        generator=_worker_seed_generator(a.seed, a.epoch),
    )


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
