"""Planted wrong training steps, loops and evaluations; each must be caught.

The step plants are ``refs.training.train_step`` with its result bent (uphill,
the penalty left out of the gradient, the loss read after the step, float32
promoted, keys reordered, the caller's weights overwritten) or with one part
of its hand-written backward pass replaced. The loop plants are the deck's own
bookkeeping and its usual variants: they count only the last batch, average
per-batch means, or read the accuracy after the step. Every plant first has
refs check its arguments, so that only the planted bug can be caught.
"""

from __future__ import annotations

from unittest import mock

import numpy as np

import refs.capture as refs_capture
import refs.training as refs_training
from crosscheck.optable import Plant

# ------------------------------------------------------------ steps


def _step_with(transform):
    """``train_step`` whose result passes through ``transform(params, x, y, lr, w, new, loss)``."""

    def train_step(params, x, y, lr, penalty_weight):
        new, loss = refs_training.train_step(params, x, y, lr=lr, penalty_weight=penalty_weight)
        return transform(params, x, y, lr, penalty_weight, new, loss)

    return train_step


def _wrong_sign(params, x, y, lr, w, new, loss):
    return refs_training._step(refs_training._arrays(params), x, np.asarray(y), -lr, w)[0], loss


def _no_penalty_gradient(params, x, y, lr, w, new, loss):
    return refs_training._step(refs_training._arrays(params), x, np.asarray(y), lr, 0.0)[0], loss


def _loss_after_step(params, x, y, lr, w, new, loss):
    return new, refs_training._step(new, x, np.asarray(y), 0.0, w)[1]


def _promoted(params, x, y, lr, w, new, loss):
    return {k: v.astype(np.float64) for k, v in new.items()}, loss.astype(np.float64)


def _keys_sorted(params, x, y, lr, w, new, loss):
    return dict(sorted(new.items())), loss


def _in_place(params, x, y, lr, w, new, loss):
    for k in params:
        params[k][...] = new[k]
    return params, loss


# ------------------------------------------------------------ the backward pass


def _with_backward(attr: str, replacement):
    """refs' step with one function of its backward pass replaced for the call."""

    def train_step(params, x, y, lr, penalty_weight):
        with mock.patch.object(refs_training, attr, replacement):
            return refs_training.train_step(params, x, y, lr=lr, penalty_weight=penalty_weight)

    return train_step


def _relu_backward_unmasked(grad, input):
    return grad.copy()


def _pool_backward_to_every_element(grad, input):
    n, c, ph, pw = grad.shape
    out = np.zeros_like(input)
    for b, ch, i, j, a, e in np.ndindex(n, c, ph, pw, 2, 2):
        out[b, ch, 2 * i + a, 2 * j + e] = grad[b, ch, i, j]
    return out


_conv_backward = refs_training._conv_backward


def _conv_backward_flipped(grad, input, weight, padding, input_grad=True):
    dinput, dweight, dbias = _conv_backward(grad, input, weight, padding, input_grad)
    return dinput, dweight[:, :, ::-1, ::-1].copy(), dbias


def jax_step_without_checks(params, x, y, lr, penalty_weight):
    """jax_impl's compiled step without its checks: a bad label comes back as NaN, silently."""
    import crosscheck.jax_impl.training as jt

    params = jt._arrays(params)
    dtype = params["conv1.weight"].dtype
    new, loss, _ = jt._step(params, x, jt._labels(y), np.asarray(lr, dtype),
                            np.asarray(penalty_weight, dtype))
    return new, loss


def jax_step_clipping_traced_labels(params, x, y, lr, penalty_weight):
    """jax_impl's step, except that under jax.jit a traced label is clipped into range: a bad
    label then trains on a wrong class with finite numbers instead of poisoning the result."""
    import jax
    import jax.numpy as jnp

    import crosscheck.jax_impl.training as jt

    if isinstance(y, jax.core.Tracer):
        y = jnp.clip(y, 0, jnp.shape(params["fc.weight"])[0] - 1)
    return jt.train_step(params, x, y, lr=lr, penalty_weight=penalty_weight)


# ------------------------------------------------------------ loops


def _refs_checked_loop(plant):
    """``plant(params, batches, lr, w)`` after refs' loop has checked the arguments (batches
    read once, into a list, so that a stream can be read again)."""

    def train_loop(params, batches, lr, penalty_weight):
        try:
            batches = list(batches)
        except TypeError:
            pass  # refs raises its own error for it below
        refs_training.train_loop(params, batches, lr=lr, penalty_weight=penalty_weight)
        return plant(params, batches, lr, penalty_weight)

    return train_loop


def _deck_train_loop(params, batches, lr, penalty_weight):
    """The slide's bookkeeping: ``running_loss +=`` dedented out of the loop, ``/ size``."""
    size = 0
    for x, y in batches:
        logits = refs_capture.forward(params, x)[0]
        params, loss = refs_training.train_step(params, x, y, lr=lr, penalty_weight=penalty_weight)
        size += len(y)
    running_loss = float(loss)
    running_corrects = refs_training._correct(logits, y)
    return params, running_loss / size, 100 * running_corrects / size


def _loop_with(loss_mean, *, post_step_accuracy=False):
    def train_loop(params, batches, lr, penalty_weight):
        losses, sizes, correct = [], [], 0
        for x, y in batches:
            before = refs_capture.forward(params, x)[0]
            params, loss = refs_training.train_step(params, x, y, lr=lr,
                                                    penalty_weight=penalty_weight)
            after = refs_capture.forward(params, x)[0]
            correct += refs_training._correct(after if post_step_accuracy else before, y)
            losses.append(float(loss))
            sizes.append(len(y))
        return params, loss_mean(losses, sizes), 100 * correct / sum(sizes)

    return train_loop


