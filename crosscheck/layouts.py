"""Memory layouts: the same values, stored another way, for torch inputs.

Published bugs in these ops hide in the strides of an input rather than in its
values: ``torch.gather`` wrong with an expanded or ``(N, 1)``-strided index
(pytorch/pytorch#99595, #129093, #151978), ``MaxPool2d`` with dilation
differing by device on a transposed array (#76432), ``channels_last`` inputs
(#67239, #109586). So every torch argument of a case is drawn with a layout:

=================  ============================================================
``contiguous``     row-major, storage offset 0
``strided``        every second element of a buffer twice as long in the last dim
``offset``         a view that starts ``k`` elements into its storage
``expanded(d)``    stride 0 in dim ``d`` (``t[:, :1].expand(...)``); the drawn values
                   are made equal along ``d`` first, so the case stays one case
``permuted(p)``    stored in the order ``p`` and permuted back (``.permute``)
``channels_last``  ``memory_format=torch.channels_last`` (4-D) / ``_3d`` (5-D)
=================  ============================================================

A layout never changes a value, only strides, so every property's expected
result is the same. NumPy and JAX arguments are always passed as plain arrays:
JAX has no user-visible layouts (XLA chooses its own), and the refs read
elements by index. Each layout writes itself as torch code too
(:meth:`Layout.torch_code`), so a reproducer line rebuilds the exact strides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("contiguous", "strided", "offset", "expanded", "permuted", "channels_last")
#: what the default run draws (today's two); the regression run draws every kind
DEFAULT_KINDS = ("contiguous", "strided")


@dataclass(frozen=True)
class Layout:
    kind: str = "contiguous"
    dim: int | None = None  # expanded: the stride-0 dim
    perm: tuple[int, ...] | None = None  # permuted: the storage order
    offset: int = 3  # offset: elements before the view's first one

    def __str__(self) -> str:
        if self.kind == "expanded":
            return f"expanded({self.dim})"
        if self.kind == "permuted":
            return f"permuted{self.perm}"
        if self.kind == "offset":
            return f"offset({self.offset})"
        return self.kind

    # -- values ------------------------------------------------------------------------

    def prepare(self, a: np.ndarray) -> np.ndarray:
        """The values this layout can hold: equal along the expanded dim, else ``a`` itself."""
        if self.kind != "expanded":
            return a
        first = np.take(a, [0], axis=self.dim)
        return np.ascontiguousarray(np.broadcast_to(first, a.shape))

    # -- torch ---------------------------------------------------------------------------

    def apply(self, t):
        """``t`` (a contiguous tensor, on any device) with this layout's strides; values unchanged."""
        import torch

        if self.kind == "contiguous":
            return t
        if self.kind == "strided":
            return t.repeat_interleave(2, dim=-1)[..., ::2]
        if self.kind == "offset":
            flat = torch.cat([t.new_zeros(self.offset), t.reshape(-1)])
            return flat[self.offset:].view(t.shape)
        if self.kind == "expanded":
            index = [slice(None)] * t.dim()
            index[self.dim] = slice(0, 1)
            return t[tuple(index)].contiguous().expand(t.shape)
        if self.kind == "permuted":
            return t.permute(self.perm).contiguous().permute(_inverse(self.perm))
        if self.kind == "channels_last":
            fmt = torch.channels_last if t.dim() == 4 else torch.channels_last_3d
            return t.contiguous(memory_format=fmt)
        raise ValueError(f"Layout.apply(): unknown layout {self.kind!r}")

    def torch_code(self, tensor: str) -> str:
        """Source that gives ``tensor`` (an expression for a contiguous tensor) this layout.

        For ``expanded``, ``tensor`` must already hold the values (equal along the dim).
        """
        if self.kind == "contiguous":
            return tensor
        if self.kind == "strided":
            return f"{tensor}.repeat_interleave(2, dim=-1)[..., ::2]"
        if self.kind == "offset":
            return (f"(lambda t: torch.cat([t.new_zeros({self.offset}), t.reshape(-1)])"
                    f"[{self.offset}:].view(t.shape))({tensor})")
        if self.kind == "expanded":
            return (f"(lambda t: t.narrow({self.dim}, 0, 1).contiguous().expand(t.shape))"
                    f"({tensor})")
        if self.kind == "permuted":
            return f"{tensor}.permute({self.perm}).contiguous().permute({_inverse(self.perm)})"
        if self.kind == "channels_last":
            return (f"(lambda t: t.contiguous(memory_format=torch.channels_last if t.dim() == 4 "
                    f"else torch.channels_last_3d))({tensor})")
        raise ValueError(f"Layout.torch_code(): unknown layout {self.kind!r}")


CONTIGUOUS = Layout()


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


def applicable(kind: str, a: np.ndarray) -> bool:
    """Whether ``kind`` can store ``a`` differently from contiguous."""
    if kind == "contiguous":
        return True
    if a.ndim == 0 or a.size == 0:
        return False  # nothing to stride: such an argument stays contiguous
    if kind == "expanded":
        return any(n > 1 for n in a.shape)
    if kind == "permuted":
        return a.ndim >= 2
    if kind == "channels_last":
        return a.ndim in (4, 5)
    return True
