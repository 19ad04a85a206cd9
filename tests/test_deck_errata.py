"""Deck errata that the per-topic deck tests (``tests/test_deck_*.py``) do not already show.

``docs/errata.md`` lists every erratum with the test that shows it; these are
the ones without a home elsewhere:

* the gather and scatter slides' ``src.zeros_like(size=...)`` is no torch API
  (``Tensor`` has no ``zeros_like`` method, and ``torch.zeros_like`` takes no
  ``size``); ``src.new_zeros(size)`` is what the loops need, and with it they
  give ``torch.gather`` / ``scatter_add_`` and ``refs``;
* the fold slide asks for "the value in output[1, 1]", but ``output`` is
  ``(N, C, H, W)``: ``output[1, 1]`` is sample 1, channel 1, a whole 3x4 image;
  the pixel is ``output[..., 1, 1]``;
* the training slides' ``running_loss / size`` is wrong on its own: with the
  dedented lines moved back into the loop, ``train_loop`` still divides a sum of
  per-batch means by the number of samples;
* both loops divide by ``len(dataloader.dataset)``, which with ``drop_last=True``
  counts samples that no batch holds.
"""

from __future__ import annotations

import numpy as np
import pytest
from deck_training import CASE, expected, refs_steps
from deck_training import inference_loop as deck_inference_loop

import refs

torch = pytest.importorskip("torch")
device = "cpu"  # the slides' loops read it


# ------------------------------------------------------------ zeros_like


def test_zeros_like_with_a_size_is_not_torch_api():
    src = torch.rand(size=(4, 4, 6))
    with pytest.raises(AttributeError, match="'Tensor' object has no attribute 'zeros_like'"):
        src.zeros_like(size=(1, 4, 6))
    with pytest.raises(TypeError, match="unexpected keyword argument 'size'"):
        torch.zeros_like(src, size=(1, 4, 6))
    out = src.new_zeros(size=(1, 4, 6))  # the fix: src's dtype and device, another size
    assert out.shape == (1, 4, 6) and out.dtype == src.dtype and not out.any()


@pytest.mark.parametrize(("dim", "index_size"), [(0, (1, 4, 6)), (1, (4, 10, 6))])
def test_the_gather_slides_run_with_new_zeros(dim, index_size):
    torch.manual_seed(dim)
    src = torch.rand(size=(4, 4, 6))
    index = torch.randint(low=0, high=4, size=index_size)

    # naive, as on the slide with new_zeros for zeros_like
    out = src.new_zeros(size=index_size)
    for i in range(index_size[0]):
        for j in range(index_size[1]):
            for k in range(index_size[2]):
                at = [i, j, k]
                at[dim] = index[i, j, k]
                out[i, j, k] = src[tuple(at)]

    # vectorized
    assert torch.equal(out, torch.gather(src, dim, index))
    np.testing.assert_array_equal(out.numpy(), refs.gather(src.numpy(), dim, index.numpy()))


@pytest.mark.parametrize(("dim", "src_size"), [(0, (1, 4, 6)), (1, (4, 10, 6))])
def test_the_scatter_slides_run_with_new_zeros(dim, src_size):
    torch.manual_seed(10 + dim)
    src = torch.randint(-5, 5, size=src_size).float()  # integer-valued: every order is exact
    index = torch.randint(low=0, high=4, size=src_size)

    out = src.new_zeros(size=(4, 4, 6))
    for i in range(src_size[0]):
        for j in range(src_size[1]):
            for k in range(src_size[2]):
                at = [i, j, k]
                at[dim] = index[i, j, k]
                out[tuple(at)] += src[i, j, k]

    # vectorized in-place (assume out.shape == (4, 4, 6))
    vectorized = src.new_zeros(size=(4, 4, 6))
    vectorized.scatter_add_(dim, index, src)
    assert torch.equal(out, vectorized)
    np.testing.assert_array_equal(
        out.numpy(), refs.scatter_add(np.zeros((4, 4, 6), np.float32), dim, index.numpy(),
                                      src.numpy()))


# ------------------------------------------------------------ fold: output[1, 1]


def test_output_1_1_of_the_fold_slide_is_a_whole_image():
    import torch.nn.functional as F

    blocks = torch.rand(size=(2, 3 * 2 * 2, 2 * 3))
    output_size = (3, 4)
    output = F.fold(blocks, output_size, kernel_size=2)

    assert output.shape == (2, 3, 3, 4)
    assert output[1, 1].shape == (3, 4)  # sample 1, channel 1: not a value
    pixel = output[..., 1, 1]  # what the question means: one value per sample and channel
    assert pixel.shape == (2, 3)
    # four blocks cover it (docs/figures/fold_overlaps.png): rows 4c+3, 4c+2, 4c+1, 4c+0 of
    # blocks 0, 1, 3, 4
    c = blocks.view(2, 3, 4, 6)
    torch.testing.assert_close(pixel, c[..., 3, 0] + c[..., 2, 1] + c[..., 1, 3] + c[..., 0, 4],
                               rtol=0, atol=4 * 2**-24 * 4)
    assert refs.overlap_counts(output_size, 2)[1, 1] == 4


# ------------------------------------------------------------ training: / size


def deck_train_loop_reindented(dataloader, model, criterion, optimizer):
    """The slide's ``train_loop`` with its two dedented lines moved back into the loop."""
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


def test_the_train_loop_reindented_still_divides_a_sum_of_batch_means(deck):
    dataloader, model, criterion, optimizer = deck
    losses, corrects, tols = refs_steps(CASE.params())  # per batch: mean loss before the step
    sizes, size = (2, 2, 1), CASE.samples

    epoch_loss, epoch_accuracy = deck_train_loop_reindented(dataloader, model, criterion,
                                                            optimizer)

    assert epoch_accuracy == 100 * sum(corrects) / size  # every batch counts now
    assert abs(epoch_loss - sum(losses) / size) <= sum(tols) / size + 1e-12
    mean = sum(n * v for n, v in zip(sizes, losses)) / size  # what an epoch loss means
    assert epoch_loss < 0.7 * mean, "a sum of per-batch means over samples: ~1/batch_size"
    new, corrected_loss, _ = refs.train_loop(CASE.params(), CASE.batches(), lr=CASE.lr)
    assert abs(corrected_loss - mean) <= sum(n * t for n, t in zip(sizes, tols)) / size + 1e-12


def test_with_drop_last_the_loops_count_samples_no_batch_holds(deck):
    from torch.utils.data import DataLoader

    import torch_impl

    dataloader, model, criterion, _ = deck
    dropping = DataLoader(dataloader.dataset, batch_size=2, drop_last=True)  # 5 -> 2 batches
    seen = [(x, y) for x, y in dropping]
    assert sum(len(y) for _, y in seen) == 4 and len(dropping.dataset) == 5

    params = CASE.params()
    correct = sum(expected(params, x.numpy(), y.numpy()).correct for x, y in seen)
    _, accuracy = deck_inference_loop(dropping, model, criterion)
    assert accuracy == 100 * correct / 5  # four samples judged, five in the denominator
    torch_params = {k: torch.from_numpy(v) for k, v in params.items()}
    assert torch_impl.inference_loop(torch_params, dropping)[1] == 100 * correct / 4
    assert refs.inference_loop(params, [(x.numpy(), y.numpy()) for x, y in seen])[1] == \
        100 * correct / 4
