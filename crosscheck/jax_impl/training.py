"""Training and inference as pure functions: ``jax.value_and_grad`` and a functional SGD update.

The loss is a function of the weights: the network's logits and its
intermediates come from :func:`crosscheck.jax_impl.capture.forward`'s pure
function, the regularizer reads fc's input from those intermediates (what
``penalty(params, x, "fc")`` computes), and ``jax.value_and_grad`` gives the
loss with its gradient. The update builds new weights with ``jax.tree.map``;
nothing is changed in place. One step is one compiled program per shape and
dtype, with ``lr`` and ``penalty_weight`` as (traced) arguments, so changing
them does not recompile; the loops are Python loops over the batches that call
it and read back the loss and the count of correct predictions.

``train_step`` itself works under ``jax.jit``. There the labels, ``lr`` and
``penalty_weight`` are tracers whose values cannot be checked before the
program runs; a label outside ``[0, K)``, a negative or non-finite ``lr`` or
``penalty_weight`` then makes the loss and every new weight NaN instead of
raising (eagerly they raise, as in ``refs``). A jitted function returns a
dict with sorted keys, so under an outer ``jit`` ``new_params`` comes back
sorted rather than in ``params``' order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from crosscheck.jax_impl._framework import as_array
from crosscheck.jax_impl.capture import forward
from refs.checks.training import (
    check_batch,
    check_batches,
    check_loop,
    check_samples,
    check_train_step,
)
from refs.network import PENALTY_LAYER, layer_input

#: what the regularizer squares: the input of the hooked layer (fc), i.e. flatten's output
PENALTY_INPUT = layer_input(PENALTY_LAYER)


def train_step(params, x, y, *, lr, penalty_weight=0.0):
    """One SGD step on one batch, as ``refs.train_step``: ``(new_params, loss)``.

    ``loss`` is a 0-d ``jax.Array`` of the weights' dtype, taken before the
    step. Usable under ``jax.jit`` (``lr`` and ``penalty_weight`` may be traced).

    >>> from crosscheck.jax_impl.capture import init_params
    >>> params = init_params(0, dtype="float32")
    >>> new, loss = train_step(params, jnp.ones((2, 1, 6, 6), jnp.float32), jnp.array([0, 3]),
    ...                        lr=0.5)
    >>> loss.shape, loss.dtype, list(new) == list(params)
    ((), dtype('float32'), True)
    >>> jitted, _ = jax.jit(train_step)(params, jnp.ones((2, 1, 6, 6), jnp.float32),
    ...                                 jnp.array([0, 3]), lr=0.5)
    >>> list(jitted) == sorted(params)  # a jitted function returns its dict's keys sorted
    True
    """
    check_train_step("train_step", params, x, y, lr, penalty_weight, concrete=_concrete)
    params = _arrays(params)
    dtype = params["conv1.weight"].dtype
    new, loss, _ = _step(params, as_array(x), _labels(y), _rate(lr, dtype),
                         _rate(penalty_weight, dtype))
    return {name: new[name] for name in params}, loss


def train_loop(params, batches, *, lr, penalty_weight=0.0):
    """One epoch, one jitted step per batch, as ``refs.train_loop``: ``(new_params,
    epoch_loss, epoch_accuracy)``, the last two Python floats.

    >>> from crosscheck.jax_impl.capture import init_params
    >>> x = jnp.ones((3, 1, 6, 6))
    >>> new, loss, accuracy = train_loop(init_params(0), [(x[:2], jnp.array([2, 0])),
    ...                                                   (x[2:], jnp.array([1]))], lr=0.5)
    >>> type(loss), accuracy
    (<class 'float'>, 33.333333333333336)
    """
    fn = "train_loop"
    step = check_loop(fn, params, lr, penalty_weight)
    order = list(params)
    params = _arrays(params)
    dtype = params["conv1.weight"].dtype
    rate, weight = _rate(step.lr, dtype), _rate(step.penalty_weight, dtype)
    samples, total_loss, correct = 0, 0.0, 0
    for i, batch in check_batches(fn, batches):
        x, y = check_batch(fn, i, batch, step.arch)
        params, loss, right = _step(params, as_array(x), _labels(y), rate, weight)
        samples += len(y)
        total_loss += float(loss) * len(y)
        correct += int(right)
    check_samples(fn, samples)
    return {name: params[name] for name in order}, total_loss / samples, 100 * correct / samples


def inference_loop(params, batches):
    """Mean cross-entropy and accuracy over an epoch, no update, as ``refs.inference_loop``.

    >>> from crosscheck.jax_impl.capture import init_params
    >>> inference_loop(init_params(0), [(jnp.ones((2, 1, 6, 6)), jnp.array([2, 3]))])[1]
    50.0
    """
    fn = "inference_loop"
    arch = check_loop(fn, params).arch
    params = _arrays(params)
    samples, total_loss, correct = 0, 0.0, 0
    for i, batch in check_batches(fn, batches):
        x, y = check_batch(fn, i, batch, arch)
        loss, right = _evaluate(params, as_array(x), _labels(y))
        samples += len(y)
        total_loss += float(loss) * len(y)
        correct += int(right)
    check_samples(fn, samples)
    return total_loss / samples, 100 * correct / samples


@jax.jit
def _step(params, x, y, lr, penalty_weight):
    """``(new_params, loss, correct)``: ``jax.value_and_grad`` and ``p - lr * g`` per weight."""
    (loss, logits), grads = jax.value_and_grad(_loss, has_aux=True)(params, x, y, penalty_weight)
    # a bad value that only a traced call can bring (see the module docstring): NaN, not silence
    nan = jnp.where(_valid(y, logits.shape[1], lr, penalty_weight), 0, jnp.nan).astype(loss.dtype)
    new = jax.tree.map(lambda p, g: p - lr * g + nan, params, grads)
    return new, loss + nan, _correct(logits, y)


@jax.jit
def _evaluate(params, x, y):
    logits, _ = forward(params, x)
    return _cross_entropy(logits, y), _correct(logits, y)


def _loss(params, x, y, penalty_weight):
    logits, kept = forward(params, x)
    penalty = jnp.mean(jnp.square(kept[PENALTY_INPUT]))
    return _cross_entropy(logits, y) + penalty_weight * penalty, logits


def _cross_entropy(logits, y):
    """``-(1/N) sum_n log_softmax(logits)[n, y[n]]``; a label outside ``[0, K)`` picks nothing."""
    logp = jax.nn.log_softmax(logits, axis=1)
    picked = jnp.where(y[:, None] == jnp.arange(logits.shape[1], dtype=y.dtype), logp, 0)
    return -jnp.mean(jnp.sum(picked, axis=1))


def _correct(logits, y):
    return jnp.sum(jnp.argmax(logits, axis=1) == y)


def _valid(y, classes, lr, penalty_weight):
    labels = jnp.all((y >= 0) & (y < classes))
    rates = jnp.isfinite(lr) & (lr >= 0) & jnp.isfinite(penalty_weight) & (penalty_weight >= 0)
    return labels & rates


def _labels(y):
    """Class indices as the widest signed int (any int dtype is allowed; one program for all).

    An unsigned label too large for it wraps to a negative one, which the step turns
    into NaN; eagerly the checks have refused it before.
    """
    y = as_array(y)
    return y.astype(jax.dtypes.canonicalize_dtype(jnp.int64))


def _rate(value, dtype):
    """``lr`` or ``penalty_weight`` in the weights' dtype, as the step takes it: a NumPy
    scalar where it is concrete, a cast tracer under ``jit``.

    A Python float and a 0-d ``jax.Array`` committed to a device would otherwise reach
    ``_step`` as an uncommitted and a committed argument, and jit compiles one program for
    each (the cross-check's cases draw both: 11 of 26 step programs were such twins).
    """
    if _concrete(value):
        return np.asarray(value, dtype)
    return jnp.asarray(value, dtype)


def _concrete(a) -> bool:
    return not isinstance(a, jax.core.Tracer)


def _arrays(params):
    return {name: as_array(w) for name, w in params.items()}
