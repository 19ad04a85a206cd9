"""The deck's "Datasets and Dataloaders" snippet, run as written, against all three loaders.

The slide's ``load_image`` and torchvision ``transforms`` are stood in for by
NumPy / torch code with the same behaviour (an RGB ``uint8`` image of height x
width x 3; ``CenterCrop`` with torchvision's rounding; ``ToTensor`` to a
``float32`` 3 x H x W tensor in ``[0, 1]``), so no image file and no
torchvision are needed.

Note on the slide: it builds the dataset from two paths and a DataLoader with
``batch_size=32``, then comments ``# shape: 32, 3, 256, 256``. Two images
make one batch of 2; 32 is the shape of a *full* batch, and the last batch of
an epoch is short unless ``drop_last=True``. Both are checked below.
"""

from __future__ import annotations

import zlib
from types import SimpleNamespace

import numpy as np
import pytest

from crosscheck.backends import Backend
from refs.checks.common import to_host
from refs.loading import batches, epoch_order

pytestmark = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")


def load_image(path: str) -> np.ndarray:
    """A stand-in for reading a JPEG: ``path`` decides the size (at least 256 x 256) and pixels."""
    rng = np.random.default_rng(zlib.crc32(path.encode()))
    height, width = 256 + int(rng.integers(0, 40)), 256 + int(rng.integers(0, 60))
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _transforms():
    """``torchvision.transforms``' Compose, CenterCrop and ToTensor, for an H x W x 3 array."""
    import torch

    class Compose:
        def __init__(self, transforms):
            self.transforms = transforms

        def __call__(self, img):
            for t in self.transforms:
                img = t(img)
            return img

    class CenterCrop:
        def __init__(self, size: int):
            self.size = size

        def __call__(self, img):
            height, width = img.shape[:2]
            top, left = round((height - self.size) / 2), round((width - self.size) / 2)
            return img[top : top + self.size, left : left + self.size]

    class ToTensor:
        def __call__(self, img):
            # the division in NumPy: torch's two-thread elementwise ops crawl on a busy 2-core CI box
            return torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 255)

    return SimpleNamespace(Compose=Compose, CenterCrop=CenterCrop, ToTensor=ToTensor)


def _deck_dataset(img_paths):
    """The slide's ``MyDataset`` and ``transform``, verbatim but for the imports."""
    from torch.utils.data import Dataset

    transforms = _transforms()

    class MyDataset(Dataset):
        def __init__(self, img_paths, transform):
            self.img_paths = img_paths
            self.transform = transform

        def __len__(self):
            return len(self.img_paths)

        def __getitem__(self, index):
            img = load_image(self.img_paths[index])
            img = self.transform(img)
            return {"img": img}

    transform = transforms.Compose([
        transforms.CenterCrop(256),
        transforms.ToTensor()
    ])
    return MyDataset(img_paths=img_paths, transform=transform)


@pytest.fixture
def torch_ready(require_backend):
    require_backend(Backend("torch-cpu"))


def test_deck_snippet_as_written(torch_ready):
    from torch.utils.data import DataLoader

    dataset = _deck_dataset(["a.jpg", "b.jpg"])
    dataloader = DataLoader(dataset, batch_size=32)
    shapes = []
    for batch in dataloader:
        img = batch["img"]
        shapes.append(tuple(img.shape))  # the slide says "32, 3, 256, 256"
    assert shapes == [(2, 3, 256, 256)], "two images make one batch of two, not of 32"
    first = dataset[0]["img"]
    assert first.dtype.is_floating_point and 0 <= float(first.min()) and float(first.max()) <= 1


@pytest.mark.parametrize("num_workers", [0, 2])
def test_deck_batches_equal_refs(torch_ready, num_workers):
    """34 images, batch_size=32: a full batch of (32, 3, 256, 256), then a short one of 2."""
    from torch.utils.data import DataLoader

    from torch_impl.loading import make_loader

    dataset = _deck_dataset([f"img_{i:03d}.jpg" for i in range(34)])
    expected = list(batches(dataset, 32))
    assert [b["img"].shape for b in expected] == [(32, 3, 256, 256), (2, 3, 256, 256)]
    assert expected[0]["img"].dtype == np.float32
    for loader in (make_loader(dataset, 32, num_workers=num_workers), DataLoader(dataset, batch_size=32, num_workers=num_workers)):
        got = list(loader)
        assert len(got) == len(expected)
        for batch, want in zip(got, expected):
            assert list(batch) == ["img"]
            assert tuple(batch["img"].shape) == want["img"].shape
            np.testing.assert_array_equal(to_host(batch["img"]), want["img"], strict=True)


def test_deck_batches_in_jax(torch_ready, require_backend):
    """The same dataset through the JAX loader: the transform's tensors become jax.Arrays."""
    require_backend(Backend("jax-cpu"))
    from crosscheck.jax_impl.loading import make_loader

    dataset = _deck_dataset([f"img_{i:03d}.jpg" for i in range(10)])
    got = list(make_loader(dataset, 4, shuffle=True, seed=3))
    expected = list(batches(dataset, 4, order=epoch_order(10, seed=3)))
    assert [tuple(b["img"].shape) for b in got] == [(4, 3, 256, 256), (4, 3, 256, 256), (2, 3, 256, 256)]
    for batch, want in zip(got, expected):
        np.testing.assert_array_equal(np.asarray(batch["img"]), want["img"], strict=True)
