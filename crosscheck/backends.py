"""Backends (framework x device) found at run time, and how arrays travel to them.

A backend is named ``framework-device``: ``numpy``, ``torch-cpu``,
``torch-cuda``, ``jax-cpu``, ``jax-cuda``. The harness asks each whether it is
present; a backend the user *requested* (``CROSSCHECK_BACKENDS`` or pytest's
``--backends``) that is missing is an error, one that is merely absent is
skipped with the reason.

Loading a backend also fixes its numerics for the whole process: JAX gets
64-bit types (``jax_enable_x64``) and full-precision float32 matmul/conv
(``jax_default_matmul_precision="highest"``); torch gets TF32 switched off for
matmul and cuDNN. The suite asks "is the algorithm right", so it compares at
the precision the dtype promises; TF32 is measured separately. JAX does not
take 75% of a GPU's memory when it starts (``XLA_PYTHON_CLIENT_PREALLOCATE=false``
unless you set it): a run has many processes, each with torch and JAX.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass

import numpy as np

from crosscheck.compare import Mismatch
from crosscheck.layouts import CONTIGUOUS, Layout
from refs.trees import map_tree

ALL_BACKENDS = ("numpy", "torch-cpu", "torch-cuda", "jax-cpu", "jax-cuda")
ENV_VAR = "CROSSCHECK_BACKENDS"


class BackendUnavailable(RuntimeError):
    """A backend the user asked for is not present."""


@dataclass(frozen=True)
class Backend:
    name: str

    @property
    def framework(self) -> str:
        return self.name.split("-")[0]

    @property
    def device(self) -> str:
        return "cpu" if self.name == "numpy" else self.name.split("-")[1]

    def missing(self) -> str | None:
        """Why this backend cannot run here, or None when it can."""
        return _missing(self.name)

    def load(self):
        """The framework, imported with the suite's numerics (x64 JAX, no TF32); None for NumPy."""
        if self.framework == "torch":
            return load_torch()
        if self.framework == "jax":
            return load_jax()
        return None

    def asarray(self, a: np.ndarray, layout: Layout = CONTIGUOUS):
        """``a`` as this backend's array; a torch tensor in ``layout`` (:mod:`crosscheck.layouts`).

        JAX arrays and NumPy arrays have no layout to choose: JAX has no
        user-visible strides (XLA picks its own), and the refs read by index.
        """
        if self.framework == "numpy":
            return np.array(a)
        if self.framework == "torch":
            torch = load_torch()
            if layout.kind == "expanded" and not np.array_equal(layout.prepare(a), a):
                raise ValueError(f"asarray(): {layout} needs values equal along dim {layout.dim}; "
                                 "draw them with crosscheck.layouts (Layout.prepare)")
            # the layout is made on the device: .to() would copy a view into a contiguous tensor
            return layout.apply(torch.from_numpy(np.array(a)).to(self.device))
        jax = load_jax()
        device = jax.devices("gpu" if self.device == "cuda" else "cpu")[0]
        return jax.device_put(np.array(a), device)

    def to_numpy(self, x) -> np.ndarray:
        if self.framework == "torch":
            return x.detach().cpu().numpy()
        return np.asarray(x)

    def to_host(self, result):
        """``result`` with every array (also inside dicts, lists, tuples) as NumPy; text kept."""
        if self.framework == "torch":
            array = load_torch().Tensor
        elif self.framework == "jax":
            array = load_jax().Array
        else:
            array = (np.ndarray, np.generic)
        if self.framework != "numpy":
            # an implementation that hands back NumPy where its framework's arrays belong
            # (a batch built on the host and never converted) must not pass as equal
            map_tree(result, self._foreign_array, np.ndarray)
        return map_tree(result, lambda a: np.asarray(self.to_numpy(a)), array)

    def _foreign_array(self, a: np.ndarray):
        raise Mismatch(f"{self.name}: the result holds a NumPy array {a.dtype}{list(a.shape)} "
                       f"where a {self.framework} array belongs")

    def __str__(self) -> str:
        return self.name


@functools.cache
def load_torch():
    import torch

    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    else:  # older torch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return torch


def share_gpu_memory() -> None:
    """Keep JAX from taking 75% of a GPU's memory when it starts, unless the user said so.

    Each process of a run (pytest-xdist workers, the report's workers) holds its own JAX
    client, next to torch in the same process: one that grabbed JAX's default share would
    leave the others too little. JAX reads the variable when it first initializes a GPU,
    so this holds while no JAX array has been made yet.
    """
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


@functools.cache
def load_jax():
    share_gpu_memory()
    import jax

    from crosscheck import compiling

    compiling.listen_to_jax(jax)  # a cell's record splits compiling from running
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", "highest")
    cache = os.environ.get("CROSSCHECK_JAX_CACHE")
    if cache:
        # Compiling costs ~50 ms per new shape, a cached call ~20 us: keep the
        # compiled kernels across runs and across pytest-xdist workers.
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return jax


@functools.cache
def _missing(name: str) -> str | None:
    if name == "numpy":
        return None
    framework, device = name.split("-")
    if importlib.util.find_spec(framework) is None:
        return f"{framework} is not installed"
    # a present framework is a loaded one, with the suite's numerics fixed before any
    # test touches it (JAX would otherwise turn float64 into float32 silently)
    if framework == "torch":
        torch = load_torch()
        if device == "cuda" and not torch.cuda.is_available():
            return "torch sees no CUDA device"
        return None
    jax = load_jax()
    if device == "cpu":
        return None
    try:
        jax.devices("gpu")
    except RuntimeError as e:
        return f"jax sees no GPU ({str(e).splitlines()[0][:80]})"
    return None


def requested(raw: str | None = None) -> tuple[str, ...] | None:
    """Backends named in ``raw`` or else ``CROSSCHECK_BACKENDS`` (comma-separated), or None."""
    raw = (os.environ.get(ENV_VAR, "") if raw is None else raw).strip()
    if not raw:
        return None
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    unknown = [n for n in names if n not in ALL_BACKENDS]
    if unknown:
        raise BackendUnavailable(
            f"{ENV_VAR} names unknown backends {unknown}; known: {', '.join(ALL_BACKENDS)}"
        )
    return names


def selected(raw: str | None = None, missing=None) -> list[Backend]:
    """The backends to run: the requested ones (``raw``, else ``CROSSCHECK_BACKENDS``; all
    must be present) or all known. ``missing(name)`` says why a backend cannot run (default:
    :meth:`Backend.missing`, which loads the framework into this process)."""
    names = requested(raw)
    if names is None:
        return [Backend(n) for n in ALL_BACKENDS]
    why = {n: (missing or _missing)(n) for n in names}
    absent = {n: reason for n, reason in why.items() if reason}
    if absent:
        raise BackendUnavailable(
            "requested backends are missing: "
            + "; ".join(f"{n}: {reason}" for n, reason in absent.items())
        )
    return [Backend(n) for n in names]


def available() -> list[Backend]:
    return [b for b in selected() if b.missing() is None]
