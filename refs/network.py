"""The capture topic's small network: its layers, weights and shapes (no numbers computed).

The network is the deck's ``net`` cut down to a size that a loop reference runs
in milliseconds. Layer by layer, for ``N`` images of ``C_in`` channels and
``H x W`` pixels (``//`` is floor division, as in ``MaxPool2d``)::

    name     layer                                     output shape
    conv1    Conv2d(C_in, C1, kernel_size=3, padding=1)  (N, C1, H, W)
    relu1    ReLU                                        (N, C1, H, W)
    pool1    MaxPool2d(2)                                (N, C1, H // 2, W // 2)
    conv2    Conv2d(C1, C2, kernel_size=2)               (N, C2, H // 2 - 1, W // 2 - 1)
    relu2    ReLU                                        (N, C2, H // 2 - 1, W // 2 - 1)
    flatten  Flatten                                     (N, F),  F = C2 * (H // 2 - 1) * (W // 2 - 1)
    fc       Linear(F, K)                                (N, K)

The weights are a dict keyed like torch's ``state_dict``: ``conv1.weight``
``(C1, C_in, 3, 3)``, ``conv1.bias`` ``(C1,)``, ``conv2.weight`` ``(C2, C1, 2, 2)``,
``conv2.bias`` ``(C2,)``, ``fc.weight`` ``(K, F)``, ``fc.bias`` ``(K,)``. The channel
counts come from the weights; the image size is free as long as ``H, W >= 4``
(so that ``conv2`` fits) and the flattened features match ``fc.weight``.

The argument checks all three implementations share are in
:mod:`refs.checks.capture`.
"""

from __future__ import annotations

from typing import NamedTuple

#: the named layers, in the order the forward pass runs them
LAYERS = ("conv1", "relu1", "pool1", "conv2", "relu2", "flatten", "fc")
#: the weights, keyed as ``SmallNet(...).state_dict()`` keys them
PARAM_NAMES = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias")
#: the layer whose input the course's regularizer penalizes unless told otherwise
PENALTY_LAYER = "fc"
CONV1_KERNEL = 3
CONV1_PADDING = 1
POOL = 2
CONV2_KERNEL = 2
#: the smallest image side: pooled to 2, which conv2's 2x2 kernel needs
MIN_SIZE = POOL * CONV2_KERNEL
FLOAT_DTYPES = ("float32", "float64")


class Architecture(NamedTuple):
    """The sizes the weights fix: channels, features, classes, and the one dtype."""

    in_channels: int
    channels1: int
    channels2: int
    features: int  # F, the flattened size fc takes
    classes: int
    dtype: str


def layer_input(layer: str) -> str | None:
    """The layer whose output ``layer`` receives; ``None`` for ``conv1`` (it receives ``x``)."""
    i = LAYERS.index(layer)
    return LAYERS[i - 1] if i else None


def layer_shapes(arch: Architecture, batch: int, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """The output shape of every layer for ``batch`` images of ``size = (H, W)``."""
    h, w = size
    ph, pw = h // POOL, w // POOL
    oh, ow = ph - CONV2_KERNEL + 1, pw - CONV2_KERNEL + 1
    return {
        "conv1": (batch, arch.channels1, h, w),
        "relu1": (batch, arch.channels1, h, w),
        "pool1": (batch, arch.channels1, ph, pw),
        "conv2": (batch, arch.channels2, oh, ow),
        "relu2": (batch, arch.channels2, oh, ow),
        "flatten": (batch, arch.channels2 * oh * ow),
        "fc": (batch, arch.classes),
    }


def features(channels2: int, size: tuple[int, int]) -> int:
    """F = C2 * (H // 2 - 1) * (W // 2 - 1): what flatten hands to fc."""
    return channels2 * (size[0] // POOL - CONV2_KERNEL + 1) * (size[1] // POOL - CONV2_KERNEL + 1)


def param_shapes(arch: Architecture) -> dict[str, tuple[int, ...]]:
    """The shape of every weight of ``arch``, in :data:`PARAM_NAMES` order."""
    return {
        "conv1.weight": (arch.channels1, arch.in_channels, CONV1_KERNEL, CONV1_KERNEL),
        "conv1.bias": (arch.channels1,),
        "conv2.weight": (arch.channels2, arch.channels1, CONV2_KERNEL, CONV2_KERNEL),
        "conv2.bias": (arch.channels2,),
        "fc.weight": (arch.classes, arch.features),
        "fc.bias": (arch.classes,),
    }
