"""refs' argument checks as torch_impl calls them: run by Python, never traced by Dynamo.

The checks are host work on Python values and shapes (API.md: a bad input is refused
before any kernel runs), so under ``torch.compile`` they stay outside the graph, one
graph break per call, and the kernels after them are compiled as before.

Traced, they went wrong: torch 2.13's Dynamo under ``torch.compile(dynamic=True)``
evaluates ``j not in (a, b)`` as true for every ``j`` once ``a`` and ``b`` are ints that
became symbolic (an argument, or the result of an untraced call), so a shape check refused
every valid ``unfold`` / ``conv`` / ``max_pool`` call. Found by the regression run's
``torch_impl[compile]`` cells; the standalone reproducer is in the README (Native
differences).
"""

from __future__ import annotations

import functools
import sys

from refs import contraction
from refs.checks import capture, common, convlike, einsum, indexing, loading, training
from torch_impl._framework import torch


def host(fn):
    """``fn`` run by the Python interpreter even inside a function that torch.compile traces.

    ``torch.compiler.disable`` imports Dynamo, 1.4 s of every import of torch_impl in a
    process that never compiles (the cross-check report's eager run, a lecture). So the
    disabled twin is made on the first call after Dynamo is loaded (``torch.compile``
    loads it before it traces anything); until then nothing can be tracing the call.
    """
    disabled = None

    @functools.wraps(fn)
    def call(*args, **kwargs):
        nonlocal disabled
        if disabled is None:
            if "torch._dynamo" not in sys.modules:
                return fn(*args, **kwargs)
            disabled = torch.compiler.disable(fn, recursive=True)
        return disabled(*args, **kwargs)

    return call


require_array = host(common.require_array)
check_input = host(capture.check_input)
check_layer = host(capture.check_layer)
check_params = host(capture.check_params)
check_conv = host(convlike.check_conv)
check_fold = host(convlike.check_fold)
check_max_pool = host(convlike.check_max_pool)
check_unfold = host(convlike.check_unfold)
check_matmul = host(einsum.check_matmul)
parse_einsum = host(einsum.parse_einsum)
#: not a check, but host work on the subscripts and shapes alike (the same Dynamo slip)
contraction_plan = host(contraction.contraction_plan)
check_gather = host(indexing.check_gather)
check_index_values = host(indexing.check_index_values)
check_scatter_add = host(indexing.check_scatter_add)
check_flag = host(loading.check_flag)
check_int = host(loading.check_int)
check_loader = host(loading.check_loader)
check_samples = host(loading.check_samples)
check_batch = host(training.check_batch)
check_batches = training.check_batches  # a generator: it runs where the loop iterates it
check_loop = host(training.check_loop)
check_train_step = host(training.check_train_step)
check_epoch_samples = host(training.check_samples)  # loading's check_samples is another
