"""The deck's "Training and Inference" slides, run as written on ``torch_impl.SmallNet``.

The slides' ``train_loop`` and ``inference_loop`` are copied below verbatim
(the module-level ``device`` they read is ``"cpu"``; the slide's one blank line
that holds a space is empty here, and its unused ``batch`` carries a
``noqa``), and run with the deck's
own tools: ``nn.CrossEntropyLoss()``, ``torch.optim.SGD`` and a ``DataLoader``
over a small dataset of five images in batches of 2, 2 and 1. The updates the
slides make are right; their bookkeeping is not, and the tests pin down what
it computes instead:

* ``train_loop`` dedents ``running_loss += ...`` and ``running_corrects +=
  ...`` out of the ``for`` loop, so only the *last* batch's loss and
  predictions count, and that one batch-mean loss is then divided by the
  number of samples in the whole dataset;
* ``inference_loop`` counts every batch but adds up per-batch *means* and
  divides that by the number of samples: a batch of 2 and a batch of 1 weigh
  the same, and the result is about ``1 / batch_size`` of the mean loss;
* both divide by ``len(dataloader.dataset)``, which with ``drop_last=True``
  is more than the samples seen (not exercised here).

``torch_impl.train_loop`` / ``inference_loop`` give the corrected numbers,
which equal refs': each step from torch's own weights is within the one-step
rounding bound of a float64 ``refs`` step (``test_training.check_loop``'s
shadowing argument), and the epoch numbers are the sample-weighted means of
those steps.
"""

from __future__ import annotations

import numpy as np
import pytest
from deck_training import (
    CASE,
    expected,
    inference_loop,
    refs_steps,
    summing,
    train_loop,
)

import refs.capture as refs_capture
import refs.training as refs_training
from crosscheck.compare import assert_close
from crosscheck.ops.capture import layer_bounds
from crosscheck.tolerance import EXACT, Tolerance

torch = pytest.importorskip("torch")


# ------------------------------------------------------------ the tests


def test_the_loader_yields_the_cases_batches(deck):
    dataloader, *_ = deck
    got = [(x.numpy(), y.numpy()) for x, y in dataloader]
    assert [len(y) for _, y in got] == [2, 2, 1]
    for (x, y), (want_x, want_y) in zip(got, CASE.batches()):
        assert_close(x, want_x)
        assert_close(y, want_y)


def test_the_decks_train_loop_counts_only_the_last_batch(deck):
    dataloader, model, criterion, optimizer = deck
    losses, corrects, tols = refs_steps(CASE.params())
    size = CASE.samples

    epoch_loss, epoch_accuracy = train_loop(dataloader, model, criterion, optimizer)

    # the last batch's mean loss (one sample) over all 5 samples, and its predictions only
    assert_close(np.float64(epoch_loss), np.float64(losses[-1] / size),
                 Tolerance(0.0, tols[-1] / size, "the last step's loss bound"))
    assert epoch_accuracy == 100 * corrects[-1] / size
    corrected = sum(n * v for n, v in zip((2, 2, 1), losses)) / size
    assert abs(epoch_loss - corrected) > 0.1 * corrected, "the slide's number is not the mean"


