"""torch_impl never calls its native twin; the JAX versions have no per-element Python loop;
jax_impl's two ways of reading an index's bounds reject the same bad indices; its training
step compiles once per shape, whatever form the rates take."""

from __future__ import annotations

import pytest

from crosscheck.backends import Backend
from crosscheck.bench.cases import EXAMPLES
from crosscheck.ops import OPS
from crosscheck.optable import Target

WITH_EXAMPLE = [op for op in OPS if op.name in EXAMPLES]


@pytest.mark.parametrize("op", WITH_EXAMPLE, ids=lambda op: op.name)
def test_torch_impl_does_not_call_its_native_twin(op, require_backend):
    backend = Backend("torch-cpu")
    require_backend(backend)
    from torch.overrides import TorchFunctionMode

    called = set()

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            called.add(getattr(func, "__name__", repr(func)))
            return func(*args, **(kwargs or {}))

    target = Target(op, "torch_impl", backend)
    args = target.convert(EXAMPLES[op.name](0.001))
    with Record():
        target.fn(*args)
    assert called, "the mode saw no torch call at all: the test could not fail"
    assert not called & set(op.forbidden_torch), f"{op.name} calls {called & set(op.forbidden_torch)}"


def _count_equations(jaxpr) -> int:
    n = 0
    for eqn in jaxpr.eqns:
        n += 1
        for sub in eqn.params.values():
            inner = getattr(sub, "jaxpr", None)
            if inner is not None:
                n += _count_equations(getattr(inner, "jaxpr", inner))
    return n


@pytest.mark.parametrize("op", WITH_EXAMPLE, ids=lambda op: op.name)
def test_jax_impl_program_does_not_grow_with_the_input(op, require_backend):
    backend = Backend("jax-cpu")
    require_backend(backend)
    import jax

    target = Target(op, "jax_impl", backend)
    sizes = []
    for scale in (0.001, 0.01):
        case = EXAMPLES[op.name](scale)
        arrays = [i for i, a in enumerate(case.args) if hasattr(a, "shape")]
        args = list(target.convert(case))

        def f(*xs, args=args, arrays=arrays):
            full = list(args)
            for i, x in zip(arrays, xs):
                full[i] = x
            return target.fn(*full)

        sizes.append(_count_equations(jax.make_jaxpr(f)(*[args[i] for i in arrays]).jaxpr))
    assert sizes[0] == sizes[1], f"jaxpr grew from {sizes[0]} to {sizes[1]} equations with the input"


@pytest.mark.parametrize("op", ["gather", "scatter_add"])
@pytest.mark.parametrize("host_max", [0, None], ids=["on the device", "on the host"])
def test_jax_impl_checks_an_index_on_the_host_or_the_device_alike(op, host_max, monkeypatch,
                                                                  require_backend):
    """Small CPU indices have their bounds read by NumPy, large ones (and every GPU index)
    reduced by XLA: the table's bad-input property holds either way."""
    backend = Backend("jax-cpu")
    require_backend(backend)
    from crosscheck import runner
    from crosscheck.jax_impl import indexing
    from crosscheck.ops import BY_NAME, properties

    if host_max is not None:
        monkeypatch.setattr(indexing, "HOST_BOUNDS_MAX", host_max)
    (prop,) = [p for p in properties([op]) if p.name == "rejects_bad_input"]
    outcome = runner.run(prop, Target(BY_NAME[op], "jax_impl", backend), max_examples=60)
    assert outcome.compared > 0


def test_jax_impl_train_step_compiles_one_program_whatever_form_the_rates_take(require_backend):
    """``lr`` as a Python float or as a 0-d array on the device (the cross-check draws both)
    meets the same compiled step: jit tells a committed argument from an uncommitted one,
    and before ``_rate`` these were twin programs (11 of the 26 of a default run)."""
    require_backend(Backend("jax-cpu"))
    import jax
    import numpy as np

    from crosscheck.jax_impl import capture, training

    device = jax.devices("cpu")[0]
    params = {k: jax.device_put(w, device)
              for k, w in capture.init_params(5, image_size=(5, 7), dtype="float32").items()}
    x = jax.device_put(np.ones((3, 1, 5, 7), np.float32), device)
    y = np.array([0, 1, 2])
    before = training._step._cache_size()
    training.train_step(params, x, y, lr=0.5, penalty_weight=0.25)
    training.train_step(params, x, y, lr=jax.device_put(np.float32(0.5), device),
                        penalty_weight=jax.device_put(np.float32(0.25), device))
    assert training._step._cache_size() - before == 1
