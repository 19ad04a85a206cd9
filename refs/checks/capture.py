"""Argument checks of the capture topic's network (:mod:`refs.network`), shared by all three implementations.

Every bad input raises before anything is computed, the same class from all
three implementations:

* ``TypeError``: ``params`` not a mapping, a value or ``x`` that is not an
  array, a dtype other than float32/float64, or dtypes that differ;
* ``ValueError``: everything else -- a missing or an unexpected key, a weight
  of the wrong shape, ``x`` of the wrong rank, channels or spatial size, an
  empty batch, a layer name that is not one of :data:`LAYERS`.

Missing keys are a ``ValueError``, not a ``KeyError``: like a wrong shape, they
are an argument that does not fit the network (torchvision's feature extractor
does the same for an unknown node), and one class keeps the table short.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from refs.checks.common import dtype_name, fail, shape_of
from refs.network import (
    CONV1_KERNEL,
    CONV2_KERNEL,
    FLOAT_DTYPES,
    LAYERS,
    MIN_SIZE,
    PARAM_NAMES,
    POOL,
    Architecture,
    features,
    layer_shapes,
)


def check_params(fn: str, params) -> Architecture:
    """Checks of the weights dict; returns the architecture they describe."""
    if not isinstance(params, Mapping):
        fail(TypeError, fn, f"params must be a dict of arrays keyed {list(PARAM_NAMES)}, got "
                            f"{type(params).__name__}")
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        fail(ValueError, fn, f"params is missing {_names(missing)} (expected exactly the keys "
                             f"{list(PARAM_NAMES)})")
    extra = [k for k in params if k not in PARAM_NAMES]
    if extra:
        fail(ValueError, fn, f"params has unexpected {_names(extra)} (expected exactly the keys "
                             f"{list(PARAM_NAMES)})")
    for name in PARAM_NAMES:
        _require_array(fn, f"params[{name!r}]", params[name])
    dtypes = {name: dtype_name(params[name]) for name in PARAM_NAMES}
    first = dtypes[PARAM_NAMES[0]]
    if first not in FLOAT_DTYPES:
        fail(TypeError, fn, f"params['conv1.weight'] has dtype {first}; the network runs in "
                            f"float32 or float64")
    odd = {name: d for name, d in dtypes.items() if d != first}
    if odd:
        fail(TypeError, fn, f"params must share one dtype: conv1.weight is {first}, but "
                            + ", ".join(f"{name} is {d}" for name, d in odd.items()))

    shapes = {name: shape_of(params[name]) for name in PARAM_NAMES}
    w1 = shapes["conv1.weight"]
    _expect_rank(fn, "conv1.weight", w1, 4, "(C1, C_in, 3, 3)")
    c1, c_in = w1[0], w1[1]
    _expect(fn, "conv1.weight", w1, (c1, c_in, CONV1_KERNEL, CONV1_KERNEL),
            "a 3x3 kernel for conv1")
    _expect(fn, "conv1.bias", shapes["conv1.bias"], (c1,), f"one bias per conv1 channel, C1 = {c1}")
    w2 = shapes["conv2.weight"]
    _expect_rank(fn, "conv2.weight", w2, 4, "(C2, C1, 2, 2)")
    c2 = w2[0]
    _expect(fn, "conv2.weight", w2, (c2, c1, CONV2_KERNEL, CONV2_KERNEL),
            f"conv2 reads conv1's C1 = {c1} channels with a 2x2 kernel")
    _expect(fn, "conv2.bias", shapes["conv2.bias"], (c2,), f"one bias per conv2 channel, C2 = {c2}")
    wf = shapes["fc.weight"]
    _expect_rank(fn, "fc.weight", wf, 2, "(K, F)")
    k, f = wf
    _expect(fn, "fc.bias", shapes["fc.bias"], (k,), f"one bias per fc output, K = {k}")
    empty = [name for name in PARAM_NAMES if 0 in shapes[name]]
    if empty:
        fail(ValueError, fn, f"params[{empty[0]!r}] has shape {shapes[empty[0]]}: every channel, "
                             f"feature and class count must be positive")
    if f % c2:
        fail(ValueError, fn, f"params['fc.weight'] has shape {wf}: its F = {f} flattened "
                             f"features must be a multiple of conv2's C2 = {c2} channels")
    return Architecture(c_in, c1, c2, f, k, first)


def check_input(fn: str, x, arch: Architecture) -> dict[str, tuple[int, ...]]:
    """Checks of the images ``x`` against the network; returns every layer's output shape."""
    _require_array(fn, "x", x)
    shape = shape_of(x)
    if len(shape) != 4:
        fail(ValueError, fn, f"x must have shape (N, C_in, H, W) of rank 4, got shape {shape} "
                             f"(rank {len(shape)})")
    n, c, h, w = shape
    if dtype_name(x) != arch.dtype:
        fail(TypeError, fn, f"x has dtype {dtype_name(x)} but params are {arch.dtype}")
    if n == 0:
        fail(ValueError, fn, f"x has shape {shape}: an empty batch (N = 0) has no intermediates "
                             f"to capture, and its penalty would be a mean over nothing")
    if c != arch.in_channels:
        fail(ValueError, fn, f"x has shape {shape} with C_in = {c} channels, but "
                             f"params['conv1.weight'] reads {arch.in_channels}")
    if h < MIN_SIZE or w < MIN_SIZE:
        fail(ValueError, fn, f"x has shape {shape}: H and W must be at least {MIN_SIZE}, so that "
                             f"pool1 leaves at least 2x2 for conv2's 2x2 kernel")
    got = features(arch.channels2, (h, w))
    if got != arch.features:
        fail(ValueError, fn, f"x has shape {shape}: its H x W = {h} x {w} flattens to "
                             f"C2 * (H // 2 - 1) * (W // 2 - 1) = {arch.channels2} * "
                             f"{h // POOL - 1} * {w // POOL - 1} = {got} features, but "
                             f"params['fc.weight'] takes F = {arch.features}")
    return layer_shapes(arch, n, (h, w))


