"""Batched loading: three loaders, one batch stream.

``torch_impl.make_loader`` (any ``num_workers``) and
``crosscheck.jax_impl.make_loader`` must give ``refs.batches`` exactly:
container types, keys, shapes, dtypes and values (loading moves data, so
nothing is rounded and every comparison is exact).

Each property is a plain function ``prop_*(impl, case)`` that raises
``AssertionError`` when ``impl`` breaks it; the tests below draw the cases,
and ``test_planted_loading.py`` runs the same functions on deliberately wrong
loaders and collates to prove that each property can fail.

Workers are forked (see ``torch_impl.loading``); JAX, loaded in this process
by the test session, warns on every fork although the workers never run JAX,
and torch warns when ``num_workers`` exceeds the cores of a small CI machine;
those two warnings are silenced for this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from crosscheck import backends
from crosscheck.compare import assert_close
from crosscheck.ops.loading import (
    DTYPES,
    KINDS,
    SHAPES,
    make_array,
    make_sample,
)
from crosscheck.tolerance import EXACT
from refs.checks.common import to_host
from refs.loading import batches, default_collate, epoch_order

pytestmark = [
    pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning"),
    # three workers on a two-core CI machine are the point (n < num_workers * batch_size)
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),
]

#: Every worker process costs a fork and a shutdown (tens of ms), so the
#: properties that start workers draw fewer examples than the profile's.
WORKER_EXAMPLES = max(5, settings.default.max_examples // 4)


def _skip_reason(name: str) -> str | None:
    if name not in {b.name for b in backends.selected()}:
        return f"backend {name} not selected"
    why = backends.Backend(name).missing()
    return f"backend {name} not present: {why}" if why else None


needs_torch = pytest.mark.skipif(bool(_skip_reason("torch-cpu")), reason=str(_skip_reason("torch-cpu")))
needs_jax = pytest.mark.skipif(bool(_skip_reason("jax-cpu")), reason=str(_skip_reason("jax-cpu")))


# --- the implementations under test, behind one calling convention ------------------


def refs_loader(dataset, batch_size, *, shuffle=False, seed=0, epoch=0, drop_last=False, num_workers=0):
    """``refs.batches`` in the order the loaders promise; it has no workers."""
    order = epoch_order(len(dataset), seed=seed, epoch=epoch) if shuffle else None
    return batches(dataset, batch_size, order=order, drop_last=drop_last)


def torch_loader(dataset, batch_size, **kwargs):
    from torch_impl.loading import make_loader

    return make_loader(dataset, batch_size, **kwargs)


def jax_loader(dataset, batch_size, *, num_workers=0, **kwargs):
    from crosscheck.jax_impl.loading import make_loader

    return make_loader(dataset, batch_size, **kwargs)


def torch_collate(samples):
    from torch_impl.loading import default_collate as collate

    return collate(samples)


def jax_collate(samples):
    from crosscheck.jax_impl.loading import default_collate as collate

    return collate(samples)


def _torch_tensor():
    import torch

    return torch.Tensor


def _jax_array():
    import jax

    return jax.Array


@dataclass(frozen=True)
class Impl:
    """A loader and a collate with one contract; ``leaf_type()`` is what an array leaf must be."""

    name: str
    make: Callable
    collate: Callable
    leaf_type: Callable[[], type]
    workers: bool = False  # does ``num_workers`` start processes?


REFS = Impl("refs", refs_loader, default_collate, lambda: np.ndarray)
TORCH = Impl("torch_impl", torch_loader, torch_collate, _torch_tensor, workers=True)
JAX = Impl("jax_impl", jax_loader, jax_collate, _jax_array)

IMPLS = [
    pytest.param(REFS, id="refs"),
    pytest.param(TORCH, id="torch_impl", marks=needs_torch),
    pytest.param(JAX, id="jax_impl", marks=needs_jax),
]
FRAMEWORK_IMPLS = IMPLS[1:]


# --- comparing batches ----------------------------------------------------------------


def assert_same_batch(actual, expected, leaf_type: type, path: str = "batch") -> None:
    """Same container types, keys in the same order, text equal, array leaves of
    ``leaf_type`` with ``expected``'s shape, dtype and values, exactly."""
    if isinstance(expected, dict):
        assert type(actual) is type(expected), f"{path}: {type(actual).__name__}, expected {type(expected).__name__}"
        assert list(actual) == list(expected), f"{path}: keys {list(actual)}, expected {list(expected)}"
        for k in expected:
            assert_same_batch(actual[k], expected[k], leaf_type, f"{path}[{k!r}]")
    elif isinstance(expected, (tuple, list)):
        assert type(actual) is type(expected), f"{path}: {type(actual).__name__}, expected {type(expected).__name__}"
        assert len(actual) == len(expected), f"{path}: length {len(actual)}, expected {len(expected)}"
        for j, (a, e) in enumerate(zip(actual, expected)):
            assert_same_batch(a, e, leaf_type, f"{path}[{j}]")
    elif isinstance(expected, (str, bytes)):
        assert type(actual) is type(expected) and actual == expected, f"{path}: {actual!r}, expected {expected!r}"
    else:
        assert isinstance(expected, np.ndarray), f"{path}: the reference gave a {type(expected).__name__}"
        assert isinstance(actual, leaf_type), f"{path}: {type(actual).__name__}, expected a {leaf_type.__name__}"
        assert_close(to_host(actual), expected, EXACT, path=path)


