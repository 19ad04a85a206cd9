"""The harness's own parts: comparison, tolerances, backends, reproducers, jit."""

from __future__ import annotations

import numpy as np
import pytest

from crosscheck import backends
from crosscheck.bench.cases import EXAMPLES
from crosscheck.compare import Mismatch, assert_close
from crosscheck.ops import BY_NAME
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
    eager = fn(*case.args)
    jitted = jax.jit(fn, static_argnums=1)(*case.args)
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
