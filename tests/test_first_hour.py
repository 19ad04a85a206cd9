"""What a newcomer hits in their first hour, each pinned by a test that fails without its fix.

* The README's "Batched loading" example, pasted into a fresh process with JAX's
  default settings (``jax_enable_x64`` off), runs, and its three loaders agree.
* ``torch_impl`` given NumPy arrays says so, naming the function and the argument.
* ``import torch_impl`` without torch (``crosscheck.jax_impl`` without jax) names
  the extra to install.
* Unbatched inputs ``(C, *spatial)`` to ``unfold`` / ``fold`` / ``conv`` /
  ``max_pool`` give what torch's ``F.unfold`` / ``F.fold`` / ``F.conv*d`` /
  ``F.max_pool*d`` give, and an all-int call on a 3-d input stays a batch of 1-d signals.
* ``torch_impl.make_loader`` takes the everyday ``DataLoader`` options and still
  equals ``refs.batches``; the options that would change the batches are refused.
* ``refs.overlap_counts`` is exported and ``refs.unfold`` documents ``L``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

import refs
from refs.trees import leaves

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    # forked DataLoader workers in a process where JAX has started (the test session's)
    pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),
]


def _run_fresh(code: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """``code`` in a new interpreter with JAX's default settings, the checkout importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_FLAGS"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["JAX_PLATFORMS"] = os.environ.get("JAX_PLATFORMS", "cpu")  # no accelerator probing
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


# --- 1. the README's batched-loading example, in a fresh process ------------------------


def _readme_block(section: str) -> str:
    text = (ROOT / "README.md").read_text()
    body = text.split(f"## {section}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


_COMPARE_BATCHES = """
import jax
import torch
assert not jax.config.jax_enable_x64, "the example must run with JAX's default settings"
from refs.trees import leaves
torch_batches, jax_batches = list(tl), list(jl)
assert len(torch_batches) == len(jax_batches) == len(ref) > 0
for k, (r, t, j) in enumerate(zip(ref, torch_batches, jax_batches)):
    assert type(t) is type(j) is type(r), (k, type(r), type(t), type(j))
    r_leaves = leaves(r, np.ndarray)
    t_leaves, j_leaves = leaves(t, torch.Tensor), leaves(j, jax.Array)
    assert len(r_leaves) == len(t_leaves) == len(j_leaves) > 0, k
    for a, b, c in zip(r_leaves, t_leaves, j_leaves):
        b, c_host = b.numpy(), np.asarray(c)
        assert b.dtype == a.dtype and b.shape == a.shape and (b == a).all(), (k, a, b)
        assert c.dtype == jax.dtypes.canonicalize_dtype(a.dtype), (k, a.dtype, c.dtype)
        assert c_host.shape == a.shape and (c_host == a).all(), (k, a, c_host)
print("README example: refs, torch_impl and jax_impl agree on", len(ref), "batches")
"""


def test_readme_batched_loading_example_runs_in_a_fresh_process():
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    code = _readme_block("Batched loading")
    assert "jax_impl.make_loader" in code and "torch_impl.make_loader" in code, code
    done = _run_fresh(code + _COMPARE_BATCHES)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}"
    assert re.search(r"agree on [1-9]\d* batches", done.stdout), done.stdout


