"""unfold, fold, conv and max_pool: strategies, faults, native twins, oracles, the large tier,
historic cases and their own properties.

How a call is read follows :mod:`refs.checks.convlike`: the spatial rank comes
from ``weight`` for conv, from the tuple arguments (or ``spatial_dims=``, which
the positional calls here never pass) for unfold / max_pool, else from
``input.ndim - 2``; from fold's first tuple argument, else 2. An input of rank
``spatial + 1`` is unbatched, as in torch. The strategies draw such inputs too
(about one case in four), always with a tuple argument where the rule needs one
to read them as unbatched.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

import refs
from crosscheck import sizes
from crosscheck.autodiff import vjp
from crosscheck.compare import Comparison, assert_close
from crosscheck.layouts import Layout
from crosscheck.optable import (
    Case,
    Fault,
    Historic,
    Native,
    OpSpec,
    Property,
    Target,
    bad_calls,
    bad_case,
    call_of,
)
from crosscheck.strategies import BOOLEANS, DATA_DTYPES, FLOAT_DTYPES, pick, values
from crosscheck.tolerance import EXACT, rounding_bound
from refs.checks.convlike import check_conv, check_fold, check_max_pool, check_unfold
from refs.convlike import lowest, overlap_counts

UNFOLD_ARGS = ("input", "kernel_size", "dilation", "padding", "stride")
FOLD_ARGS = ("input", "output_size", "kernel_size", "dilation", "padding", "stride")
CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
MAX_POOL_ARGS = ("input", "kernel_size", "stride", "padding", "dilation")

# ---------------------------------------------------------------- strategies
# Geometry comes from short lists, so shapes repeat (a new shape costs JAX a
# compilation); the spatial size is drawn *after* the kernel, from the sizes
# the dilated kernel fits in once padded -- including the exact fit.

SPATIAL_RANKS = (1, 2, 3)
BATCHES = (0,) + (1, 2) * 3  # batch 0 is legal and drawn, but seldom: it is an empty case
CHANNELS = (1, 2, 3)
KERNELS = (1, 2, 3)
DILATIONS = (1, 2)
PADDINGS = (0, 1, 2)
STRIDES = (1, 2, 3)
#: spatial sizes per rank: smaller in 3-d, where the element count is a cube
SPATIAL = {1: (1, 2, 3, 5, 7), 2: (1, 2, 3, 5), 3: (1, 2, 3, 4)}
#: about one case in four is unbatched, ``(C, *size)``
UNBATCHED = (False, False, False, True)


def _lead(g, rows: int) -> tuple[int, ...]:
    """The dims before the spatial ones (or before ``L``) of an array with ``rows`` channels:
    ``(N, rows)``, or ``(rows,)`` unbatched (``g``: a Window or a refs Geometry)."""
    return (rows,) if g.unbatched else (g.batch, rows)


class Window(NamedTuple):
    """A valid sliding-block geometry, one entry per spatial dim."""

    batch: int  # 1 when unbatched (the batch of input[None])
    channels: int
    size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    stride: tuple[int, ...]
    unbatched: bool = False

    @property
    def image(self) -> tuple[int, ...]:
        """The input's shape: ``(N, C, *size)``, or ``(C, *size)`` unbatched."""
        return ((self.channels,) if self.unbatched else (self.batch, self.channels)) + self.size

    @property
    def blocks(self) -> tuple[int, ...]:
        return check_unfold(np.empty(self.image, np.int8), *self[3:7],
                            spatial_dims=len(self.size)).blocks