def assert_same_batches(actual: list, expected: list, leaf_type: type) -> None:
    assert len(actual) == len(expected), f"{len(actual)} batches, expected {len(expected)}"
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert_same_batch(a, e, leaf_type, f"batch {k}")


# --- datasets -------------------------------------------------------------------------


class SyntheticDataset:
    """``n`` samples of one structure; every value is a function of its index."""

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
        return {"x": make_array(i, "float64", (4,)) + rng.normal(size=4), "flip": bool(rng.integers(2)), "i": i}

    def __repr__(self):
        return f"KeyedAugmentDataset({self.n}, seed={self.seed}, epoch={self.epoch})"


class OwnRngDataset:
    """The classic bug: one generator made in ``__init__`` is copied into every worker."""

    def __init__(self, n: int):
        self.n = n
        self.rng = np.random.default_rng(0)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"noise": self.rng.random(), "i": i}


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


# --- strategies -----------------------------------------------------------------------


class LoaderCase(NamedTuple):
    n: int
    batch_size: int
    shuffle: bool
    seed: int
    epoch: int
    drop_last: bool
    num_workers: int
    kind: str
    dtype: str
    shape: tuple

    def loader_kwargs(self) -> dict:
        return dict(
            shuffle=self.shuffle, seed=self.seed, epoch=self.epoch,
            drop_last=self.drop_last, num_workers=self.num_workers,
        )

    def reproducer(self, impl: Impl, dataset) -> str:
        """The one-line call that replays this case."""
        if impl.name == "refs":
            order = f"epoch_order({self.n}, seed={self.seed}, epoch={self.epoch})" if self.shuffle else None
            return f"list(refs.batches({dataset!r}, {self.batch_size}, order={order}, drop_last={self.drop_last}))"
        args = ", ".join(f"{k}={v!r}" for k, v in self.loader_kwargs().items())
        return f"list({impl.name}.make_loader({dataset!r}, {self.batch_size}, {args}))"


@st.composite
def loader_cases(draw, workers=(0,), kinds=KINDS) -> LoaderCase:
    """Small datasets with ragged tails: n from 0 to 13, batches of 1 to 5, so that
    ``n < num_workers * batch_size`` (grain#953's shape) and ``n % batch_size != 0`` come up often."""
    return LoaderCase(
        n=draw(st.integers(0, 13), label="n"),
        batch_size=draw(st.integers(1, 5), label="batch_size"),
        shuffle=draw(st.booleans(), label="shuffle"),
        seed=draw(st.integers(0, 3), label="seed"),
        epoch=draw(st.integers(0, 3), label="epoch"),
        drop_last=draw(st.booleans(), label="drop_last"),
        num_workers=draw(st.sampled_from(workers), label="num_workers"),
        kind=draw(st.sampled_from(kinds), label="kind"),
        dtype=draw(st.sampled_from(DTYPES), label="dtype"),
        shape=draw(st.sampled_from(SHAPES), label="shape"),
    )