@pytest.mark.parametrize(
    ("samples", "quoted"),
    [
        ([(0.5, 1), (1.5, 2), (2.5, 3_000_000_000)],
         "default_collate(): samples[2][1] = 3000000000 does not fit in int32 (jax_enable_x64 is off)"),
        ([{"x": -(2**31) - 1}], "default_collate(): samples[0]['x'] = -2147483649 does not fit in int32"),
        ([np.array([1, 2**32], np.uint64)], "samples[0][1] = 4294967296 does not fit in uint32"),
        ([np.zeros((2, 2)), np.array([[0.0, 0.0], [0.0, 1e300]])],
         "samples[1][1, 1] = 1e+300 does not fit in float32 (it would overflow to inf"),
        ([np.complex128(1 - 1e300j)], "samples[0] = (1-1e+300j) does not fit in complex64"),
    ],
    ids=["int64", "dict", "uint64", "float64", "complex128"],
)
def test_jax_collate_refuses_only_values_that_narrowing_cannot_hold(samples, quoted):
    """With x64 off: an int out of the narrower range, a finite float that would be inf -> ValueError;
    the range's edges, rounding, inf itself and tiny values are what the narrow dtype holds."""
    jax = pytest.importorskip("jax")
    from crosscheck import jax_impl

    with jax.enable_x64(False):
        with pytest.raises(ValueError) as caught:
            jax_impl.default_collate(samples)
        assert quoted in str(caught.value), str(caught.value)
        edges = jax_impl.default_collate([2**31 - 1, -(2**31), 3])
        assert edges.dtype == np.int32 and edges.tolist() == [2**31 - 1, -(2**31), 3]
        values = [float("inf"), 1e-300, 0.1, 3.4e38]
        floats = jax_impl.default_collate(values)
        assert floats.dtype == np.float32
        assert floats.tolist() == np.array(values, np.float32).tolist()
    with jax.enable_x64(True):  # x64 on: nothing narrows, nothing is refused
        got = leaves(jax_impl.default_collate(samples), jax.Array)
        assert [a.dtype for a in got] == [a.dtype for a in leaves(refs.default_collate(samples),
                                                                  np.ndarray)]


# --- 2. torch_impl given NumPy arrays --------------------------------------------------


class Arr(NamedTuple):
    """An array argument of a call: its name in messages, and its value (NumPy)."""

    name: str
    value: np.ndarray


_X = np.arange(6.0).reshape(2, 3)
_I = np.array([[0, 1, 1], [2, 0, 1]])
_IMG = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)

#: every public torch_impl op that takes arrays, as a call with its array arguments marked
TORCH_CALLS = {
    "gather": [Arr("input", _X), 1, Arr("index", _I)],
    "scatter_add": [Arr("input", _X), 1, Arr("index", _I), Arr("src", _X)],
    "einsum": ["ij,kj->ik", Arr("operands[0]", _X), Arr("operands[1]", _X)],
    "matmul": [Arr("a", _X), Arr("b", _X.T.copy())],
    "unfold": [Arr("input", _IMG), 2],
    "fold": [Arr("input", np.ones((2, 12, 12))), (4, 5), 2],
    "conv": [Arr("input", _IMG), Arr("weight", np.ones((4, 3, 2, 2))), Arr("bias", np.ones(4))],
    "max_pool": [Arr("input", _IMG), 2],
}
_TORCH_CASES = [(fn, a.name) for fn, call in TORCH_CALLS.items() for a in call if isinstance(a, Arr)]


def _call_args(call, numpy_arg: str | None, to_tensor):
    return [a if not isinstance(a, Arr) else a.value if a.name == numpy_arg else to_tensor(a.value)
            for a in call]


@pytest.mark.parametrize(("fn", "arg"), _TORCH_CASES, ids=[f"{f}-{a}" for f, a in _TORCH_CASES])
def test_torch_impl_names_a_numpy_argument(fn, arg):
    torch = pytest.importorskip("torch")
    import torch_impl

    op = getattr(torch_impl, fn)
    op(*_call_args(TORCH_CALLS[fn], None, torch.from_numpy))  # the call itself is valid
    with pytest.raises(TypeError) as caught:
        op(*_call_args(TORCH_CALLS[fn], arg, torch.from_numpy))
    assert str(caught.value) == (
        f"{fn}(): {arg} must be a torch.Tensor{' or None' * (arg == 'bias')}, got numpy.ndarray "
        "(use torch.from_numpy(x) or torch.as_tensor(x))"
    )


def test_every_torch_impl_op_is_in_the_numpy_table():
    pytest.importorskip("torch")
    import torch_impl

    ops = {name for name in torch_impl.__all__ if getattr(getattr(torch_impl, name), "__module__", "")
           in ("torch_impl.indexing", "torch_impl.einsum", "torch_impl.convlike")}
    assert ops == set(TORCH_CALLS)