@st.composite
def windows(draw, *, pool=False, grad_pool=False, tiling=False, channels=CHANNELS):
    """A valid geometry. ``pool``: padding <= kernel // 2 (torch's pooling rule);
    ``grad_pool``: also dilation 1 where padded, so no window lies wholly in the
    padding; ``tiling``: stride == kernel, dilation 1, blocks covering the image once."""
    rank = draw(pick(SPATIAL_RANKS))
    dims = []
    for _ in range(rank):
        k = draw(pick(KERNELS))
        if tiling:
            blocks = draw(pick((1, 2, 3)))
            p = draw(pick(p for p in range(k) if k * blocks - 2 * p >= 1))
            dims.append((k * blocks - 2 * p, k, 1, p, k))
            continue
        p = draw(pick(p for p in PADDINGS if not (pool or grad_pool) or p <= k // 2))
        d = 1 if grad_pool and p else draw(pick(DILATIONS))
        s = draw(pick(STRIDES))
        smallest = max(1, d * (k - 1) + 1 - 2 * p)  # the padded input just holds one block
        n = draw(pick(sorted({smallest} | {n for n in SPATIAL[rank] if n >= smallest})))
        dims.append((n, k, d, p, s))
    size, k, d, p, s = (tuple(col) for col in zip(*dims))
    unbatched = draw(pick(UNBATCHED), label="unbatched")
    batch = 1 if unbatched else draw(pick(BATCHES))
    return Window(batch, draw(pick(channels)), size, k, d, p, s, unbatched)


def _per_dim_args(draw, values_: list, *, need_tuple: bool) -> list:
    """Each per-dim value as an int (when every dim agrees, sometimes) or a tuple.

    ``need_tuple``: at least one must stay a tuple, for the spatial rank to be read
    from it (an unbatched input; fold's 1-d and 3-d cases). ``None`` stays ``None``.
    """
    out = [v if v is None or len(set(v)) > 1 or not draw(BOOLEANS) else v[0]
           for v in values_]
    if need_tuple and not any(isinstance(v, tuple) for v in out):
        i = draw(pick(i for i, v in enumerate(out) if v is not None))
        out[i] = values_[i]
    return out


@st.composite
def unfold_cases(draw, dtypes=DATA_DTYPES, integral=False, window=None):
    g = draw(window if window is not None else windows())
    x = draw(values(draw(pick(dtypes)), g.image, integral=integral))
    per_dim = _per_dim_args(draw, [g.kernel_size, g.dilation, g.padding, g.stride],
                            need_tuple=g.unbatched)
    return Case((x, *per_dim), names=UNFOLD_ARGS)


@st.composite
def fold_cases(draw, dtypes=DATA_DTYPES, integral=False):
    g = draw(windows())
    shape = _lead(g, g.channels * math.prod(g.kernel_size)) + (math.prod(g.blocks),)
    cols = draw(values(draw(pick(dtypes)), shape, integral=integral))
    # fold reads its spatial rank from its first tuple argument, 2 when all are ints
    per_dim = _per_dim_args(draw, [g.size, g.kernel_size, g.dilation, g.padding, g.stride],
                            need_tuple=len(g.size) != 2)
    return Case((cols, *per_dim), names=FOLD_ARGS)


@st.composite
def conv_cases(draw, dtypes=DATA_DTYPES):
    g = draw(windows(channels=(1, 2, 3, 4)))
    groups = draw(pick(q for q in (1, 2, 3, 4) if g.channels % q == 0))
    out_channels = groups * draw(pick((1, 2)))
    dtype = draw(pick(dtypes))
    x = draw(values(dtype, g.image))
    w = draw(values(dtype, (out_channels, g.channels // groups) + g.kernel_size))
    b = draw(st.one_of(st.none(), values(dtype, (out_channels,))))
    # conv reads its spatial rank from weight: ints and tuples alike, batched or not
    per_dim = _per_dim_args(draw, [g.stride, g.padding, g.dilation], need_tuple=False)
    return Case((x, w, b, *per_dim, groups), names=CONV_ARGS)


@st.composite
def max_pool_cases(draw, dtypes=DATA_DTYPES, *, unique=False):
    g = draw(windows(grad_pool=True) if unique else windows(pool=True))
    dtype = draw(pick(dtypes))
    if unique:  # distinct values: the max, and so its gradient, is unambiguous
        count = math.prod(g.image)
        order = draw(st.permutations(range(count)))
        x = ((np.array(order, dtype=np.float64) - count / 2) * 0.25).astype(dtype).reshape(g.image)
    else:
        x = draw(values(dtype, g.image))
    default = g.stride == g.kernel_size and draw(BOOLEANS)
    per_dim = _per_dim_args(draw, [g.kernel_size, None if default else g.stride, g.padding,
                                   g.dilation], need_tuple=g.unbatched)
    return Case((x, *per_dim), names=MAX_POOL_ARGS)


# ------------------------------------------------------------ bad input
# Each fault breaks one thing of a valid call and says what API.md promises for
# it. A fault that rewrites a per-dim argument writes it as a tuple of the
# call's spatial rank, which reads the same rank as before (so the broken thing
# is the only thing that changed).

CHECKS = {"unfold": check_unfold, "fold": check_fold, "max_pool": check_max_pool,
          "conv": lambda **call: check_conv(**call).blocks}
#: the Geometry field behind each per-dim argument
FIELD = {"kernel_size": "kernel_size", "dilation": "dilation", "padding": "padding",
         "stride": "stride", "output_size": "size"}


def _geometry(op: str, call: dict):
    """The normalized geometry of a valid call (refs.checks' Geometry)."""
    return CHECKS[op](**call)


def _set_entry(call: dict, g, name: str, axis: int, value) -> dict:
    entries = list(getattr(g, FIELD[name]))
    entries[axis] = value
    return {**call, name: tuple(entries)}


def _per_dim_fault(op: str, names: tuple[str, ...], value_of):
    """``value_of(draw, g, name, axis)`` written into one entry of one of ``names``."""

    def apply(draw, call):
        g = _geometry(op, call)
        name = draw(pick(names))
        axis = draw(st.integers(0, g.spatial_dims - 1))
        return _set_entry(call, g, name, axis, value_of(draw, g, name, axis)), name

    return apply


def _larger_kernel(draw, g, axis) -> int:
    """A kernel entry whose dilated span is longer than the padded input along ``axis``."""
    padded = g.size[axis] + 2 * g.padding[axis]
    return (padded - 1) // g.dilation[axis] + 2 + draw(st.integers(0, 1))


def _grow_kernel(op):
    def apply(draw, call):
        g = _geometry(op, call)
        axis = draw(st.integers(0, g.spatial_dims - 1))
        k = _larger_kernel(draw, g, axis)
        broken = _set_entry(call, g, "kernel_size", axis, k)
        if op == "fold":  # keep input.size(1) a multiple of the larger kernel's volume
            kernel = broken["kernel_size"]
            rows = g.channels * math.prod(kernel)
            broken["input"] = np.zeros(_lead(g, rows) + (g.num_blocks,), call["input"].dtype)
        return broken

    return apply


def _keep_rank(op: str, broken: dict, g, name: str, names: tuple[str, ...], draw) -> dict:
    """``broken`` with another per-dim argument written as a tuple of the call's rank, so
    that the rank is read as before whatever ``name`` became: for unfold / max_pool any
    other one (alone, a long tuple or a scalar in ``name`` would change the rank the input
    is read with); for fold output_size, which comes first. conv reads weight's rank."""
    if op in ("unfold", "max_pool"):
        other = draw(pick(n for n in names if n != name))
        broken[other] = getattr(g, FIELD[other])
    elif op == "fold":
        broken["output_size"] = g.size
    return broken


def _wrong_length(op, names):
    """One per-dim argument with an entry too many."""

    def apply(draw, call):
        g = _geometry(op, call)
        name = draw(pick(names))
        broken = {**call, name: getattr(g, FIELD[name]) + (1,)}
        return _keep_rank(op, broken, g, name, names, draw), name

    return apply


def _not_an_int(op, names):
    """One per-dim argument a float, or a tuple with a float entry (a TypeError).

    The floats are never integral: crosscheck.modes keys its jit cache by the static
    arguments' ``==``, where ``2.0 == 2`` and ``True == 1``, so a jit target would reuse
    the computation traced for the valid int and never reach the check (jax.jit itself
    keeps them apart).
    """

    def apply(draw, call):
        g = _geometry(op, call)
        name = draw(pick(names))
        v = getattr(g, FIELD[name])
        if len(set(v)) == 1 and draw(BOOLEANS):
            bad = v[0] + 0.5
        else:
            bad = (v[0] + 0.5,) + v[1:]
        return _keep_rank(op, {**call, name: bad}, g, name, names, draw), name

    return apply


def _bad_input_rank(op):
    """An input whose rank is neither ``spatial + 1`` nor ``spatial + 2`` under the rule."""

    def apply(draw, call):
        x = call["input"]
        if op == "fold":
            ranks = (1, 4)
        else:
            g = _geometry(op, call)
            r = g.spatial_dims
            per_dim = [call[n] for n in ("kernel_size", "dilation", "padding", "stride")
                       if n in call]
            if op == "conv" or any(isinstance(v, (tuple, list)) for v in per_dim):
                ranks = (r, r + 3)  # the rank is set by weight / a tuple: the input must fit it
            else:
                ranks = (2, 6)  # all ints: input.ndim - 2 is the rank, and it must be 1, 2 or 3
        rank = draw(pick(ranks))
        shape = x.shape[-rank:] if rank <= x.ndim else (1,) * (rank - x.ndim) + x.shape
        return {**call, "input": np.zeros(shape, x.dtype)}

    return apply


def _common_faults(op: str, per_dim: tuple[str, ...], kernel_faults: bool = True):
    """The faults of the sliding geometry that unfold, fold, conv and max_pool share."""
    positive = lambda draw, g, name, axis: draw(pick((0, -1)))  # noqa: E731
    faults = [
        Fault("non-positive stride", "stride", ValueError,
              _per_dim_fault(op, ("stride",), positive)),
        Fault("non-positive dilation", "dilation", ValueError,
              _per_dim_fault(op, ("dilation",), positive)),
        Fault("negative padding", "padding", ValueError,
              _per_dim_fault(op, ("padding",), lambda draw, g, n, a: -draw(st.integers(1, 2)))),
        Fault("a per-dim argument with a wrong number of entries", "kernel_size", ValueError,
              _wrong_length(op, per_dim)),
        Fault("a per-dim argument not an int or a tuple of ints", "kernel_size", TypeError,
              _not_an_int(op, per_dim)),
        Fault("input of a bad rank", "input", ValueError, _bad_input_rank(op)),
    ]
    if kernel_faults:
        faults += [
            Fault("kernel larger than the padded input", "kernel_size", ValueError,
                  _grow_kernel(op)),
            Fault("non-positive kernel", "kernel_size", ValueError,
                  _per_dim_fault(op, ("kernel_size",), positive)),
        ]
    return tuple(faults)


def _with_empty_dim(op):
    def apply(draw, call):
        g = _geometry(op, call)
        x = call["input"]
        shape = list(x.shape)
        shape[draw(st.integers(0 if g.unbatched else 1, x.ndim - 1))] = 0
        return {**call, "input": np.zeros(shape, x.dtype)}

    return apply


UNFOLD_FAULTS = _common_faults("unfold", ("kernel_size", "dilation", "padding", "stride")) + (
    Fault("input with an empty channel or spatial dim", "input", ValueError,
          _with_empty_dim("unfold")),
)
MAX_POOL_FAULTS = _common_faults("max_pool", ("kernel_size", "stride", "padding", "dilation")) + (
    Fault("input with an empty channel or spatial dim", "input", ValueError,
          _with_empty_dim("max_pool")),
    Fault("padding more than half the kernel", "padding", ValueError,
          _per_dim_fault("max_pool", ("padding",),
                         lambda draw, g, n, axis: g.kernel_size[axis] // 2 + draw(st.integers(1, 2)))),
)


def _fold_rows(draw, call):
    """input.size(1) not a positive multiple of prod(kernel_size)."""
    g = _geometry("fold", call)
    rows = g.channels * g.kernel_volume
    rows = rows + draw(st.integers(1, g.kernel_volume - 1)) if g.kernel_volume > 1 else 0
    return {**call, "input": np.zeros(_lead(g, rows) + (g.num_blocks,), call["input"].dtype)}


def _fold_count(draw, call):
    """input.size(2) (L) not the number of blocks that output_size holds."""
    g = _geometry("fold", call)
    count = g.num_blocks + draw(pick((1, -1) if g.num_blocks > 1 else (1,)))
    return {**call, "input": np.zeros(_lead(g, g.channels * g.kernel_volume) + (count,),
                                      call["input"].dtype)}


FOLD_FAULTS = _common_faults("fold", ("kernel_size", "dilation", "padding", "stride")) + (
    Fault("input.size(1) not a positive multiple of prod(kernel_size)", "input", ValueError,
          _fold_rows),
    Fault("input.size(2) not the block count of output_size", "output_size", ValueError,
          _fold_count),
    Fault("non-positive output_size", "output_size", ValueError,
          _per_dim_fault("fold", ("output_size",), lambda draw, g, n, a: 0)),
)


def _weight_with(call, shape=None, dtype=None):
    w = call["weight"]
    return {**call, "weight": np.zeros(w.shape if shape is None else shape,
                                       w.dtype if dtype is None else dtype)}


def _conv_kernel_entry(value_of):
    """weight (conv's kernel) with spatial entry ``value_of(draw, g, axis)``."""

    def apply(draw, call):
        g = _geometry("conv", call)
        axis = draw(st.integers(0, g.spatial_dims - 1))
        shape = list(call["weight"].shape)
        shape[2 + axis] = value_of(draw, g, axis)
        return _weight_with(call, shape)

    return apply


def _conv_weight_rank(draw, call):
    w = call["weight"]
    rank = draw(pick((2, 6)))  # 0 or 4 spatial dims
    shape = w.shape[:rank] if rank <= w.ndim else w.shape + (1,) * (rank - w.ndim)
    return _weight_with(call, shape)


def _conv_in_channels(draw, call):
    shape = list(call["weight"].shape)
    shape[1] += 1
    return _weight_with(call, shape)


def _conv_out_channels(draw, call):
    """out_channels not a multiple of groups (needs groups > 1)."""
    groups = call["groups"]
    if groups == 1:
        return None
    shape = list(call["weight"].shape)
    shape[0] = groups * draw(st.integers(0, 1)) + draw(st.integers(1, groups - 1))
    return _weight_with(call, shape)


def _other_float(dtype) -> str:
    return "float32" if np.dtype(dtype) != np.float32 else "float64"


CONV_FAULTS = _common_faults("conv", ("stride", "padding", "dilation"), kernel_faults=False) + (
    Fault("input with an empty channel or spatial dim", "input", ValueError,
          _with_empty_dim("conv")),
    Fault("weight's kernel larger than the padded input", "weight", ValueError,
          _conv_kernel_entry(lambda draw, g, axis: _larger_kernel(draw, g, axis))),
    Fault("weight with an empty kernel", "weight", ValueError,
          _conv_kernel_entry(lambda draw, g, axis: 0)),
    Fault("weight of a bad rank", "weight", ValueError, _conv_weight_rank),
    Fault("weight.size(1) * groups != in_channels", "weight", ValueError, _conv_in_channels),
    Fault("out_channels not a multiple of groups", "groups", ValueError, _conv_out_channels),
    Fault("groups not dividing the channels", "groups", ValueError,
          lambda draw, call: {**call, "groups": _geometry("conv", call).channels + 1}),
    Fault("groups not a positive int", "groups", ValueError,
          lambda draw, call: {**call, "groups": draw(pick((0, -1, 1.5)))}),
    Fault("bias of a wrong shape", "bias", ValueError,
          lambda draw, call: {**call, "bias": np.zeros(
              draw(pick(((call["weight"].shape[0] + 1,),
                                    (call["weight"].shape[0], 1)))), call["input"].dtype)}),
    Fault("weight of another dtype", "weight", TypeError,
          lambda draw, call: _weight_with(call, dtype=_other_float(call["input"].dtype))),
    Fault("bias of another dtype", "bias", TypeError,
          lambda draw, call: {**call, "bias": np.zeros(call["weight"].shape[:1],
                                                       _other_float(call["input"].dtype))}),
)

# ------------------------------------------------------------ native twins
# torch's own F.unfold / F.fold take 2 spatial dims only and have no integer
# kernels; rather than restrict the strategies to what torch can do (and test
# ours less), each native declares the calls it cannot take, via ``unsupported``:
# those cases are counted in the report, not checked -- also where another
# property calls the native as a sibling (the adjoint's fold twin).


def _call(case: Case, names: tuple[str, ...]) -> dict:
    case = case.named(names)
    return {name: case[name] for name in names}


def _on_cuda_integers(case: Case, target: Target) -> bool:
    return target.backend.device == "cuda" and np.issubdtype(case["input"].dtype, np.integer)


def _torch_im2col_unsupported(case, target):
    g = (check_unfold if case.names == UNFOLD_ARGS else check_fold)(*case.args)
    if g.spatial_dims != 2:
        return "F.unfold / F.fold take exactly 2 spatial dims (torch#30798, torch#105448)"
    if np.issubdtype(case["input"].dtype, np.integer):
        return ("F.unfold / F.fold have no integer kernels: im2col/col2im not implemented for "
                "ints (torch#44989)")
    return None


def _torch_conv_unsupported(case, target):
    if _on_cuda_integers(case, target):
        return "torch has no integer convolution on CUDA"
    if np.issubdtype(case["input"].dtype, np.integer) and np.any(np.asarray(case["dilation"]) > 1):
        return ("F.conv* with dilation > 1 has no integer kernel ('slow_conv_dilated<>' not "
                "implemented for 'Int')")
    return None


# XLA:GPU hands every convolution to cuDNN, whose only integer convolution is int8 in and
# int8/f32 out; for any other integer dtype compilation fails with "UNIMPLEMENTED: Can't
# lower one or more integer convolutions to idioms supported by CuDNN" (seen on an H200,
# jax 0.11.2 + CUDA 13, for lax.conv_general_dilated and conv_general_dilated_patches,
# which is a convolution with a one-hot kernel). XLA:CPU has its own integer convolution.
_XLA_GPU_INT_CONV = ("XLA:GPU lowers convolutions to cuDNN, which has no integer convolution "
                     "but int8 -> int8/f32 (UNIMPLEMENTED at compile time)")


def _jax_conv_unsupported(case, target):
    return _XLA_GPU_INT_CONV if _on_cuda_integers(case, target) else None


def _jax_transpose_unsupported(case, target):
    if np.issubdtype(case["input"].dtype, np.integer):
        return "jax.linear_transpose is for floating inputs: an integer input's cotangent is float0"
    return None


def _patches_vjp_known(prop, drawn, target):
    # jaxlib 0.10.2 on CPU: the float64 VJP of conv_general_dilated_patches with padding and a
    # stride > 1 aborts the process in XLA's algebraic simplifier (CHECK "Window dimensions do not
    # match RHS shape"), e.g. x of (2, 3, 3, 4), kernel (3, 2), stride (3, 2), padding (2, 1)
    # (the README has the reproducer). An abort cannot be caught, so it is never called.
    if prop != "grad_is_fold":
        return None
    case = call_of(drawn).named(UNFOLD_ARGS)
    if (case["input"].dtype == np.float64 and np.any(np.asarray(case["padding"]) > 0)
            and np.any(np.asarray(case["stride"]) > 1)):
        return ("XLA aborts the process in the float64 VJP of conv_general_dilated_patches "
                "with padding and stride > 1 (algebraic_simplifier CHECK, jaxlib 0.10.2)")
    return None


def _reduce_window_known(prop, drawn, target):
    case = call_of(drawn).named(MAX_POOL_ARGS)
    if prop == "grad_goes_to_the_max" and np.any(np.asarray(case["dilation"]) > 1):
        return "jax has no VJP of reduce_window max with window dilation (select_and_gather)"
    return None


def _torch_max_pool_unsupported(case, target):
    if _on_cuda_integers(case, target):
        return "torch has no integer max-pool kernels on CUDA"
    g = check_max_pool(*case.args)
    if g.spatial_dims == 1 and np.issubdtype(case["input"].dtype, np.integer):
        return "F.max_pool1d has no integer kernel ('max_pool1d_impl' not implemented for 'Long')"
    return None


def torch_unfold(input, kernel_size, dilation, padding, stride):
    import torch.nn.functional as F

    return F.unfold(input, kernel_size, dilation, padding, stride)


def torch_fold(input, output_size, kernel_size, dilation, padding, stride):
    import torch.nn.functional as F

    return F.fold(input, output_size, kernel_size, dilation, padding, stride)


def torch_conv(input, weight, bias, stride, padding, dilation, groups):
    import torch.nn.functional as F

    conv = (F.conv1d, F.conv2d, F.conv3d)[weight.dim() - 3]  # torch's rule: weight's rank
    return conv(input, weight, bias, stride, padding, dilation, groups)


def torch_max_pool(input, kernel_size, stride, padding, dilation):
    import torch.nn.functional as F

    from torch_impl._host import check_max_pool as host_check  # untraced under torch.compile

    # the rank as the API reads it (a tuple argument, else input.ndim - 2), so that an
    # unbatched (C, *size) input reaches the pool of its spatial rank, as torch reads it
    rank = host_check(input, kernel_size, stride, padding, dilation).spatial_dims
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[rank - 1]
    return pool(input, kernel_size, stride, padding, dilation)


def _lax_padding(padding):
    return [(p, p) for p in padding]


def _batched(x, g):
    return x[None] if g.unbatched else x


def _unbatched(out, g):
    return out[0] if g.unbatched else out


def jax_patches(input, kernel_size, dilation, padding, stride):
    from jax import lax

    g = check_unfold(input, kernel_size, dilation, padding, stride)  # int-or-tuple -> tuples
    out = lax.conv_general_dilated_patches(
        _batched(input, g), g.kernel_size, g.stride, _lax_padding(g.padding),
        rhs_dilation=g.dilation, precision=lax.Precision.HIGHEST)
    return _unbatched(out.reshape(g.batch, g.channels * g.kernel_volume, g.num_blocks), g)


def jax_patches_transpose(input, output_size, kernel_size, dilation, padding, stride):
    import jax

    g = check_fold(input, output_size, kernel_size, dilation, padding, stride)
    # Transposing the *padded* patches op aborts the process in XLA 0.10.2 for some 3-d
    # geometries (algebraic_simplifier CHECK "Window dimensions do not match RHS shape"),
    # so transpose the unpadded op on the padded image and crop the padding off.
    image = jax.ShapeDtypeStruct((g.batch, g.channels) + g.padded, input.dtype)  # shape only
    (out,) = jax.linear_transpose(
        lambda x: jax_patches(x, g.kernel_size, g.dilation, 0, g.stride), image)(
            _batched(input, g))
    return _unbatched(out[(..., *(slice(p, p + n) for p, n in zip(g.padding, g.size)))], g)


def lax_conv(input, weight, bias, stride, padding, dilation, groups):
    from jax import lax

    g = check_conv(input, weight, bias, stride, padding, dilation, groups).blocks
    out = lax.conv_general_dilated(
        _batched(input, g), weight, g.stride, _lax_padding(g.padding), rhs_dilation=g.dilation,
        feature_group_count=groups, precision=lax.Precision.HIGHEST)
    if bias is not None:
        out = out + bias.reshape((-1,) + (1,) * g.spatial_dims)
    return _unbatched(out, g)


def lax_reduce_window_max(input, kernel_size, stride, padding, dilation):
    from jax import lax

    g = check_max_pool(input, kernel_size, stride, padding, dilation)
    x = _batched(input, g)
    out = lax.reduce_window(
        x, np.array(lowest(x.dtype), x.dtype), lax.max, (1, 1) + g.kernel_size, (1, 1) + g.stride,
        [(0, 0), (0, 0)] + _lax_padding(g.padding), window_dilation=(1, 1) + g.dilation)
    return _unbatched(out, g)


_NORMALIZED = "int-or-tuple arguments normalized by refs.checks.convlike"
_UNBATCHED = "an unbatched input run as input[None]"
UNFOLD_NATIVES = (
    Native("F.unfold", "torch", torch_unfold, "2 spatial dims, floats only",
           unsupported=_torch_im2col_unsupported),
    Native("lax.conv_general_dilated_patches", "jax", jax_patches,
           f"reshaped to (N, C*K, L); {_UNBATCHED}; {_NORMALIZED}",
           unsupported=_jax_conv_unsupported, known_difference=_patches_vjp_known),
)
FOLD_NATIVES = (
    Native("F.fold", "torch", torch_fold, "2 spatial dims, floats only",
           unsupported=_torch_im2col_unsupported),
    Native("jax.linear_transpose(patches)", "jax", jax_patches_transpose,
           "JAX has no col2im: the transpose of unpadded conv_general_dilated_patches on the "
           f"padded image, cropped; {_UNBATCHED}; {_NORMALIZED}",
           unsupported=_jax_transpose_unsupported),
)
CONV_NATIVES = (
    Native("F.conv1d/2d/3d", "torch", torch_conv, "picked by weight's rank",
           unsupported=_torch_conv_unsupported),
    Native("lax.conv_general_dilated", "jax", lax_conv,
           f"feature_group_count=groups, bias added after; {_UNBATCHED}; {_NORMALIZED}",
           unsupported=_jax_conv_unsupported),
)
MAX_POOL_NATIVES = (
    Native("F.max_pool1d/2d/3d", "torch", torch_max_pool,
           "picked by the spatial rank as API.md reads it",
           unsupported=_torch_max_pool_unsupported),
    Native("lax.reduce_window(max)", "jax", lax_reduce_window_max,
           f"init -inf (the integer minimum for ints), symmetric padding; {_UNBATCHED}; "
           f"{_NORMALIZED}",
           known_difference=_reduce_window_known),
)

# ------------------------------------------------------------ oracles
# The truth of the large tier: vectorized NumPy in float64, each held against refs on
# the small tier. Loops run over the (at most 3) spatial dims only, never over data.


def _window_view(padded: np.ndarray, g) -> np.ndarray:
    """The read-only view ``(N, C, *kernel_size, *blocks)`` of a padded batched image.

    Kernel offset ``j`` and block ``i`` sit at ``dilation * j + stride * i``: a strided
    address, so the view is one ``as_strided`` over the array's own strides, no copy.
    """
    n, c, *spatial = padded.strides
    shape = (g.batch, g.channels) + g.kernel_size + g.blocks
    strides = ((n, c) + tuple(s * d for s, d in zip(spatial, g.dilation))
               + tuple(s * t for s, t in zip(spatial, g.stride)))
    return np.lib.stride_tricks.as_strided(padded, shape, strides, writeable=False)


def _pad(x: np.ndarray, padding, value=0) -> np.ndarray:
    return np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding], constant_values=value)


def np_unfold(input, kernel_size, dilation=1, padding=0, stride=1, *, spatial_dims=None):
    x = np.asarray(input)
    g = check_unfold(x, kernel_size, dilation, padding, stride, spatial_dims=spatial_dims)
    view = _window_view(_pad(_batched(x, g), g.padding), g)
    return _unbatched(view.reshape(g.batch, g.channels * g.kernel_volume, g.num_blocks), g)


def _fold_targets(g) -> np.ndarray:
    """``(K, L)``: the flat position in the padded image of block ``l``'s element ``j``."""
    r = g.spatial_dims
    at = np.zeros(g.kernel_size + g.blocks, np.int64)
    place = 1
    for d in reversed(range(r)):  # row-major strides of the padded image
        offsets = (np.arange(g.kernel_size[d]) * g.dilation[d]).reshape(
            [-1 if a == d else 1 for a in range(2 * r)])
        starts = (np.arange(g.blocks[d]) * g.stride[d]).reshape(
            [-1 if a == r + d else 1 for a in range(2 * r)])
        at = at + (offsets + starts) * place
        place *= g.padded[d]
    return at.reshape(g.kernel_volume, g.num_blocks)


def np_fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    cols = np.asarray(input)
    g = check_fold(cols, output_size, kernel_size, dilation, padding, stride)
    cols = _batched(cols, g).reshape(g.batch, g.channels, g.kernel_volume, g.num_blocks)
    out = np.zeros((g.batch, g.channels, math.prod(g.padded)), cols.dtype)
    # np.add.at adds every duplicate (a fancy-index += would keep one per position)
    np.add.at(out, (slice(None), slice(None), _fold_targets(g)), cols)
    out = out.reshape((g.batch, g.channels) + g.padded)
    return _unbatched(out[(..., *(slice(p, p + n) for p, n in zip(g.padding, g.size)))], g)


def np_conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    x, weight = np.asarray(input), np.asarray(weight)
    cg = check_conv(x, weight, bias, stride, padding, dilation, groups)
    g, G = cg.blocks, cg.groups
    rows = g.channels // G * g.kernel_volume
    cols = np_unfold(_batched(x, g), g.kernel_size, g.dilation, g.padding, g.stride)
    w = weight.reshape(G, cg.out_channels // G, rows)
    # (G, O, R) @ (N, G, R, L) -> (N, G, O, L): one matrix product per batch and group
    out = np.matmul(w, cols.reshape(g.batch, G, rows, g.num_blocks))
    out = out.reshape((g.batch, cg.out_channels) + g.blocks)
    if bias is not None:
        out = out + np.asarray(bias).reshape((-1,) + (1,) * g.spatial_dims)
    return _unbatched(out, g)


def np_max_pool(input, kernel_size, stride=None, padding=0, dilation=1, *, spatial_dims=None):
    x = np.asarray(input)
    g = check_max_pool(x, kernel_size, stride, padding, dilation, spatial_dims=spatial_dims)
    view = _window_view(_pad(_batched(x, g), g.padding, lowest(x.dtype)), g)
    # np.max propagates NaN, as torch (and refs) do
    return _unbatched(view.max(axis=tuple(range(2, 2 + g.spatial_dims))), g)


# ------------------------------------------------------------ the large tier
# An input (fold: the image it folds into) of 2**16-2**20 elements, batch x channels
# of 64 or more, one spatial dim of 64 or more and the others as large as the count
# allows (in 3-d, 64 x 16 x 16 is already 2**14 per image). The per-dim geometry is
# drawn until the unfolded array (N, C*K, L) stays within a budget, so that no
# implementation materializes hundreds of MiB.


def _large_image(rng: np.random.Generator, rank: int) -> tuple[int, int, tuple[int, ...], bool]:
    total = int(rng.integers(16, 21))  # log2 of the element count
    nc = int(rng.integers(6, min(8, total - 6 - (rank - 1)) + 1))  # log2(batch x channels)
    room = total - nc
    long = int(rng.integers(6, room - (rank - 1) + 1)) if rank > 1 else room
    rest = room - long
    short = [rest // (rank - 1) + (k < rest % (rank - 1)) for k in range(rank - 1)]
    size = [2 ** int(e) for e in rng.permutation([long] + short)]
    tweaked = [n + int(rng.integers(-1, 2)) if n >= 8 else n for n in size]  # odd sizes too
    if sizes.SMALLEST <= 2**nc * math.prod(tweaked) <= sizes.LARGEST:
        size = tweaked
    unbatched = rng.random() < 0.25  # then the channels alone are 2**nc
    c = nc if unbatched else int(rng.integers(0, nc + 1))
    return 2 ** (nc - c), 2**c, tuple(size), unbatched


def _large_window(rng: np.random.Generator, *, pool=False, floor=0, budget=2**22) -> Window:
    """A large geometry whose unfolded array has between ``floor`` and ``budget`` elements."""
    rank = int(rng.integers(1, 4))
    batch, channels, size, unbatched = _large_image(rng, rank)
    kernels = (1, 2, 3) if rank == 3 else (1, 2, 3, 4, 5)
    for _ in range(64):
        dims = []
        for n in size:
            k = int(rng.choice(kernels))
            p = int(rng.integers(0, k // 2 + 1)) if pool else int(rng.integers(0, 3))
            d = int(rng.integers(1, 4))
            while d > 1 and d * (k - 1) + 1 > n + 2 * p:
                d -= 1
            k = min(k, n + 2 * p)  # a short dim holds only a short kernel
            dims.append((k, d, p, int(rng.integers(1, 5))))
        k, d, p, s = (tuple(col) for col in zip(*dims))
        g = Window(batch, channels, size, k, d, p, s, unbatched)
        unfolded = batch * channels * math.prod(k) * math.prod(g.blocks)
        if floor <= unfolded <= budget:
            return g
    ones = (1,) * rank
    return Window(batch, channels, size, ones, ones, (0,) * rank, ones, unbatched)


def _large_per_dim(rng, g: Window, values_: list) -> list:
    """Tuples (which read the rank for an unbatched input), or ints where every dim agrees
    and the input is batched, half the time."""
    return [v if v is None or g.unbatched or len(set(v)) > 1 or rng.random() < 0.5 else v[0]
            for v in values_]


def large_unfold(rng: np.random.Generator) -> tuple:
    g = _large_window(rng)
    x = sizes.values(rng, g.image, rng.choice(DATA_DTYPES))
    return (x, *_large_per_dim(rng, g, [g.kernel_size, g.dilation, g.padding, g.stride]))


def large_fold(rng: np.random.Generator) -> tuple:
    g = _large_window(rng, floor=sizes.SMALLEST, budget=sizes.LARGEST)
    rows = g.channels * math.prod(g.kernel_size)
    cols = sizes.values(rng, _lead(g, rows) + (math.prod(g.blocks),), rng.choice(DATA_DTYPES))
    # the output_size tuple reads the rank
    return (cols, g.size, *_large_per_dim(rng, g, [g.kernel_size, g.dilation, g.padding,
                                                   g.stride]))


def large_conv(rng: np.random.Generator) -> tuple:
    g = _large_window(rng, budget=2**23)
    groups = int(rng.choice([q for q in (1, 2, 4, g.channels) if g.channels % q == 0]))
    out_channels = groups * int(rng.choice((1, 2)))
    dtype = rng.choice(FLOAT_DTYPES)  # integer matmul has no BLAS path: see large_conv's note
    x = sizes.values(rng, g.image, dtype)
    w = sizes.values(rng, (out_channels, g.channels // groups) + g.kernel_size, dtype)
    b = sizes.values(rng, (out_channels,), dtype) if rng.random() < 0.5 else None
    return (x, w, b, *_large_per_dim(rng, g, [g.stride, g.padding, g.dilation]), groups)


def large_max_pool(rng: np.random.Generator) -> tuple:
    g = _large_window(rng, pool=True, budget=2**24)  # no implementation copies the windows
    x = sizes.values(rng, g.image, rng.choice(DATA_DTYPES))
    stride = None if g.stride == g.kernel_size and rng.random() < 0.5 else g.stride
    return (x, *_large_per_dim(rng, g, [g.kernel_size, stride, g.padding, g.dilation]))


# ----------------------------------------------------------------- op table


def _fold_terms(case: Case) -> int:
    """Roundings per output element: the most blocks that overlap on one position.

    The count at a position is a product over the spatial dims of the blocks covering
    its coordinate, so the largest count is the product of the per-dim largest ones
    (computed in closed form: refs.overlap_counts loops, too slow for the large tier).
    """
    g = check_fold(*case.args)
    most = 1
    for n, k, d, p, s, b in zip(g.size, g.kernel_size, g.dilation, g.padding, g.stride,
                                g.blocks):
        at = (np.arange(b)[:, None] * s + np.arange(k)[None, :] * d - p).ravel()
        most *= int(np.bincount(at[(at >= 0) & (at < n)], minlength=1).max())
    return max(most, 1)


def _conv_terms(case: Case) -> int:
    """A dot product of C_in/groups * prod(kernel) terms, plus one add for the bias."""
    return math.prod(case["weight"].shape[1:]) + 1 + (case["bias"] is not None)


UNFOLD = OpSpec(
    name="unfold",
    topic="convlike",
    arg_names=UNFOLD_ARGS,
    cases=unfold_cases,
    bad_cases=lambda: bad_calls(UNFOLD_ARGS, unfold_cases, UNFOLD_FAULTS),
    natives=UNFOLD_NATIVES,
    rounding_terms=None,  # pure data movement: exact in every dtype
    forbidden_torch=("unfold", "im2col"),
    oracle=np_unfold,
    large=large_unfold,
    deterministic=True,
)
FOLD = OpSpec(
    name="fold",
    topic="convlike",
    arg_names=FOLD_ARGS,
    cases=fold_cases,
    bad_cases=lambda: bad_calls(FOLD_ARGS, fold_cases, FOLD_FAULTS),
    natives=FOLD_NATIVES,
    rounding_terms=_fold_terms,
    forbidden_torch=("fold", "col2im"),
    oracle=np_fold,
    large=large_fold,
)
CONV = OpSpec(
    name="conv",
    topic="convlike",
    arg_names=CONV_ARGS,
    cases=conv_cases,
    bad_cases=lambda: bad_calls(CONV_ARGS, conv_cases, CONV_FAULTS),
    natives=CONV_NATIVES,
    rounding_terms=_conv_terms,
    forbidden_torch=("conv1d", "conv2d", "conv3d", "convolution", "_convolution",
                     "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                     "unfold", "im2col", "mkldnn_convolution", "cudnn_convolution"),
    oracle=np_conv,
    large=large_conv,
)
MAX_POOL = OpSpec(
    name="max_pool",
    topic="convlike",
    arg_names=MAX_POOL_ARGS,
    cases=max_pool_cases,
    bad_cases=lambda: bad_calls(MAX_POOL_ARGS, max_pool_cases, MAX_POOL_FAULTS),
    natives=MAX_POOL_NATIVES,
    rounding_terms=None,  # a max rounds nothing
    forbidden_torch=("max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
                     "max_pool2d_with_indices", "max_pool3d_with_indices",
                     "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
                     "unfold", "im2col"),
    oracle=np_max_pool,
    large=large_max_pool,
    deterministic=True,  # a max picks an element: no rounding, no order
)
OPS = (UNFOLD, FOLD, CONV, MAX_POOL)

# --------------------------------------------------------------- properties


def _unfold_geometry(case: Case):
    return check_unfold(*case.args)


def _cols_shape(g) -> tuple[int, ...]:
    """unfold's output shape: ``(N, C*K, L)``, or ``(C*K, L)`` unbatched."""
    return _lead(g, g.channels * g.kernel_volume) + (g.num_blocks,)


def _fold_call(cols: np.ndarray, g) -> Case:
    # tuples: fold reads the spatial rank from them (an unbatched cols is 2-d)
    return Case((cols, g.size, g.kernel_size, g.dilation, g.padding, g.stride), names=FOLD_ARGS)


@st.composite
def _adjoint_cases(draw):
    case = draw(unfold_cases(integral=True))
    g = _unfold_geometry(case)
    return case, draw(values(case["input"].dtype, _cols_shape(g), integral=True))


def _check_adjoint(target: Target, drawn) -> Comparison:
    """<unfold(x), y> == <x, fold(y)>, exactly (integer-valued data)."""
    case, y = drawn
    g = _unfold_geometry(case)
    x = case["input"]
    unfolded = target.call(case)
    folded = target.sibling(FOLD).call(_fold_call(y, g))
    lhs = np.sum(unfolded.astype(np.float64) * y)
    rhs = np.sum(x.astype(np.float64) * folded)
    return assert_close(np.float64(lhs), np.float64(rhs), EXACT,
                        path="<unfold(x), y> vs <x, fold(y)>")


@st.composite
def _roundtrip_cases(draw, tiling=False):
    if tiling:
        return (draw(unfold_cases(window=windows(tiling=True))),)
    return (draw(unfold_cases(integral=True)),)


def _fold_of_unfold(target: Target, case: Case, x: np.ndarray) -> np.ndarray:
    g = _unfold_geometry(case)
    cols = target.sibling(UNFOLD).call(case.with_args(x, *case.args[1:]))
    return target.call(_fold_call(cols, g))


def _check_counts(target: Target, drawn) -> Comparison:
    """fold(unfold(x)) == x * fold(unfold(ones)): each position times its overlap count."""
    (case,) = drawn
    x = case["input"]
    counts = _fold_of_unfold(target, case, np.ones_like(x))
    return assert_close(_fold_of_unfold(target, case, x), x * counts, EXACT,
                        path="fold(unfold(x)) vs x * fold(unfold(ones))")


def _check_tiling(target: Target, drawn) -> Comparison:
    """For blocks that tile the image (stride == kernel, no dilation) fold inverts unfold."""
    (case,) = drawn
    x = case["input"]
    return assert_close(_fold_of_unfold(target, case, x), x, EXACT,
                        path="fold(unfold(x)) vs x for tiling blocks")


def _differentiable(target: Target) -> bool:
    return target.framework in ("torch", "jax")


@st.composite
def _unfold_grad_cases(draw):
    case = draw(unfold_cases(dtypes=FLOAT_DTYPES))
    g = _unfold_geometry(case)
    return case, draw(values(case["input"].dtype, _cols_shape(g)))


def _check_unfold_grad(target: Target, drawn) -> Comparison:
    """d/dx <unfold(x), y> = refs.fold(y): overlapping blocks' gradients add up."""
    case, y = drawn
    g = _unfold_geometry(case)
    (grad,) = vjp(target, case, wrt=(0,), cotangent=y)
    geometry = (g.size, g.kernel_size, g.dilation, g.padding, g.stride)
    expected = refs.fold(y.astype(np.float64), *geometry)
    magnitude = refs.fold(np.abs(y.astype(np.float64)), *geometry)
    n = int(overlap_counts(*geometry).max())
    return assert_close(grad, expected, rounding_bound(y.dtype, n, magnitude), dtype=y.dtype,
                        path="grad of unfold")


@st.composite
def _fold_grad_cases(draw):
    case = draw(fold_cases(dtypes=FLOAT_DTYPES))
    g = check_fold(*case.args)
    return case, draw(values(case["input"].dtype, _lead(g, g.channels) + g.size))


def _check_fold_grad(target: Target, drawn) -> Comparison:
    """d/dcols <fold(cols), g> = refs.unfold(g): every block reads its place (exact)."""
    case, cotangent = drawn
    g = check_fold(*case.args)
    (grad,) = vjp(target, case, wrt=(0,), cotangent=cotangent)
    expected = refs.unfold(cotangent, g.kernel_size, g.dilation, g.padding, g.stride)
    return assert_close(grad, expected, EXACT, path="grad of fold")


@st.composite
def _max_pool_grad_cases(draw):
    case = draw(max_pool_cases(dtypes=FLOAT_DTYPES, unique=True))
    g = check_max_pool(*case.args)
    return case, draw(values(case["input"].dtype, _lead(g, g.channels) + g.blocks))


def _check_max_pool_grad(target: Target, drawn) -> Comparison:
    """Each window's gradient goes to its (unique) max; windows sharing a max add up."""
    case, cotangent = drawn
    x = case["input"]
    g = check_max_pool(*case.args)
    (grad,) = vjp(target, case, wrt=(0,), cotangent=cotangent)
    # where each window's max sits, found with refs.unfold on the values and their positions
    xb = _batched(x, g)
    where = _pad(np.arange(xb.size).reshape(xb.shape), g.padding, -1)
    values_ = _pad(xb.astype(np.float64), g.padding, -np.inf)
    geometry = (g.kernel_size, g.dilation, 0, g.stride)
    shape = (g.batch, g.channels, g.kernel_volume, g.num_blocks)
    at = refs.unfold(where, *geometry).reshape(shape)
    best = np.argmax(refs.unfold(values_, *geometry).reshape(shape), axis=2)[:, :, None]
    source = np.take_along_axis(at, best, axis=2)[:, :, 0]
    flat_g = cotangent.astype(np.float64).reshape(g.batch, g.channels, g.num_blocks)
    expected, magnitude = np.zeros(x.size), np.zeros(x.size)
    np.add.at(expected, source.ravel(), flat_g.ravel())
    np.add.at(magnitude, source.ravel(), np.abs(flat_g).ravel())
    n = int(overlap_counts(g.size, g.kernel_size, g.dilation, g.padding, g.stride).max())
    return assert_close(grad, expected.reshape(x.shape),
                        rounding_bound(x.dtype, n, magnitude.reshape(x.shape)), dtype=x.dtype,
                        path="grad of max_pool")


PROPERTIES = (
    Property("unfold", "adjoint_of_fold",
             "<unfold(x), y> == <x, fold(y)> (exact, integer-valued data)",
             _adjoint_cases, _check_adjoint, layouts=True),
    Property("unfold", "grad_is_fold",
             "autograd / jax.vjp of unfold equals refs.fold of the cotangent",
             _unfold_grad_cases, _check_unfold_grad, _differentiable, layouts=True),
    Property("fold", "fold_of_unfold_counts_overlaps",
             "fold(unfold(x)) == x * fold(unfold(ones)) (exact, integer-valued data)",
             _roundtrip_cases, _check_counts, layouts=True),
    Property("fold", "inverts_unfold_on_tiling_blocks",
             "fold(unfold(x)) == x when stride == kernel_size and the blocks cover the image",
             lambda: _roundtrip_cases(tiling=True), _check_tiling, layouts=True),
    Property("fold", "grad_is_unfold",
             "autograd / jax.vjp of fold equals refs.unfold of the cotangent (exact)",
             _fold_grad_cases, _check_fold_grad, _differentiable, layouts=True),
    # no layouts: an expanded input repeats values, and at a tie the natives give the
    # gradient to one element where ours split it (tests/test_native_differences.py)
    Property("max_pool", "grad_goes_to_the_max",
             "on distinct values, each window's cotangent lands on its max (jax.vjp / autograd)",
             _max_pool_grad_cases, _check_max_pool_grad, _differentiable),
)

# ------------------------------------------------------------ historic cases
# Each reproduces a published bug or surprise in one of the four ops; the expected
# values come from refs, never from the framework that had the bug.


def _historic_fold_is_not_inverse():
    # F.fold(F.unfold(x, 3), 16, 3) != x: overlapping blocks add up (pytorch/pytorch#7519,
    # there with x of (32, 3, 16, 16); a batch of 2 meets the same overlaps)
    x = (np.arange(2 * 3 * 16 * 16, dtype=np.float64).reshape(2, 3, 16, 16) % 17) / 4
    return Case((refs.unfold(x, 3), 16, 3, 1, 0, 1), names=FOLD_ARGS)


def _historic_fold_padding_first_element():
    # unfoldNd's FoldNd differed from F.fold at element 0 only, with padding 1
    # (f-dangel/unfoldNd#30: cols (64, 3 * 2 * 2, 5 * 9), output (4, 8), kernel 2)
    cols = ((np.arange(2 * 12 * 45, dtype=np.float64).reshape(2, 12, 45) * 7) % 23 - 11) / 8
    return Case((cols, (4, 8), 2, 1, 1, 1), names=FOLD_ARGS)


def _historic_fold_overflow():
    # near-INT64_MAX padding and stride wrapped torch's block count to 1, passing the shape
    # check, and CUDA col2im read out of bounds (pytorch/pytorch#188959); in exact integer
    # arithmetic output (100, 100) holds 3 * 3 blocks, not the 1 given: a ValueError
    return bad_case(
        (np.zeros((1, 1, 1), np.float32), (100, 100), (1, 1), (100, 100),
         (2**63 - 2, 2**63 - 2), (2**63 - 1, 2**63 - 1)),
        ValueError, "output_size", "input.size(2) not the block count of output_size",
        FOLD_ARGS)


def _historic_unfold_overflow():
    # the same wrap in im2col's block count: an illegal write on CUDA (pytorch/pytorch#189667);
    # the dilated kernel spans far more than the padded input: a ValueError
    return bad_case(
        (np.zeros((32, 64, 3, 3), np.float32), (2**63 - 2, 2**63 - 2), (10**12, 10**12),
         (10**12, 10**12), (10**12, 10**12)),
        ValueError, "kernel_size", "kernel larger than the padded input", UNFOLD_ARGS)


def _historic_max_pool_transposed():
    # MaxPool2d(3, stride 1, dilation 2) on a transposed NumPy array ((1, 5, 5, 3) ->
    # (0, 3, 1, 2)): CPU and CUDA disagreed (pytorch/pytorch#76432); stored as the transpose
    x = np.random.RandomState(10).randn(1, 5, 5, 3).transpose(0, 3, 1, 2) * 10
    return Case((np.ascontiguousarray(x), 3, 1, 0, (2, 2)),
                (Layout("permuted", perm=(0, 2, 3, 1)),), MAX_POOL_ARGS)


def _historic_max_pool_negative_ints_channels_last():
    # max_pool2d of negative integers in channels_last returned 0 for the lowest values
    # (pytorch/pytorch#109586)
    x = np.arange(24, dtype=np.int64).reshape(1, 1, 4, 6) - 12
    return Case((x, 2, None, 0, 1), (Layout("channels_last"),), MAX_POOL_ARGS)


def _historic_max_pool_dilation_begin_padding():
    # ONNX Runtime's CUDA MaxPool got output[0] wrong (1, not 9) with dilation 2 and a
    # begin padding (microsoft/onnxruntime#29637)
    x = np.array([[[1, 9, 2, 8, 3, 7, 4, 6, 5]]], np.float32)
    return Case((x, 2, 1, 1, 2), names=MAX_POOL_ARGS)


def _historic_conv_channels_last_weight():
    # one input channel, weight in channels_last, contiguous input: wrong conv2d output on
    # CPU (pytorch/pytorch#82060, there (1, 1, 100, 100) and 64 filters; 12 x 12 and 8
    # filters here keep refs' loops short)
    x = ((np.arange(144, dtype=np.float32).reshape(1, 1, 12, 12) * 5) % 13 - 6) / 4
    w = ((np.arange(72, dtype=np.float32).reshape(8, 1, 3, 3) * 3) % 11 - 5) / 8
    return Case((x, w, None, 1, 1, 1, 1), (None, Layout("channels_last")), CONV_ARGS)


HISTORIC = (
    Historic("fold", "agrees_with_ref", "fold(unfold(x)) != x",
             "https://github.com/pytorch/pytorch/issues/7519",
             "fold is unfold's adjoint, not its inverse: overlapping blocks add up, so each "
             "position is multiplied by its overlap count", _historic_fold_is_not_inverse),
    Historic("fold", "agrees_with_ref", "fold with padding, element 0",
             "https://github.com/f-dangel/unfoldNd/issues/30",
             "FoldNd and F.fold agreed everywhere but at element 0 once padding was 1",
             _historic_fold_padding_first_element),
    Historic("fold", "rejects_bad_input", "block count overflow",
             "https://github.com/pytorch/pytorch/issues/188959",
             "near-INT64_MAX padding/stride overflowed torch's block count, passed the shape "
             "check and read out of bounds in CUDA col2im", _historic_fold_overflow),
    Historic("unfold", "rejects_bad_input", "block count overflow",
             "https://github.com/pytorch/pytorch/issues/189667",
             "a near-INT64_MAX kernel_size overflowed im2col's block count: an illegal write "
             "on CUDA instead of an error", _historic_unfold_overflow),
    Historic("max_pool", "agrees_with_ref", "dilation 2 on a transposed input",
             "https://github.com/pytorch/pytorch/issues/76432",
             "MaxPool2d(3, dilation 2) gave different values on CPU and CUDA for an input "
             "stored as the transpose of a (1, 5, 5, 3) array", _historic_max_pool_transposed),
    Historic("max_pool", "agrees_with_ref", "negative ints in channels_last",
             "https://github.com/pytorch/pytorch/issues/109586",
             "max_pool2d of negative integers stored channels_last returned 0 where the max "
             "was negative", _historic_max_pool_negative_ints_channels_last),
    Historic("max_pool", "agrees_with_ref", "dilation with begin padding",
             "https://github.com/microsoft/onnxruntime/issues/29637",
             "a CUDA MaxPool kernel returned a padded element's neighbour as the max of the "
             "first window when dilation > 1 met a begin padding",
             _historic_max_pool_dilation_begin_padding),
    Historic("conv", "agrees_with_ref", "channels_last weight, one input channel",
             "https://github.com/pytorch/pytorch/issues/82060",
             "conv2d on CPU was wrong for a single-channel contiguous input and a "
             "channels_last weight", _historic_conv_channels_last_weight),
)
