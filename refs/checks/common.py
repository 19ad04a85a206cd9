"""Helpers every topic's checks use: naming dtypes, dims, and raising."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import NoReturn

import numpy as np

INTEGER_DTYPES = frozenset(
    {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
)


def dtype_name(a) -> str:
    """'float32', 'int64', 'bool', ... for a NumPy, torch or JAX array."""
    return str(a.dtype).removeprefix("torch.")


def shape_of(a) -> tuple[int, ...]:
    return tuple(int(s) for s in a.shape)


def to_host(a) -> np.ndarray:
    """A NumPy copy of ``a``; only used on error paths and by the harness."""
    if hasattr(a, "detach"):  # torch, possibly on an accelerator
        a = a.detach().cpu()
    return np.asarray(a)


def fail(exc: type[Exception], fn: str, message: str) -> NoReturn:
    raise exc(f"{fn}(): {message}")


def position(name: str, pos: tuple[int, ...]) -> str:
    """``index[1, 2]`` -- how messages point at one element."""
    return f"{name}[{', '.join(str(int(p)) for p in pos)}]"


def normalize_dim(fn: str, dim, ndim: int, arg: str = "dim") -> int:
    """``dim`` in ``[-ndim, ndim)`` mapped to ``[0, ndim)``.

    A 0-d array has one addressable dim (``0`` or ``-1``), as in torch.
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        fail(TypeError, fn, f"{arg} must be an int, got {type(dim).__name__} {dim!r}")
    span = max(ndim, 1)
    if not -span <= dim < span:
        fail(
            ValueError,
            fn,
            f"{arg} = {dim} is out of range for an input of rank {ndim} "
            f"(expected {arg} in [{-span}, {span - 1}])",
        )
    return int(dim) % span


def require_integer_dtype(fn: str, arg: str, a) -> None:
    name = dtype_name(a)
    if name not in INTEGER_DTYPES:
        fail(TypeError, fn, f"{arg} must have an integer dtype, got {name}")


def require_same_rank(fn: str, arg: str, a, ref_arg: str, ref) -> None:
    if len(a.shape) != len(ref.shape):
        fail(
            ValueError,
            fn,
            f"{arg} must have the same rank as {ref_arg}: {arg} has shape "
            f"{shape_of(a)} (rank {len(a.shape)}), {ref_arg} has shape "
            f"{shape_of(ref)} (rank {len(ref.shape)})",
        )


#: how to turn what a caller has into the array an implementation takes, by its class's name
_CONVERSIONS = {
    "torch.Tensor": "use torch.from_numpy(x) or torch.as_tensor(x)",
}


def type_name(kind: type) -> str:
    """``numpy.ndarray``, ``torch.Tensor``, ``list``: a class as a user would spell it."""
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def require_array(fn: str, arg: str, value, kind: type, *, optional: bool = False) -> None:
    """``value`` is a ``kind`` (the implementation's array class), or ``None`` if ``optional``.

    Checked first, so that a NumPy array handed to a torch function fails with
    the function's name and a way out, not deep inside with
    ``'numpy.ndarray' object has no attribute 'dim'``.
    """
    if isinstance(value, kind) or (optional and value is None):
        return
    wanted = type_name(kind)
    hint = _CONVERSIONS.get(wanted)
    fail(
        TypeError,
        fn,
        f"{arg} must be a {wanted}{' or None' * optional}, got {type_name(type(value))}"
        + (f" ({hint})" if hint else ""),
    )


def import_framework(module: str, *, package: str, extra: str) -> ModuleType:
    """``import module`` for ``package``, or, if it is not installed, an error naming the extra.

    Only the framework itself missing is rewritten; an ImportError from inside
    an installed framework (a missing dependency of its own) passes unchanged.

    Raises:
        ModuleNotFoundError: ``module`` is not installed; the message says
            ``pip install "crosscheck-advanced-pytorch[extra]"``.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise ModuleNotFoundError(
            f"{package} needs {module}, which is not installed ({e}); install it with "
            f'pip install "crosscheck-advanced-pytorch[{extra}]"',
            name=module,
        ) from e
