"""The harness's own parts: comparison, tolerances, backends, reproducers, jit."""

from __future__ import annotations

import numpy as np
import pytest

import refs
from crosscheck import backends, modes
from crosscheck.bench.cases import EXAMPLES
from crosscheck.compare import Mismatch, assert_close
from crosscheck.layouts import Layout
from crosscheck.ops import BY_NAME, OPS
from crosscheck.optable import Case, Target
from crosscheck.reproduce import reproducers
from crosscheck.tolerance import EXACT, for_dtype, gamma, rounding_bound


def test_assert_close_checks_structure_shape_dtype_then_values():
    with pytest.raises(Mismatch, match="expected a dict"):
        assert_close([1], {"a": 1})
    with pytest.raises(Mismatch, match="shape"):
        assert_close(np.zeros(2), np.zeros(3))
    with pytest.raises(Mismatch, match="dtype"):
        assert_close(np.zeros(2, np.float32), np.zeros(2))
    with pytest.raises(Mismatch, match=r"1 of 4 elements differ \(exact\); worst at \[1, 0\]"):
        assert_close(np.array([[1, 2], [4, 4]]), np.array([[1, 2], [3, 4]]))


def test_assert_close_reports_the_worst_element_against_its_tolerance():
    expected = np.array([1.0, 2.0, 3.0])
    actual = np.array([1.0, 2.1, 3.5])
    with pytest.raises(Mismatch, match=r"2 of 3 elements differ.*worst at \[2\]"):
        assert_close(actual, expected)
    assert assert_close(expected, expected).worst_ratio == 0.0


def test_integers_are_exact_and_nan_equals_nan():
    assert for_dtype(np.int32) is EXACT
    assert_close(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))
    with pytest.raises(Mismatch):
        assert_close(np.array([np.nan]), np.array([1.0]))


def test_rounding_bound_holds_for_float32_sums_and_is_tight():
    rng = np.random.default_rng(0)
    terms = rng.standard_normal((1000, 64)).astype(np.float32)
    exact = terms.astype(np.float64).sum(axis=1)
    naive = np.zeros(1000, np.float32)
    for k in range(64):  # sequential float32 accumulation, the worst order for the bound
        naive += terms[:, k]
    tol = rounding_bound(np.float32, 64, np.abs(terms.astype(np.float64)).sum(axis=1))
    cmp = assert_close(naive, exact, tol, dtype=np.float32)
    assert 0 < cmp.worst_ratio < 1
    assert gamma(64, np.float32) == pytest.approx(64 * 2**-24, rel=1e-5)


def test_requested_missing_backend_fails_loudly(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "numpy,torch-cuda")
    if backends.Backend("torch-cuda").missing() is None:
        pytest.skip("torch-cuda is present here, so it cannot be missing")
    with pytest.raises(backends.BackendUnavailable, match="torch-cuda"):
        backends.selected()
    monkeypatch.setenv(backends.ENV_VAR, "numpy,tpu")
    with pytest.raises(backends.BackendUnavailable, match="unknown"):
        backends.selected()


def test_reproducer_lines_rebuild_the_failing_call():
    case = Case((np.array([[1.5, 2.0]], np.float32), -1, np.array([[1, 0]])))
    text = reproducers(Target(BY_NAME["gather"], "refs", backends.Backend("numpy")), case)
    numpy_line = text.splitlines()[0].split(": ", 1)[1]
    namespace = {}
    exec(numpy_line.replace("print(", "result = ("), namespace)  # noqa: S102 - our own line
    np.testing.assert_array_equal(namespace["result"], [[2.0, 1.5]])
    assert "torch_impl.gather(torch.tensor(" in text and "jax_impl.gather(jnp.array(" in text


@pytest.mark.parametrize("op", ["gather", "scatter_add"])
def test_jax_impl_is_jit_compatible(op, require_backend):
    require_backend(backends.Backend("jax-cpu"))
    import jax

    from crosscheck import jax_impl

    case = EXAMPLES[op](0.001)
    fn = getattr(jax_impl, op)
    # on the CPU, as the backend asked for: on a GPU, scatter_add's duplicate indices add up
    # in atomics' order, which is not repeatable bit for bit (seen on an H200: eager and jit
    # 1 ulp apart in 41 of 2,560 sums); the regression tier's repeatable property records it
    with jax.default_device(jax.devices("cpu")[0]):
        args = [jax.device_put(a, jax.devices("cpu")[0]) if isinstance(a, np.ndarray) else a
                for a in case.args]
        eager = fn(*args)
        jitted = jax.jit(fn, static_argnums=1)(*args)
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(eager))