def check_layer(fn: str, layer) -> str:
    """``layer`` must name one of :data:`LAYERS`."""
    if not isinstance(layer, str) or layer not in LAYERS:
        fail(ValueError, fn, f"layer = {layer!r} is not a layer of the network; the layers are "
                             f"{list(LAYERS)}")
    return layer


def check_init(fn: str, in_channels, channels, num_classes, image_size, dtype) -> Architecture:
    """Checks of ``init_params``'s sizes; returns the architecture they make."""
    for arg, value in (("in_channels", in_channels), ("num_classes", num_classes)):
        if not _is_int(value) or value < 1:
            fail(ValueError, fn, f"{arg} = {value!r} must be a positive int")
    if (not isinstance(channels, (tuple, list)) or len(channels) != 2
            or not all(_is_int(v) and v >= 1 for v in channels)):
        fail(ValueError, fn, f"channels = {channels!r} must be two positive ints (C1, C2)")
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(_is_int(v) and v >= MIN_SIZE for v in image_size)):
        fail(ValueError, fn, f"image_size = {image_size!r} must be two ints (H, W), each at "
                             f"least {MIN_SIZE}")
    name = _dtype_name(dtype)
    if name not in FLOAT_DTYPES:
        fail(TypeError, fn, f"dtype = {dtype!r} must be float32 or float64")
    c1, c2 = (int(v) for v in channels)
    size = (int(image_size[0]), int(image_size[1]))
    return Architecture(int(in_channels), c1, c2, features(c2, size), int(num_classes), name)


# ------------------------------------------------------------------ helpers


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _dtype_name(dtype) -> str | None:
    """'float32' for "float32", np.float32, np.dtype("float32") or torch.float32."""
    if str(dtype).startswith("torch."):
        return str(dtype).removeprefix("torch.")
    try:
        return np.dtype(dtype).name
    except TypeError:
        return None


def _names(keys) -> str:
    return ("key " if len(keys) == 1 else "keys ") + ", ".join(repr(k) for k in keys)


def _require_array(fn: str, arg: str, a) -> None:
    if not (hasattr(a, "shape") and hasattr(a, "dtype")):
        fail(TypeError, fn, f"{arg} must be an array (NumPy, torch or JAX), got "
                            f"{type(a).__name__}")


def _expect_rank(fn: str, name: str, shape, rank: int, layout: str) -> None:
    if len(shape) != rank:
        fail(ValueError, fn, f"params[{name!r}] must have shape {layout} of rank {rank}, got "
                             f"shape {shape} (rank {len(shape)})")


def _expect(fn: str, name: str, shape, want, why: str) -> None:
    if tuple(shape) != tuple(want):
        fail(ValueError, fn, f"params[{name!r}] has shape {tuple(shape)}, expected {tuple(want)}: "
                             f"{why}")
