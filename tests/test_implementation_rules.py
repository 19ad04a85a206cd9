"""torch_impl never calls its native twin; the JAX versions have no per-element Python loop;
jax_impl's two ways of reading an index's bounds reject the same bad indices; its training
step compiles once per shape, whatever form the rates take; the integer matmul that CUDA
needs keeps its dtype; JAX's convolutions are declared integer-free on a GPU only."""

from __future__ import annotations

import math

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


@pytest.mark.parametrize("shapes", [((3, 4, 5), (3, 5, 2)), ((1, 2, 3), (2, 1, 3, 2))],
                         ids=["einsum's (nb, m, k) @ (nb, k, n)", "conv's (G, O, R) @ (N, G, R, L)"])
def test_torch_impl_integer_matmul_equals_matmul_in_the_operands_dtype(shapes, require_backend):
    """CUDA has no integer matmul, so there einsum and conv multiply and sum, through the
    one helper that einsum also uses for integers on the CPU. ``sum`` widens int32 to
    int64 unless told otherwise, which the first CUDA run found in conv's own copy of it
    (an H200: the only torch_impl disagreement). Held here on the CPU against matmul."""
    require_backend(Backend("torch-cpu"))
    import torch

    from torch_impl.einsum import integer_matmul

    a = torch.arange(-30, -30 + math.prod(shapes[0]), dtype=torch.int32).reshape(shapes[0])
    b = torch.arange(math.prod(shapes[1]), dtype=torch.int32).reshape(shapes[1])
    product = integer_matmul(a, b)
    assert product.dtype == torch.int32
    assert torch.equal(product, torch.matmul(a, b))


@pytest.mark.parametrize("native", ["lax.conv_general_dilated", "lax.conv_general_dilated_patches"])
def test_jax_convolutions_on_a_gpu_take_no_integers(native):
    """XLA:GPU's integer convolutions fail to compile (cuDNN has int8 only): a documented
    difference for integer inputs on CUDA, and for nothing else."""
    import numpy as np

    from crosscheck.optable import Case

    op = next(o for o in OPS if any(n.name == native for n in o.natives))
    twin = next(n for n in op.natives if n.name == native)
    case = EXAMPLES[op.name](0.001)
    ints = Case((case.args[0].astype(np.int32),) + case.args[1:]).named(op.arg_names)
    floats = case.named(op.arg_names)
    on = {dev: Target(op, native, Backend(f"jax-{dev}"), twin) for dev in ("cpu", "cuda")}
    assert "cuDNN" in twin.unsupported(ints, on["cuda"])
    assert twin.unsupported(ints, on["cpu"]) is None
    assert twin.unsupported(floats, on["cuda"]) is None
