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

dtypes follow JAX's own rules (``jax.dtypes.canonicalize_dtype``). With
``jax_enable_x64`` on (the suite's ``crosscheck.backends.load_jax`` turns it
on) they are those of ``refs`` exactly: Python floats become float64 and ints
int64. With it off (JAX's default) a 64-bit leaf is stacked as ``refs`` stacks
it and then narrowed on the host, as JAX would narrow it: int64 -> int32,
uint64 -> uint32, float64 -> float32, complex128 -> complex64. Narrowing that
would change a value beyond rounding is a ``ValueError`` naming the sample and
the value: an integer outside the narrower type's range (it would wrap), or a
finite float beyond float32's range (it would become inf). Rounding to float32
precision, and tiny values flushed towards 0, are what float32 means and pass.
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

    64-bit leaves are narrowed as JAX narrows them when ``jax_enable_x64`` is
    off (int64 -> int32, float64 -> float32, ...; see the module docstring).

    Raises:
        TypeError: ``samples`` not a sequence, an unsupported leaf, a string array.
        ValueError: no samples, a sample whose structure differs from ``samples[0]``;
            with x64 off, a value that does not fit the narrower dtype.

    >>> batch = default_collate([{"x": np.float32(1.5), "ok": True}, {"x": np.float32(2.5), "ok": False}])
    >>> batch["x"].tolist(), batch["ok"].tolist()
    ([1.5, 2.5], [True, False])
    >>> with jax.enable_x64(False):
    ...     default_collate([(1.5, 7), (2.5, 8)])
    (Array([1.5, 2.5], dtype=float32), Array([7, 8], dtype=int32))
    >>> with jax.enable_x64(False):
    ...     default_collate([(1.5, 7), (2.5, 3_000_000_000)])
    Traceback (most recent call last):
    ValueError: default_collate(): samples[1][1] = 3000000000 does not fit in int32 (jax_enable_x64 is off); enable x64 to keep int64
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
    """One leaf of the batch on the host: ``np.stack`` of the samples' values at ``path``,
    in the dtype JAX holds it in (narrowed when ``jax_enable_x64`` is off)."""
    if kind == "array":
        out = np.stack([np.asarray(x) for x in column])
    else:
        out = np.array(column, dtype=PYTHON_SCALAR_DTYPES[kind])
    held = np.dtype(jax.dtypes.canonicalize_dtype(out.dtype))
    if held == out.dtype:
        return out
    with np.errstate(over="ignore"):  # an overflow to inf is found and reported below
        narrow = out.astype(held)
    lost = _does_not_fit(out, narrow)
    if lost.any():
        where = tuple(int(i) for i in np.argwhere(lost)[0])
        value = out[where].item()
        inner = f"[{', '.join(map(str, where[1:]))}]" if len(where) > 1 else ""
        why = "it would overflow to inf; " if held.kind in "fc" else ""
        fail(
            ValueError,
            "default_collate",
            f"samples[{where[0]}]{path}{inner} = {value!r} does not fit in {held} "
            f"({why}jax_enable_x64 is off); enable x64 to keep {out.dtype}",
        )
    return narrow


def _does_not_fit(wide: np.ndarray, narrow: np.ndarray) -> np.ndarray:
    """Where narrowing changed a value beyond rounding: an int that wrapped, a finite float
    (or a complex part) that became inf."""
    if wide.dtype.kind in "iu":
        return wide != narrow
    parts = [(wide, narrow)] if wide.dtype.kind == "f" else \
        [(wide.real, narrow.real), (wide.imag, narrow.imag)]
    lost = np.zeros(wide.shape, bool)
    for w, n in parts:
        lost |= np.isfinite(w) & ~np.isfinite(n)
    return lost


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
