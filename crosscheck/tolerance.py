"""One tolerance policy: exact for integers and data movement, bounds for arithmetic.

Two sources, and nothing else:

* ``DTYPE_TOLERANCES``: one (rtol, atol) per floating dtype, for comparisons
  whose error cannot be bounded from the computation (e.g. two frameworks'
  transcendental functions). The numbers are PyTorch's ``assert_close``
  defaults, which most peer suites share.
* ``rounding_bound``: the classical a-priori bound for a computation that
  accumulates ``n`` rounded operations (sums, dot products, scatter-add with
  duplicates): ``|computed - exact| <= gamma(n) * magnitude`` with
  ``gamma(n) = n*u / (1 - n*u)``, ``u`` the unit roundoff of the dtype and
  ``magnitude`` the same computation on absolute values (Higham, *Accuracy and
  Stability of Numerical Algorithms*, 2nd ed., sec. 3.1 and 4.2). It holds for
  every summation order, so it covers atomics on GPU and blocked kernels alike.
  Each rounded operation may also lose up to the smallest normal number to
  underflow, hence ``n * tiny`` on top: not just one subnormal spacing,
  because XLA (JAX on CPU and GPU) flushes subnormal results to zero -- the
  report found ``2**-63 * 2**-64`` coming back as 0.0 from ``jnp.einsum``.

The expected value is computed by the NumPy reference in float64, so the
reference's own rounding (the same bound with float64's ``u``) is added too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: (rtol, atol) per floating dtype; integers and bools are always exact.
DTYPE_TOLERANCES: dict[str, tuple[float, float]] = {
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
}


@dataclass(frozen=True)
class Tolerance:
    """``|actual - expected| <= atol + rtol * |expected|``, elementwise.

    ``atol`` may be an array of expected's shape (an error bound per element).
    """

    rtol: float = 0.0
    atol: float | np.ndarray = 0.0
    why: str = "exact"

    @property
    def is_exact(self) -> bool:
        return self.rtol == 0 and np.all(np.asarray(self.atol) == 0)

    def allowed(self, expected: np.ndarray) -> np.ndarray:
        return self.atol + self.rtol * np.abs(expected)


EXACT = Tolerance()


def unit_roundoff(dtype) -> float:
    return float(np.finfo(dtype).eps) / 2


def gamma(n: int, dtype) -> float:
    """Higham's gamma_n = n u / (1 - n u): the relative error of n rounded operations."""
    nu = n * unit_roundoff(dtype)
    if nu >= 1:
        return float("inf")
    return nu / (1 - nu)


def for_dtype(dtype) -> Tolerance:
    """The table entry for ``dtype``; exact for integers and bools."""
    name = np.dtype(dtype).name
    if name not in DTYPE_TOLERANCES:
        return EXACT
    rtol, atol = DTYPE_TOLERANCES[name]
    return Tolerance(rtol, atol, f"{name} table (rtol={rtol:g}, atol={atol:g})")


def rounding_bound(dtype, n: int, magnitude: np.ndarray) -> Tolerance:
    """Error bound for ``n`` accumulated roundings in ``dtype`` against a float64 reference.

    ``magnitude`` is the computation redone on absolute values (in float64).
    Integer dtypes are exact.
    """
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        return EXACT
    n = max(int(n), 1)
    g = gamma(n, dtype) + gamma(n, np.float64)
    underflow = n * float(np.finfo(dtype).tiny)  # flush-to-zero: see the module docstring
    atol = g * np.asarray(magnitude, dtype=np.float64) + underflow
    return Tolerance(0.0, atol, f"gamma({n}) bound in {dtype.name} (u={unit_roundoff(dtype):.3g})")
