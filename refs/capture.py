"""Intermediate capture, the reference: the network's forward pass as loops, every layer's output kept.

There are no hooks to register in a loop: the reference simply writes each
layer's output into a dict as it goes, which is what a hook on every layer
collects in torch (``torch_impl.capture``) and what the pure JAX function
returns beside its output (``crosscheck.jax_impl.capture``). The network and
its weights are described in :mod:`refs.checks.capture`; the convolutions and
the pooling are :func:`refs.conv` and :func:`refs.max_pool`, the other layers
are loops here.

``penalty`` is the course's ``Regularizer``: the mean square of the *input*
that one layer receives (by default ``fc``'s, i.e. the flattened features).
"""

from __future__ import annotations

import math

import numpy as np

from refs.checks.capture import check_init, check_input, check_layer, check_params
from refs.convlike import conv, max_pool
from refs.network import (
    CONV1_PADDING,
    LAYERS,
    PARAM_NAMES,
    PENALTY_LAYER,
    POOL,
    layer_input,
    param_shapes,
)

#: init_params rounds every weight to a multiple of this: a value with at most
#: 12 fraction bits is exact in float32 and float64 alike, and so is a step of 2**-10
GRID = 2.0**-12


def init_params(seed=0, *, in_channels=1, channels=(2, 3), num_classes=4, image_size=(6, 6),
                dtype="float64"):
    """Weights for the network, keyed like torch's ``state_dict``, as NumPy arrays.

    Drawn as torch initializes ``Conv2d`` and ``Linear`` (uniform in
    ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, weights and biases alike) and rounded
    to a multiple of ``2**-12``, so that float32 and float64 weights hold the
    very same numbers (the three implementations and both dtypes start from
    one network) and a finite-difference step of ``2**-10`` is exact.

    Args:
        seed: seeds ``numpy.random.default_rng``; the same seed gives the same
            weights in all three implementations.
        in_channels: ``C_in``, the channels of the images.
        channels: ``(C1, C2)``, the output channels of conv1 and conv2.
        num_classes: ``K``, fc's outputs.
        image_size: ``(H, W)`` of the images the network will take (fixes fc's
            ``F = C2 * (H // 2 - 1) * (W // 2 - 1)``); each at least 4.
        dtype: ``"float32"`` or ``"float64"``.

    Raises:
        TypeError: a dtype other than float32 / float64.
        ValueError: a size that is not a positive int, an image side below 4.

    >>> {name: w.shape for name, w in init_params(0).items()}  # doctest: +NORMALIZE_WHITESPACE
    {'conv1.weight': (2, 1, 3, 3), 'conv1.bias': (2,), 'conv2.weight': (3, 2, 2, 2),
     'conv2.bias': (3,), 'fc.weight': (4, 12), 'fc.bias': (4,)}
    """
    arch = check_init("init_params", in_channels, channels, num_classes, image_size, dtype)
    rng = np.random.default_rng(seed)
    fan_in = {"conv1": math.prod(param_shapes(arch)["conv1.weight"][1:]),
              "conv2": math.prod(param_shapes(arch)["conv2.weight"][1:]),
              "fc": arch.features}
    shapes = param_shapes(arch)
    params = {}
    for name in PARAM_NAMES:
        shape = shapes[name]
        bound = 1 / math.sqrt(fan_in[name.split(".")[0]])
        values = np.round(rng.uniform(-bound, bound, size=shape) / GRID) * GRID
        params[name] = values.astype(arch.dtype)
    return params


