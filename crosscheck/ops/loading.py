"""Batched loading: ``default_collate``, ``make_loader`` and ``epoch_order`` in the op table.

Loading only moves data, so every comparison is exact, leaf for leaf and dtype
for dtype (no float64 reference: each leaf keeps its own dtype), and dicts
must keep their keys in the first sample's order (``OpSpec.ordered_keys``).

* ``default_collate(samples)``: refs, torch_impl, jax_impl, torch's own
  ``default_collate`` (it turns a tuple sample into a list: a documented
  difference, which ``tests/test_loading.py`` checks is still there) and a
  vectorized NumPy oracle for the large tier.
* ``make_loader(dataset, batch_size, shuffle, seed, epoch, drop_last,
  num_workers)``: the calling convention of the table; the result is the list
  of the epoch's batches. refs has no loader: its target is ``refs.batches``
  in the order the loaders promise (``refs.epoch_order`` with ``shuffle``),
  behind the argument checks all three loaders share
  (``refs.checks.loading.check_loader``); the JAX loader has no workers and
  its adapter drops ``num_workers``.
* ``epoch_order(n, seed, epoch)``: the one shuffle of all three loaders; refs
  only (the loaders call it, they do not reimplement it).

The multi-call checks (an epoch visits each index once, a dataset error keeps
its class, workers stop, the global RNGs stay put, ...) are the ``PROPERTIES``
below; each has a plant that it must catch on its own
(``tests/test_planted_loading.py``).

A loader is not a kernel: it runs Python over a dataset and stacks on the host
(jax_impl's collate stacks with NumPy before one ``device_put``), so these ops
run eagerly only (``OpSpec.modes``); under ``jax.jit`` the host-side stacking
would meet tracers. Workers are forked processes (``torch_impl.loading``);
every example that starts them costs a fork and a shutdown (0.1-0.3 s on a
2-core machine), and the table has no per-property example budget, so the
generic properties draw workers in about a third of their examples and the
worker-only properties draw from small spaces that hypothesis exhausts early.
"""

from __future__ import annotations

import multiprocessing
import random
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

import refs
from crosscheck import sizes
from crosscheck.compare import Comparison, assert_close
from crosscheck.optable import (
    BadCase,
    Case,
    Fault,
    Historic,
    Native,
    OpSpec,
    Property,
    Target,
    bad_calls,
    rejects_bad_input,
)
from crosscheck.strategies import BOOLEANS, pick
from crosscheck.tolerance import EXACT
from refs.checks.loading import check_loader
from refs.collate import collate_tree
from refs.trees import is_container, items, leaves, map_tree, rebuild

COLLATE_ARGS = ("samples",)
LOADER_ARGS = ("dataset", "batch_size", "shuffle", "seed", "epoch", "drop_last", "num_workers")
ORDER_ARGS = ("n", "seed", "epoch")
BATCHES_ARGS = ("dataset", "batch_size", "order", "drop_last")

# ------------------------------------------------------------------- samples


class Pair(NamedTuple):
    x: np.ndarray
    y: float


#: sample structures: the deck's {"img": ...}, torchvision's (image, label), and the rest
KINDS = ("array", "pair", "deck", "nested", "named", "ordered", "float", "bool", "int")
DTYPES = ("float32", "float64", "int64", "int32", "uint8", "bool")
SHAPES = ((), (3,), (2, 3))


def make_array(i: int, dtype: str, shape: tuple) -> np.ndarray:
    """Values that encode ``i``, exact in every dtype (floats are multiples of 1/8)."""
    values = (np.arange(int(np.prod(shape))) * 7 + 13 * i) % 97
    if dtype == "bool":
        return (values % 2 == 1).reshape(shape)
    if dtype.startswith("float"):
        return (values / 8).astype(dtype).reshape(shape)
    return values.astype(dtype).reshape(shape)


def make_sample(kind: str, i: int, dtype: str = "float32", shape: tuple = (3,)):
    a = make_array(i, dtype, shape)
    return {
        "array": lambda: a,
        "pair": lambda: (a, i),
        "deck": lambda: {"img": a},
        "nested": lambda: {"x": (a, [i / 4, i % 2 == 0]), "meta": {"id": i, "name": f"s{i}"}},
        "named": lambda: Pair(a, i / 8),
        "ordered": lambda: OrderedDict([("label", i), ("img", a)]),
        "float": lambda: i / 4 + 0.5,
        "bool": lambda: i % 3 == 0,
        "int": lambda: 10 * i - 7,
    }[kind]()


# ------------------------------------------------------------------ datasets
# Map-style datasets whose samples are functions of the index (and of a key),
# so that any process, in any order, reads the same sample; each repr rebuilds it.


class SyntheticDataset:
    """``n`` samples of one structure: ``make_sample(kind, i, dtype, shape)``."""

    def __init__(self, n: int, kind: str, dtype: str = "float32", shape: tuple = (3,)):
        self.n, self.kind, self.dtype, self.shape = n, kind, dtype, shape

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} samples")
        return make_sample(self.kind, i, self.dtype, self.shape)

    def __repr__(self):
        return f"SyntheticDataset({self.n}, {self.kind!r}, {self.dtype!r}, {self.shape})"


