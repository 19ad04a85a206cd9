"""The bench's data: per op, a deterministic example of a given size and the cases it times.

``EXAMPLES[op](scale)`` is a call of about ``scale`` million elements (the bench's
default, and the implementation-rule tests, which compare two scales);
``BENCH[op]()`` lists ``(label, Case)`` pairs that ``nox -s bench`` times, ours
against the native twin on the same framework and device. The sizes are the
deck's (``'ij,j'``, ``'bnk, bkm'``) and a ResNet stage-1 activation,
(16, 64, 56, 56) float32, for the convolution-like ops.
"""

from __future__ import annotations

import math

import numpy as np

from crosscheck.optable import Case

# ------------------------------------------------------------------ indexing


def _indexing_example(op):
    def make(scale: float = 1.0) -> Case:
        rng = np.random.default_rng(0)
        n = max(int(256 * scale**0.5), 2)
        x = rng.standard_normal((n, 64, n // 2 + 1)).astype(np.float32)
        index = rng.integers(0, 64, size=(n, 64, n // 2 + 1))
        if op == "gather":
            return Case((x, 1, index))
        return Case((np.zeros_like(x), 1, index, x))

    return make


# -------------------------------------------------------------------- einsum


def _deck_expression(subscripts: str, dims: dict[str, int]) -> Case:
    rng = np.random.default_rng(0)
    lhs = subscripts.replace(" ", "").partition("->")[0]
    return Case((subscripts, *(rng.standard_normal([dims[c] for c in t]).astype(np.float32)
                               for t in lhs.split(","))))


def _einsum_example(scale: float = 1.0) -> Case:
    """The deck's 'ikmlj,iljk,i->ijk' with x of about ``scale`` M elements."""
    n = max(2, round((scale * 1e6) ** 0.2))
    return _deck_expression("ikmlj,iljk,i->ijk", dict.fromkeys("ijklm", n))


def _matmul_example(scale: float = 1.0) -> Case:
    """A batched product ``(B, n, n) @ (B, n, n)`` of about ``scale`` M elements."""
    n = max(2, round((scale * 1e6 / 16) ** 0.5))
    rng = np.random.default_rng(0)
    return Case(tuple(rng.standard_normal((8, n, n)).astype(np.float32) for _ in range(2)))


def _einsum_bench() -> list[tuple[str, Case]]:
    return [
        ("'ij,j' 4096x4096 @ 4096", _deck_expression("ij,j", {"i": 4096, "j": 4096})),
        ("'bnk, bkm' 64x128x128 (implicit: b summed)",
         _deck_expression("bnk, bkm", dict(b=64, n=128, k=128, m=128))),
        ("'ikmlj,iljk,i->ijk' all 24", _deck_expression("ikmlj,iljk,i->ijk", dict.fromkeys("ijklm", 24))),
        ("'...ij,...jk->...ik' 64x256x256", _deck_expression("bij,bjk->bik", dict(b=64, i=256, j=256, k=256))),
    ]


def _matmul_bench() -> list[tuple[str, Case]]:
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
    return [
        ("mat @ vec 4096x4096", Case((f32(4096, 4096), f32(4096)))),
        ("bmat1 @ bmat2 64x256x256", Case((f32(64, 256, 256), f32(64, 256, 256)))),
        ("bmat1 @ mat2 64x256x256 @ 256x256", Case((f32(64, 256, 256), f32(256, 256)))),
    ]


# ------------------------------------------------------------------ convlike


def _image(scale, channels=8):
    """(2, channels, h, h) float32 of about ``scale`` M elements."""
    h = max(int((scale * 1e6 / (2 * channels)) ** 0.5), 4)
    return np.random.default_rng(0).standard_normal((2, channels, h, h)).astype(np.float32)


def _unfold_example(scale: float = 1.0) -> Case:
    return Case((_image(scale), 3, 1, 1, 1))


def _unfold_shape(image, k, p):
    """Shape of unfold's output for a stride-1 ``k`` kernel (no loop through refs)."""
    n, c, *size = image
    return (n, c * k ** len(size), math.prod(s + 2 * p - k + 1 for s in size))


def _fold_example(scale: float = 1.0) -> Case:
    x = _image(scale / 9)  # the blocks are 9 times the image
    cols = _unfold_shape(x.shape, 3, 1)
    return Case((np.random.default_rng(1).standard_normal(cols).astype(np.float32),
                 x.shape[2:], 3, 1, 1, 1))


def _conv_example(scale: float = 1.0) -> Case:
    rng = np.random.default_rng(2)
    w = rng.standard_normal((16, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    return Case((_image(scale), w, b, 1, 1, 1, 2))


def _max_pool_example(scale: float = 1.0) -> Case:
    return Case((_image(scale), 3, 2, 1, 1))


def _resnet_image(rank=2):
    """The issue's benchmark input: (16, 64, 56, 56) float32 (a ResNet stage-1 activation)."""
    shape = {1: (16, 64, 3136), 2: (16, 64, 56, 56), 3: (4, 32, 16, 28, 28)}[rank]
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _unfold_bench():
    return [("(16, 64, 56, 56) k=3 p=1", Case((_resnet_image(), 3, 1, 1, 1))),
            ("(16, 64, 3136) k=3 p=1", Case((_resnet_image(1), 3, 1, 1, 1))),
            ("(4, 32, 16, 28, 28) k=3 p=1", Case((_resnet_image(3), 3, 1, 1, 1)))]


def _fold_bench():
    cols = np.random.default_rng(1).standard_normal((16, 64 * 9, 56 * 56)).astype(np.float32)
    return [("(16, 576, 3136) -> (16, 64, 56, 56) k=3 p=1", Case((cols, (56, 56), 3, 1, 1, 1)))]


def _conv_bench():
    w = np.random.default_rng(2).standard_normal((64, 64, 3, 3)).astype(np.float32)
    return [("(16, 64, 56, 56) * (64, 64, 3, 3) p=1", Case((_resnet_image(), w, None, 1, 1, 1, 1)))]


def _max_pool_bench():
    return [("(16, 64, 56, 56) k=3 s=2 p=1", Case((_resnet_image(), 3, 2, 1, 1)))]


EXAMPLES = {
    "gather": _indexing_example("gather"),
    "scatter_add": _indexing_example("scatter_add"),
    "einsum": _einsum_example,
    "matmul": _matmul_example,
    "unfold": _unfold_example,
    "fold": _fold_example,
    "conv": _conv_example,
    "max_pool": _max_pool_example,
}
BENCH = {
    "einsum": _einsum_bench,
    "matmul": _matmul_bench,
    "unfold": _unfold_bench,
    "fold": _fold_bench,
    "conv": _conv_bench,
    "max_pool": _max_pool_bench,
}


# On a GPU the scale-1 indexing example (8 MB of values) sits in an H200's 60 MB L2, so
# its GB/s says nothing about memory: there the bench adds a case of 134 MB of values
# (and 268 MB of int64 index), larger than any cache.
GPU_SCALES = {"gather": 16.0, "scatter_add": 16.0}


def bench_cases(op: str, device: str = "cpu") -> list[tuple[str, Case]]:
    """What ``nox -s bench`` times for ``op`` on ``device``: its bench cases, else its
    example at scale 1 (and, on a GPU, at ``GPU_SCALES[op]``)."""
    if op in BENCH:
        return BENCH[op]()
    scales = [1.0] + ([GPU_SCALES[op]] if device == "cuda" and op in GPU_SCALES else [])
    return [(f"example({s})", EXAMPLES[op](s)) for s in scales]