def test_rounding_bound_admits_flush_to_zero_but_not_a_real_error():
    """XLA flushes subnormal results to zero; that is rounding, a wrong product is not."""
    product = np.float64(2.0**-63) * np.float64(2.0**-64)  # subnormal in float32
    tol = rounding_bound(np.float32, 1, np.array(product))
    assert_close(np.array(np.float32(0.0)), np.array(product), tol, dtype=np.float32)
    with pytest.raises(Mismatch):
        assert_close(np.array(np.float32(1e-30)), np.array(product), tol, dtype=np.float32)


@pytest.mark.parametrize("name", ["torch-cpu", "jax-cpu"])
def test_a_framework_result_holding_numpy_is_a_mismatch(name, require_backend):
    """A torch or JAX implementation that returns host arrays inside its result does not pass
    as equal just because the comparison converts everything to NumPy."""
    backend = backends.Backend(name)
    require_backend(backend)
    good = backend.asarray(np.arange(3))
    assert backend.to_host({"x": good, "names": ["a"]})["x"].tolist() == [0, 1, 2]
    with pytest.raises(Mismatch, match="holds a NumPy array int64"):
        backend.to_host({"x": good, "y": (np.arange(3),)})


def test_assert_close_holds_container_types():
    from collections import OrderedDict

    with pytest.raises(Mismatch, match="expected a OrderedDict"):
        assert_close({"a": np.zeros(1)}, OrderedDict(a=np.zeros(1)))
    with pytest.raises(Mismatch, match="expected a tuple of 1"):
        assert_close([np.zeros(1)], (np.zeros(1),))


# ------------------------------------------------------------------ layouts, modes, sizes


LAYOUTS = [Layout(), Layout("strided"), Layout("offset", offset=3), Layout("expanded", dim=1),
           Layout("permuted", perm=(2, 0, 1)), Layout("channels_last")]


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_a_layout_changes_strides_not_values(layout, require_backend):
    require_backend(backends.Backend("torch-cpu"))
    import torch

    shape = (2, 3, 4, 5) if layout.kind == "channels_last" else (2, 3, 4)
    a = layout.prepare(np.arange(np.prod(shape), dtype=np.float32).reshape(shape))
    t = backends.Backend("torch-cpu").asarray(a, layout)
    np.testing.assert_array_equal(t.numpy(), a)
    plain = torch.from_numpy(a)
    if layout.kind == "contiguous":
        assert t.is_contiguous()
    else:
        assert t.stride() != plain.stride() or t.storage_offset() != 0, f"{layout} did nothing"
    # the reproducer's source gives the very same strides
    rebuilt = eval(layout.torch_code("torch.from_numpy(a)"), {"torch": torch, "a": a})  # noqa: S307
    assert (rebuilt.stride(), rebuilt.storage_offset()) == (t.stride(), t.storage_offset())
    assert torch.equal(rebuilt, t)


def test_an_expanded_layout_refuses_values_that_differ_along_its_dim(require_backend):
    require_backend(backends.Backend("torch-cpu"))
    with pytest.raises(ValueError, match="equal along dim 1"):
        backends.Backend("torch-cpu").asarray(np.arange(6.0).reshape(2, 3), Layout("expanded", dim=1))


def test_the_torch_reproducer_rebuilds_the_layout(require_backend):
    require_backend(backends.Backend("torch-cpu"))

    index = np.broadcast_to(np.array([[1], [0]]), (2, 3)).copy()
    case = Case((np.arange(6.0).reshape(2, 3), 1, index),
                (Layout("permuted", perm=(1, 0)), None, Layout("expanded", dim=1)),
                ("input", "dim", "index"))
    target = Target(BY_NAME["gather"], "torch_impl", backends.Backend("torch-cpu"))
    line = next(x for x in reproducers(target, case).splitlines() if x.startswith("reproduce (torch)"))
    seen = []
    namespace = {"print": seen.append}
    exec(line.split(": ", 1)[1], namespace)  # noqa: S102 - our own line
    torch_args = target.convert(case)
    np.testing.assert_array_equal(seen[0].numpy(), refs.gather(*case.args))
    assert torch_args[2].stride() == (1, 0) and torch_args[0].stride() == (1, 2)
    assert "expand" in line and "permute" in line