@pytest.mark.parametrize("fn", list(TORCH_CALLS))
def test_jax_impl_still_takes_numpy(fn):
    pytest.importorskip("jax")
    from crosscheck import jax_impl

    args = _call_args(TORCH_CALLS[fn], None, np.asarray)
    expected = getattr(refs, fn)(*args)
    got = np.asarray(getattr(jax_impl, fn)(*args))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6)


# --- 3. a missing framework names its extra ---------------------------------------------

_HIDE = """
import sys
HIDDEN = {hidden!r}
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == HIDDEN or name.startswith(HIDDEN + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
{how}
import refs  # framework-free
try:
    {statement}
except ImportError as e:
    print("RAISED", type(e).__name__, "|", e)
else:
    print("IMPORTED")
"""


@pytest.mark.parametrize("how", ["meta_path", "sys.modules"])
@pytest.mark.parametrize(
    ("hidden", "statement", "extra"),
    [("torch", "import torch_impl", "torch"), ("jax", "from crosscheck import jax_impl", "jax")],
    ids=["torch", "jax"],
)
def test_missing_framework_names_the_extra(hidden, statement, extra, how):
    hide = ("sys.meta_path.insert(0, Hide())" if how == "meta_path"
            else f"sys.modules[{hidden!r}] = None")
    done = _run_fresh(_HIDE.format(hidden=hidden, how=hide, statement=statement), timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout.strip()
    assert out.startswith("RAISED ModuleNotFoundError |"), out
    assert f'pip install "crosscheck-advanced-pytorch[{extra}]"' in out, out
    assert f"needs {hidden}" in out, out


# --- 4. unbatched inputs, as torch reads them --------------------------------------------

IMPLS = ["refs", "torch_impl", "jax_impl"]


def _impl(name):
    """(module, NumPy -> its array) for ``name``."""
    if name == "refs":
        return refs, np.asarray
    if name == "torch_impl":
        torch = pytest.importorskip("torch")
        import torch_impl

        return torch_impl, torch.from_numpy
    jnp = pytest.importorskip("jax.numpy")
    from crosscheck import jax_impl

    return jax_impl, jnp.asarray


def _host(x) -> np.ndarray:
    return x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)


def _ints(*shape, seed=0) -> np.ndarray:
    """Integer-valued float64: every sum below is exact in float32 and float64 alike."""
    return np.random.default_rng(seed).integers(-4, 5, shape).astype(np.float64)


