"""Training and inference as the deck writes them: a module, autograd and ``torch.optim.SGD``.

The network is :class:`torch_impl.capture.SmallNet` loaded with the given
weights, the criterion ``nn.CrossEntropyLoss()``, the regularizer the deck's
corrected :class:`torch_impl.capture.Regularizer` (a forward pre-hook on
``fc``), and each step the deck's ``optimizer.zero_grad(); loss.backward();
optimizer.step()``. The loops set ``model.train()`` / ``model.eval()`` and
evaluate under ``torch.no_grad()`` where the deck does (SmallNet has no
dropout or batch norm, so the mode changes nothing here; it would for a
network that has them).

What differs from the slides is the bookkeeping (see ``refs.training``):
every batch counts, and the epoch loss weights each batch's mean by its size.
The caller's tensors are never changed: the weights are copied into a fresh
module and the new ones come back as new tensors.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from torch_impl._host import (
    check_batch,
    check_batches,
    check_epoch_samples,
    check_loop,
    check_train_step,
)
from torch_impl.capture import Regularizer, SmallNet


def train_step(params, x, y, *, lr, penalty_weight=0.0):
    """One SGD step on one batch, as ``refs.train_step``: ``(new_params, loss)``.

    ``loss`` is ``criterion(model(x), y) + penalty_weight * reg.loss`` before
    the step, a 0-d tensor of the weights' dtype; ``new_params`` detached
    tensors keyed and ordered as ``params``, on the weights' device.

    >>> from torch_impl.capture import init_params
    >>> params = init_params(0)
    >>> new, loss = train_step(params, torch.ones(2, 1, 6, 6, dtype=torch.float64),
    ...                        torch.tensor([0, 3]), lr=0.5)
    >>> loss.shape, loss.dtype, new["fc.bias"].requires_grad
    (torch.Size([]), torch.float64, False)
    """
    step = check_train_step("train_step", params, x, y, lr, penalty_weight)
    model, optimizer, criterion = _setup(params, step.lr)
    device = next(model.parameters()).device
    model.train()
    with Regularizer(model.fc) as reg:
        loss, _ = _step(model, optimizer, criterion, reg, _images(x, device), _labels(y, device),
                        step.penalty_weight)
    return _weights(model, params), loss.detach()


def train_loop(params, batches, *, lr, penalty_weight=0.0):
    """One epoch, one step per batch, as ``refs.train_loop``: ``(new_params, epoch_loss,
    epoch_accuracy)``; the deck's ``train_loop`` with every batch counted and the loss
    averaged over samples.

    ``batches`` may be a ``DataLoader`` (its ``[x, y]`` lists are pairs) or any
    iterable of ``(x, y)``; NumPy batches are moved to the weights' device.

    >>> from torch_impl.capture import init_params
    >>> x = torch.ones(3, 1, 6, 6, dtype=torch.float64)
    >>> new, loss, accuracy = train_loop(init_params(0), [(x[:2], torch.tensor([2, 0])),
    ...                                                   (x[2:], torch.tensor([1]))], lr=0.5)
    >>> type(loss), accuracy
    (<class 'float'>, 33.333333333333336)
    """
    fn = "train_loop"
    step = check_loop(fn, params, lr, penalty_weight)
    model, optimizer, criterion = _setup(params, step.lr)
    device = next(model.parameters()).device
    model.train()
    samples, running_loss, running_corrects = 0, 0.0, 0
    with Regularizer(model.fc) as reg:
        for i, batch in check_batches(fn, batches):
            x, y = check_batch(fn, i, batch, step.arch)
            x, y = _images(x, device), _labels(y, device)
            loss, pred = _step(model, optimizer, criterion, reg, x, y, step.penalty_weight)
            # inside the loop, every batch; a batch's mean loss weighs as many samples as it has
            samples += len(y)
            running_loss += loss.item() * len(y)
            running_corrects += int((pred.argmax(1) == y).sum().item())
    check_epoch_samples(fn, samples)
    return _weights(model, params), running_loss / samples, 100 * running_corrects / samples


def inference_loop(params, batches):
    """Mean cross-entropy and accuracy over an epoch under ``model.eval()`` and
    ``torch.no_grad()``, as ``refs.inference_loop``: ``(epoch_loss, epoch_accuracy)``.

    >>> from torch_impl.capture import init_params
    >>> loss, accuracy = inference_loop(init_params(0), [(torch.ones(2, 1, 6, 6,
    ...                                 dtype=torch.float64), torch.tensor([2, 3]))])
    >>> accuracy
    50.0
    """
    fn = "inference_loop"
    arch = check_loop(fn, params).arch
    model, _, criterion = _setup(params, None)
    device = next(model.parameters()).device
    model.eval()
    samples, running_loss, running_corrects = 0, 0.0, 0
    with torch.no_grad():
        for i, batch in check_batches(fn, batches):
            x, y = check_batch(fn, i, batch, arch)
            x, y = _images(x, device), _labels(y, device)
            pred = model(x)
            samples += len(y)
            running_loss += criterion(pred, y).item() * len(y)
            running_corrects += int((pred.argmax(1) == y).sum().item())
    check_epoch_samples(fn, samples)
    return running_loss / samples, 100 * running_corrects / samples


def _setup(params, lr):
    """A fresh SmallNet holding copies of ``params``, its SGD optimizer (``lr`` given) and the
    criterion."""
    model = SmallNet(params)
    optimizer = None if lr is None else torch.optim.SGD(model.parameters(), lr=lr)
    return model, optimizer, nn.CrossEntropyLoss()


def _step(model, optimizer, criterion, reg, x, y, penalty_weight):
    """The deck's step: forward, loss, ``zero_grad``, ``backward``, ``step``; returns the loss
    and the logits, both from before the update."""
    pred = model(x)  # the pre-hook sets reg.loss: the mean square of fc's input
    loss = criterion(pred, y) + penalty_weight * reg.loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss, pred.detach()


def _images(x, device):
    return torch.as_tensor(x).to(device)


def _labels(y, device):
    """Class indices as int64, which ``nn.CrossEntropyLoss`` wants (the checks allowed any int)."""
    if not isinstance(y, torch.Tensor):
        y = torch.from_numpy(np.asarray(y).astype(np.int64))
    return y.to(device=device, dtype=torch.int64)


def _weights(model, params):
    """The module's weights, detached, keyed and ordered as ``params``."""
    weights = dict(model.named_parameters())
    return {name: weights[name].detach() for name in params}