def test_jit_mode_compiles_once_per_static_call(require_backend):
    require_backend(backends.Backend("jax-cpu"))
    import jax.numpy as jnp

    from crosscheck import modes

    traced = []

    def f(x, k, tree):
        traced.append(k)
        return x * k + tree["y"]

    g = modes.wrap(f, "jit")
    for _ in range(3):
        out = g(jnp.ones(3), 2, {"y": jnp.zeros(3)})
    np.testing.assert_array_equal(np.asarray(out), [2.0, 2.0, 2.0])
    g(jnp.ones(3), 3, {"y": jnp.zeros(3)})  # another static value: one more trace
    assert traced == [2, 3], "the array arguments are traced, the rest is static"
    assert modes.wrap(f, "jit") is g, "one wrapper per function, so compilations are shared"


def test_compile_mode_is_torch_compile(require_backend):
    require_backend(backends.Backend("torch-cpu"))
    from crosscheck import modes

    why = modes.unavailable("compile")
    if why:
        pytest.skip(why)
    target = Target(BY_NAME["gather"], "torch_impl", backends.Backend("torch-cpu"), mode="compile")
    assert target.name == "torch_impl[compile]"
    assert "torch._dynamo" in type(target.fn).__module__ or hasattr(target.fn, "_torchdynamo_orig_callable")


@pytest.mark.parametrize("op", [op.name for op in OPS if op.large is not None])
def test_large_cases_are_large_and_rebuilt_from_their_seed(op):
    from crosscheck import sizes
    from crosscheck.ops import large_args
    from refs.trees import leaves

    spec = BY_NAME[op]
    for seed in (0, 1, 2):
        args = large_args(op, seed)
        arrays = leaves(args, np.ndarray)
        if arrays and all(isinstance(a, np.ndarray) for a in args[:1]):  # a tensor op
            biggest = max(a.size for a in arrays)
            assert sizes.SMALLEST <= biggest <= 4 * sizes.LARGEST, f"{op} {seed}: {biggest} elements"
        again = spec.large(sizes.rng(seed))
        for a, b in zip(leaves(args, np.ndarray), leaves(again, np.ndarray)):
            np.testing.assert_array_equal(a, b)


def test_a_published_compiler_crash_is_known_and_nothing_else():
    """Only the listed crash, in its mode, with its message, is counted as known (with the
    link); the same message eagerly, another class or another message stays an error."""
    InductorError = type("InductorError", (Exception,), {})
    crash = InductorError("ValueError: Exponent must be non-negative.")
    reason = modes.compiler_failure("compile", crash)
    assert reason and "pytorch/pytorch/issues/188323" in reason
    assert modes.compiler_failure("eager", crash) is None
    assert modes.compiler_failure("jit", crash) is None
    assert modes.compiler_failure("compile", ValueError("Exponent must be non-negative")) is None
    assert modes.compiler_failure("compile", InductorError("another crash")) is None


def test_torch_impl_checks_run_untraced_under_compile(require_backend):
    """Traced by Dynamo (dynamic=True), torch 2.13 mis-evaluated a shape check and refused a
    valid unfold; the checks run untraced, so a compiled call refuses exactly what an eager
    one does, with the same message."""
    require_backend(backends.Backend("torch-cpu"))
    why = modes.unavailable("compile")
    if why:
        pytest.skip(why)
    import torch

    import torch_impl

    unfold = modes.wrap(torch_impl.unfold, "compile")
    assert unfold(torch.zeros(2, 1, 5), (2,), (1,), (0,), (1,)).shape == (2, 2, 4)
    with pytest.raises(ValueError, match=r"unfold\(\): stride = \(0,\) must be positive"):
        unfold(torch.zeros(0, 1, 1), (1,), (1,), (0,), (0,))
    # the planner's operand numbers, symbolic after the untraced call, drop the right operands
    einsum = modes.wrap(torch_impl.einsum, "compile")
    a, b, c = torch.ones(2, 3, 4), torch.ones(2), torch.ones(3)
    assert torch.equal(einsum("abc,a,b->c", a, b, c), torch_impl.einsum("abc,a,b->c", a, b, c))


_FRESH_COMPILE = """
import sys, torch, torch_impl
assert "torch._dynamo" not in sys.modules, "import torch_impl loaded Dynamo"
if sys.argv[1] == "eager-first":
    torch_impl.unfold(torch.zeros(2, 1, 5), (2,))
unfold = torch.compile(torch_impl.unfold, backend="eager", dynamic=True)
assert unfold(torch.zeros(2, 1, 5), (2,), (1,), (0,), (1,)).shape == (2, 2, 4)
assert unfold(torch.zeros(3, 2, 7), (3,), (1,), (0,), (1,)).shape == (3, 6, 5)
try:
    unfold(torch.zeros(0, 1, 1), (1,), (1,), (0,), (0,))
except ValueError as e:
    assert "stride = (0,) must be positive" in str(e), e
else:
    raise AssertionError("a compiled unfold took stride 0")
"""


