"""Planted wrong forward passes and penalties; each must be caught by a property of its op."""

from __future__ import annotations

import numpy as np

import refs.capture as refs_capture
from crosscheck.optable import Plant
from refs.network import LAYERS


def conv1_transposed(params, x):
    """conv1's kernel read as (o, c, b, a): wrong unless every kernel is symmetric."""
    swapped = dict(params, **{"conv1.weight": np.swapaxes(params["conv1.weight"], 2, 3).copy()})
    return refs_capture.forward(swapped, x)


def keys_shifted(params, x):
    """Each intermediate filed under the next layer's name (what an off-by-one hook list does)."""
    out, kept = refs_capture.forward(params, x)
    values = list(kept.values())
    return out, dict(zip(LAYERS, values[1:] + values[:1]))


def penalty_of_output(params, x, layer):
    """The mean square of the layer's output, where the deck's regularizer takes its input."""
    _, kept = refs_capture.forward(params, x)
    return np.mean(kept[layer] ** 2)


PLANTED = (
    Plant("forward", "conv1's kernel transposed", conv1_transposed),
    Plant("forward", "intermediates keyed to the wrong layer", keys_shifted),
    Plant("penalty", "penalty of the layer's output, not its input", penalty_of_output),
)
