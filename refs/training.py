"""Training and inference, the reference: cross-entropy, its gradient by hand, and plain SGD.

The deck's last slides train a network with ``nn.CrossEntropyLoss``,
``loss.backward()`` and ``optimizer.step()``, and evaluate it under
``torch.no_grad()``. Here the same three steps are loops on the capture
topic's small network (:mod:`refs.network`):

* the forward pass is :func:`refs.capture.forward`, which keeps every layer's
  output -- the backward pass needs them;
* the loss is the mean cross-entropy of the logits (a log-softmax that
  subtracts each row's max first, so ``exp`` never overflows), plus
  ``penalty_weight`` times the course's regularizer on ``fc``
  (:func:`refs.capture.penalty`: the mean square of fc's input);
* the backward pass is reverse mode, written out by hand: starting from the
  loss, one loop nest per layer, last layer first, turns the gradient with
  respect to a layer's output into the gradients with respect to its input and
  its weights (the chain rule, no autodiff). The penalty's gradient joins at
  fc's input, where the penalty is taken;
* the update is ``new = param - lr * grad``, element by element.

The loops are the deck's ``train_loop`` / ``inference_loop`` with their
bookkeeping corrected: every batch counts (the slide dedents ``running_loss
+=`` out of the loop, so only the last batch does), and the epoch loss is the
mean over *samples*, each batch's mean loss weighted by its size (the slide
divides a sum of per-batch means by the number of samples).
"""

from __future__ import annotations

import numpy as np

from refs.capture import forward
from refs.checks.common import fail, shape_of
from refs.checks.training import (
    check_batch,
    check_batches,
    check_labels,
    check_loop,
    check_samples,
    check_train_step,
)
from refs.network import CONV1_PADDING, LAYERS, PENALTY_LAYER, POOL, layer_input

#: what the regularizer squares: the input of the hooked layer (fc), i.e. flatten's output
PENALTY_INPUT = layer_input(PENALTY_LAYER)


def log_softmax(logits):
    """Row-wise log-softmax, the max subtracted first so that no ``exp`` overflows.

    ::

        m[n]         = max_k logits[n, k]
        s[n]         = sum_k exp(logits[n, k] - m[n])
        out[n, k]    = logits[n, k] - m[n] - log(s[n])

    Args:
        logits: a float array ``(N, K)``.

    Raises:
        TypeError: not a float array.
        ValueError: not of rank 2, or no class (``K = 0``).

    >>> log_softmax(np.array([[0.0, 0.0], [1000.0, 1000.0]]))  # no overflow
    array([[-0.69314718, -0.69314718],
           [-0.69314718, -0.69314718]])
    """
    logits = _check_logits("log_softmax", logits)
    n, k = logits.shape
    out = np.zeros_like(logits)
    for b in range(n):
        m = _row_max(logits, b)
        s = logits.dtype.type(0)
        for c in range(k):
            s += np.exp(logits[b, c] - m)
        log_s = np.log(s)
        for c in range(k):
            out[b, c] = logits[b, c] - m - log_s
    return out


def softmax(logits):
    """Row-wise softmax, the max subtracted first.

    ::

        out[n, k] = exp(logits[n, k] - m[n]) / sum_j exp(logits[n, j] - m[n]),  m[n] = max_k logits[n, k]

    Args, Raises: as :func:`log_softmax`.

    >>> softmax(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    """
    logits = _check_logits("softmax", logits)
    n, k = logits.shape
    out = np.zeros_like(logits)
    for b in range(n):
        m = _row_max(logits, b)
        s = logits.dtype.type(0)
        for c in range(k):
            out[b, c] = np.exp(logits[b, c] - m)
            s += out[b, c]
        for c in range(k):
            out[b, c] = out[b, c] / s
    return out