def forward(params, x):
    """Run the network on ``x`` and keep every layer's output.

    ::

        conv1[n, o, i, j]   = conv1.bias[o] + sum_{c, a, b} conv1.weight[o, c, a, b] * x[n, c, i + a - 1, j + b - 1]
        relu1               = max(conv1, 0)
        pool1[n, c, i, j]   = max_{a, b < 2} relu1[n, c, 2i + a, 2j + b]
        conv2[n, o, i, j]   = conv2.bias[o] + sum_{c, a, b} conv2.weight[o, c, a, b] * pool1[n, c, i + a, j + b]
        relu2               = max(conv2, 0)
        flatten[n, f]       = relu2[n, c, i, j]  with f = (c * H2 + i) * W2 + j
        fc[n, k]            = fc.bias[k] + sum_f fc.weight[k, f] * flatten[n, f]

    (``x`` outside the image is 0: conv1's padding; ``H2 x W2`` is relu2's spatial size.)

    Args:
        params: the weights, as :func:`init_params` makes them (NumPy arrays of
            one float dtype).
        x: images ``(N, C_in, H, W)`` of the weights' dtype.

    Returns:
        ``(out, intermediates)``: ``out`` is fc's output ``(N, K)``;
        ``intermediates`` maps every name of :data:`LAYERS`, in order, to that
        layer's output (so ``intermediates["fc"]`` equals ``out``).

    Raises:
        TypeError: params not a dict, a non-array value, a non-float dtype or
            dtypes that differ.
        ValueError: a missing or unexpected key, a weight of the wrong shape,
            ``x`` of the wrong rank, channels or size, an empty batch.

    >>> out, kept = forward(init_params(0), np.ones((2, 1, 6, 6)))
    >>> out.shape, list(kept), kept["pool1"].shape
    ((2, 4), ['conv1', 'relu1', 'pool1', 'conv2', 'relu2', 'flatten', 'fc'], (2, 2, 3, 3))
    """
    check_input("forward", x, check_params("forward", params))
    return _forward(params, np.asarray(x))


def penalty(params, x, layer=PENALTY_LAYER):
    """The course's regularizer: the mean square of the input that ``layer`` receives.

    ::

        penalty = (1 / M) * sum_i h[i] ** 2,   M = h.size

    where ``h`` is ``layer``'s input: the previous layer's output, or ``x`` for
    ``conv1``. The default, ``fc``, penalizes the flattened features (relu2's
    output), which depend on conv1's and conv2's weights and not on fc's. This
    is the deck's ``Regularizer`` hooked on ``net.<layer>``:
    ``input[0].pow(2).mean()``.

    Args:
        params, x: as in :func:`forward`.
        layer: one of :data:`LAYERS`.

    Raises:
        TypeError, ValueError: as in :func:`forward`; also ValueError for a
            ``layer`` that is not a layer of the network.

    >>> x = np.zeros((1, 1, 6, 6))
    >>> params = init_params(0)
    >>> float(penalty(params, x, "conv1"))  # the input of conv1 is x itself
    0.0
    >>> bool(penalty(params, x) == np.mean(forward(params, x)[1]["relu2"] ** 2))
    True
    """
    check_input("penalty", x, check_params("penalty", params))
    check_layer("penalty", layer)
    x = np.asarray(x)
    before = layer_input(layer)
    h = x if before is None else _forward(params, x)[1][before]
    flat = h.reshape(-1)
    total = h.dtype.type(0)
    for i in range(flat.size):
        total += flat[i] * flat[i]
    return total / h.dtype.type(flat.size)


def _forward(params, x):
    kept = {}
    h = conv(x, params["conv1.weight"], params["conv1.bias"], padding=CONV1_PADDING)
    kept["conv1"] = h
    kept["relu1"] = h = _relu(h)
    kept["pool1"] = h = max_pool(h, POOL)
    kept["conv2"] = h = conv(h, params["conv2.weight"], params["conv2.bias"])
    kept["relu2"] = h = _relu(h)
    kept["flatten"] = h = _flatten(h)
    kept["fc"] = h = _linear(h, params["fc.weight"], params["fc.bias"])
    assert tuple(kept) == LAYERS
    return h, kept


def _relu(input):
    """``out[idx] = input[idx] if input[idx] > 0 else 0``."""
    out = np.zeros_like(input)
    for idx in np.ndindex(*input.shape):
        if input[idx] > 0:
            out[idx] = input[idx]
    return out


def _flatten(input):
    """``out[n, (c * H + i) * W + j] = input[n, c, i, j]``: torch's row-major ``Flatten``."""
    n, c, h, w = input.shape
    out = np.zeros((n, c * h * w), dtype=input.dtype)
    for b, ch, i, j in np.ndindex(n, c, h, w):
        out[b, (ch * h + i) * w + j] = input[b, ch, i, j]
    return out


def _linear(input, weight, bias):
    """``out[n, k] = bias[k] + sum_f weight[k, f] * input[n, f]``."""
    n, f = input.shape
    k = weight.shape[0]
    out = np.zeros((n, k), dtype=input.dtype)
    for b in range(n):
        for o in range(k):
            total = bias[o]
            for i in range(f):
                total += weight[o, i] * input[b, i]
            out[b, o] = total
    return out
