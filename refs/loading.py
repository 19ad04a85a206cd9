"""Batched loading as the deck's "Datasets and Dataloaders" slides describe it, written out.

A map-style dataset is anything with ``len(dataset)`` and ``dataset[i]``. A
loader decides the *order* of the indices for one epoch, cuts it into batches
of ``batch_size`` indices, reads the samples of a batch and *collates* them:
stacks each leaf of the samples' common structure along a new first axis.

What a batch is made of (the structure of ``samples[0]`` decides):

=====================  =======================================  ==========================
leaf or container       ``refs.default_collate``                 torch's ``default_collate``
=====================  =======================================  ==========================
array / NumPy scalar    stacked: shape ``(B, *shape)``, dtype     same (as a tensor)
                        kept
Python ``bool``         ``bool`` array ``(B,)``                   same
Python ``int``          ``int64`` array ``(B,)``                  same
Python ``float``        ``float64`` array ``(B,)``                same
``str`` / ``bytes``     a Python list of the ``B`` values         same
``dict``                same keys and dict type, each collated    same, but keys missing
                                                                  from ``samples[0]`` are
                                                                  silently dropped
``tuple``               **a tuple**, each field collated          a list
namedtuple              the same namedtuple                       same
``list``                a list, each position collated            same
anything else           ``TypeError``                             ``TypeError``
=====================  =======================================  ==========================

A sample whose structure differs from ``samples[0]`` (other container type,
other keys or length, other shape or dtype, an ``int`` next to a ``float``) is
a ``ValueError`` naming both samples; torch drops, promotes or fails later.

The order of an epoch is :func:`epoch_order`, the one shuffle that
``torch_impl.make_loader`` and ``crosscheck.jax_impl.make_loader`` use too, so
that all three loaders give the same batches, batch for batch.
"""

from __future__ import annotations

import numpy as np

from refs.checks.common import to_host
from refs.checks.loading import (
    PYTHON_SCALAR_DTYPES,
    check_batch_size,
    check_dataset,
    check_flag,
    check_int,
    check_order,
    check_samples,
)
from refs.collate import collate_tree


def default_collate(samples):
    """Stack a list of samples into one batch, leaf by leaf: ``out[i, ...] = samples[i][...]``.

    For every leaf path ``p`` of ``samples[0]`` (``p`` = ``["img"]``, ``[0]``,
    ``["meta"][1]``, ...)::

        batch p[i, ...] = samples[i] p       for i in range(len(samples))

    Arrays keep their dtype; Python ``bool``/``int``/``float`` become ``bool``/
    ``int64``/``float64``; text stays a list of ``str``; dicts, tuples,
    namedtuples and lists keep their type (unlike torch, which turns a tuple
    into a list). Arrays of torch or JAX are copied to the host first.

    Args:
        samples: a non-empty list (or tuple) of samples of one structure.

    Raises:
        TypeError: ``samples`` not a sequence, a leaf of an unsupported type
            (``None``, a set, ...), an array of strings or objects.
        ValueError: no samples, a sample whose structure differs from
            ``samples[0]``, a Python int that does not fit int64.

    >>> default_collate([(np.array([1.0, 2.0]), 0), (np.array([3.0, 4.0]), 1)])
    (array([[1., 2.],
           [3., 4.]]), array([0, 1]))
    >>> default_collate([{"name": "a", "ok": True}, {"name": "b", "ok": False}])
    {'name': ['a', 'b'], 'ok': array([ True, False])}
    """
    check_samples("default_collate", samples)
    return collate_tree(list(samples), _collate_leaf)


def _collate_leaf(kind, column, path):
    """``out[i, ...] = column[i]``: one array leaf, or Python scalars, of every sample."""
    if kind == "array":
        first = to_host(column[0])
        out = np.empty((len(column), *first.shape), dtype=first.dtype)
        for i, x in enumerate(column):
            out[i] = to_host(x)
        return out
    out = np.empty(len(column), dtype=PYTHON_SCALAR_DTYPES[kind])
    for i, x in enumerate(column):
        out[i] = x
    return out


