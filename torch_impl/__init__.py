"""The course's ops from torch primitives (never their native twin), loading on DataLoader, capture with hooks."""

from torch_impl import _framework  # noqa: F401 - first, so a missing torch names its extra
from torch_impl.capture import Regularizer, SmallNet, capture_outputs, forward, init_params, penalty
from torch_impl.convlike import conv, fold, max_pool, unfold
from torch_impl.einsum import einsum, matmul
from torch_impl.indexing import gather, scatter_add
from torch_impl.loading import default_collate, make_loader
from torch_impl.training import inference_loop, train_loop, train_step

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
    "inference_loop",
    "init_params",
    "make_loader",
    "matmul",
    "max_pool",
    "penalty",
    "scatter_add",
    "train_loop",
    "train_step",
    "unfold",
]
