"""What TF32 does to float32 matmul on a CUDA GPU, measured against the full-precision bound.

The suite compares at the precision the dtype promises (the harness switches
TF32 off when it loads torch). This test documents what happens when it is on:
TF32 rounds the inputs to 10 mantissa bits (u ~ 4.9e-4), so the error exceeds
the float32 gamma(K) bound that the cross-checks use, yet stays around 1e-3
relative to the magnitude |a| @ |b|. It needs a CUDA GPU and skips elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from crosscheck.backends import load_torch
from crosscheck.tolerance import rounding_bound

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.cuda

K = 1024


def _tf32(enabled: bool) -> None:
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "tf32" if enabled else "ieee"
    else:  # older torch
        torch.backends.cuda.matmul.allow_tf32 = enabled


@pytest.fixture
def cuda_operands():
    load_torch()
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU: TF32 exists only there (torch sees no CUDA device)")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, K)).astype(np.float32)
    b = rng.standard_normal((K, 256)).astype(np.float32)
    yield a, b
    _tf32(False)  # the suite's setting, whatever happened above


@pytest.mark.parametrize("op", ["torch_impl.matmul", "torch_impl.einsum", "torch.matmul"])
def test_tf32_error_exceeds_the_float32_bound_but_stays_near_1e_3(op, cuda_operands):
    import torch_impl

    a, b = cuda_operands
    exact = a.astype(np.float64) @ b.astype(np.float64)
    magnitude = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    bound = rounding_bound(np.float32, K, magnitude).atol
    fn = {
        "torch_impl.matmul": torch_impl.matmul,
        "torch_impl.einsum": lambda x, y: torch_impl.einsum("ij,jk->ik", x, y),
        "torch.matmul": torch.matmul,
    }[op]
    ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()

    errors = {}
    for tf32 in (False, True):
        _tf32(tf32)
        out = fn(ta, tb).double().cpu().numpy()
        errors[tf32] = np.abs(out - exact)
    _tf32(False)

    assert (errors[False] <= bound).all(), "full precision must stay within the gamma(K) bound"
    assert (errors[True] > bound).any(), "TF32 was expected to exceed the float32 bound"
    relative = float((errors[True] / magnitude).max())
    assert 1e-5 < relative < 2e-3, f"TF32 error relative to |a| @ |b| is {relative:.3g}"


@pytest.mark.parametrize("op", ["jax_impl.matmul", "jnp.matmul"])
def test_jax_default_precision_on_gpu_is_tf32_like(op):
    """JAX's default float32 dot on Ampere/Hopper is TF32-like; the suite runs at "highest"."""
    from crosscheck.backends import Backend, load_jax

    backend = Backend("jax-cuda")
    if backend.missing():
        pytest.skip(f"needs a CUDA GPU for JAX: {backend.missing()}")
    jax = load_jax()
    import jax.numpy as jnp

    from crosscheck import jax_impl

    rng = np.random.default_rng(1)
    a = rng.standard_normal((256, K)).astype(np.float32)
    b = rng.standard_normal((K, 256)).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    magnitude = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    bound = rounding_bound(np.float32, K, magnitude).atol
    fn = jax_impl.matmul if op == "jax_impl.matmul" else jnp.matmul
    ga, gb = (backend.asarray(x) for x in (a, b))
    errors = {}
    for precision in ("highest", "default"):
        with jax.default_matmul_precision(precision):
            errors[precision] = np.abs(np.asarray(fn(ga, gb), dtype=np.float64) - exact)
    assert (errors["highest"] <= bound).all(), "'highest' must stay within the gamma(K) bound"
    relative = float((errors["default"] / magnitude).max())
    # on GPUs without TF32 (pre-Ampere) the default is full precision: then it is within the bound
    assert relative < 2e-3, f"default-precision error relative to |a| @ |b| is {relative:.3g}"