@pytest.mark.parametrize("first", ["compiled-first", "eager-first"])
def test_torch_impl_loads_dynamo_only_to_compile(require_backend, first):
    """``import torch_impl`` does not load Dynamo (1.4 s that an eager process never
    needs); the checks still run untraced under torch.compile, whether the first call of
    a check in the process is compiled or eager (fresh interpreters: Dynamo unloaded)."""
    require_backend(backends.Backend("torch-cpu"))
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _FRESH_COMPILE, first], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]


def test_jit_mode_keeps_equal_static_values_of_other_types_apart(require_backend):
    """True == 1 == 1.0 and 0.0 == -0.0, and they hash alike: a jit cache keyed on the
    values alone served lr=1.0 with the program compiled for lr=True."""
    require_backend(backends.Backend("jax-cpu"))
    import jax.numpy as jnp

    seen = []

    def traced_with(x, static):
        seen.append((type(static), repr(static)))  # runs once per compilation
        return x + 0

    run = modes.wrap(traced_with, "jit")
    x = jnp.zeros(2)
    for static in (True, 1, 1.0, 0.0, -0.0):
        run(x, static)
        assert seen[-1] == (type(static), repr(static)), f"{static!r} ran {seen[-1]}'s program"
    assert len(seen) == 5


@pytest.mark.parametrize("dtype, integral", [("int32", False), ("uint8", False), ("float32", True),
                                             ("float64", True)])
def test_integer_arrays_cover_their_range_and_shrink_to_zeros(dtype, integral):
    """The integer-valued arrays take every value of the range, each element drawn on its
    own (the planted bugs need neighbours that differ), keep dtype and shape, and shrink
    to all zeros."""
    from hypothesis import HealthCheck, find, given, settings

    from crosscheck.strategies import index_values, values

    low = 0 if dtype == "uint8" else -8
    strategy = (index_values(dtype, (3, 4), 5, duplicates=False) if dtype == "uint8"
                else values(dtype, (3, 4), integral=integral))
    allowed = set(range(5)) if dtype == "uint8" else set(range(low, 9))
    seen = set()

    @settings(max_examples=60, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(a):
        assert a.dtype == np.dtype(dtype) and a.shape == (3, 4)
        assert set(a.ravel().tolist()) <= allowed
        seen.update(a.ravel().tolist())

    draw()
    assert seen == allowed, f"values never drawn: {sorted(allowed - seen)}"
    smallest = find(strategy, lambda a: True, settings=settings(database=None))
    assert not smallest.any(), smallest
    many = min(6, len(allowed))
    distinct = find(strategy, lambda a: len(set(a.ravel().tolist())) >= many,
                    settings=settings(database=None, max_examples=200))
    assert len(set(distinct.ravel().tolist())) == many, "elements are drawn independently"


def test_pick_keeps_one_strategy_per_option_tuple_and_tells_types_apart():
    from crosscheck.strategies import pick

    assert pick([1, 2]) is pick((1, 2)), "one strategy object per distinct options"
    assert pick((1, 2)) is not pick((1.0, 2.0)) and pick((1,)) is not pick((True,))
    assert pick((1.0,)).example() == 1.0 and type(pick((1.0,)).example()) is float
    assert pick(([1], [2])).example() in ([1], [2]), "unhashable options still work"


def test_the_probe_times_every_stage_it_names(require_backend, capsys):
    """``python -m crosscheck.bench.probe`` reaches into torch_impl's private stages; run
    small on the CPU here, so that a renamed stage breaks a test, not the next GPU lease."""
    require_backend(backends.Backend("torch-cpu"))
    from crosscheck.bench import probe

    assert probe.main(["--device", "cpu", "--scale", "0.001"]) == 0
    text = capsys.readouterr().out
    for heading in ("gather, example(0.001)", "scatter_add, example(0.001)",
                    "unfold example(0.001)", "fold example(0.001)"):
        assert heading in text
    rows = [line for line in text.splitlines() if line.endswith(("ms", "GB/s"))]
    assert len(rows) == 21 and all(" ms" in row for row in rows)