class OrderCase(NamedTuple):
    n: int
    seed: int
    epoch: int


@st.composite
def order_cases(draw) -> OrderCase:
    return OrderCase(
        n=draw(st.sampled_from((0, 1, 2, 5, 10, 16, 33)), label="n"),
        seed=draw(st.integers(0, 2**40), label="seed"),
        epoch=draw(st.integers(0, 5), label="epoch"),
    )


# --- properties -----------------------------------------------------------------------


def prop_batches_match_refs(impl: Impl, case: LoaderCase, dataset=None) -> None:
    """The loader yields refs.batches exactly, and ``len(loader)`` counts them."""
    dataset = dataset if dataset is not None else SyntheticDataset(case.n, case.kind, case.dtype, case.shape)
    note(case.reproducer(impl, dataset))
    expected = list(refs_loader(dataset, case.batch_size, **case.loader_kwargs()))
    loader = impl.make(dataset, case.batch_size, **case.loader_kwargs())
    if hasattr(loader, "__len__"):
        assert len(loader) == len(expected), f"len(loader) = {len(loader)}, expected {len(expected)} batches"
    assert_same_batches(list(loader), expected, impl.leaf_type())


def prop_epoch_visits_each_index_once(impl: Impl, case: LoaderCase) -> None:
    """Without drop_last every index exactly once; with it, n - n % batch_size distinct
    indices; full batches, then at most one short one, last."""
    dataset = IndexDataset(case.n)
    note(case.reproducer(impl, dataset))
    got = [to_host(b).tolist() for b in impl.make(dataset, case.batch_size, **case.loader_kwargs())]
    full, rest = divmod(case.n, case.batch_size)
    want_sizes = [case.batch_size] * full + ([rest] if rest and not case.drop_last else [])
    assert [len(b) for b in got] == want_sizes, f"batch sizes {[len(b) for b in got]}, expected {want_sizes}"
    seen = [i for b in got for i in b]
    if case.drop_last:
        assert len(set(seen)) == len(seen) == case.n - rest, f"indices {seen} are not {case.n - rest} distinct ones"
        assert set(seen) <= set(range(case.n)), f"indices {seen} outside range({case.n})"
    else:
        assert sorted(seen) == list(range(case.n)), f"indices {seen} are not each of range({case.n}) once"
    if not case.shuffle:
        assert seen == list(range(len(seen))), f"without shuffle the order is 0, 1, ...; got {seen}"


def prop_epoch_order_is_a_keyed_permutation(order_fn: Callable, case: OrderCase) -> None:
    """A permutation of range(n), int64; a function of (seed, epoch) only; other epochs
    and other seeds give other orders once n! makes a coincidence negligible."""
    n, seed, epoch = case
    order = order_fn(n, seed=seed, epoch=epoch)
    assert isinstance(order, np.ndarray) and order.dtype == np.int64 and order.shape == (n,), (
        f"epoch_order gave {type(order).__name__} {getattr(order, 'dtype', '')} {getattr(order, 'shape', '')}"
    )
    assert sorted(order.tolist()) == list(range(n)), f"{order.tolist()} is not a permutation of range({n})"
    np.random.random(7)  # noqa: NPY002 - the legacy global RNG, advanced, must not matter
    again = order_fn(n, seed=seed, epoch=epoch)
    assert np.array_equal(order, again), f"two calls disagree: {order.tolist()} vs {again.tolist()}"
    if n >= 10:  # 10! = 3.6e6: two independent shuffles coincide with negligible probability
        next_epoch = order_fn(n, seed=seed, epoch=epoch + 1)
        assert not np.array_equal(order, next_epoch), f"epochs {epoch} and {epoch + 1} give the same order"
        other_seed = order_fn(n, seed=seed + 1, epoch=epoch)
        assert not np.array_equal(order, other_seed), f"seeds {seed} and {seed + 1} give the same order"