def cross_entropy(logits, y):
    """The mean cross-entropy of ``logits`` against class indices ``y``, as ``nn.CrossEntropyLoss()``.

    ::

        loss = -(1 / N) * sum_n log_softmax(logits)[n, y[n]]

    Args:
        logits: a float array ``(N, K)``.
        y: an integer array ``(N,)`` with values in ``[0, K)``.

    Returns:
        a 0-d array of ``logits``' dtype.

    Raises:
        IndexError: a label outside ``[0, K)``.
        TypeError: ``logits`` not a float array, ``y`` not an integer array.
        ValueError: ``logits`` not ``(N, K)``, ``y`` not ``(N,)``.

    >>> float(cross_entropy(np.zeros((2, 4)), np.array([0, 3])))  # log 4: uniform over 4 classes
    1.3862943611198906
    """
    logits = _check_logits("cross_entropy", logits)
    n, k = logits.shape
    check_labels("cross_entropy", y, n, k)
    y = np.asarray(y)
    logp = log_softmax(logits)
    total = logits.dtype.type(0)
    for b in range(n):
        total += -logp[b, y[b]]
    return np.asarray(total / logits.dtype.type(n))


def train_step(params, x, y, *, lr, penalty_weight=0.0):
    """One step of plain SGD on one batch, the gradient computed by hand (reverse mode).

    ::

        z        = forward(params, x)[0]                    logits (N, K)
        h        = forward(params, x)[1]["flatten"]         fc's input (N, F)
        loss     = cross_entropy(z, y) + penalty_weight * (1 / (N F)) * sum_{n, f} h[n, f]**2
        new[p]   = params[p] - lr * d loss / d params[p]    for every weight p

    The backward pass, each line one loop nest below (``dX`` is ``d loss / d X``;
    ``[cond]`` is 1 where ``cond`` holds, else 0)::

        dz[n, k]                = (softmax(z)[n, k] - [k == y[n]]) / N
        dfc.weight[k, f]        = sum_n dz[n, k] * h[n, f]
        dfc.bias[k]             = sum_n dz[n, k]
        dh[n, f]                = sum_k dz[n, k] * fc.weight[k, f] + penalty_weight * 2 h[n, f] / (N F)
        drelu2[n, c, i, j]      = dh[n, (c * H2 + i) * W2 + j]                 (flatten, undone)
        dconv2                  = drelu2 * [conv2 > 0]                         (ReLU: 0 at 0, as torch)
        dconv2.weight[o, c, a, b] = sum_{n, i, j} dconv2[n, o, i, j] * pool1[n, c, i + a, j + b]
        dconv2.bias[o]          = sum_{n, i, j} dconv2[n, o, i, j]
        dpool1[n, c, i + a, j + b] += dconv2[n, o, i, j] * conv2.weight[o, c, a, b]
        drelu1[n, c, 2i + a*, 2j + b*] = dpool1[n, c, i, j]      (a*, b*: the window's first max)
        dconv1                  = drelu1 * [conv1 > 0]
        dconv1.weight[o, c, a, b] = sum_{n, i, j} dconv1[n, o, i, j] * x[n, c, i + a - 1, j + b - 1]
        dconv1.bias[o]          = sum_{n, i, j} dconv1[n, o, i, j]

    At a max-pool tie the gradient goes to the first maximum in window order
    (row-major: top-left, top-right, bottom-left, bottom-right), as torch's
    ``MaxPool2d`` does; a ReLU input of exactly 0 passes no gradient, as in torch.

    Args:
        params: the weights, as :func:`refs.init_params` makes them (float32 or float64).
        x: images ``(N, C_in, H, W)`` of the weights' dtype.
        y: class indices ``(N,)``, any integer dtype, each in ``[0, K)``.
        lr: the learning rate, a real number ``>= 0``.
        penalty_weight: the regularizer's weight, a real number ``>= 0``.

    Returns:
        ``(new_params, loss)``: new arrays, keyed and ordered as ``params``, of
        the same shapes and dtype; ``loss`` (taken before the step) a 0-d array
        of that dtype.

    Raises:
        IndexError: a label outside ``[0, K)``.
        TypeError: bad params / x as in :func:`refs.forward`, ``y`` not an integer
            array, ``lr`` / ``penalty_weight`` not a real number.
        ValueError: bad params / x as in :func:`refs.forward`, ``y`` not of shape
            ``(N,)``, ``lr`` / ``penalty_weight`` negative or not finite.

    >>> from refs.capture import init_params
    >>> params = init_params(0)
    >>> x, y = np.ones((2, 1, 6, 6)), np.array([0, 3])
    >>> new, loss = train_step(params, x, y, lr=0.5)
    >>> bool(loss == cross_entropy(forward(params, x)[0], y)), loss.shape
    (True, ())
    >>> bool(cross_entropy(forward(new, x)[0], y) < loss)  # a small step downhill
    True
    >>> from refs.capture import penalty
    >>> _, loss = train_step(params, x, y, lr=0.5, penalty_weight=2.0)
    >>> bool(loss == cross_entropy(forward(params, x)[0], y) + 2.0 * penalty(params, x))
    True
    """
    step = check_train_step("train_step", params, x, y, lr, penalty_weight)
    new, loss, _ = _step(_arrays(params), np.asarray(x), np.asarray(y), step.lr,
                         step.penalty_weight)
    return new, loss


