"""``make_loader`` for JAX: ``refs.batches``, batch for batch, as pytrees of ``jax.Array``.

No torch here. The order is ``refs.epoch_order`` (the one shuffle all three
loaders share), batches are cut from it in the calling thread, and each batch
is collated in two vectorized steps: one ``np.stack`` per leaf on the host,
then a single ``jax.device_put`` of all the leaves onto ``device``. There are
no workers, so there is nothing whose count could change a batch: grain, the
usual multi-process loader for JAX, batches inside each worker, and its
batches depend on ``worker_count``.

The batch has the structure of the first sample, as in ``refs`` (a tuple
stays a tuple, a namedtuple that namedtuple, text a list of ``str`` kept on
the host); a dict keeps its type and its key order, which ``jax.tree``
utilities would sort.

dtypes are those of ``refs`` exactly: Python floats become float64 and ints
int64. JAX holds 64-bit values only with ``jax_enable_x64`` on (the suite's
``crosscheck.backends.load_jax`` turns it on); with it off, ``device_put``
would silently narrow float64 to float32 and int64 to int32, so a leaf that
would be narrowed raises ``TypeError`` instead, naming the leaf. Return
float32 / int32 from the dataset (``np.float32(x)``, ``np.int32(label)``) or
enable x64.
"""

from __future__ import annotations

import jax
import numpy as np

from refs.checks.common import fail
from refs.checks.loading import (
    PYTHON_SCALAR_DTYPES,
    check_loader,
    check_samples,
)
from refs.collate import collate_tree
from refs.loading import epoch_order
from refs.trees import map_tree


def default_collate(samples):
    """``out[i, ...] = samples[i][...]`` per leaf, as ``refs.default_collate``, on JAX's default device.

    Raises:
        TypeError: ``samples`` not a sequence, an unsupported leaf, a string
            array, a 64-bit leaf while ``jax_enable_x64`` is off.
        ValueError: no samples, a sample whose structure differs from ``samples[0]``.

    >>> batch = default_collate([{"x": np.float32(1.5), "ok": True}, {"x": np.float32(2.5), "ok": False}])
    >>> batch["x"].tolist(), batch["ok"].tolist()
    ([1.5, 2.5], [True, False])
    >>> with jax.enable_x64(False):
    ...     default_collate([1.5, 2.5])
    Traceback (most recent call last):
    TypeError: default_collate(): samples[:] stack to float64, which JAX would narrow to float32 with jax_enable_x64 off; enable x64 or return float32 from the dataset
    """
    return _collate_onto(samples, None)


def _collate_onto(samples, device):
    check_samples("default_collate", samples)
    host = collate_tree(list(samples), _stack)
    arrays = []
    map_tree(host, arrays.append, np.ndarray)
    placed = iter(jax.device_put(arrays, device))  # one transfer for the whole batch
    return map_tree(host, lambda _: next(placed), np.ndarray)  # text stays on the host


def _stack(kind, column, path):
    """One leaf of the batch on the host: ``np.stack`` of the samples' values at ``path``."""
    if kind == "array":
        out = np.stack([np.asarray(x) for x in column])
    else:
        out = np.array(column, dtype=PYTHON_SCALAR_DTYPES[kind])
    narrowed = jax.dtypes.canonicalize_dtype(out.dtype)
    if narrowed != out.dtype:
        fail(
            TypeError,
            "default_collate",
            f"samples[:]{path} stack to {out.dtype}, which JAX would narrow to {narrowed} "
            f"with jax_enable_x64 off; enable x64 or return {narrowed} from the dataset",
        )
    return out


def make_loader(dataset, batch_size, *, shuffle=False, seed=0, epoch=0, drop_last=False, device=None):
    """Yield ``refs.batches(dataset, batch_size, order=..., drop_last=...)`` as ``jax.Array`` pytrees.

    ``order`` is ``refs.epoch_order(len(dataset), seed=seed, epoch=epoch)`` if
    ``shuffle`` else ``range(len(dataset))``. The loader can be iterated more
    than once (each time the same epoch) and ``len(loader)`` is its number of
    batches.

    Args:
        dataset: map-style: ``len(dataset)`` and ``dataset[i]``.
        batch_size: samples per batch, a positive int.
        shuffle: visit the indices in ``epoch_order`` instead of ``0, 1, ...``.
        seed, epoch: ints ``>= 0`` that key the shuffle.
        drop_last: leave out the last batch if it is short.
        device: a ``jax.Device`` or ``jax.sharding.Sharding`` for every leaf;
            ``None``: JAX's default device.

    Raises:
        TypeError: a dataset without ``__len__``/``__getitem__``; an argument
            of the wrong type (a float ``batch_size``, a device name as a str, ...).
        ValueError: ``batch_size < 1``; a negative ``seed`` or ``epoch``.

    >>> data = [np.float32(x) for x in range(5)]
    >>> [b.tolist() for b in make_loader(data, 2, device=jax.devices("cpu")[0])]
    [[0.0, 1.0], [2.0, 3.0], [4.0]]
    """
    fn = "make_loader"
    a = check_loader(fn, dataset, batch_size, shuffle, seed, epoch, drop_last)
    if device is not None and not isinstance(device, (jax.Device, jax.sharding.Sharding)):
        fail(
            TypeError,
            fn,
            f"device must be a jax.Device, a jax.sharding.Sharding or None, got "
            f"{type(device).__name__} {device!r}",
        )
    order = epoch_order(a.n, seed=a.seed, epoch=a.epoch).tolist() if a.shuffle else list(range(a.n))
    return _Loader(dataset, a.batch_size, order, a.drop_last, device)


class _Loader:
    """One epoch of batches; iterable any number of times, with a ``len``."""

    def __init__(self, dataset, batch_size, order, drop_last, device):
        self.dataset, self.batch_size, self.order = dataset, batch_size, order
        self.drop_last, self.device = drop_last, device

    def __len__(self):
        full, rest = divmod(len(self.order), self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def __iter__(self):
        for k in range(len(self)):
            chunk = self.order[k * self.batch_size : (k + 1) * self.batch_size]
            yield _collate_onto([self.dataset[i] for i in chunk], self.device)

    def __repr__(self):
        return (
            f"make_loader(<{type(self.dataset).__name__} of {len(self.order)}>, "
            f"batch_size={self.batch_size}, drop_last={self.drop_last}, device={self.device})"
        )