def _unchecked_loop(params, batches, lr, penalty_weight):
    """A correct loop that checks nothing: bad batches fail wherever the arithmetic does."""
    params = refs_training._arrays(params)
    dtype = params["conv1.weight"].dtype
    total, correct, samples = 0.0, 0, 0
    for x, y in batches:
        x, y = np.asarray(x), np.asarray(y)
        params, loss, logits = refs_training._step(params, x, y, dtype.type(lr), penalty_weight)
        total += float(loss) * len(y)
        correct += refs_training._correct(logits, y)
        samples += len(y)
    return params, total / samples, 100 * correct / samples


def _lists_only(fn: str, run):
    """``run`` for a list or tuple of batches; anything else (a generator, a DataLoader) a
    TypeError: the loop that indexes its batches."""

    def loop(params, batches, *rest):
        if not isinstance(batches, (list, tuple)):
            raise TypeError(f"{fn}(): batches must be a list of (x, y) pairs, got "
                            f"{type(batches).__name__}")
        return run(params, batches, *rest)

    return loop


def _steps_in_place(params, batches, lr, penalty_weight):
    """refs' loop, except that every step writes its weights into the caller's arrays."""
    new, loss, accuracy = refs_training.train_loop(params, batches, lr=lr,
                                                   penalty_weight=penalty_weight)
    for k in params:
        params[k][...] = new[k]
    return params, loss, accuracy


def _evaluation_that_trains(params, batches):
    """refs' evaluation, then a small SGD step per batch written into the caller's weights
    (the model left in training mode, an optimizer step in the evaluation loop)."""
    result = refs_training.inference_loop(params, batches)
    for x, y in batches:
        new = refs_training.train_step(params, x, y, lr=2.0**-4)[0]
        for k in params:
            params[k][...] = new[k]
    return result


def _weighted(losses, sizes):
    return sum(n * v for n, v in zip(sizes, losses)) / sum(sizes)


def deck_inference_loop(params, batches):
    """The slide's division: a sum of per-batch means over the number of samples."""
    try:
        batches = list(batches)
    except TypeError:
        pass
    refs_training.inference_loop(params, batches)  # the checks
    return _deck_division(params, batches)


def _deck_division(params, batches):
    total, correct, size = 0.0, 0, 0
    for x, y in batches:
        logits = refs_capture.forward(params, x)[0]
        total += float(refs_training.cross_entropy(logits, y))
        correct += refs_training._correct(logits, y)
        size += len(y)
    return total / size, 100 * correct / size


PLANTED = (
    Plant("train_step", "the step goes uphill", _step_with(_wrong_sign)),
    Plant("train_step", "the penalty in the loss but not in the gradient",
          _step_with(_no_penalty_gradient)),
    Plant("train_step", "the loss taken after the step", _step_with(_loss_after_step)),
    Plant("train_step", "float32 weights come back float64", _step_with(_promoted)),
    Plant("train_step", "new_params keyed in sorted order", _step_with(_keys_sorted)),
    Plant("train_step", "the caller's weights overwritten", _step_with(_in_place)),
    Plant("train_step", "ReLU passes the gradient of negative inputs",
          _with_backward("_relu_backward", _relu_backward_unmasked)),
    Plant("train_step", "max-pool gives every window element the gradient",
          _with_backward("_max_pool_backward", _pool_backward_to_every_element)),
    Plant("train_step", "conv weight gradient with the kernel flipped",
          _with_backward("_conv_backward", _conv_backward_flipped)),
    Plant("train_step", "jax step without its label checks", jax_step_without_checks, "jax"),
    Plant("train_loop", "the deck's loop: only the last batch counts",
          _refs_checked_loop(_deck_train_loop)),
    Plant("train_loop", "sum of per-batch means over the samples",
          _refs_checked_loop(_loop_with(lambda v, n: sum(v) / sum(n)))),
    Plant("train_loop", "mean of the per-batch means",
          _refs_checked_loop(_loop_with(lambda v, n: sum(v) / len(v)))),
    Plant("train_loop", "accuracy from the model after the step",
          _refs_checked_loop(_loop_with(_weighted, post_step_accuracy=True))),
    Plant("train_loop", "batches never checked", _unchecked_loop),
    Plant("train_loop", "the steps overwrite the caller's weights",
          _refs_checked_loop(_steps_in_place)),
    Plant("train_loop", "batches indexed, a stream refused",
          _lists_only("train_loop", lambda p, b, lr, w: refs_training.train_loop(
              p, b, lr=lr, penalty_weight=w))),
    Plant("inference_loop", "the deck's division: batch means over samples",
          deck_inference_loop),
    Plant("inference_loop", "batches never checked", _deck_division),
    Plant("inference_loop", "the evaluation trains the weights", _evaluation_that_trains),
    Plant("inference_loop", "batches indexed, a stream refused",
          _lists_only("inference_loop", refs_training.inference_loop)),
)

# --- wrong only where the regression run goes ---------------------------------------

PLANTED += (
    Plant("train_step", "traced labels clipped into range under jax.jit",
          jax_step_clipping_traced_labels, "jax", axis="mode:jit"),
)