def train_loop(params, batches, *, lr, penalty_weight=0.0):
    """One epoch of SGD, one :func:`train_step` per batch; the deck's ``train_loop``, corrected.

    ::

        S              = sum_b N_b                                        (samples seen)
        epoch_loss     = (1 / S) * sum_b N_b * loss_b
        epoch_accuracy = 100 * (1 / S) * sum_b sum_n [argmax_k z_b[n, k] == y_b[n]]

    where ``loss_b`` is batch ``b``'s loss (the penalty included, as
    :func:`train_step` returns it) and ``z_b`` its logits, both from the
    forward pass of that step, before its update (as in the deck). The
    returned weights are exactly those of calling :func:`train_step` on each
    batch in turn.

    Args:
        params, lr, penalty_weight: as in :func:`train_step`.
        batches: an iterable of pairs ``(x, y)`` (tuples or lists, as a
            DataLoader yields them), each as :func:`train_step` takes them;
            batch sizes may differ. Iterated once.

    Returns:
        ``(new_params, epoch_loss, epoch_accuracy)``, the last two Python floats.

    Raises:
        IndexError, TypeError, ValueError: as :func:`train_step`, for ``params`` and
            for each batch (the message names ``batches[i]``); ``TypeError`` if
            ``batches`` is not iterable; ``ValueError`` for an item that is not a
            pair, and for no batch at all (an epoch over no samples has no mean).

    >>> from refs.capture import init_params
    >>> x = np.ones((3, 1, 6, 6))
    >>> new, loss, accuracy = train_loop(init_params(0), [(x[:2], np.array([2, 0])),
    ...                                                   (x[2:], np.array([1]))], lr=0.5)
    >>> list(new) == list(init_params(0)), type(loss), accuracy  # 1 of 3 right
    (True, <class 'float'>, 33.333333333333336)
    """
    fn = "train_loop"
    step = check_loop(fn, params, lr, penalty_weight)
    params = _arrays(params)
    samples, total_loss, correct = 0, 0.0, 0
    for i, batch in check_batches(fn, batches):
        x, y = (np.asarray(a) for a in check_batch(fn, i, batch, step.arch))
        params, loss, logits = _step(params, x, y, step.lr, step.penalty_weight)
        samples += len(y)
        total_loss += float(loss) * len(y)
        correct += _correct(logits, y)
    check_samples(fn, samples)
    return params, total_loss / samples, 100 * correct / samples


def inference_loop(params, batches):
    """Mean cross-entropy and accuracy over an epoch, no update; the deck's ``inference_loop``, corrected.

    ::

        epoch_loss     = (1 / S) * sum_b N_b * cross_entropy(z_b, y_b)
        epoch_accuracy = 100 * (1 / S) * sum_b sum_n [argmax_k z_b[n, k] == y_b[n]]

    with ``z_b = forward(params, x_b)[0]`` and ``S = sum_b N_b`` (the slide
    divides the plain sum of per-batch means by ``S``). No penalty: it is a
    training device, not part of the model's loss.

    Args:
        params: as in :func:`train_step`.
        batches: as in :func:`train_loop`.

    Returns:
        ``(epoch_loss, epoch_accuracy)``, Python floats.

    Raises:
        IndexError, TypeError, ValueError: as :func:`train_loop`.

    >>> from refs.capture import init_params
    >>> x, y = np.ones((2, 1, 6, 6)), np.array([2, 3])
    >>> loss, accuracy = inference_loop(init_params(0), [(x, y)])
    >>> loss == float(cross_entropy(forward(init_params(0), x)[0], y)), accuracy
    (True, 50.0)
    """
    fn = "inference_loop"
    arch = check_loop(fn, params).arch
    params = _arrays(params)
    samples, total_loss, correct = 0, 0.0, 0
    for i, batch in check_batches(fn, batches):
        x, y = (np.asarray(a) for a in check_batch(fn, i, batch, arch))
        logits = forward(params, x)[0]
        samples += len(y)
        total_loss += float(cross_entropy(logits, y)) * len(y)
        correct += _correct(logits, y)
    check_samples(fn, samples)
    return total_loss / samples, 100 * correct / samples


