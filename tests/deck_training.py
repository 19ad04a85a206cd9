"""The deck's "Training and Inference" slides verbatim and the setting they run in.

Shared by ``tests/test_deck_training.py`` and ``tests/test_deck_errata.py`` (a helper
module, not a test file: the test files import it, never each other; its ``make_deck``
is the ``deck`` fixture of ``tests/conftest.py``). The slides'
loops read the module-level ``torch`` and ``device``, as in the deck.
"""

from __future__ import annotations

import numpy as np
import pytest

from crosscheck.backends import Backend
from crosscheck.ops.capture import CONFIGS
from crosscheck.ops.training import TrainCase, expected_step
from crosscheck.tolerance import gamma

torch = pytest.importorskip("torch")  # the slides' global
device = "cpu"  # what the slides' loops move the batches to

# 5 samples in batches of 2, 2, 1; 2 channels of 6 x 5 images, 2 classes; float64
CASE = TrainCase(CONFIGS[1], 11, "float64", ((1, 0), (1, 1), (0,)), lr_exp=-1)


# ------------------------------------------------------------ the slides, verbatim


def train_loop(dataloader, model, criterion, optimizer):
    size = len(dataloader.dataset)
    model.train()
    running_loss, running_corrects = 0, 0

    # iterate through all batches
    for batch, (X, y) in enumerate(dataloader):  # noqa: B007 - the slide's unused `batch`
        # move data to device
        X, y = X.to(device), y.to(device)
        # forward pass
        pred = model(X)
        loss = criterion(pred, y)
        # new gradients per batch
        optimizer.zero_grad()
        # backward pass
        loss.backward()
        # update gradients
        optimizer.step()

    running_loss += loss.item()
    running_corrects += (pred.argmax(1) == y).type(torch.float).sum().item()


    epoch_loss = running_loss / size
    epoch_accuracy = 100 * running_corrects / size
    return epoch_loss, epoch_accuracy


def inference_loop(dataloader, model, criterion):
    size = len(dataloader.dataset)
    model.eval()
    running_loss, running_corrects = 0, 0

    # disregard gradients when not training
    with torch.no_grad():
        # iterate through all batches
        for X, y in dataloader:
            # move data to device
            X, y = X.to(device), y.to(device)
            # forward pass
            pred = model(X)
            # save data for evaluation measures (loss & accuracy)
            running_loss += criterion(pred, y).item()
            running_corrects += (pred.argmax(1) == y).type(torch.float).sum().item()

    epoch_loss = running_loss / size
    epoch_accuracy = 100 * running_corrects / size
    return epoch_loss, epoch_accuracy


# ------------------------------------------------------------ the setting


def make_deck(require_backend):
    """The slides' objects: a DataLoader over the case's samples, the model, criterion, SGD."""
    require_backend(Backend("torch-cpu"))
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from torch_impl.capture import SmallNet

    batches = CASE.batches()
    dataset = TensorDataset(torch.from_numpy(np.concatenate([x for x, _ in batches])),
                            torch.from_numpy(np.concatenate([y for _, y in batches])))
    dataloader = DataLoader(dataset, batch_size=2)
    model = SmallNet(CASE.params())
    optimizer = torch.optim.SGD(model.parameters(), lr=CASE.lr)
    return dataloader, model, nn.CrossEntropyLoss(), optimizer


def refs_steps(params):
    """refs' steps over the case's batches: each batch's loss, its correct count (before the
    update) and the loss's bound."""
    losses, corrects, tols = [], [], []
    for x, y in CASE.batches():
        want = expected(params, x, y, lr=CASE.lr)
        losses.append(float(want.loss))
        corrects.append(want.correct)
        tols.append(float(want.loss_tol.atol))
        params = want.params
    return losses, corrects, tols


def summing(total: float) -> float:
    """The float64 rounding of a sample-weighted mean over the 3 batches (the sample-weighted mean of crosscheck.ops.training)."""
    return gamma(2 * 3 + 2, np.float64) * total / CASE.samples


def expected(params, x, y, **kwargs):
    """``crosscheck.ops.training.expected_step`` for this fixed case, which must be clear of kinks and
    argmax near-ties (it is; another seed would be needed otherwise)."""
    return expected_step(params, x, y, clear=_must_hold, **kwargs)


def _must_hold(condition: bool) -> None:
    assert condition, f"{CASE!r} is not clear of kinks or argmax near-ties: pick another seed"