def prop_augmentation_is_worker_independent(impl: Impl, case: LoaderCase) -> None:
    """Augmentations keyed by (seed, epoch, index) give refs' batches for any worker count."""
    prop_batches_match_refs(impl, case, KeyedAugmentDataset(case.n, case.seed, case.epoch))


def prop_getitem_error_keeps_its_class(impl: Impl, error: type[Exception], num_workers: int) -> None:
    """An exception in dataset[i] reaches the caller as its own class, after the batches before it."""
    dataset = FailingDataset(7, bad=4, error=error)
    delivered, caught, message = [], None, ""
    try:
        for batch in impl.make(dataset, 2, num_workers=num_workers):
            delivered.append(batch)
    except Exception as e:  # noqa: BLE001 - the class is what is under test
        caught, message = type(e), str(e)  # not e: its traceback would hold the loader's frames
    assert caught is not None, f"{impl.name}: the {error.__name__} in dataset[4] was swallowed"
    assert issubclass(caught, error), (
        f"{impl.name} (num_workers={num_workers}): {error.__name__} in dataset[4] arrived as "
        f"{caught.__name__}: {message}"
    )
    assert "sample 4 is broken on purpose" in message, f"the original message is lost: {message}"
    assert len(delivered) == 2, f"{len(delivered)} batches before the error, expected 2 (indices 0-3)"


# --- tests: batches equal the reference -----------------------------------------------


@pytest.mark.parametrize("impl", FRAMEWORK_IMPLS)
@given(case=loader_cases())
def test_batches_match_refs(impl, case):
    prop_batches_match_refs(impl, case)


@needs_torch
@settings(max_examples=WORKER_EXAMPLES)
@given(case=loader_cases(workers=(1, 2, 3)))
# grain#953's shape, scaled down: more workers than full batches, a short tail
@example(case=LoaderCase(7, 3, True, 1, 2, False, 2, "pair", "float32", (3,)))
@example(case=LoaderCase(5, 4, True, 0, 1, False, 3, "nested", "int64", ()))
@example(case=LoaderCase(5, 4, True, 0, 1, True, 3, "deck", "uint8", (2, 3)))
def test_torch_batches_match_refs_for_any_num_workers(case):
    prop_batches_match_refs(TORCH, case)


# --- tests: every index once per epoch ------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@given(case=loader_cases(kinds=("int",)))
def test_epoch_visits_each_index_once(impl, case):
    prop_epoch_visits_each_index_once(impl, case)


@needs_torch
@settings(max_examples=WORKER_EXAMPLES)
@given(case=loader_cases(workers=(1, 2, 3), kinds=("int",)))
def test_epoch_visits_each_index_once_with_workers(case):
    prop_epoch_visits_each_index_once(TORCH, case)


@given(case=order_cases())
def test_epoch_order_is_a_keyed_permutation(case):
    prop_epoch_order_is_a_keyed_permutation(epoch_order, case)


@given(case=loader_cases(), data=st.data())
def test_resume_mid_epoch_continues_the_epoch(case, data):
    """``order[k * batch_size:]`` resumes after k batches: the rest of the same epoch."""
    dataset = SyntheticDataset(case.n, case.kind, case.dtype, case.shape)
    order = epoch_order(case.n, seed=case.seed, epoch=case.epoch)
    whole = list(batches(dataset, case.batch_size, order=order, drop_last=case.drop_last))
    k = data.draw(st.integers(0, len(whole)), label="resume after k batches")
    rest = list(batches(dataset, case.batch_size, order=order[k * case.batch_size :], drop_last=case.drop_last))
    assert_same_batches(rest, whole[k:], np.ndarray)