def batches(dataset, batch_size, *, order=None, drop_last=False):
    """Yield ``default_collate([dataset[i] for i in order[k * batch_size:(k + 1) * batch_size]])``.

    for ``k = 0, 1, ...``: ``ceil(len(order) / batch_size)`` batches, the last
    one short when ``batch_size`` does not divide ``len(order)``; with
    ``drop_last`` that short batch is left out, so ``floor(len(order) /
    batch_size)`` full batches remain. ``dataset[i]`` is called with a Python
    int, once per index, in ``order``.

    The arguments are checked when ``batches`` is called, not when the first
    batch is drawn.

    Args:
        dataset: map-style: ``len(dataset)`` and ``dataset[i]`` for ``i`` in
            ``range(len(dataset))``.
        batch_size: samples per batch, a positive int.
        order: the indices to visit, distinct and in ``[0, len(dataset))`` --
            a permutation (e.g. :func:`epoch_order`) or a part of one (e.g.
            ``epoch_order(...)[k * batch_size:]`` to resume an epoch after
            ``k`` batches). Default: ``range(len(dataset))``.
        drop_last: leave out the last batch if it is short.

    Raises:
        TypeError: a dataset without ``__len__``/``__getitem__``, a
            ``batch_size`` that is not an int, a ``drop_last`` that is not a
            bool, an ``order`` that is not a sequence of ints.
        ValueError: ``batch_size < 1``, an index repeated in ``order``.
        IndexError: an ``order`` entry outside ``[0, len(dataset))``.

    >>> [b.tolist() for b in batches([10, 11, 12, 13, 14], 2)]
    [[10, 11], [12, 13], [14]]
    >>> [b.tolist() for b in batches([10, 11, 12, 13, 14], 2, order=[4, 0, 3], drop_last=True)]
    [[14, 10]]
    """
    n = check_dataset("batches", dataset)
    batch_size = check_batch_size("batches", batch_size)
    drop_last = check_flag("batches", "drop_last", drop_last)
    order = list(range(n)) if order is None else check_order("batches", order, n)
    return _batches(dataset, batch_size, order, drop_last)


def _batches(dataset, batch_size, order, drop_last):
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        if drop_last and len(chunk) < batch_size:
            return
        yield default_collate([dataset[i] for i in chunk])


def epoch_order(n, *, seed, epoch=0):
    """The order of epoch ``epoch``: a permutation of ``range(n)`` that depends on ``(seed, epoch)`` only.

    A Fisher--Yates shuffle, from the last position down::

        order = [0, 1, ..., n - 1]
        for i = n - 1, n - 2, ..., 1:
            j = uniform integer in [0, i]
            swap order[i] and order[j]

    which gives each of the ``n!`` permutations with the same probability. The
    ``j`` come from a PCG64 generator seeded with
    ``SeedSequence(seed, spawn_key=(epoch,))``: the same ``(seed, epoch)`` gives
    the same order on every machine and in every process, whatever else drew
    random numbers before (no global RNG is read or advanced), and different
    epochs get independent streams.

    Args:
        n: the dataset's length, an int ``>= 0``.
        seed: the run's seed, an int ``>= 0`` (keyword-only: there is no
            default on purpose).
        epoch: the epoch number, an int ``>= 0``.

    Returns:
        an ``int64`` array of shape ``(n,)``.

    Raises:
        TypeError: ``n``, ``seed`` or ``epoch`` not an int.
        ValueError: a negative ``n``, ``seed`` or ``epoch``.

    >>> epoch_order(6, seed=0).tolist(), epoch_order(6, seed=0, epoch=1).tolist()
    ([2, 1, 3, 0, 5, 4], [4, 2, 0, 1, 5, 3])
    """
    n = check_int("epoch_order", "n", n, minimum=0)
    seed = check_int("epoch_order", "seed", seed, minimum=0)
    epoch = check_int("epoch_order", "epoch", epoch, minimum=0)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(epoch,))))
    # every j in one call: the i-th draw is uniform in [0, i] for i = n - 1, ..., 1
    draws = rng.integers(0, np.arange(n, 1, -1)) if n > 1 else []
    order = np.arange(n, dtype=np.int64)
    for i, j in zip(range(n - 1, 0, -1), draws):
        order[i], order[j] = order[j], order[i]
    return order
