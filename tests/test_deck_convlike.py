"""The deck's "Convolution-like operations" snippets, run against all three implementations."""

from __future__ import annotations

import numpy as np
import pytest

from crosscheck.backends import Backend
from crosscheck.optable import OURS

IMPLS = list(OURS)  # refs, torch_impl, jax_impl


def _impl(name, require_backend):
    """(module, backend) for ``name``, skipping when its framework is absent."""
    import importlib

    framework, module = OURS[name]
    backend = Backend("numpy" if framework == "numpy" else f"{framework}-cpu")
    require_backend(backend)
    from crosscheck.backends import load_jax, load_torch

    if framework == "torch":
        load_torch()
    elif framework == "jax":
        load_jax()
    return importlib.import_module(module), backend


def _view(blocks, *shape):
    """The deck's ``blocks.view(...)``: torch's own view; reshape for NumPy and JAX."""
    if type(blocks).__module__.startswith("torch"):
        return blocks.view(*shape)
    return blocks.reshape(*shape)


@pytest.mark.parametrize("name", IMPLS)
def test_deck_unfold_example(name, require_backend):
    impl, backend = _impl(name, require_backend)
    image_np = np.random.default_rng(0).random((2, 3, 3, 4))
    image = backend.asarray(image_np)

    # extract blocks
    blocks = impl.unfold(image, kernel_size=2)
    # shape: (batch, block_size, num_blocks)
    assert tuple(blocks.shape) == (2, 3 * 2 * 2, 2 * 3)

    # view channels as a dimension
    # shape: (batch, channels, kernel_size, num_blocks)
    blocks = _view(blocks, blocks.shape[0], image.shape[1], -1, blocks.shape[-1])
    assert tuple(blocks.shape) == (2, 3, 2 * 2, 2 * 3)

    # memory alignment N, C, kH, kW, H', W': block (1, 2) of channel 1, offset (1, 0)
    # is image[n, 1, 1 + 1, 2 + 0]
    got = backend.to_numpy(blocks)
    assert got[1, 1, 1 * 2 + 0, 1 * 3 + 2] == image_np[1, 1, 2, 2]


@pytest.mark.parametrize("name", IMPLS)
def test_deck_fold_example(name, require_backend):
    impl, backend = _impl(name, require_backend)
    blocks_np = np.random.default_rng(1).random((2, 3 * 2 * 2, 2 * 3))
    blocks = backend.asarray(blocks_np)
    output_size = (3, 4)

    # fold back into an image
    output = backend.to_numpy(impl.fold(blocks, output_size, kernel_size=2))
    assert output.shape == (2, 3, 3, 4)

    # "What is the value in output[1, 1]?" -- the four blocks that cover (1, 1) each add
    # one element: block (0, 0) at offset (1, 1), (0, 1) at (1, 0), (1, 0) at (0, 1),
    # (1, 1) at (0, 0); rows are c * 4 + kh * 2 + kw, blocks are numbered bh * 3 + bw
    c = blocks_np.reshape(2, 3, 4, 6)
    expected = c[:, :, 3, 0] + c[:, :, 2, 1] + c[:, :, 1, 3] + c[:, :, 0, 4]
    np.testing.assert_allclose(output[:, :, 1, 1], expected, rtol=0, atol=4 * np.finfo(float).eps * 4)
    counts = backend.to_numpy(impl.fold(backend.asarray(np.ones((1, 4, 6))), output_size, 2))
    assert counts[0, 0, 1, 1] == 4


@pytest.mark.parametrize("name", IMPLS)
def test_deck_layers(name, require_backend):
    """The deck's nn.Conv2d / nn.MaxPool2d lines, as calls of conv and max_pool."""
    impl, backend = _impl(name, require_backend)
    require_backend(Backend("torch-cpu"))
    import torch

    torch.manual_seed(0)
    x = torch.rand(2, 3, 7, 6, dtype=torch.float64)
    layers = [
        torch.nn.Conv2d(3, 4, kernel_size=3),
        torch.nn.Conv2d(3, 4, kernel_size=3, stride=2),
        torch.nn.Conv2d(3, 4, kernel_size=3, padding=1),
        torch.nn.Conv2d(3, 4, kernel_size=(3, 1), stride=(2, 1), padding=(1, 0)),
    ]
    for conv in layers:
        conv = conv.double()
        expected = conv(x).detach().numpy()
        got = impl.conv(backend.asarray(x.numpy()), backend.asarray(conv.weight.detach().numpy()),
                        backend.asarray(conv.bias.detach().numpy()), conv.stride, conv.padding,
                        conv.dilation, conv.groups)
        np.testing.assert_allclose(backend.to_numpy(got), expected, rtol=1e-12, atol=1e-12)

    pool = torch.nn.MaxPool2d(kernel_size=2, stride=2)
    got = impl.max_pool(backend.asarray(x.numpy()), kernel_size=2, stride=2)
    np.testing.assert_array_equal(backend.to_numpy(got), pool(x).numpy())


def test_deck_question_is_answered_in_refs():
    """refs.convlike.overlap_counts draws the answer: four blocks cover output[1, 1]."""
    from refs.convlike import overlap_counts

    counts = overlap_counts((3, 4), kernel_size=2)
    assert counts.tolist() == [[1, 2, 2, 1], [2, 4, 4, 2], [1, 2, 2, 1]]