# ------------------------------------------------------------------ one step


def _step(params, x, y, lr, penalty_weight):
    """``(new_params, loss, logits)`` for checked arguments."""
    dtype = params["conv1.weight"].dtype
    weight = dtype.type(penalty_weight)
    logits, kept = forward(params, x)
    h = kept[PENALTY_INPUT]
    loss = cross_entropy(logits, y) + weight * _mean_square(h)
    grads = _backward(params, x, y, kept, weight)
    return _sgd(params, grads, dtype.type(lr)), np.asarray(loss, dtype), logits


def _backward(params, x, y, kept, penalty_weight):
    """The gradient of the loss for every weight: the layers in reverse, as in :func:`train_step`."""
    # written for exactly these layers, in this order: a change to the network must show here
    assert LAYERS == ("conv1", "relu1", "pool1", "conv2", "relu2", "flatten", "fc")
    grads = {}
    dz = _cross_entropy_backward(kept["fc"], y)
    dh, grads["fc.weight"], grads["fc.bias"] = _linear_backward(
        dz, kept["flatten"], params["fc.weight"])
    dh = _add_mean_square_backward(dh, kept["flatten"], penalty_weight)
    d = _flatten_backward(dh, kept["relu2"].shape)
    d = _relu_backward(d, kept["conv2"])
    d, grads["conv2.weight"], grads["conv2.bias"] = _conv_backward(
        d, kept["pool1"], params["conv2.weight"], padding=0)
    d = _max_pool_backward(d, kept["relu1"])
    d = _relu_backward(d, kept["conv1"])
    _, grads["conv1.weight"], grads["conv1.bias"] = _conv_backward(
        d, x, params["conv1.weight"], padding=CONV1_PADDING, input_grad=False)
    return grads


def _cross_entropy_backward(logits, y):
    """``dz[n, k] = (softmax(z)[n, k] - [k == y[n]]) / N``."""
    n, k = logits.shape
    p = softmax(logits)
    out = np.zeros_like(logits)
    for b in range(n):
        for c in range(k):
            target = 1 if c == y[b] else 0
            out[b, c] = (p[b, c] - target) / logits.dtype.type(n)
    return out


def _linear_backward(grad, input, weight):
    """``out[n, k] = bias[k] + sum_f weight[k, f] * input[n, f]``, backwards::

        dinput[n, f]  = sum_k grad[n, k] * weight[k, f]
        dweight[k, f] = sum_n grad[n, k] * input[n, f]
        dbias[k]      = sum_n grad[n, k]
    """
    n, f = input.shape
    k = weight.shape[0]
    dinput = np.zeros_like(input)
    dweight = np.zeros_like(weight)
    dbias = np.zeros(k, dtype=weight.dtype)
    for b in range(n):
        for o in range(k):
            for i in range(f):
                dinput[b, i] += grad[b, o] * weight[o, i]
                dweight[o, i] += grad[b, o] * input[b, i]
            dbias[o] += grad[b, o]
    return dinput, dweight, dbias


def _mean_square(h):
    """``(1 / M) * sum_i h[i]**2``, ``M = h.size``: the penalty, from the kept fc input."""
    flat = h.reshape(-1)
    total = h.dtype.type(0)
    for i in range(flat.size):
        total += flat[i] * flat[i]
    return total / h.dtype.type(flat.size)


def _add_mean_square_backward(grad, h, weight):
    """``grad[n, f] + weight * 2 h[n, f] / M``: the penalty's gradient joins at fc's input."""
    n, f = h.shape
    out = np.zeros_like(grad)
    for b in range(n):
        for i in range(f):
            out[b, i] = grad[b, i] + weight * (2 * h[b, i] / h.dtype.type(n * f))
    return out


def _flatten_backward(grad, shape):
    """``dinput[n, c, i, j] = grad[n, (c * H + i) * W + j]``."""
    n, c, h, w = shape
    out = np.zeros(shape, dtype=grad.dtype)
    for b, ch, i, j in np.ndindex(n, c, h, w):
        out[b, ch, i, j] = grad[b, (ch * h + i) * w + j]
    return out