class IndexDataset:
    """Sample ``i`` is ``i``: a batch shows which indices it holds."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i

    def __repr__(self):
        return f"IndexDataset({self.n})"


class KeyedAugmentDataset:
    """Random augmentation keyed by ``(seed, epoch, index)``: the same draw in any worker.

    grain's per-record RNG idea. The key is entropy, not a spawn key, so that it
    cannot meet the ``SeedSequence(seed, spawn_key=(epoch,))`` of the shuffle.
    """

    def __init__(self, n: int, seed: int, epoch: int):
        self.n, self.seed, self.epoch = n, seed, epoch

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        return {"x": make_array(i, "float64", (4,)) + rng.normal(size=4),
                "flip": bool(rng.integers(2)), "i": i}

    def __repr__(self):
        return f"KeyedAugmentDataset({self.n}, seed={self.seed}, epoch={self.epoch})"


class OwnRngDataset:
    """The classic bug (pytorch/pytorch#5059): one generator made in ``__init__``, copied
    into every forked worker in the same state."""

    def __init__(self, n: int):
        self.n = n
        self.rng = np.random.default_rng(0)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"noise": self.rng.random(), "i": i}

    def __repr__(self):
        return f"OwnRngDataset({self.n})"


class FailingDataset:
    """Raises ``error("sample <bad> is broken on purpose")`` at index ``bad``."""

    def __init__(self, n: int, bad: int, error: type[Exception]):
        self.n, self.bad, self.error = n, bad, error

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            raise self.error(f"sample {i} is broken on purpose")
        return make_sample("pair", i)

    def __repr__(self):
        return f"FailingDataset({self.n}, bad={self.bad}, error={self.error.__name__})"

    @property
    def message(self) -> str:
        return f"sample {self.bad} is broken on purpose"


class LargeDataset:
    """The large tier: ``n`` float or integer arrays of ``shape``, each rebuilt from ``(seed, i)``."""

    def __init__(self, n: int, shape: tuple, dtype: str, seed: int):
        self.n, self.shape, self.dtype, self.seed = n, shape, dtype, seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, i])
        return {"x": sizes.values(rng, self.shape, self.dtype), "label": i % 10}

    def __repr__(self):
        return f"LargeDataset({self.n}, {self.shape}, {self.dtype!r}, seed={self.seed})"


class NoLen:
    """Indexable but without ``__len__``: not a map-style dataset."""

    def __getitem__(self, i):
        return i

    def __repr__(self):
        return "NoLen()"


# ---------------------------------------------------------------- strategies


@st.composite
def collate_samples(draw, kinds=KINDS, min_size: int = 1) -> list:
    kind = draw(pick(kinds), label="kind")
    dtype = draw(pick(DTYPES), label="dtype")
    shape = draw(pick(SHAPES), label="shape")
    indices = draw(st.lists(st.integers(0, 20), min_size=min_size, max_size=5), label="indices")
    return [make_sample(kind, i, dtype, shape) for i in indices]


def collate_cases(kinds=KINDS, min_size: int = 1):
    return collate_samples(kinds, min_size).map(lambda s: Case((s,), names=COLLATE_ARGS))


#: num_workers as the generic properties draw it: workers in about one example of three
SOME_WORKERS = (0, 0, 0, 0, 0, 0, 1, 2, 3)


def synthetic(draw, n: int, seed: int, epoch: int) -> SyntheticDataset:
    return SyntheticDataset(n, draw(pick(KINDS), label="kind"),
                            draw(pick(DTYPES), label="dtype"),
                            draw(pick(SHAPES), label="shape"))


@st.composite
def loader_cases(draw, workers=SOME_WORKERS, dataset=synthetic, max_n: int = 13) -> Case:
    """Small datasets with ragged tails: n from 0 to 13, batches of 1 to 5, so that
    ``n < num_workers * batch_size`` (grain#953's shape) and ``n % batch_size != 0``
    come up often."""
    n = draw(st.integers(0, max_n), label="n")
    batch_size = draw(st.integers(1, 5), label="batch_size")
    shuffle = draw(BOOLEANS, label="shuffle")
    seed = draw(st.integers(0, 3), label="seed")
    epoch = draw(st.integers(0, 3), label="epoch")
    drop_last = draw(BOOLEANS, label="drop_last")
    num_workers = draw(pick(workers), label="num_workers")
    return Case((dataset(draw, n, seed, epoch), batch_size, shuffle, seed, epoch, drop_last,
                 num_workers), names=LOADER_ARGS)


@st.composite
def order_cases(draw) -> Case:
    return Case((draw(pick((0, 1, 2, 5, 10, 16, 33)), label="n"),
                 draw(st.integers(0, 2**40), label="seed"),
                 draw(st.integers(0, 5), label="epoch")), names=ORDER_ARGS)


@st.composite
def batches_cases(draw) -> Case:
    """A valid ``refs.batches`` call: an order that is part of a permutation (a resumed epoch)."""
    n = draw(st.integers(1, 13), label="n")
    order = _order(n, draw(BOOLEANS, label="shuffle"), draw(st.integers(0, 3), label="seed"), 0)
    order = order[draw(st.integers(0, n - 1), label="resume at"):]
    return Case((IndexDataset(n), draw(st.integers(1, 5), label="batch_size"), order,
                 draw(BOOLEANS, label="drop_last")), names=BATCHES_ARGS)


def _order(n: int, shuffle: bool, seed: int, epoch: int) -> list[int]:
    return refs.epoch_order(n, seed=seed, epoch=epoch).tolist() if shuffle else list(range(n))


# ------------------------------------------------------------------ bad input
# Each fault breaks one thing of a valid call and says what API.md promises.


def _set(arg, value_of):
    """A fault that sets ``arg`` to ``value_of(draw, call)``."""
    return lambda draw, call: {**call, arg: value_of(draw, call)}


def _set_to(arg, value):
    """A fault that sets ``arg`` to ``value``."""
    return lambda draw, call: {**call, arg: value}


def _edit(x, change):
    """``x`` with the outermost part for which ``change`` gives a value replaced by it, or None."""
    changed = change(x)
    if changed is not None:
        return changed
    if is_container(x):
        for key, child in items(x):
            new = _edit(child, change)
            if new is not None:
                children = [new if k == key else v for k, v in items(x)]
                return rebuild(x, dict(zip(x, children)) if isinstance(x, dict) else children)
    return None


class _NoneLeaf:
    """Stands for ``None`` in :func:`_edit`, where a None result means "no change here"."""


_NONE = _NoneLeaf()


def _edit_sample(change, *, first: bool = False):
    """A fault that edits one sample (``samples[0]`` if ``first``, else a later one): the
    message must name that sample."""

    def apply(draw, call):
        samples = list(call["samples"])
        if not first and len(samples) < 2:
            return None
        at = 0 if first else draw(st.integers(1, len(samples) - 1), label="at")
        edited = _edit(samples[at], change)
        if edited is None:
            return None
        samples[at] = map_tree(edited, lambda _: None, _NoneLeaf)
        return {**call, "samples": samples}, f"samples[{at}]"

    return apply


def _plain_tuple(x) -> bool:
    return type(x) is tuple


def _is_leaf(x) -> bool:
    return not isinstance(x, (dict, list, tuple))


_OTHER_SCALAR = {bool: int, int: float, float: int, str: str.encode}

COLLATE_FAULTS = (
    Fault("extra dict key", "samples", ValueError, _edit_sample(
        lambda x: type(x)([*x.items(), ("extra", 0)]) if isinstance(x, dict) else None)),
    Fault("missing dict key", "samples", ValueError, _edit_sample(
        lambda x: type(x)(list(x.items())[1:]) if isinstance(x, dict) and x else None)),
    Fault("longer tuple or list", "samples", ValueError, _edit_sample(
        lambda x: type(x)([*x, 0]) if type(x) in (tuple, list) else None)),
    Fault("tuple for list, list for tuple", "samples", ValueError, _edit_sample(
        lambda x: list(x) if _plain_tuple(x) else tuple(x) if type(x) is list else None)),
    Fault("namedtuple for tuple", "samples", ValueError, _edit_sample(
        lambda x: tuple(x) if hasattr(type(x), "_fields") else None)),
    Fault("array of another shape", "samples", ValueError, _edit_sample(
        lambda x: np.zeros(x.shape + (1,), x.dtype) if isinstance(x, np.ndarray) else None)),
    Fault("array of another dtype", "samples", ValueError, _edit_sample(
        lambda x: x.astype("float32" if x.dtype != np.float32 else "float64")
        if isinstance(x, np.ndarray) else None)),
    Fault("Python scalar of another type", "samples", ValueError, _edit_sample(
        lambda x: _OTHER_SCALAR[type(x)](x) if type(x) in _OTHER_SCALAR else None)),
    Fault("int beyond int64", "samples", ValueError, _edit_sample(
        lambda x: 2**70 if type(x) is int else None)),
    Fault("None in a sample", "samples", TypeError, _edit_sample(
        lambda x: _NONE if _is_leaf(x) else None, first=True)),
    Fault("a set in a sample", "samples", TypeError, _edit_sample(
        lambda x: {1, 2} if _is_leaf(x) else None, first=True)),
    Fault("no samples", "samples", ValueError, lambda draw, call: {"samples": []}),
    Fault("a str for the list", "samples", TypeError, lambda draw, call: {"samples": "ab"}),
)


def bad_collate_cases():
    return bad_calls(COLLATE_ARGS, lambda: collate_cases(min_size=2), COLLATE_FAULTS)


LOADER_FAULTS = (
    Fault("batch_size < 1", "batch_size", ValueError,
          _set("batch_size", lambda draw, call: draw(st.integers(-3, 0)))),
    Fault("float batch_size", "batch_size", TypeError,
          _set("batch_size", lambda draw, call: float(call["batch_size"]))),
    Fault("bool batch_size", "batch_size", TypeError, _set_to("batch_size", True)),
    Fault("batch_size None", "batch_size", TypeError, _set_to("batch_size", None)),
    Fault("int shuffle", "shuffle", TypeError,
          _set("shuffle", lambda draw, call: int(call["shuffle"]))),
    Fault("int drop_last", "drop_last", TypeError,
          _set("drop_last", lambda draw, call: int(call["drop_last"]))),
    Fault("dataset without __len__", "dataset", TypeError, _set_to("dataset", NoLen())),
    Fault("an iterator for a dataset", "dataset", TypeError,
          _set("dataset", lambda draw, call: iter(range(3)))),
    Fault("the dataset class for an instance", "dataset", TypeError,
          _set_to("dataset", SyntheticDataset)),
    Fault("float seed", "seed", TypeError, _set("seed", lambda draw, call: call["seed"] + 0.5)),
    Fault("negative seed", "seed", ValueError,
          _set("seed", lambda draw, call: -draw(st.integers(1, 2**40)))),
    Fault("str epoch", "epoch", TypeError, _set("epoch", lambda draw, call: str(call["epoch"]))),
    Fault("negative epoch", "epoch", ValueError,
          _set("epoch", lambda draw, call: -draw(st.integers(1, 5)))),
)
WORKER_FAULTS = (
    Fault("negative num_workers", "num_workers", ValueError,
          _set("num_workers", lambda draw, call: -draw(st.integers(1, 3)))),
    Fault("float num_workers", "num_workers", TypeError,
          _set("num_workers", lambda draw, call: float(call["num_workers"]))),
    Fault("bool num_workers", "num_workers", TypeError, _set_to("num_workers", False)),
)
ORDER_FAULTS = (
    Fault("negative n", "n", ValueError, _set("n", lambda draw, call: -draw(st.integers(1, 5)))),
    Fault("float n", "n", TypeError, _set("n", lambda draw, call: float(call["n"]))),
    Fault("seed None", "seed", TypeError, _set_to("seed", None)),
    Fault("float seed", "seed", TypeError, _set("seed", lambda draw, call: call["seed"] + 0.5)),
    Fault("negative seed", "seed", ValueError,
          _set("seed", lambda draw, call: -draw(st.integers(1, 2**40)))),
    Fault("bool epoch", "epoch", TypeError, _set_to("epoch", True)),
    Fault("negative epoch", "epoch", ValueError,
          _set("epoch", lambda draw, call: -draw(st.integers(1, 5)))),
)


def _poke_order(value_of):
    """A fault that sets one entry of ``order``; the message must name that entry."""

    def apply(draw, call):
        order = list(call["order"])
        k = draw(st.integers(0, len(order) - 1), label="entry")
        value = value_of(draw, order, k, len(call["dataset"]))
        if value is None:
            return None
        order[k] = value
        return {**call, "order": order}, f"order[{k}]"

    return apply


BAD_ORDER_FAULTS = (
    Fault("order entry out of range", "order", IndexError,
          _poke_order(lambda draw, order, k, n: n + draw(st.integers(0, 3)))),
    Fault("negative order entry", "order", IndexError,
          _poke_order(lambda draw, order, k, n: -draw(st.integers(1, n)))),
    Fault("an index repeated", "order", ValueError,
          _poke_order(lambda draw, order, k, n: order[(k + draw(st.integers(1, len(order) - 1)))
                                                  % len(order)] if len(order) > 1 else None)),
    Fault("a float entry", "order", TypeError,
          _poke_order(lambda draw, order, k, n: float(order[k]))),
    Fault("a float array", "order", TypeError,
          _set("order", lambda draw, call: np.asarray(call["order"], np.float64))),
    Fault("a 2-d array", "order", ValueError,
          _set("order", lambda draw, call: np.asarray(call["order"], np.int64)[None])),
    Fault("a set", "order", TypeError, _set("order", lambda draw, call: set(call["order"]))),
    Fault("batch_size < 1", "batch_size", ValueError,
          _set("batch_size", lambda draw, call: draw(st.integers(-3, 0)))),
    Fault("int drop_last", "drop_last", TypeError,
          _set("drop_last", lambda draw, call: int(call["drop_last"]))),
    Fault("dataset without __len__", "dataset", TypeError, _set_to("dataset", NoLen())),
)

# ------------------------------------------------------------ the adapters
# The table calls every loader as ``(dataset, batch_size, shuffle, seed, epoch,
# drop_last, num_workers)`` and compares the list of its batches.

DELIVERED = "crosscheck_batches_delivered"


def collect(loader) -> list:
    """Every batch of one epoch, in order. An exception leaves the loader with the number of
    batches delivered before it, as ``error.crosscheck_batches_delivered``."""
    batches = []
    try:
        for batch in loader:
            batches.append(batch)
    except Exception as error:
        setattr(error, DELIVERED, len(batches))
        raise
    return batches


@contextmanager
def quiet_workers():
    """Silence the two warnings every forked worker brings: JAX (loaded in this process,
    never run by the workers) warns on each fork, and torch when ``num_workers`` exceeds
    the cores of a small CI machine (three workers on two cores are the point here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
        warnings.filterwarnings("ignore", r"This DataLoader will create", UserWarning)
        yield


def refs_make_loader(refs):
    """``refs.batches`` in the order the loaders promise, behind the checks they share."""

    def make_loader(dataset, batch_size, shuffle, seed, epoch, drop_last, num_workers):
        a = check_loader("make_loader", dataset, batch_size, shuffle, seed, epoch, drop_last)
        order = refs.epoch_order(a.n, seed=a.seed, epoch=a.epoch) if a.shuffle else None
        return collect(refs.batches(dataset, a.batch_size, order=order, drop_last=a.drop_last))

    return make_loader


def torch_make_loader(torch_impl):
    def make_loader(dataset, batch_size, shuffle, seed, epoch, drop_last, num_workers):
        with quiet_workers():
            return collect(torch_impl.make_loader(
                dataset, batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                drop_last=drop_last, num_workers=num_workers))

    return make_loader


def jax_make_loader(jax_impl):
    """The JAX loader has no workers: ``num_workers`` is dropped."""

    def make_loader(dataset, batch_size, shuffle, seed, epoch, drop_last, num_workers):
        return collect(jax_impl.make_loader(dataset, batch_size, shuffle=shuffle, seed=seed,
                                            epoch=epoch, drop_last=drop_last))

    return make_loader


def refs_epoch_order(refs):
    return lambda n, seed, epoch: refs.epoch_order(n, seed=seed, epoch=epoch)


# -------------------------------------------------------------- native twins


def _has_plain_tuple(x) -> bool:
    if _plain_tuple(x):
        return True
    if isinstance(x, dict):
        return any(_has_plain_tuple(v) for v in x.values())
    if isinstance(x, (tuple, list)):
        return any(_has_plain_tuple(v) for v in x)
    return False


def _torch_tuple_becomes_list(case: Case, target) -> str | None:
    samples = case["samples"]
    if samples and _has_plain_tuple(samples[0]):
        return "torch's default_collate returns a list where the sample holds a tuple"
    return None


def torch_default_collate(samples):
    from torch.utils.data import default_collate

    return default_collate(samples)


def np_collate(samples):
    """The vectorized oracle: one ``np.stack`` per leaf, Python scalars as refs types them."""
    from refs.checks.loading import PYTHON_SCALAR_DTYPES

    def leaf(kind, column, path):
        if kind == "array":
            return np.stack([np.asarray(x) for x in column])
        return np.array(column, dtype=PYTHON_SCALAR_DTYPES[kind])

    return collate_tree(list(samples), leaf)


# ------------------------------------------------------------ the large tier
# A batch of 64-1024 samples of 2**16-2**20 elements in all: torch.stack and
# the DataLoader's shared-memory transfer of large batches from its workers
# take other paths than the small cases do.


def _large_samples(rng: np.random.Generator):
    total = int(rng.integers(16, 21))  # log2 of the batch's element count
    batch = 2 ** int(rng.integers(6, 11))
    per_sample = 2 ** (total - int(np.log2(batch)))
    channels = 2 ** int(rng.integers(0, 3))
    shape = (channels, per_sample // channels)
    return batch, shape, str(rng.choice(("float32", "float64", "int64", "uint8")))


class LargeSamples(list):
    """The samples of a large batch; the repr names their dataset instead of printing them
    (hundreds of arrays, a megabyte of text, in every report of a failing example)."""

    dataset: LargeDataset | None = None

    def __repr__(self):
        if self.dataset is None:  # a copy (the harness rebuilds lists): print it all
            return super().__repr__()
        return f"[{self.dataset!r}[i] for i in range({len(self)})]"


def large_collate(rng: np.random.Generator) -> tuple:
    batch, shape, dtype = _large_samples(rng)
    samples = LargeSamples()
    samples.dataset = LargeDataset(batch, shape, dtype, int(rng.integers(2**31)))
    samples.extend(samples.dataset[i] for i in range(batch))
    return (samples,)


def large_loader(rng: np.random.Generator) -> tuple:
    batch, shape, dtype = _large_samples(rng)
    batches = int(rng.integers(2, 4))
    n = batch * batches - int(rng.integers(0, batch))  # a ragged tail
    dataset = LargeDataset(n, shape, dtype, int(rng.integers(2**31)))
    return (dataset, batch, bool(rng.integers(2)), int(rng.integers(4)), int(rng.integers(4)),
            bool(rng.integers(2)), int(rng.integers(0, 3)))


# ------------------------------------------------------------------ op table

DEFAULT_COLLATE = OpSpec(
    name="default_collate",
    topic="loading",
    arg_names=COLLATE_ARGS,
    cases=collate_cases,
    bad_cases=bad_collate_cases,
    natives=(Native("torch.utils.data.default_collate", "torch", torch_default_collate,
                    unsupported=_torch_tuple_becomes_list, modes=("eager",)),),
    float64_reference=False,  # data movement: every leaf exact in its own dtype
    # a collate runs on the host before any kernel (jax_impl stacks with NumPy, then one
    # device_put): under jax.jit its stacking would meet tracers
    modes=("eager",),
    oracle=np_collate,
    large=large_collate,
    deterministic=True,
    ordered_keys=True,
)
MAKE_LOADER = OpSpec(
    name="make_loader",
    topic="loading",
    arg_names=LOADER_ARGS,
    cases=loader_cases,
    bad_cases=lambda: bad_calls(LOADER_ARGS, lambda: loader_cases(workers=(0,)), LOADER_FAULTS),
    float64_reference=False,
    adapters={"refs": refs_make_loader, "torch_impl": torch_make_loader,
              "jax_impl": jax_make_loader},
    # a loader is Python over a dataset, not a kernel: there is nothing to jit or compile
    modes=("eager",),
    large=large_loader,  # the truth at that size is still refs: its loops run per sample
    deterministic=True,
    ordered_keys=True,
    starts_processes=("torch",),  # torch_impl's loader forks its num_workers
)
EPOCH_ORDER = OpSpec(
    name="epoch_order",
    topic="loading",
    arg_names=ORDER_ARGS,
    cases=order_cases,
    bad_cases=lambda: bad_calls(ORDER_ARGS, order_cases, ORDER_FAULTS),
    float64_reference=False,
    impls=("refs",),  # the loaders call it; nobody reimplements it
    adapters={"refs": refs_epoch_order},
    modes=("eager",),
    deterministic=True,
)
OPS = (DEFAULT_COLLATE, MAKE_LOADER, EPOCH_ORDER)

# --------------------------------------------------------------- properties


def _expected(case: Case) -> list:
    return MAKE_LOADER.expected(case)


def _same_batches(actual, expected, path="batches") -> Comparison:
    return assert_close(actual, expected, EXACT, path=path, ordered_keys=True)


def _check_each_index_once(target: Target, case: Case) -> Comparison:
    """Without drop_last every index exactly once; with it, n - n % batch_size distinct
    indices; full batches, then at most one short one, last; 0, 1, ... without shuffle."""
    n, batch_size = len(case["dataset"]), case["batch_size"]
    got = [b.tolist() for b in target.call(case)]
    full, rest = divmod(n, batch_size)
    want_sizes = [batch_size] * full + ([rest] if rest and not case["drop_last"] else [])
    assert [len(b) for b in got] == want_sizes, (
        f"batch sizes {[len(b) for b in got]}, expected {want_sizes}")
    seen = [i for b in got for i in b]
    if case["drop_last"]:
        assert len(set(seen)) == len(seen) == n - rest, (
            f"indices {seen} are not {n - rest} distinct ones")
        assert set(seen) <= set(range(n)), f"indices {seen} outside range({n})"
    else:
        assert sorted(seen) == list(range(n)), f"indices {seen} are not each of range({n}) once"
    if not case["shuffle"]:
        assert seen == list(range(len(seen))), f"without shuffle the order is 0, 1, ...; got {seen}"
    return Comparison(len(seen))


@st.composite
def _resume_cases(draw):
    case = draw(loader_cases(workers=(0,)))
    n, batch_size = len(case["dataset"]), case["batch_size"]
    full, rest = divmod(n, batch_size)
    batches = full + (rest > 0 and not case["drop_last"])
    return case, draw(st.integers(0, batches), label="resume after k batches")


def _check_resume(target: Target, drawn) -> Comparison:
    """``refs.batches`` over ``order[k * batch_size:]`` continues the target's epoch after
    k batches: the rest of the same epoch (how a run resumes mid-epoch)."""
    case, k = drawn
    dataset, batch_size = case["dataset"], case["batch_size"]
    order = _order(len(dataset), case["shuffle"], case["seed"], case["epoch"])
    whole = target.call(case)
    rest = list(refs.batches(dataset, batch_size, order=order[k * batch_size:],
                             drop_last=case["drop_last"]))
    return _same_batches(whole[k:], rest, path=f"batches after resuming at batch {k}")


@st.composite
def _keyed_cases(draw):
    """Sixteen cases in all, each with workers: 7 samples in batches of 2 or 3 over 2 or 3
    workers (a ragged tail, fewer full batches than workers can take), shuffled or not,
    under two keys."""
    key = draw(st.integers(0, 1), label="seed and epoch")
    return Case((KeyedAugmentDataset(7, key, key), draw(st.integers(2, 3), label="batch_size"),
                 draw(BOOLEANS, label="shuffle"), key, key, False,
                 draw(st.integers(2, 3), label="num_workers")), names=LOADER_ARGS)


def _check_keyed_augmentation(target: Target, case: Case) -> Comparison:
    """Augmentations keyed by (seed, epoch, index) give refs' batches for any worker count."""
    return _same_batches(target.call(case), _expected(case))


@st.composite
def _own_rng_cases(draw):
    # four cases in all, so that hypothesis stops after them: each starts workers twice
    workers = draw(st.integers(2, 3), label="num_workers")
    batch_size = draw(st.integers(1, 2), label="batch_size")
    rounds = 2  # batches per worker
    return Case((OwnRngDataset(workers * rounds * batch_size), batch_size, False, 0, 0, False,
                 workers), names=LOADER_ARGS)


def _noise(target: Target, case: Case, num_workers: int) -> list:
    dataset = OwnRngDataset(len(case["dataset"]))  # a fresh generator for each epoch
    args = (dataset, *case.args[1:6], num_workers)
    return [b["noise"] for b in target.backend.to_host(target.fn(*args))]


def _check_workers_copy_the_dataset(target: Target, case: Case) -> Comparison:
    """Negative control: a generator the dataset owns is copied into every forked worker,
    so worker j's r-th batch repeats the r-th batch of one process (pytorch/pytorch#5059).
    The workers are real processes, and the keyed-augmentation property has a bug to miss."""
    workers = case["num_workers"]
    one_process = _noise(target, case, 0)
    assert len({tuple(b) for b in one_process}) == len(one_process), (
        f"in one process the dataset's generator should continue: {one_process}")
    with_workers = _noise(target, case, workers)
    repeated = [one_process[k // workers] for k in range(len(one_process))]
    return _same_batches(with_workers, repeated,
                         path=f"noise with {workers} workers vs one process's, repeated")


_ERRORS = (IndexError, KeyError, ValueError, ZeroDivisionError)


@st.composite
def _failing_cases(draw, workers):
    n = draw(st.integers(1, 9), label="n")
    bad = draw(st.integers(0, n - 1), label="bad index")
    error = draw(pick(_ERRORS), label="error")
    return Case((FailingDataset(n, bad, error), draw(st.integers(1, 3), label="batch_size"),
                 False, 0, 0, False, draw(pick(workers), label="num_workers")),
                names=LOADER_ARGS)


@st.composite
def _stop_cases(draw):
    """Eight cases in all, as each starts workers: the first or the last batch fails, one
    or two workers, batches of one or two."""
    bad = draw(pick((0, 3)), label="bad index")
    return Case((FailingDataset(4, bad, IndexError), draw(st.integers(1, 2), label="batch_size"),
                 False, 0, 0, False, draw(st.integers(1, 2), label="num_workers")),
                names=LOADER_ARGS)


def _failure(target: Target, case: Case) -> BaseException:
    try:
        target.fn(*case.args)
    except Exception as e:  # noqa: BLE001 - the class is what is under test
        return e
    raise AssertionError(f"{target.label}: the {case['dataset'].error.__name__} in "
                         f"dataset[{case['dataset'].bad}] was swallowed")


def _check_error_class(target: Target, case: Case) -> Comparison:
    """An exception in dataset[i] reaches the caller as its own class, with its message,
    after the batches before it."""
    dataset = case["dataset"]
    error = _failure(target, case)
    assert isinstance(error, dataset.error), (
        f"{target.label} (num_workers={case['num_workers']}): {dataset.error.__name__} in "
        f"dataset[{dataset.bad}] arrived as {type(error).__name__}: {error}")
    assert dataset.message in str(error), f"the original message is lost: {error}"
    before = dataset.bad // case["batch_size"]
    delivered = getattr(error, DELIVERED, None)
    assert delivered == before, (
        f"{delivered} batches before the error, expected {before} (the batches before "
        f"the one holding index {dataset.bad})")
    return Comparison()


def _check_workers_stop(target: Target, case: Case) -> Comparison:
    """The workers are gone when the error reaches the caller, not when the GC gets to them
    (a plain DataLoader leaves them to the cyclic GC: 10 s for two)."""
    before = set(multiprocessing.active_children())
    error = _failure(target, case)
    name = case["dataset"].error.__name__
    assert str(error).strip("'\"").startswith(f"Caught {name} in DataLoader worker process"), (
        f"the error does not say which worker raised it: {error}")
    left = set(multiprocessing.active_children()) - before
    assert not left, f"{len(left)} worker(s) outlive the failed epoch: {left}"
    return Comparison()


def _global_states(target: Target):
    states = [np.random.get_state()[1].copy(), random.getstate()]  # noqa: NPY002
    if target.framework == "torch":
        import torch

        states.append(torch.get_rng_state().numpy().copy())
    return states


def _check_global_rngs(target: Target, case: Case) -> Comparison:
    """Iterating the loader leaves NumPy's legacy global RNG (the one torch reseeds in
    workers), Python's ``random`` and torch's global generator where they were."""
    before = _global_states(target)
    target.call(case)
    after = _global_states(target)
    names = ["numpy.random's global state", "random's state", "torch's global RNG state"]
    for name, b, a in zip(names, before, after):
        same = np.array_equal(a, b) if isinstance(b, np.ndarray) else a == b
        assert same, f"{target.label} advanced {name}"
    return Comparison()


def _expect_rejection(fn_name: str, call, bad: BadCase) -> Comparison:
    """``call()`` raises ``bad``'s class, with a message naming ``fn_name()`` and the argument."""
    try:
        call()
    except bad.exception as e:
        message = str(e)
        assert f"{fn_name}()" in message and bad.argument in message, (
            f"{fn_name}() raised {type(e).__name__} for {bad.why}, but the message does not "
            f"name {fn_name}() and {bad.argument!r}: {message}")
        return Comparison()
    except Exception as e:
        raise AssertionError(f"{fn_name}() raised {type(e).__name__} for {bad.why}, expected "
                             f"{bad.exception.__name__}: {e}") from e
    raise AssertionError(f"{fn_name}() took a bad input silently ({bad.why})")


def _check_rejects_when_built(target: Target, bad: BadCase) -> Comparison:
    """``make_loader`` checks its arguments when it is called, before the first batch."""
    dataset, batch_size, shuffle, seed, epoch, drop_last, num_workers = bad.args
    options = dict(shuffle=shuffle, seed=seed, epoch=epoch, drop_last=drop_last)
    if target.framework == "torch":
        options["num_workers"] = num_workers
    # not iterated: a check that waits for the first batch fails here
    return _expect_rejection("make_loader", lambda: target.api.make_loader(
        dataset, batch_size, **options), bad)


def _check_batches_rejects(target: Target, bad: BadCase) -> Comparison:
    """refs.batches checks ``order`` (and the rest) when called, not when iterated."""
    dataset, batch_size, order, drop_last = bad.args
    return _expect_rejection("batches", lambda: target.api.batches(
        dataset, batch_size, order=order, drop_last=drop_last), bad)


def _device(target: Target):
    import jax

    return jax.devices("gpu" if target.backend.device == "cuda" else "cpu")[-1]


def _check_placement(target: Target, case: Case) -> Comparison:
    """Every array of every batch is a jax.Array on JAX's default device, or on the device
    given; a device given by name is a TypeError."""
    import jax

    for batch in target.fn(*case.args):
        for leaf in leaves(batch, jax.Array):
            assert leaf.devices() == {jax.devices()[0]}, (
                f"a leaf on {leaf.devices()}, not on the default device {jax.devices()[0]}")
    if not hasattr(target.api, "make_loader"):
        return Comparison()
    device = _device(target)
    dataset, batch_size, shuffle, seed, epoch, drop_last, _ = case.args
    options = dict(shuffle=shuffle, seed=seed, epoch=epoch, drop_last=drop_last)
    placed = collect(target.api.make_loader(dataset, batch_size, device=device, **options))
    for batch in placed:
        for leaf in leaves(batch, jax.Array):
            assert leaf.devices() == {device}, f"a leaf on {leaf.devices()}, not on {device}"
    by_name = BadCase(case, Fault("a device name", "device", TypeError, lambda d, c: None),
                      "device")
    return _same_batches(target.backend.to_host(placed), _expected(case)).merge(
        _expect_rejection("make_loader", lambda: target.api.make_loader(
            dataset, batch_size, device=str(device.platform), **options), by_name))


def _check_keyed_permutation(target: Target, case: Case) -> Comparison:
    """A permutation of range(n), int64; a function of (seed, epoch) only (not of NumPy's
    global RNG); other epochs and other seeds give other orders once n! makes a coincidence
    negligible."""
    n, seed, epoch = case.args
    order = target.call(case)
    assert isinstance(order, np.ndarray) and order.dtype == np.int64 and order.shape == (n,), (
        f"epoch_order gave {type(order).__name__} {getattr(order, 'dtype', '')} "
        f"{getattr(order, 'shape', '')}")
    assert sorted(order.tolist()) == list(range(n)), f"{order.tolist()} is not a permutation"
    np.random.random(7)  # noqa: NPY002 - the legacy global RNG, advanced, must not matter
    again = target.call(case)
    assert np.array_equal(order, again), f"two calls disagree: {order.tolist()} vs {again.tolist()}"
    if n >= 10:  # 10! = 3.6e6: two independent shuffles coincide with negligible probability
        for other, what in (((n, seed, epoch + 1), "epoch"), ((n, seed + 1, epoch), "seed")):
            assert not np.array_equal(order, target.call(case.with_args(*other))), (
                f"another {what} gives the same order {order.tolist()}")
    return Comparison(n)


@st.composite
def _narrowing_cases(draw):
    """A batch to collate with x64 off; in about one case of three one sample holds a value
    that the narrower dtype cannot hold (its position is the second element)."""
    case = draw(collate_cases(min_size=2))
    if draw(st.integers(0, 2), label="overflow") != 0:
        return case, None
    kind = draw(pick(("int", "float", "int64 array")), label="too wide")
    n = len(case["samples"])
    at = draw(st.integers(0, n - 1), label="at")
    big = {"int": 3_000_000_000, "float": 1e39, "int64 array": np.array([1, -(2**40)])}[kind]
    small = {"int": 7, "float": 0.5, "int64 array": np.array([1, 2])}[kind]
    samples = [big if i == at else small for i in range(n)]
    return Case((samples,), names=COLLATE_ARGS), at


def _check_narrowing(target: Target, drawn) -> Comparison:
    """With jax_enable_x64 off (JAX's default) a 64-bit leaf takes the dtype
    ``jax.dtypes.canonicalize_dtype`` gives (int64 -> int32, float64 -> float32) and keeps
    refs' values; a value the narrower dtype cannot hold is a ValueError naming the sample."""
    import jax

    case, at = drawn
    args = target.convert(case)
    with jax.enable_x64(False):
        if at is not None:
            bad = BadCase(case, Fault("too wide without x64", "samples", ValueError,
                                      lambda d, c: None), f"samples[{at}]")
            return _expect_rejection("default_collate", lambda: target.fn(*args), bad)
        got = target.backend.to_host(target.fn(*args))
        expected = map_tree(refs.default_collate(case["samples"]),
                            lambda a: a.astype(jax.dtypes.canonicalize_dtype(a.dtype)),
                            np.ndarray)
    return assert_close(got, expected, EXACT, path="batch with x64 off", ordered_keys=True)


def _framework(name):
    return lambda target: target.framework == name


#: which of our implementations define the functions that some properties call (``_has``),
#: known without importing them (which loads their framework): the report's parent builds
#: the table and loads none; tests/test_loading.py holds this to the modules
DEFINES = {"make_loader": ("torch_impl", "jax_impl"), "batches": ("refs",)}


def _has(name):
    def applies(target):
        if target.native is not None:  # a twin (a planted one) brings its own namespace
            return hasattr(target.native.api, name)
        return target.impl in DEFINES[name]
    return applies


_rejects_bad_num_workers = rejects_bad_input(OpSpec(
    "make_loader", "loading", LOADER_ARGS, loader_cases,
    bad_cases=lambda: bad_calls(LOADER_ARGS, lambda: loader_cases(workers=(0, 1)),
                                WORKER_FAULTS)))

# In the order the planted-bug runner tries them on a plant (it stops at the first catch):
# the narrow ones first (few targets, small strategies), so that a plant meant for one of
# them, a worker-starting one above all, runs as few examples as it can.
PROPERTIES = (
    Property("make_loader", "workers_stop_when_a_batch_fails",
             "the worker processes are gone when a worker's exception reaches the caller",
             _stop_cases, _check_workers_stop, _framework("torch")),
    Property("make_loader", "workers_copy_the_dataset",
             "negative control: a dataset owning a generator repeats its draws in every "
             "worker (pytorch/pytorch#5059), so the workers are real forked processes",
             _own_rng_cases, _check_workers_copy_the_dataset, _framework("torch")),
    Property(
        "make_loader", "rejects_bad_num_workers",
        "a bad num_workers raises API.md's class, naming make_loader() and num_workers",
        _rejects_bad_num_workers.cases, _rejects_bad_num_workers.check, _framework("torch")),
    Property("make_loader", "batches_on_the_device",
             "JAX batches are jax.Arrays on the default device, or on the device given; a "
             "device given by name is a TypeError",
             lambda: loader_cases(workers=(0,), max_n=7), _check_placement, _framework("jax")),
    Property("make_loader", "rejects_bad_input_when_built",
             "make_loader checks its arguments when called, before the first batch",
             lambda: bad_calls(LOADER_ARGS, lambda: loader_cases(workers=(0,)), LOADER_FAULTS),
             _check_rejects_when_built, _has("make_loader")),
    Property("make_loader", "batches_rejects_bad_order",
             "refs.batches rejects an order entry out of range, repeated or not an int, and "
             "a bad order container, when called",
             lambda: bad_calls(BATCHES_ARGS, batches_cases, BAD_ORDER_FAULTS),
             _check_batches_rejects, _has("batches")),
    Property("make_loader", "getitem_error_keeps_its_class",
             "an exception in dataset[i] reaches the caller as its own class, with its "
             "message, after the batches before it, with and without workers",
             lambda: _failing_cases((0, 0, 1, 2)), _check_error_class),
    Property("make_loader", "visits_each_index_once",
             "every index once per epoch (n - n % batch_size distinct ones with drop_last), "
             "full batches then one short one, 0, 1, ... without shuffle",
             lambda: loader_cases(dataset=lambda draw, n, seed, epoch: IndexDataset(n)),
             _check_each_index_once),
    Property("make_loader", "leaves_global_rngs_alone",
             "iterating leaves NumPy's legacy global RNG, random's and torch's global "
             "generators where they were (the shuffle and the workers' seeds are keyed)",
             # torch's DataLoader draws its base seed with or without workers
             lambda: loader_cases(workers=(0, 0, 0, 1),
                                  dataset=lambda draw, n, seed, epoch: IndexDataset(n)),
             _check_global_rngs),
    Property("make_loader", "resumes_mid_epoch",
             "refs.batches over order[k * batch_size:] continues the epoch after k batches",
             _resume_cases, _check_resume),
    Property("make_loader", "keyed_augmentation_ignores_workers",
             "augmentations keyed by (seed, epoch, index) give refs' batches for any "
             "num_workers",
             _keyed_cases,
             _check_keyed_augmentation),
    Property("epoch_order", "is_a_keyed_permutation",
             "a permutation of range(n), int64, a function of (seed, epoch) only",
             order_cases, _check_keyed_permutation),
    Property("default_collate", "follows_jax_dtypes_without_x64",
             "with x64 off, 64-bit leaves narrowed as JAX narrows them, and a value the "
             "narrower dtype cannot hold is a ValueError naming the sample",
             _narrowing_cases, _check_narrowing, _framework("jax")),
)

# ------------------------------------------------------------ historic cases
# Each replays a published bug or surprise of a loader or a collate; the
# expected batches come from refs, never from the loader that had the bug.


def _historic_grain_tail():
    # grain.DataLoader with worker_count=2, 34 records and Batch(16) gave batches of
    # 16, 16, 1, 1: each worker batched its own share (google/grain#953)
    return Case((SyntheticDataset(34, "pair", "float32", (4,)), 16, False, 0, 0, False, 2),
                names=LOADER_ARGS)


def _historic_iterable_workers():
    # 10 samples, batch_size 2, 4 workers: 5 batches, as map-style DataLoader gives, not the
    # 20 of an unsharded IterableDataset (pytorch/pytorch#30599); shuffled here
    return Case((IndexDataset(10), 2, True, 0, 0, False, 4), names=LOADER_ARGS)


def _historic_duplicated_augmentation():
    # 20 samples in batches of 10 over 2 workers, each drawing from a generator made in
    # __init__ (pytorch/pytorch#5059: the same random numbers in every worker)
    return Case((OwnRngDataset(20), 10, False, 0, 0, False, 2), names=LOADER_ARGS)


def _historic_resume():
    # DataLoader cannot resume an epoch after k batches (pytorch/pytorch#36650); the order
    # of an epoch sliced at k * batch_size can
    return Case((SyntheticDataset(11, "nested"), 3, True, 1, 2, False, 0), names=LOADER_ARGS), 2


def _historic_tuple_stays_tuple():
    # torch's default_collate returns a list for tuple samples; making it keep the tuple was
    # proposed and closed (pytorch/pytorch#21788); refs and ours keep the tuple
    return Case(([(np.array([1.0, 2.0]), 0), (np.array([3.0, 4.0]), 1)],), names=COLLATE_ARGS)


def _historic_keys_of_the_first_sample():
    # torch's collate reads the keys of batch[0] only (`for key in batch[0]`, added by
    # pytorch/pytorch#1131), dropping keys that a later sample adds; ours raise
    case = Case(([{"a": 1}, {"a": 2, "extra": 3}],), names=COLLATE_ARGS)
    return BadCase(case, COLLATE_FAULTS[0], "samples[1]")


HISTORIC = (
    Historic("make_loader", "agrees_with_ref", "grain's per-worker batching",
             "https://github.com/google/grain/issues/953",
             "grain.DataLoader with 2 workers turned 34 records in batches of 16 into batches "
             "of 16, 16, 1, 1: each worker batches its own share", _historic_grain_tail),
    Historic("make_loader", "visits_each_index_once", "batches depend on num_workers",
             "https://github.com/pytorch/pytorch/issues/30599",
             "with an IterableDataset the number of batches in an epoch grows with "
             "num_workers (every worker yields the whole stream)", _historic_iterable_workers),
    Historic("make_loader", "workers_copy_the_dataset", "duplicated augmentation",
             "https://github.com/pytorch/pytorch/issues/5059",
             "random numbers drawn in __getitem__ repeat in every DataLoader worker, because "
             "each forked worker starts from a copy of the same generator state",
             _historic_duplicated_augmentation),
    Historic("make_loader", "resumes_mid_epoch", "no mid-epoch resume",
             "https://github.com/pytorch/pytorch/issues/36650",
             "DataLoader and its samplers have no state_dict to continue an epoch at a given "
             "batch (open)", _historic_resume),
    Historic("default_collate", "agrees_with_ref", "tuples become lists",
             "https://github.com/pytorch/pytorch/pull/21788",
             "torch's default_collate turns a tuple sample into a list batch; the pull request "
             "that would keep the tuple was closed", _historic_tuple_stays_tuple),
    Historic("default_collate", "rejects_bad_input", "keys of the first sample only",
             "https://github.com/pytorch/pytorch/pull/1131",
             "torch's dict collate iterates the keys of batch[0] only, so a key that a later "
             "sample adds is dropped silently", _historic_keys_of_the_first_sample),
)
