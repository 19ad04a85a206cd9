"""The course's ops from torch primitives (never their native twin), loading on DataLoader, capture with hooks."""

from torch_impl.capture import Regularizer, SmallNet, capture_outputs, forward, init_params, penalty
from torch_impl.convlike import conv, fold, max_pool, unfold
from torch_impl.einsum import einsum, matmul
from torch_impl.indexing import gather, scatter_add
from torch_impl.loading import default_collate, make_loader

__all__ = [
    "Regularizer",
    "SmallNet",
    "capture_outputs",
    "conv",
    "default_collate",
    "einsum",
    "fold",
    "forward",
    "gather",
    "init_params",
    "make_loader",
    "matmul",
    "max_pool",
    "penalty",
    "scatter_add",
    "unfold",
]