def _relu_backward(grad, input):
    """``dinput[idx] = grad[idx] if input[idx] > 0 else 0``."""
    out = np.zeros_like(grad)
    for idx in np.ndindex(*grad.shape):
        if input[idx] > 0:
            out[idx] = grad[idx]
    return out


def _max_pool_backward(grad, input):
    """``dinput[n, c, 2i + a*, 2j + b*] = grad[n, c, i, j]``, ``(a*, b*)`` the first max of the
    2 x 2 window in row-major order; every other input gets 0 (also the last row / column
    of an odd side, which no window reads)."""
    n, c, ph, pw = grad.shape
    out = np.zeros_like(input)
    for b, ch, i, j in np.ndindex(n, c, ph, pw):
        best = (0, 0)
        for a, e in np.ndindex(POOL, POOL):
            # strictly greater: a later equal value does not take the gradient away
            if input[b, ch, POOL * i + a, POOL * j + e] > input[b, ch, POOL * i + best[0],
                                                                 POOL * j + best[1]]:
                best = (a, e)
        out[b, ch, POOL * i + best[0], POOL * j + best[1]] += grad[b, ch, i, j]
    return out


def _conv_backward(grad, input, weight, padding, input_grad=True):
    """``out[n, o, i, j] = bias[o] + sum_{c, a, b} weight[o, c, a, b] * input[n, c, i + a - p, j + b - p]``
    (stride 1, padding ``p``), backwards; ``input`` outside the image is 0 and gets nothing::

        dweight[o, c, a, b]          = sum_{n, i, j} grad[n, o, i, j] * input[n, c, i + a - p, j + b - p]
        dbias[o]                     = sum_{n, i, j} grad[n, o, i, j]
        dinput[n, c, i + a - p, j + b - p] += grad[n, o, i, j] * weight[o, c, a, b]
    """
    n, o_count, oh, ow = grad.shape
    _, c_count, kh, kw = weight.shape
    h, w = input.shape[2:]
    dweight = np.zeros_like(weight)
    dbias = np.zeros(o_count, dtype=weight.dtype)
    dinput = np.zeros_like(input) if input_grad else None
    for b, o, i, j in np.ndindex(n, o_count, oh, ow):
        dbias[o] += grad[b, o, i, j]
        for c, a, e in np.ndindex(c_count, kh, kw):
            r, s = i + a - padding, j + e - padding
            if 0 <= r < h and 0 <= s < w:
                dweight[o, c, a, e] += grad[b, o, i, j] * input[b, c, r, s]
                if input_grad:
                    dinput[b, c, r, s] += grad[b, o, i, j] * weight[o, c, a, e]
    return dinput, dweight, dbias


def _sgd(params, grads, lr):
    """``new[p][idx] = params[p][idx] - lr * grads[p][idx]``, in ``params``' key order."""
    new = {}
    for name, param in params.items():
        out = np.zeros_like(param)
        for idx in np.ndindex(*param.shape):
            out[idx] = param[idx] - lr * grads[name][idx]
        new[name] = out
    return new


def _correct(logits, y):
    """``sum_n [argmax_k logits[n, k] == y[n]]``; ``argmax`` takes the first maximum."""
    correct = 0
    for b in range(logits.shape[0]):
        if _row_argmax(logits, b) == y[b]:
            correct += 1
    return correct


def _row_max(logits, b):
    return logits[b, _row_argmax(logits, b)]


def _row_argmax(logits, b):
    best = 0
    for c in range(1, logits.shape[1]):
        if logits[b, c] > logits[b, best]:
            best = c
    return best


def _arrays(params):
    return {name: np.asarray(w) for name, w in params.items()}


def _check_logits(fn: str, logits):
    if not (hasattr(logits, "shape") and hasattr(logits, "dtype")):
        fail(TypeError, fn, f"logits must be a float array (N, K), got {type(logits).__name__}")
    logits = np.asarray(logits)
    if not np.issubdtype(logits.dtype, np.floating):
        fail(TypeError, fn, f"logits must have a float dtype, got {logits.dtype}")
    if logits.ndim != 2 or logits.shape[1] == 0:
        fail(ValueError, fn, f"logits must have shape (N, K) with K >= 1, got shape "
                             f"{shape_of(logits)}")
    return logits
