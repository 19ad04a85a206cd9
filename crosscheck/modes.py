"""Execution modes: the same target run eagerly, under ``jax.jit``, or under ``torch.compile``.

A framework's compiled path is another implementation of the op: XLA fuses and
reorders what eager JAX dispatches op by op, and Inductor writes its own
kernels (``torch.compile`` returning stale zeros for a ``scatter_add_``
followed by a gather, pytorch/pytorch#191571). So a target has a mode, and a
compiled target is its own row of the matrix and its own test id:

* ``eager`` -- the call as written (every framework);
* ``jit`` -- JAX targets under ``jax.jit``. Every array argument (also inside
  dicts, lists, tuples) is traced; everything else (``dim``, ``kernel_size``,
  the einsum subscripts) is static, so one compilation serves each shape;
* ``compile`` -- torch targets under ``torch.compile(dynamic=True)`` with the
  Inductor backend. On CPU Inductor writes and compiles C++, so it needs a C++
  compiler; where none is found the cells are skipped with that reason.
  Dynamo's recompile limit is lifted: past it, torch would quietly run the
  function eagerly, and a "compiled" cell would test nothing compiled.

Compiling costs time per new shape (JAX ~50 ms on CPU; Inductor 1-3 s, or a
fraction of that from its on-disk cache), so the default run calls each target
once, the way its users mostly do: torch's and ours eagerly (``jax_impl``'s
cores are jitted inside, after its checks on the host), and JAX's natives under
``jit``, as JAX code calls them (``Selection.native_modes``; eagerly, their
composites dispatch and compile each primitive on its own). The regression run
(``python -m crosscheck --regression``) runs every target in every mode. Where a
compiled mode cannot honour a promise, the op or property says so: under ``jit``
a traced index cannot be range-checked before the kernel, so ``jax_impl`` falls
back to fill / drop and the bad-input property counts those faults as known
(``checkify`` turns them into errors).
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass

from refs.trees import map_tree

MODES = ("eager", "jit", "compile")
#: the framework each compiled mode belongs to
FRAMEWORK = {"jit": "jax", "compile": "torch"}
DEFAULT = ("eager",)


@dataclass(frozen=True)
class CompilerFailure:
    """A published crash of a framework's compiler on a valid program: counted as known in the
    cells of ``mode`` whose exception is ``exception`` with ``match`` in its message, with the
    link. Matched by message, not by version: once the compiler is fixed the cell compares again.
    """

    mode: str
    exception: str  # the class name, as the framework raises it
    match: str
    url: str
    why: str

    def reason(self) -> str:
        return f"{self.why} ({self.url})"


COMPILER_FAILURES = (
    # Inductor's stride-order check takes a sympy power with a negative exponent for some
    # symbolic strides (dynamic=True); torch 2.13 on CPU, torch_impl.fold's strided slices
    # of the padded image reach it (and torch_impl.conv's gradient)
    CompilerFailure("compile", "InductorError", "Exponent must be non-negative",
                    "https://github.com/pytorch/pytorch/issues/188323",
                    "Inductor crashes in _stride_expr_ge_or_false on symbolic strides"),
    # an empty value range under dynamic shapes, new in torch 2.13 (there in a convolution
    # lowering); here in torch_impl.fold on some strided 3-d geometries and in F.conv*
    CompilerFailure("compile", "InductorError", "ValueRangeError: Invalid ranges [0:-1]",
                    "https://github.com/pytorch/pytorch/issues/188422",
                    "Inductor builds the empty value range [0:-1] under dynamic shapes"),
)


def compiler_failure(mode: str, error: BaseException) -> str | None:
    """The reason to count ``error`` as a known compiler crash in ``mode``, or None."""
    if mode == "eager":
        return None
    text = str(error)
    for known in COMPILER_FAILURES:
        if known.mode == mode and type(error).__name__ == known.exception and known.match in text:
            return known.reason()
    return None


def supports(mode: str, framework: str) -> bool:
    return mode == "eager" or FRAMEWORK.get(mode) == framework


@functools.cache
def unavailable(mode: str) -> str | None:
    """Why ``mode`` cannot run on this machine, or None."""
    if mode != "compile":
        return None
    from crosscheck.backends import load_torch

    torch = load_torch()
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if not cxx:
        return ("torch.compile (Inductor) needs a C++ compiler on CPU and none was found "
                "(install g++ or set CXX)")
    return None


def wrap(fn, mode: str):
    """``fn`` as ``mode`` runs it (cached per function, so compilations are shared)."""
    if mode == "eager":
        return fn
    if mode == "jit":
        return _jitted(fn)
    if mode == "compile":
        return _compiled(fn)
    raise ValueError(f"wrap(): unknown mode {mode!r}; known: {MODES}")


# --------------------------------------------------------------------- jax.jit


class _Slot:
    """Where the ``i``-th traced array goes back into the arguments."""

    __slots__ = ("i",)

    def __init__(self, i: int):
        self.i = i

    def __eq__(self, other):
        return isinstance(other, _Slot) and other.i == self.i

    def __hash__(self):
        return hash(("slot", self.i))


def _freeze(tree):
    """A hashable stand-in for the static part of ``tree`` (containers and their types kept)."""
    if isinstance(tree, dict):
        return (type(tree), tuple((k, _freeze(v)) for k, v in tree.items()))
    if isinstance(tree, (list, tuple)):
        return (type(tree), tuple(_freeze(v) for v in tree))
    hash(tree)  # an unhashable static argument cannot be a jit constant: TypeError
    # typed, and floats by repr: True == 1 == 1.0 and 0.0 == -0.0 hash alike, and one
    # compilation must not serve the other (a bad lr=True once answered for lr=1.0)
    return (type(tree), repr(tree) if isinstance(tree, float) else tree)


@functools.cache
def _jitted(fn):
    import jax

    compiled = {}

    def call(*args):
        arrays = []

        def slot(a):
            arrays.append(a)
            return _Slot(len(arrays) - 1)

        skeleton = map_tree(args, slot, jax.Array)
        key = _freeze(skeleton)
        if key not in compiled:

            def traced(*xs, skeleton=skeleton):
                return fn(*map_tree(skeleton, lambda s: xs[s.i], _Slot))

            # named after the function it runs, for JAX_LOG_COMPILES and profiles
            traced.__name__ = traced.__qualname__ = f"traced_{getattr(fn, '__name__', 'fn')}"
            compiled[key] = jax.jit(traced)
        return compiled[key](*arrays)

    call.__wrapped__ = fn
    return call


# --------------------------------------------------------------- torch.compile


@functools.cache
def _compiled(fn):
    from crosscheck.backends import load_torch

    torch = load_torch()
    _configure_dynamo(torch)
    return torch.compile(fn, dynamic=True)


@functools.cache
def _configure_dynamo(torch) -> None:
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                 "accumulated_cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, 100_000)