def test_epoch_order_is_pinned():
    """The stream is part of the contract: a changed shuffle changes every recorded run."""
    assert epoch_order(10, seed=0).tolist() == [6, 1, 5, 7, 3, 4, 2, 0, 9, 8]
    assert epoch_order(10, seed=0, epoch=1).tolist() == [7, 4, 8, 5, 3, 0, 1, 2, 9, 6]


# --- tests: randomness that does not depend on the number of workers -------------------


@needs_torch
@settings(max_examples=WORKER_EXAMPLES)
@given(case=loader_cases(workers=(0, 1, 2, 3), kinds=("deck",)))
def test_keyed_augmentation_is_the_same_for_any_num_workers(case):
    prop_augmentation_is_worker_independent(TORCH, case)


@needs_jax
@given(case=loader_cases(kinds=("deck",)))
def test_keyed_augmentation_in_jax_loader(case):
    prop_augmentation_is_worker_independent(JAX, case)


@needs_torch
def test_a_generator_made_in_init_repeats_across_workers():
    """Negative control: the duplicated-augmentation bug happens, it is not assumed.

    Each forked worker gets a copy of ``self.rng`` in the same state, so worker 0
    (batch 0) and worker 1 (batch 1) draw the same numbers; in one process the
    stream simply continues.
    """
    def noise(num_workers):
        loader = torch_loader(OwnRngDataset(12), 3, num_workers=num_workers)
        return [b["noise"].numpy() for b in loader]

    one_process, two_workers = noise(0), noise(2)
    assert len({tuple(b) for b in one_process}) == 4, "one process: four different draws"
    np.testing.assert_array_equal(two_workers[0], two_workers[1])
    np.testing.assert_array_equal(two_workers[2], two_workers[3])
    np.testing.assert_array_equal(two_workers[0], one_process[0])
    assert not np.array_equal(two_workers[1], one_process[1]), "the batches depend on num_workers"


@needs_torch
def test_make_loader_leaves_the_global_rngs_alone():
    import torch

    # the legacy global NumPy RNG is the one torch reseeds in workers; the parent's must not move
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    for num_workers in (0, 2):
        list(torch_loader(IndexDataset(6), 2, shuffle=True, seed=1, num_workers=num_workers))
    assert torch.equal(torch.get_rng_state(), torch_state), "iterating the loader advanced torch's global RNG"
    assert np.array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002


# --- tests: errors inside __getitem__ ------------------------------------------------


@pytest.mark.parametrize("error", [IndexError, KeyError, ValueError])
@pytest.mark.parametrize(
    ("impl", "num_workers"),
    [
        pytest.param(REFS, 0, id="refs"),
        pytest.param(TORCH, 0, id="torch_impl-0", marks=needs_torch),
        pytest.param(TORCH, 2, id="torch_impl-2", marks=needs_torch),
        pytest.param(JAX, 0, id="jax_impl", marks=needs_jax),
    ],
)
def test_getitem_error_keeps_its_class(impl, num_workers, error):
    prop_getitem_error_keeps_its_class(impl, error, num_workers)


@needs_torch
def test_workers_stop_when_a_batch_fails():
    """torch_impl shuts the workers down before the error reaches the caller (see _EpochLoader);
    a plain DataLoader leaves them to the cyclic GC, which took 10 s to stop two."""
    import multiprocessing

    before = set(multiprocessing.active_children())
    with pytest.raises(IndexError, match="sample 4 is broken on purpose") as caught:
        list(torch_loader(FailingDataset(7, bad=4, error=IndexError), 2, num_workers=2))
    assert str(caught.value).startswith("Caught IndexError in DataLoader worker process 0")
    assert set(multiprocessing.active_children()) <= before, "workers outlive the failed epoch"