def test_torch_impl_train_loop_gives_the_corrected_numbers(deck):
    dataloader, model, criterion, optimizer = deck
    from torch_impl.training import train_loop as corrected_loop
    from torch_impl.training import train_step

    params = {k: torch.from_numpy(v) for k, v in CASE.params().items()}
    new, epoch_loss, epoch_accuracy = corrected_loop(params, dataloader, lr=CASE.lr)

    # torch's own trajectory, step by step, each step within the bound of a refs step
    # from the same weights (crosscheck.ops.training's shadowing argument)
    weights, total, err, correct = params, 0.0, 0.0, 0
    for x, y in dataloader:
        want = expected({k: v.numpy() for k, v in weights.items()}, x.numpy(), y.numpy(),
                        lr=CASE.lr)
        weights, loss = train_step(weights, x, y, lr=CASE.lr)
        assert_close(loss.numpy(), want.loss, want.loss_tol)
        assert_close({k: v.numpy() for k, v in weights.items()}, want.params, want.param_tols)
        total, err, correct = total + len(y) * float(want.loss), err + len(y) * float(
            want.loss_tol.atol), correct + want.correct
    size = CASE.samples
    assert_close({k: v.numpy() for k, v in new.items()},
                 {k: v.numpy() for k, v in weights.items()}, EXACT)
    tol = Tolerance(0.0, err / size + summing(total), "the steps' loss bounds, per sample")
    assert_close(np.float64(epoch_loss), np.float64(total / size), tol)
    assert epoch_accuracy == 100 * correct / size

    # and the slide's loop on the same data gives another number
    deck_loss, _ = train_loop(dataloader, model, criterion, optimizer)
    assert abs(deck_loss - epoch_loss) > 0.1 * epoch_loss
    # refs' own loop lands on the same numbers. Not an a-priori bound this time: refs
    # follows its own trajectory, which parts from torch's by float64 roundings that later
    # steps carry on (by the loss's curvature, which nothing here bounds); for these three
    # steps that is far inside the steps' bounds, which the rigorous check above uses.
    refs_loss, refs_accuracy = refs_training.train_loop(CASE.params(), CASE.batches(),
                                                        lr=CASE.lr)[1:]
    assert refs_accuracy == epoch_accuracy
    assert_close(np.float64(refs_loss), np.float64(epoch_loss), tol)


def test_the_decks_inference_loop_divides_a_sum_of_batch_means_by_the_samples(deck):
    dataloader, model, criterion, _ = deck
    from torch_impl.training import inference_loop as corrected_loop

    params = CASE.params()
    means, corrects, tols = [], [], []
    for x, y in CASE.batches():
        want = expected(params, x, y)
        means.append(float(want.loss))
        corrects.append(want.correct)
        tols.append(float(want.loss_tol.atol))
    size, sizes = CASE.samples, (2, 2, 1)

    epoch_loss, epoch_accuracy = inference_loop(dataloader, model, criterion)

    # every batch counts, but each batch's *mean* is added and the sum divided by 5 samples
    assert_close(np.float64(epoch_loss), np.float64(sum(means) / size),
                 Tolerance(0.0, sum(tols) / size + summing(sum(means)),
                           "the batches' loss bounds"))
    assert epoch_accuracy == 100 * sum(corrects) / size  # the accuracy is right
    corrected = sum(n * v for n, v in zip(sizes, means)) / size
    assert epoch_loss < 0.7 * corrected, "the slide's loss is about 1 / batch_size of the mean"

    torch_params = {k: torch.from_numpy(v) for k, v in params.items()}
    got_loss, got_accuracy = corrected_loop(torch_params, dataloader)
    want_loss, want_accuracy = refs_training.inference_loop(params, CASE.batches())
    tol = Tolerance(0.0, sum(n * t for n, t in zip(sizes, tols)) / size
                    + summing(corrected * size), "the batches' loss bounds, per sample")
    assert_close(np.float64(got_loss), np.float64(corrected), tol)
    assert_close(np.float64(want_loss), np.float64(corrected), tol)
    assert got_accuracy == want_accuracy == epoch_accuracy
    # no update and no gradient: the weights are as given
    assert_close({k: v.numpy() for k, v in torch_params.items()}, params, EXACT)
    assert not model.training  # the slide's model.eval() stays set


def test_the_updates_are_the_same_in_the_deck_and_in_torch_impl(deck):
    """The slides' step and torch_impl's (the same modules and kernels) agree bit for bit:
    only the bookkeeping differs."""
    dataloader, model, criterion, optimizer = deck
    from torch_impl.training import train_loop as corrected_loop

    params = {k: torch.from_numpy(v) for k, v in CASE.params().items()}
    new, _, _ = corrected_loop(params, dataloader, lr=CASE.lr)
    train_loop(dataloader, model, criterion, optimizer)
    assert_close({k: v.detach().numpy() for k, v in model.named_parameters()},
                 {k: v.numpy() for k, v in new.items()}, EXACT)


def test_refs_and_the_deck_see_the_same_first_forward(deck):
    """A sanity check of the setting: the slide's model is refs' network."""
    dataloader, model, *_ = deck
    x, _ = next(iter(dataloader))
    got = model(x).detach().numpy()
    assert_close(got, refs_capture.forward(CASE.params(), x.numpy())[0],
                 layer_bounds(CASE.params(), x.numpy(), "float64")["fc"])
