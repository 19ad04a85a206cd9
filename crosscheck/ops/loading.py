"""The loading topic's collate in the op table, with torch's own ``default_collate`` as its twin.

``default_collate(samples)`` only moves data, so every implementation must
return the reference's batch exactly, leaf for leaf and dtype for dtype (no
float64 reference here: each leaf keeps its own dtype). The loaders themselves
(``make_loader``: order, workers, epochs, errors from ``__getitem__``) are
checked by ``tests/test_loading.py``, which draws its samples from the
strategies below.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

from crosscheck.optable import Case, Native, OpSpec, bad_case


class Pair(NamedTuple):
    x: np.ndarray
    y: float


#: sample structures: the deck's {"img": ...}, torchvision's (image, label), and the rest
KINDS = ("array", "pair", "deck", "nested", "named", "ordered", "float", "bool", "int")
DTYPES = ("float32", "float64", "int64", "int32", "uint8", "bool")
SHAPES = ((), (3,), (2, 3))


def make_array(i: int, dtype: str, shape: tuple) -> np.ndarray:
    """Values that encode ``i``, exact in every dtype (floats are multiples of 1/8)."""
    values = (np.arange(int(np.prod(shape))) * 7 + 13 * i) % 97
    if dtype == "bool":
        return (values % 2 == 1).reshape(shape)
    if dtype.startswith("float"):
        return (values / 8).astype(dtype).reshape(shape)
    return values.astype(dtype).reshape(shape)


def make_sample(kind: str, i: int, dtype: str = "float32", shape: tuple = (3,)):
    a = make_array(i, dtype, shape)
    return {
        "array": lambda: a,
        "pair": lambda: (a, i),
        "deck": lambda: {"img": a},
        "nested": lambda: {"x": (a, [i / 4, i % 2 == 0]), "meta": {"id": i, "name": f"s{i}"}},
        "named": lambda: Pair(a, i / 8),
        "ordered": lambda: OrderedDict([("label", i), ("img", a)]),
        "float": lambda: i / 4 + 0.5,
        "bool": lambda: i % 3 == 0,
        "int": lambda: 10 * i - 7,
    }[kind]()


class CollateCase(NamedTuple):
    kind: str
    dtype: str
    shape: tuple
    indices: tuple[int, ...]  # sample i of the batch is make_sample(kind, indices[i], ...)

    def samples(self) -> list:
        return [make_sample(self.kind, i, self.dtype, self.shape) for i in self.indices]


@st.composite
def collate_cases(draw, kinds=KINDS) -> CollateCase:
    return CollateCase(
        kind=draw(st.sampled_from(kinds), label="kind"),
        dtype=draw(st.sampled_from(DTYPES), label="dtype"),
        shape=draw(st.sampled_from(SHAPES), label="shape"),
        indices=tuple(draw(st.lists(st.integers(0, 20), min_size=1, max_size=5), label="indices")),
    )


EDITS = ("extra_key", "missing_key", "shape", "dtype", "length", "container", "scalar_type")


def edit(x, how: str):
    """``x`` with one structural change of kind ``how`` (the outermost place it applies), or None."""
    if isinstance(x, dict):
        if how == "extra_key":
            return type(x)([*x.items(), ("extra", 0)])
        if how == "missing_key":
            return type(x)(list(x.items())[1:])
        for k, v in x.items():
            changed = edit(v, how)
            if changed is not None:
                return type(x)([(key, changed if key == k else val) for key, val in x.items()])
        return None
    if isinstance(x, (tuple, list)):
        if how == "length":
            return type(x)([*x, 0]) if type(x) in (tuple, list) else tuple(x) + (0,)
        if how == "container":  # list -> tuple, tuple -> list, namedtuple -> tuple
            return list(x) if type(x) is tuple else tuple(x)
        for j, v in enumerate(x):
            changed = edit(v, how)
            if changed is not None:
                items = [changed if m == j else w for m, w in enumerate(x)]
                return type(x)(*items) if hasattr(type(x), "_fields") else type(x)(items)
        return None
    if isinstance(x, np.ndarray):
        if how == "shape":
            return np.zeros(x.shape + (1,), x.dtype)
        if how == "dtype":
            return x.astype("float32" if x.dtype != np.float32 else "float64")
        return None
    if how == "scalar_type":
        return {bool: int, int: float, float: int, str: str.encode}[type(x)](x)
    return None


class MismatchCase(NamedTuple):
    base: CollateCase
    at: int  # the edited sample, >= 1
    how: str

    def samples(self) -> list:
        samples = self.base.samples()
        samples[self.at] = edit(samples[self.at], self.how)
        return samples


@st.composite
def mismatch_cases(draw) -> MismatchCase:
    base = draw(collate_cases())
    base = base._replace(indices=base.indices + (draw(st.integers(0, 20), label="extra index"),))
    first = base.samples()[0]
    hows = [h for h in EDITS if edit(first, h) is not None]
    at = draw(st.integers(1, len(base.indices) - 1), label="at")
    return MismatchCase(base, at, draw(st.sampled_from(hows), label="how"))



# ------------------------------------------------------------ op table


def _has_plain_tuple(x) -> bool:
    if isinstance(x, tuple) and not hasattr(type(x), "_fields"):
        return True
    if isinstance(x, dict):
        return any(_has_plain_tuple(v) for v in x.values())
    if isinstance(x, (tuple, list)):
        return any(_has_plain_tuple(v) for v in x)
    return False


def _torch_tuple_becomes_list(case: Case, target) -> str | None:
    samples = case.args[0]
    if samples and _has_plain_tuple(samples[0]):
        return "torch's default_collate returns a list where the sample holds a tuple"
    return None


def _torch_default_collate(samples):
    from torch.utils.data import default_collate

    return default_collate(samples)


OPS = (
    OpSpec(
        name="default_collate",
        topic="loading",
        arg_names=("samples",),
        cases=lambda: collate_cases().map(lambda c: Case((c.samples(),), names=("samples",))),
        bad_cases=lambda: mismatch_cases().map(
            lambda m: bad_case((m.samples(),), ValueError, f"samples[{m.at}]", f"samples[{m.at}]: {m.how}",
                               ("samples",))
        ),
        natives=(
            Native("torch.utils.data.default_collate", "torch", _torch_default_collate,
                   unsupported=_torch_tuple_becomes_list),
        ),
        float64_reference=False,  # data movement: every leaf exact in its own dtype
    ),
)

PROPERTIES = ()