@needs_torch
def test_torch_builtin_collate_differs_as_documented():
    """What ``refs.default_collate``'s table says about torch's own collate, checked."""
    import torch
    from torch.utils.data import default_collate as builtin

    pairs = builtin([(np.zeros(2), 1), (np.ones(2), 2)])
    assert type(pairs) is list, "torch's collate turns a tuple sample into a list"
    dropped = builtin([{"a": 1}, {"a": 2, "extra": 3}])
    assert list(dropped) == ["a"], "torch's collate drops keys samples[0] lacks"
    promoted = builtin([(1,), (2.5,)])
    assert promoted[0].dtype == torch.float32, (
        "an int label next to a float one: torch.tensor([1, 2.5]) promotes to the default "
        "float32, neither int64 (samples[0]'s type) nor float64 (a float column's dtype)"
    )
    assert builtin([0.5, 1.5]).dtype == torch.float64


@pytest.mark.parametrize("backend", ["jax-cpu", "jax-cuda"])
def test_jax_batches_are_placed_on_the_device(backend, require_backend):
    require_backend(backends.Backend(backend))
    import jax

    device = jax.devices("gpu" if backend == "jax-cuda" else "cpu")[-1]
    dataset = SyntheticDataset(5, "nested")
    got = list(jax_loader(dataset, 2, shuffle=True, device=device))
    for batch in got:
        for leaf in jax.tree.leaves(batch):
            if isinstance(leaf, jax.Array):
                assert leaf.devices() == {device}
    assert_same_batches(got, list(refs_loader(dataset, 2, shuffle=True)), jax.Array)
    default = next(iter(jax_loader(SyntheticDataset(3, "pair"), 2)))
    assert default[0].devices() == {jax.devices()[0]}


@needs_jax
@pytest.mark.parametrize("kind", ["pair", "nested", "float", "int"])
@pytest.mark.parametrize("dtype", ["float64", "int64", "float32"])
def test_jax_narrows_64_bit_leaves_as_jax_does(kind, dtype):
    """With x64 off (JAX's default) a 64-bit leaf takes the dtype ``jax.dtypes.canonicalize_dtype``
    gives (int64 -> int32, float64 -> float32) and keeps refs' values; a value that narrowing
    cannot hold is a ValueError naming the sample; with x64 on, refs' dtypes exactly."""
    import jax

    from refs.trees import leaves, map_tree

    dataset = SyntheticDataset(5, kind, dtype)
    expected = list(refs_loader(dataset, 2, shuffle=True))
    with jax.enable_x64(False):
        got = list(jax_loader(dataset, 2, shuffle=True))
        narrowed = [map_tree(b, lambda a: a.astype(jax.dtypes.canonicalize_dtype(a.dtype)), np.ndarray)
                    for b in expected]
        with pytest.raises(ValueError, match=r"default_collate\(\): samples\[1\]\[1\] = 3000000000 "
                                             r"does not fit in int32 \(jax_enable_x64 is off\)"):
            jax_collate([(0.5, 1), (1.5, 3_000_000_000)])
    assert any(a.dtype != b.dtype for e, n in zip(expected, narrowed)
               for a, b in zip(leaves(e, np.ndarray), leaves(n, np.ndarray))), "nothing was 64-bit"
    assert_same_batches(got, narrowed, jax.Array)
    assert_same_batches(list(jax_loader(dataset, 2, shuffle=True)), expected, jax.Array)  # x64 on


# --- tests: bad arguments, one exception class everywhere ------------------------------


class NoLen:
    def __getitem__(self, i):
        return i


#: (argument, bad value, exception class, text the message must quote)
BAD_ARGUMENTS = [
    pytest.param(arg, value, error, quoted, id=f"{arg}-{quoted}")
    for arg, value, error, quoted in [
        ("batch_size", 0, ValueError, "batch_size = 0"),
        ("batch_size", -2, ValueError, "batch_size = -2"),
        ("batch_size", 2.0, TypeError, "float 2.0"),
        ("batch_size", True, TypeError, "bool True"),
        ("batch_size", None, TypeError, "NoneType None"),
        ("drop_last", 1, TypeError, "int 1"),
        ("dataset", NoLen(), TypeError, "NoLen"),
        ("dataset", iter([1, 2]), TypeError, "list_iterator"),
        ("seed", 1.5, TypeError, "float 1.5"),
        ("seed", -1, ValueError, "seed = -1"),
        ("epoch", "1", TypeError, "str '1'"),
        ("epoch", -3, ValueError, "epoch = -3"),
    ]
]


