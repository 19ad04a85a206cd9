"""The large size tier: inputs of 2**16-2**20 elements, past the kernels' size switches.

Published bugs in these ops hide where a kernel changes code path with the size:
XLA:CPU ``reduce_window`` dropping ``base_dilation`` only on large inputs
(openxla/xla#48714), max-pool output shapes that differ by size and device
(pytorch/pytorch#13386), a CUDA col2im integer overflow (pytorch/pytorch#188959).
The small strategies (sizes 0-5) never get there, so every op also has a large
generator: ``OpSpec.large(rng) -> args``, with single dims of 64 and more and
``batch x channels`` of 64 and more where the op has them. A case is rebuilt
from its seed alone, so a reproducer prints ``crosscheck.ops.large_args(op, seed)``
instead
of a million numbers.

The loops of ``refs`` would take minutes here; the truth at this size is each
op's vectorized float64 NumPy oracle (``OpSpec.oracle``), which is itself held
against ``refs`` on the small tier in every test session.
"""

from __future__ import annotations

import numpy as np

#: the element counts the large tier spans
SMALLEST, LARGEST = 2**16, 2**20
#: seeds come from a short range so that shapes repeat across runs (JAX compiles each once)
SEEDS = 64


def rng(seed: int) -> np.random.Generator:
    """The generator of large case number ``seed``."""
    return np.random.default_rng([seed, 2**16])


def values(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Random values of ``dtype``: standard normal floats, small integers."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-8, 9, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)
