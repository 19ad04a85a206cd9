"""Intermediate capture without hooks: a pure function that returns the intermediates.

JAX has no modules to hook and no side effects to record into, so the network
of :mod:`refs.checks.capture` is one function of ``(params, x)`` that returns
every layer's output beside its own -- the Equinox way ("return the
intermediates"), and what Flax's ``capture_intermediates`` produces. Being
pure, it works under ``jax.jit``, ``jax.grad`` and ``jax.vmap`` like any other
function: the gradient of a penalty on an intermediate is simply
``jax.grad`` of a function that reads it from the returned dict.

The layers are the suite's own ops (:func:`crosscheck.jax_impl.conv`,
:func:`crosscheck.jax_impl.max_pool`) plus ``jnp.where`` for ReLU (gradient 0
at 0, as torch's), a reshape for Flatten and a full-precision
``lax.dot_general`` for Linear. Arguments are checked from shapes and dtypes
only, so the checks also run at trace time under ``jit``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from crosscheck.jax_impl._framework import as_array
from crosscheck.jax_impl.convlike import conv, max_pool
from refs.capture import init_params as _init_params_numpy
from refs.checks.capture import check_input, check_layer, check_params
from refs.network import CONV1_PADDING, LAYERS, PENALTY_LAYER, POOL, layer_input


def init_params(seed=0, *, in_channels=1, channels=(2, 3), num_classes=4, image_size=(6, 6),
                dtype="float64"):
    """``refs.capture.init_params``'s weights as ``jax.Array`` (float64 needs ``jax_enable_x64``).

    >>> init_params(0, dtype="float32")["fc.weight"].shape
    (4, 12)
    """
    numpy = _init_params_numpy(seed, in_channels=in_channels, channels=channels,
                               num_classes=num_classes, image_size=image_size, dtype=dtype)
    return {name: as_array(w) for name, w in numpy.items()}


def forward(params, x):
    """``(out, intermediates)`` as ``refs.capture.forward``: pure, so ``jit``/``grad`` apply.

    The dict is in the layers' order; under an outer ``jax.jit`` its keys come
    back sorted, as for any dict a jitted function returns.

    >>> params = init_params(0, dtype="float32")
    >>> out, kept = forward(params, jnp.ones((2, 1, 6, 6), jnp.float32))
    >>> out.shape, list(kept) == list(LAYERS), kept["flatten"].shape
    ((2, 4), True, (2, 12))
    """
    check_input("forward", x, check_params("forward", params))
    out, kept = _forward(_arrays(params), as_array(x))
    # a jitted function returns a dict with sorted keys: back to the layers' order
    return out, {name: kept[name] for name in LAYERS}


def penalty(params, x, layer=PENALTY_LAYER):
    """``refs.capture.penalty``: the mean square of ``layer``'s input, read from the intermediates.

    Differentiable in ``params``: ``jax.grad(penalty)(params, x)`` is a dict
    of gradients keyed like ``params``. Under ``jit``, ``layer`` is static
    (``jax.jit(penalty, static_argnames="layer")``).

    >>> import jax
    >>> params = init_params(0, dtype="float32")
    >>> grads = jax.grad(penalty)(params, jnp.ones((1, 1, 6, 6), jnp.float32))
    >>> float(abs(grads["fc.weight"]).max())  # fc's input does not depend on fc's weights
    0.0
    """
    check_input("penalty", x, check_params("penalty", params))
    check_layer("penalty", layer)
    x = as_array(x)
    before = layer_input(layer)
    # the intermediates of the one forward program, whichever layer is asked for: its
    # compilation (and, under jax.grad, its linearization) serves every layer
    h = x if before is None else _forward(_arrays(params), x)[1][before]
    return _mean_square(h)


@jax.jit
def _mean_square(h):
    return jnp.mean(jnp.square(h))


def _arrays(params):
    return {name: as_array(w) for name, w in params.items()}


@jax.jit
def _forward(params, x):
    # one compiled program per shape and dtype; the layers' own checks run at trace time
    kept = {}
    h = conv(x, params["conv1.weight"], params["conv1.bias"], padding=CONV1_PADDING)
    kept["conv1"] = h
    kept["relu1"] = h = _relu(h)
    kept["pool1"] = h = max_pool(h, POOL)
    kept["conv2"] = h = conv(h, params["conv2.weight"], params["conv2.bias"])
    kept["relu2"] = h = _relu(h)
    kept["flatten"] = h = h.reshape(h.shape[0], -1)
    kept["fc"] = h = _linear(h, params["fc.weight"], params["fc.bias"])
    return h, kept


def _relu(h):
    # where(h > 0, h, 0), not maximum(h, 0): the gradient at exactly 0 is 0, as in
    # torch; maximum's would be 1/2
    return jnp.where(h > 0, h, jnp.zeros((), h.dtype))


def _linear(h, weight, bias):
    # out[n, k] = bias[k] + sum_f weight[k, f] * h[n, f]
    out = lax.dot_general(h, weight, (((1,), (1,)), ((), ())), precision=lax.Precision.HIGHEST)
    return out + bias