def _call_with(impl: Impl, arg: str, value):
    """The call of ``impl`` that takes ``arg``: batches / epoch_order in refs, make_loader otherwise."""
    dataset, batch_size, kwargs = IndexDataset(5), 2, {}
    if arg == "dataset":
        dataset = value
    elif arg == "batch_size":
        batch_size = value
    else:
        kwargs[arg] = value
    if impl is REFS:
        if arg in ("seed", "epoch"):
            return "epoch_order", lambda: epoch_order(5, **{"seed": 0, **kwargs})
        return "batches", lambda: batches(dataset, batch_size, **kwargs)
    return "make_loader", lambda: impl.make(dataset, batch_size, shuffle=True, **kwargs)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("arg", "value", "error", "quoted"), BAD_ARGUMENTS)
def test_bad_argument_raises_the_same_class_everywhere(impl, arg, value, error, quoted):
    fn, call = _call_with(impl, arg, value)
    with pytest.raises(error) as caught:
        call()  # not iterated: the check runs when the loader is built
    message = str(caught.value)
    assert message.startswith(f"{fn}(): ") and arg in message and quoted in message, message


@pytest.mark.parametrize(
    ("order", "error", "quoted"),
    [
        ([0, 5], IndexError, "order[1] = 5"),
        ([-1], IndexError, "order[0] = -1"),
        ([1, 2, 1], ValueError, "order[2] = 1 repeats order[0]"),
        ([0.0], TypeError, "order[0] must be an int, got float 0.0"),
        (np.array([0.5]), TypeError, "dtype float64"),
        (np.zeros((2, 2), np.int64), ValueError, "shape (2, 2)"),
        ({0, 1}, TypeError, "got a set"),
    ],
    ids=repr,
)
def test_bad_order(order, error, quoted):
    with pytest.raises(error) as caught:
        batches(IndexDataset(5), 2, order=order)
    assert str(caught.value).startswith("batches(): ") and quoted in str(caught.value)


@needs_torch
@pytest.mark.parametrize(("value", "error"), [(-1, ValueError), (1.0, TypeError), (False, TypeError)])
def test_bad_num_workers(value, error):
    with pytest.raises(error, match=rf"make_loader\(\): num_workers .*{value!r}"):
        torch_loader(IndexDataset(5), 2, num_workers=value)


@needs_jax
def test_bad_device():
    with pytest.raises(TypeError, match=r"make_loader\(\): device must be a jax.Device.*str 'cpu'"):
        jax_loader(IndexDataset(5), 2, device="cpu")


#: (bad samples, exception class, text the message must quote)
BAD_SAMPLES = [
    ([], ValueError, "samples is empty"),
    ("ab", TypeError, "got a str"),
    ([None, None], TypeError, "samples[0] is a NoneType"),
    ([{"a": {1, 2}}], TypeError, "samples[0]['a'] is a set"),
    ([np.array(["x"])], TypeError, "dtype <U1"),
    ([(1, 2**70)], ValueError, "samples[0][1] = 1180591620717411303424 does not fit in int64"),
    ([{"a": 1}, {"a": 1, "b": 2}], ValueError, "samples[1] has keys ['a', 'b'], but samples[0] has keys ['a'] (extra ['b'])"),
    ([(1, 2.0), (1, 2)], ValueError, "samples[1][1] is an int, but samples[0][1] is a float"),
    ([np.zeros(2), np.zeros(3)], ValueError, "samples[1] has shape (3,), but samples[0] has shape (2,)"),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("samples", "error", "quoted"), BAD_SAMPLES, ids=lambda v: repr(v)[:16])
def test_bad_samples_raise_the_same_class_everywhere(impl, samples, error, quoted):
    with pytest.raises(error) as caught:
        impl.collate(samples)
    assert str(caught.value).startswith("default_collate(): ") and quoted in str(caught.value), str(caught.value)
