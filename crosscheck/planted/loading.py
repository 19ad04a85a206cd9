"""Planted wrong collates; each must be caught by a property of default_collate."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

import refs
from crosscheck.optable import Plant
from refs.trees import map_tree


def tuples_as_lists(samples):
    """torch's own rule: the batch of tuple samples is a list."""

    def listify(x):
        if isinstance(x, tuple) and not hasattr(type(x), "_fields"):
            return [listify(v) for v in x]
        if isinstance(x, dict):
            return type(x)((k, listify(v)) for k, v in x.items())
        return x

    return listify(refs.default_collate(samples))


def float32(samples):
    """Every float64 leaf narrowed to float32, as a loader with x64 off would."""
    return map_tree(refs.default_collate(samples),
                    lambda a: a.astype(np.float32) if a.dtype == np.float64 else a, np.ndarray)


def plain_dict(samples):
    """An OrderedDict sample batched into a plain dict: the container type lost."""
    batch = refs.default_collate(samples)
    return dict(batch) if isinstance(batch, OrderedDict) else batch


def first_keys_only(samples):
    """torch's habit: dict keys that samples[0] lacks are dropped instead of rejected."""

    def trim(x, like):
        if isinstance(x, dict) and isinstance(like, dict):
            return type(x)((k, trim(x[k], like[k])) for k in like if k in x)
        return x

    return refs.default_collate([samples[0]] + [trim(s, samples[0]) for s in samples[1:]])


def reversed(samples):
    """The samples stacked in reverse order."""
    return refs.default_collate(list(samples)[::-1])


PLANTED = (
    Plant("default_collate", "tuples become lists", tuples_as_lists),
    Plant("default_collate", "float64 leaves narrowed to float32", float32),
    Plant("default_collate", "samples stacked in reverse order", reversed),
    Plant("default_collate", "an OrderedDict batched into a plain dict", plain_dict),
    Plant("default_collate", "dict keys samples[0] lacks dropped", first_keys_only),
)