def _assert_equal(got, expected):
    got, expected = _host(got), _host(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    np.testing.assert_array_equal(got.astype(np.float64), expected.astype(np.float64))


_IMAGE = _ints(3, 5, 6)  # one (C, H, W) image
_SIGNAL = _ints(3, 7, seed=1)  # one (C, L) signal


def _unbatched_cases():
    """(id, our call, torch's call): each a function of (impl, to_array) / of torch."""
    def t(a):
        import torch

        return torch.from_numpy(a)

    def F():
        import torch.nn.functional as F

        return F

    cols = _ints(3 * 2 * 3, 3 * 6, seed=2)  # (C * K, L): a 2x3 kernel over 5x6, padding 1, stride 2x1
    w2, b = _ints(4, 3, 2, 2, seed=3), _ints(4, seed=4)
    w2g = _ints(6, 1, 3, 2, seed=5)
    w1 = _ints(4, 3, 3, seed=6)
    return [
        ("unfold-tuple-kernel",
         lambda m, a: m.unfold(a(_IMAGE), (2, 3), dilation=(2, 1), padding=1, stride=(1, 2)),
         lambda: F().unfold(t(_IMAGE), (2, 3), dilation=(2, 1), padding=1, stride=(1, 2))),
        ("unfold-tuple-dilation",
         lambda m, a: m.unfold(a(_IMAGE), 2, dilation=(1, 2)),
         lambda: F().unfold(t(_IMAGE), 2, dilation=(1, 2))),
        ("unfold-spatial_dims",
         lambda m, a: m.unfold(a(_IMAGE), 2, padding=1, stride=2, spatial_dims=2),
         lambda: F().unfold(t(_IMAGE), 2, padding=1, stride=2)),
        ("fold-tuple",
         lambda m, a: m.fold(a(cols), (5, 6), (2, 3), padding=1, stride=(2, 1)),
         lambda: F().fold(t(cols), (5, 6), (2, 3), padding=1, stride=(2, 1))),
        ("fold-all-ints",
         lambda m, a: m.fold(a(_ints(3 * 4, 16, seed=7)), 5, 2),
         lambda: F().fold(t(_ints(3 * 4, 16, seed=7)), 5, 2)),
        ("conv2d",
         lambda m, a: m.conv(a(_IMAGE), a(w2), a(b), 1, 1, (1, 2), 1),
         lambda: F().conv2d(t(_IMAGE), t(w2), t(b), 1, 1, (1, 2), 1)),
        ("conv2d-groups",
         lambda m, a: m.conv(a(_IMAGE), a(w2g), None, 2, (1, 0), 1, 3),
         lambda: F().conv2d(t(_IMAGE), t(w2g), None, 2, (1, 0), 1, 3)),
        ("max_pool2d-tuple-kernel",
         lambda m, a: m.max_pool(a(_IMAGE), (2, 3), (1, 2), 1),
         lambda: F().max_pool2d(t(_IMAGE), (2, 3), (1, 2), 1)),
        ("max_pool2d-spatial_dims",
         lambda m, a: m.max_pool(a(_IMAGE), 3, 2, 1, spatial_dims=2),
         lambda: F().max_pool2d(t(_IMAGE), 3, 2, 1)),
        ("conv1d",
         lambda m, a: m.conv(a(_SIGNAL), a(w1), a(b), 2, 1),
         lambda: F().conv1d(t(_SIGNAL), t(w1), t(b), 2, 1)),
        ("max_pool1d-tuple-kernel",
         lambda m, a: m.max_pool(a(_SIGNAL), (2,)),
         lambda: F().max_pool1d(t(_SIGNAL), 2)),
        ("max_pool1d-spatial_dims",
         lambda m, a: m.max_pool(a(_SIGNAL), 3, 1, 1, spatial_dims=1),
         lambda: F().max_pool1d(t(_SIGNAL), 3, 1, 1)),
    ]


UNBATCHED = _unbatched_cases()


@pytest.mark.parametrize("name", IMPLS)
@pytest.mark.parametrize(("ours", "native"), [c[1:] for c in UNBATCHED], ids=[c[0] for c in UNBATCHED])
def test_unbatched_input_matches_torch(name, ours, native):
    pytest.importorskip("torch")
    impl, to_array = _impl(name)
    expected = native()
    assert expected.dim() in (2, 3)  # torch read it as unbatched
    _assert_equal(ours(impl, to_array), expected)


@pytest.mark.parametrize("name", IMPLS)
def test_all_int_arguments_keep_a_3d_input_batched_1d(name):
    """``unfold(x, 2)`` of ``x`` ``(N, C, L)``: a batch of signals, as before -- not one image."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    impl, to_array = _impl(name)
    x = _ints(2, 3, 7, seed=8)
    t = torch.from_numpy(x)
    # a 1-d unfold is a 2-d one over a height of 1
    _assert_equal(impl.unfold(to_array(x), 2, 1, 1, 2), F.unfold(t[:, :, None], (1, 2), 1, (0, 1), 2))
    _assert_equal(impl.max_pool(to_array(x), 2), F.max_pool1d(t, 2))
    _assert_equal(impl.max_pool(to_array(x), 2, spatial_dims=1), F.max_pool1d(t, 2))
    _assert_equal(impl.fold(impl.unfold(to_array(x), 2, spatial_dims=1), (7,), 2),
                  refs.fold(refs.unfold(x, 2), (7,), 2))


@pytest.mark.parametrize("name", IMPLS)
@pytest.mark.parametrize(
    ("call", "quoted"),
    [
        (lambda m, a: m.unfold(a(np.zeros(5)), (2, 2)),
         "unfold(): input has shape (5,) (rank 1), but unfold reads 2 spatial dims from "
         "kernel_size = (2, 2): expected (C, H, W) (unbatched, rank 3) or (N, C, H, W) (rank 4)"),
        (lambda m, a: m.unfold(a(np.zeros((3, 4))), 2),
         "unfold(): input has shape (3, 4) (rank 2), but with kernel_size, dilation, padding and "
         "stride all ints unfold reads it as batched (N, C, *spatial) with input.ndim - 2 = 0"),
        (lambda m, a: m.unfold(a(np.zeros((3, 4, 4))), (2, 2), stride=(1, 1, 1)),
         "unfold(): the tuple arguments disagree on the number of spatial dims: kernel_size = "
         "(2, 2) (2 entries), stride = (1, 1, 1) (3 entries)"),
        (lambda m, a: m.max_pool(a(np.zeros((2, 3, 4, 4))), 2, spatial_dims=1),
         "max_pool(): input has shape (2, 3, 4, 4) (rank 4), but max_pool reads 1 spatial dim "
         "from spatial_dims=1: expected (C, L) (unbatched, rank 2) or (N, C, L) (rank 3)"),
        (lambda m, a: m.conv(a(np.zeros((1, 2, 3, 4, 4))), a(np.zeros((1, 3, 2, 2)))),
         "conv(): input has shape (1, 2, 3, 4, 4) (rank 5), but conv reads 2 spatial dims from "
         "weight of shape (1, 3, 2, 2) (weight.ndim - 2)"),
        (lambda m, a: m.conv(a(np.zeros((3, 4, 4))), a(np.zeros((1, 3, 2, 2))), stride=(1, 1, 1)),
         "conv(): stride = (1, 1, 1) has 3 entries, expected an int or 2 ints (one per spatial "
         "dim; conv reads 2 spatial dims from weight of shape (1, 3, 2, 2) (weight.ndim - 2))"),
        (lambda m, a: m.fold(a(np.zeros((2, 3, 4, 5))), (3, 4), 2),
         "fold(): input must have shape (N, C * prod(kernel_size), L), or (C * prod(kernel_size), "
         "L) unbatched, got shape (2, 3, 4, 5) (rank 4)"),
        (lambda m, a: m.max_pool(a(np.zeros((0, 4, 4))), (2, 2)),
         "max_pool(): input has shape (0, 4, 4), read as unbatched (C, H, W) (max_pool reads 2 "
         "spatial dims from kernel_size = (2, 2)); its channels and spatial sizes must be non-zero"),
    ],
    ids=["rank-vs-tuple", "all-ints-rank-2", "tuples-disagree", "spatial_dims", "conv-weight",
         "conv-stride", "fold-rank", "unbatched-empty"],
)
def test_a_rank_that_fits_no_reading_says_how_it_was_read(name, call, quoted):
    impl, to_array = _impl(name)
    with pytest.raises(ValueError) as caught:
        call(impl, to_array)
    assert str(caught.value).startswith(quoted), str(caught.value)


# --- 5. DataLoader options, overlap_counts, the L formula --------------------------------


class _Pairs:
    """A map-style dataset of ``(float32 (3,), int)`` pairs, the README's."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full(3, i, np.float32), i


def _assert_batches_equal_refs(loader, dataset, batch_size, order):
    expected = list(refs.batches(dataset, batch_size, order=order))
    got = list(loader)
    assert len(got) == len(expected) > 0
    for (tx, ty), (ex, ey) in zip(got, expected):
        for t, e in ((tx, ex), (ty, ey)):
            assert t.numpy().dtype == e.dtype and t.shape == e.shape and (t.numpy() == e).all()


@pytest.mark.parametrize(
    "options",
    [
        dict(num_workers=2, persistent_workers=True),
        dict(pin_memory=True),
        dict(num_workers=2, pin_memory=True, prefetch_factor=4, timeout=30),
        dict(num_workers=1, prefetch_factor=4, timeout=30, multiprocessing_context="fork"),
    ],
    ids=["persistent_workers", "pin_memory", "prefetch_factor-timeout", "context"],
)
@pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning")  # CPU torch: pinning does nothing
def test_torch_loader_options_keep_the_batches(options):
    pytest.importorskip("torch")
    from torch_impl import make_loader

    dataset = _Pairs(11)
    loader = make_loader(dataset, 4, shuffle=True, seed=3, epoch=2, **options)
    order = refs.epoch_order(len(dataset), seed=3, epoch=2)
    for _ in range(2):  # a second pass: persistent workers are reused
        _assert_batches_equal_refs(loader, dataset, 4, order)


_SEEN_IN_INIT: list[int] = []


def _remember_seed(worker_id: int) -> None:
    import torch

    _SEEN_IN_INIT.append(torch.initial_seed() % 2**31)


class _SeedEcho:
    """Sample ``i`` is ``(i, the torch seed worker_init_fn saw in this worker)``."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return i, _SEEN_IN_INIT[-1]


def test_worker_init_fn_runs_after_the_keyed_worker_seeding():
    pytest.importorskip("torch")
    from torch_impl import make_loader

    def seeds(epoch):
        batches = list(make_loader(_SeedEcho(), 2, epoch=epoch, num_workers=1,
                                   worker_init_fn=_remember_seed))
        return {int(s) for _, batch_seeds in batches for s in batch_seeds}

    first, again, other = seeds(0), seeds(0), seeds(1)
    assert len(first) == 1 and first == again  # keyed by (seed, epoch): reproducible
    assert first != other  # ...and set before worker_init_fn ran, or it would see the parent's


@pytest.mark.parametrize(
    ("options", "quoted"),
    [
        (dict(sampler=[0, 1]), "make_loader(): sampler is not accepted"),
        (dict(batch_sampler=[[0, 1]]), "make_loader(): batch_sampler is not accepted"),
        (dict(collate_fn=list), "make_loader(): collate_fn is not accepted"),
        (dict(generator=None), "make_loader(): generator is not accepted"),
        (dict(in_order=False), "make_loader(): in_order is not accepted"),
        (dict(shufle=True), "make_loader(): unexpected keyword argument 'shufle'"),
        (dict(worker_init_fn=3), "make_loader(): worker_init_fn must be callable"),
        (dict(persistent_workers=1, num_workers=1), "make_loader(): persistent_workers must be a bool"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_torch_loader_refuses_options_that_change_the_batches(options, quoted):
    pytest.importorskip("torch")
    from torch_impl import make_loader

    with pytest.raises(TypeError) as caught:
        make_loader(_Pairs(5), 2, **options)
    assert str(caught.value).startswith(quoted), str(caught.value)


def test_torch_loader_options_without_workers_say_so():
    pytest.importorskip("torch")
    from torch_impl import make_loader

    for options in (dict(persistent_workers=True), dict(prefetch_factor=2)):
        with pytest.raises(ValueError, match=r"make_loader\(\): .* needs num_workers > 0"):
            make_loader(_Pairs(5), 2, **options)
    with pytest.raises(TypeError, match="multiple values for keyword argument 'shuffle'"):
        make_loader(_Pairs(5), 2, shuffle=True, **{"shuffle": False})


def test_refs_exports_overlap_counts_and_unfold_documents_the_block_count():
    assert "overlap_counts" in refs.__all__
    np.testing.assert_array_equal(refs.overlap_counts((3, 4), 2),
                                  [[1, 2, 2, 1], [2, 4, 4, 2], [1, 2, 2, 1]])
    doc = textwrap.dedent(refs.unfold.__doc__)
    assert ("L_d = floor((size_d + 2 padding_d - dilation_d (kernel_size_d - 1) - 1) / stride_d) + 1"
            in doc)
    assert "L = prod_d L_d" in doc
    for size, k, d, p, s in [((7,), 3, 2, 1, 2), ((5, 6), (2, 3), 1, (1, 0), (2, 1))]:
        rank = len(size)
        per = [np.broadcast_to(v, rank) for v in (k, d, p, s)]
        expected = int(np.prod([(n + 2 * pp - dd * (kk - 1) - 1) // ss + 1
                                for n, kk, dd, pp, ss in zip(size, *per)]))
        assert refs.unfold(np.zeros((1, 1) + size), k, d, p, s).shape[-1] == expected
