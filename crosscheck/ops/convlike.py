"""unfold, fold, conv and max_pool: strategies, native twins, and their own properties."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

import refs
from crosscheck.autodiff import vjp
from crosscheck.compare import Comparison, assert_close
from crosscheck.optable import Case, Native, OpSpec, Property, Target, bad_case
from crosscheck.strategies import DATA_DTYPES, FLOAT_DTYPES, values
from crosscheck.tolerance import EXACT, rounding_bound
from refs.checks.convlike import check_conv, check_fold, check_max_pool, check_unfold
from refs.convlike import lowest, overlap_counts

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


class Layout(NamedTuple):
    """A valid sliding-block geometry, one entry per spatial dim."""

    batch: int
    channels: int
    size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def image(self) -> tuple[int, ...]:
        return (self.batch, self.channels) + self.size

    @property
    def blocks(self) -> tuple[int, ...]:
        return check_unfold(np.empty(self.image, np.int8), *self[3:]).blocks


@st.composite
def layouts(draw, *, pool=False, grad_pool=False, tiling=False, channels=CHANNELS):
    """A valid geometry. ``pool``: padding <= kernel // 2 (torch's pooling rule);
    ``grad_pool``: also dilation 1 where padded, so no window lies wholly in the
    padding; ``tiling``: stride == kernel, dilation 1, blocks covering the image once."""
    rank = draw(st.sampled_from(SPATIAL_RANKS))
    dims = []
    for _ in range(rank):
        k = draw(st.sampled_from(KERNELS))
        if tiling:
            blocks = draw(st.sampled_from((1, 2, 3)))
            p = draw(st.sampled_from([p for p in range(k) if k * blocks - 2 * p >= 1]))
            dims.append((k * blocks - 2 * p, k, 1, p, k))
            continue
        p = draw(st.sampled_from([p for p in PADDINGS if not (pool or grad_pool) or p <= k // 2]))
        d = 1 if grad_pool and p else draw(st.sampled_from(DILATIONS))
        s = draw(st.sampled_from(STRIDES))
        smallest = max(1, d * (k - 1) + 1 - 2 * p)  # the padded input just holds one block
        n = draw(st.sampled_from(sorted({smallest} | {n for n in SPATIAL[rank] if n >= smallest})))
        dims.append((n, k, d, p, s))
    size, k, d, p, s = (tuple(col) for col in zip(*dims))
    return Layout(draw(st.sampled_from(BATCHES)), draw(st.sampled_from(channels)), size, k, d, p, s)


def _per_dim_arg(draw, value: tuple[int, ...]):
    """The API takes an int or a tuple: pass an int when every dim agrees, sometimes."""
    if len(set(value)) == 1 and draw(st.booleans()):
        return value[0]
    return value


@st.composite
def unfold_cases(draw, dtypes=DATA_DTYPES, integral=False, layout=None):
    g = draw(layout if layout is not None else layouts())
    x = draw(values(draw(st.sampled_from(dtypes)), g.image, integral=integral))
    args = (x,) + tuple(_per_dim_arg(draw, v) for v in (g.kernel_size, g.dilation, g.padding, g.stride))
    return Case(args)


@st.composite
def fold_cases(draw, dtypes=DATA_DTYPES, integral=False):
    g = draw(layouts())
    shape = (g.batch, g.channels * math.prod(g.kernel_size), math.prod(g.blocks))
    cols = draw(values(draw(st.sampled_from(dtypes)), shape, integral=integral))
    # the spatial rank of fold comes from its first tuple argument: 2 when all are ints
    output_size = _per_dim_arg(draw, g.size) if len(g.size) == 2 else g.size
    args = (cols, output_size) + tuple(_per_dim_arg(draw, v) for v in (g.kernel_size, g.dilation, g.padding, g.stride))
    return Case(args)


@st.composite
def conv_cases(draw, dtypes=DATA_DTYPES):
    g = draw(layouts(channels=(1, 2, 3, 4)))
    groups = draw(st.sampled_from([q for q in (1, 2, 3, 4) if g.channels % q == 0]))
    out_channels = groups * draw(st.sampled_from((1, 2)))
    dtype = draw(st.sampled_from(dtypes))
    x = draw(values(dtype, g.image))
    w = draw(values(dtype, (out_channels, g.channels // groups) + g.kernel_size))
    b = draw(st.one_of(st.none(), values(dtype, (out_channels,))))
    args = (x, w, b) + tuple(_per_dim_arg(draw, v) for v in (g.stride, g.padding, g.dilation))
    return Case(args + (groups,))


@st.composite
def max_pool_cases(draw, dtypes=DATA_DTYPES, *, unique=False):
    g = draw(layouts(grad_pool=True) if unique else layouts(pool=True))
    dtype = draw(st.sampled_from(dtypes))
    if unique:  # distinct values: the max, and so its gradient, is unambiguous
        count = math.prod(g.image)
        order = draw(st.permutations(range(count)))
        x = ((np.array(order, dtype=np.float64) - count / 2) * 0.25).astype(dtype).reshape(g.image)
    else:
        x = draw(values(dtype, g.image))
    default = g.stride == g.kernel_size and draw(st.booleans())
    stride = None if default else _per_dim_arg(draw, g.stride)
    args = (x, _per_dim_arg(draw, g.kernel_size), stride, _per_dim_arg(draw, g.padding),
            _per_dim_arg(draw, g.dilation))
    return Case(args)


# ------------------------------------------------------------ bad input
# A valid call with exactly one thing broken, and what that must raise.

_COMMON_FAULTS = ("kernel larger than the padded input", "non-positive kernel",
                  "non-positive stride", "non-positive dilation", "negative padding",
                  "kernel_size with a wrong number of entries", "input of a bad rank",
                  "input with zero channels")
_FAULTS = {
    "unfold": _COMMON_FAULTS,
    "fold": _COMMON_FAULTS[:6] + ("input.size(1) not a multiple of prod(kernel_size)",
                                  "input.size(2) not the block count of output_size",
                                  "non-positive output_size", "input of a bad rank"),
    "conv": _COMMON_FAULTS + (
        "weight.size(1) * groups != in_channels", "groups not dividing the channels",
        "bias of a wrong shape", "weight of another dtype"),
    "max_pool": _COMMON_FAULTS + ("padding more than half the kernel",),
}
_ARGUMENT = {
    "kernel larger than the padded input": "kernel_size", "non-positive kernel": "kernel_size",
    "non-positive stride": "stride", "non-positive dilation": "dilation",
    "negative padding": "padding", "kernel_size with a wrong number of entries": "kernel_size",
    "input of a bad rank": "input", "input with zero channels": "input",
    "input.size(1) not a multiple of prod(kernel_size)": "input",
    "input.size(2) not the block count of output_size": "output_size",
    "non-positive output_size": "output_size", "weight.size(1) * groups != in_channels": "weight",
    "groups not dividing the channels": "groups", "bias of a wrong shape": "bias",
    "weight of another dtype": "weight", "padding more than half the kernel": "padding",
}


@st.composite
def bad_cases(draw, op):
    fault = draw(st.sampled_from(_FAULTS[op]))
    g = draw(layouts(pool=op == "max_pool"))
    rank = len(g.size)
    axis = draw(st.integers(0, rank - 1))
    size, k, d, p, s = (list(v) for v in (g.size, g.kernel_size, g.dilation, g.padding, g.stride))
    image = list(g.image)
    exception, argument = ValueError, _ARGUMENT[fault]
    if op == "conv" and argument == "kernel_size":
        argument = "weight"  # conv's kernel is weight's spatial shape
    if fault == "kernel larger than the padded input":
        if op == "max_pool":
            p[axis] = 0  # so that no padding rule fires first
        k[axis] = size[axis] + 2 * p[axis] + draw(st.integers(1, 2))
    elif fault == "non-positive kernel":
        k[axis] = draw(st.sampled_from((0, -1)))
    elif fault == "non-positive stride":
        s[axis] = draw(st.sampled_from((0, -2)))
    elif fault == "non-positive dilation":
        d[axis] = draw(st.sampled_from((0, -1)))
    elif fault == "negative padding":
        p[axis] = -draw(st.integers(1, 2))
    elif fault == "padding more than half the kernel":
        p[axis] = k[axis] // 2 + 1
        size[axis] = image[2 + axis] = max(size[axis], d[axis] * (k[axis] - 1) + 1)
    elif fault == "non-positive output_size":
        size[axis] = 0
    dtype = draw(st.sampled_from(DATA_DTYPES))
    per_dim = [tuple(v) for v in (k, d, p, s)]
    if fault == "kernel_size with a wrong number of entries":
        per_dim[0] = per_dim[0] + (1,)
    kernel, dilation, padding, stride = per_dim
    if fault == "input of a bad rank":
        image = [1] + image  # a dim too many: neither (C, *spatial) nor (N, C, *spatial)
    elif fault == "input with zero channels":
        image[1] = 0
    x = np.zeros(image, dtype)
    if op == "unfold":
        return bad_case((x, kernel, dilation, padding, stride), exception, argument, fault)
    if op == "max_pool":
        return bad_case((x, kernel, stride, padding, dilation), exception, argument, fault)
    if op == "fold":
        volume = math.prod(max(v, 1) for v in kernel)
        blocks = math.prod(g.blocks)
        shape = [g.batch, g.channels * volume, blocks]
        if fault == "input.size(1) not a multiple of prod(kernel_size)":
            kernel = tuple(max(v, 2) if i == axis else v for i, v in enumerate(g.kernel_size))
            shape[1] = g.channels * math.prod(kernel) + 1
            size[axis] = max(size[axis], d[axis] * (kernel[axis] - 1) + 1)
        elif fault == "input.size(2) not the block count of output_size":
            shape[2] = blocks + draw(st.sampled_from((1, -1) if blocks > 1 else (1,)))
        elif fault == "input of a bad rank":
            shape = [1] + shape
        cols = np.zeros(shape, dtype)
        return bad_case((cols, tuple(size), kernel, dilation, padding, stride), exception, argument,
                       fault)
    # conv
    groups = 1
    out_channels = draw(st.sampled_from((1, 2)))
    w_shape = [out_channels, max(image[1], 1)] + list(kernel[:rank])
    if fault == "kernel_size with a wrong number of entries":
        w_shape.append(1)
    w_dtype, bias = dtype, None
    if fault == "weight.size(1) * groups != in_channels":
        w_shape[1] += 1
    elif fault == "groups not dividing the channels":
        groups = g.channels + 1
    elif fault == "bias of a wrong shape":
        bias = np.zeros((out_channels + 1,), dtype)
    elif fault == "weight of another dtype":
        exception = TypeError
        w_dtype = "float32" if dtype != "float32" else "float64"
    elif fault in ("non-positive kernel",):
        w_shape[2 + axis] = 0  # an empty kernel; a negative size cannot exist
    weight = np.zeros(w_shape, w_dtype)
    return bad_case((x, weight, bias, stride, padding, dilation, groups), exception, argument,
                   fault)


# ------------------------------------------------------------ native twins
# torch's own F.unfold / F.fold take 2 spatial dims only and have no integer
# kernels; rather than restrict the strategies to what torch can do (and test
# ours less), each native declares the calls it cannot take, via ``unsupported``:
# those cases are counted in the report, not checked -- also where another
# property calls the native as a sibling (the adjoint's fold twin).


def _spatial_rank_and_dtype(drawn) -> tuple[int, np.dtype]:
    case = drawn if isinstance(drawn, Case) else drawn[0]
    first = case.args[0]
    if len(case.args) == 6:  # fold: (input, output_size, kernel_size, ...)
        tuples = [v for v in case.args[1:] if isinstance(v, tuple)]
        return (len(tuples[0]) if tuples else 2), first.dtype
    return first.ndim - 2, first.dtype


def _on_cuda_integers(case: Case, target: Target) -> bool:
    return target.backend.device == "cuda" and np.issubdtype(case.args[0].dtype, np.integer)


def _torch_im2col_unsupported(case, target):
    rank, dtype = _spatial_rank_and_dtype(case)
    if rank != 2:
        return "F.unfold / F.fold take exactly 2 spatial dims (torch#30798, torch#105448)"
    if np.issubdtype(dtype, np.integer):
        return "F.unfold / F.fold have no integer kernels: im2col/col2im not implemented for ints (torch#44989)"
    return None


def _torch_conv_unsupported(case, target):
    input, dilation = case.args[0], case.args[5]
    if _on_cuda_integers(case, target):
        return "torch has no integer convolution on CUDA"
    if np.issubdtype(input.dtype, np.integer) and np.any(np.asarray(dilation) > 1):
        return "F.conv* with dilation > 1 has no integer kernel ('slow_conv_dilated<>' not implemented for 'Int')"
    return None


def _jax_transpose_unsupported(case, target):
    _, dtype = _spatial_rank_and_dtype(case)
    if np.issubdtype(dtype, np.integer):
        return "jax.linear_transpose is for floating inputs: an integer input's cotangent is float0"
    return None


def _reduce_window_known(prop, drawn, target):
    case = drawn if isinstance(drawn, Case) else drawn[0]
    if prop == "grad_goes_to_the_max" and np.any(np.asarray(case.args[4]) > 1):
        return "jax has no VJP of reduce_window max with window dilation (select_and_gather)"
    return None


def _torch_max_pool_unsupported(case, target):
    rank, dtype = _spatial_rank_and_dtype(case)
    if _on_cuda_integers(case, target):
        return "torch has no integer max-pool kernels on CUDA"
    if rank == 1 and np.issubdtype(dtype, np.integer):
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

    conv = (F.conv1d, F.conv2d, F.conv3d)[input.dim() - 3]
    return conv(input, weight, bias, stride, padding, dilation, groups)


def torch_max_pool(input, kernel_size, stride, padding, dilation):
    import torch.nn.functional as F

    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[input.dim() - 3]
    return pool(input, kernel_size, stride, padding, dilation)


def _lax_padding(padding):
    return [(p, p) for p in padding]


def jax_patches(input, kernel_size, dilation, padding, stride):
    from jax import lax

    g = check_unfold(input, kernel_size, dilation, padding, stride)  # int-or-tuple -> tuples
    out = lax.conv_general_dilated_patches(
        input, g.kernel_size, g.stride, _lax_padding(g.padding), rhs_dilation=g.dilation,
        precision=lax.Precision.HIGHEST)
    return out.reshape(g.batch, g.channels * g.kernel_volume, g.num_blocks)


def jax_patches_transpose(input, output_size, kernel_size, dilation, padding, stride):
    import jax
    import jax.numpy as jnp

    g = check_fold(input, output_size, kernel_size, dilation, padding, stride)
    # Transposing the *padded* patches op aborts the process in XLA 0.10.2 for some 3-d
    # geometries (algebraic_simplifier CHECK "Window dimensions do not match RHS shape"),
    # so transpose the unpadded op on the padded image and crop the padding off.
    image = jnp.zeros((g.batch, g.channels) + g.padded, input.dtype)
    (out,) = jax.linear_transpose(
        lambda x: jax_patches(x, g.kernel_size, g.dilation, 0, g.stride), image)(input)
    return out[(..., *(slice(p, p + n) for p, n in zip(g.padding, g.size)))]


def lax_conv(input, weight, bias, stride, padding, dilation, groups):
    from jax import lax

    g = check_conv(input, weight, bias, stride, padding, dilation, groups).blocks
    out = lax.conv_general_dilated(
        input, weight, g.stride, _lax_padding(g.padding), rhs_dilation=g.dilation,
        feature_group_count=groups, precision=lax.Precision.HIGHEST)
    if bias is not None:
        out = out + bias.reshape((-1,) + (1,) * g.spatial_dims)
    return out


def lax_reduce_window_max(input, kernel_size, stride, padding, dilation):
    from jax import lax

    g = check_max_pool(input, kernel_size, stride, padding, dilation)
    return lax.reduce_window(
        input, np.array(lowest(input.dtype), input.dtype), lax.max, (1, 1) + g.kernel_size, (1, 1) + g.stride,
        [(0, 0), (0, 0)] + _lax_padding(g.padding), window_dilation=(1, 1) + g.dilation)


_NORMALIZED = "int-or-tuple arguments normalized by refs.checks.convlike"
UNFOLD_NATIVES = (
    Native("F.unfold", "torch", torch_unfold, "2 spatial dims, floats only",
           unsupported=_torch_im2col_unsupported),
    Native("lax.conv_general_dilated_patches", "jax", jax_patches,
           f"reshaped to (N, C*K, L); {_NORMALIZED}"),
)
FOLD_NATIVES = (
    Native("F.fold", "torch", torch_fold, "2 spatial dims, floats only",
           unsupported=_torch_im2col_unsupported),
    Native("jax.linear_transpose(patches)", "jax", jax_patches_transpose,
           "JAX has no col2im: the transpose of unpadded conv_general_dilated_patches on the "
           f"padded image, cropped; {_NORMALIZED}",
           unsupported=_jax_transpose_unsupported),
)
CONV_NATIVES = (
    Native("F.conv1d/2d/3d", "torch", torch_conv, "picked by rank",
           unsupported=_torch_conv_unsupported),
    Native("lax.conv_general_dilated", "jax", lax_conv,
           f"feature_group_count=groups, bias added after; {_NORMALIZED}"),
)
MAX_POOL_NATIVES = (
    Native("F.max_pool1d/2d/3d", "torch", torch_max_pool, "picked by rank",
           unsupported=_torch_max_pool_unsupported),
    Native("lax.reduce_window(max)", "jax", lax_reduce_window_max,
           f"init -inf (the integer minimum for ints), symmetric padding; {_NORMALIZED}",
           known_difference=_reduce_window_known),
)

# ----------------------------------------------------------------- op table


def _fold_terms(case: Case) -> int:
    """Roundings per output element: the most blocks that overlap on one position."""
    counts = overlap_counts(*case.args[1:])
    return max(int(counts.max()), 1)


def _conv_terms(case: Case) -> int:
    """A dot product of C_in/groups * prod(kernel) terms, plus one add for the bias."""
    _, weight, bias = case.args[:3]
    return math.prod(weight.shape[1:]) + 1 + (bias is not None)













OPS = (
    OpSpec(
        name="unfold",
        topic="convlike",
        arg_names=("input", "kernel_size", "dilation", "padding", "stride"),
        cases=unfold_cases,
        bad_cases=lambda: bad_cases("unfold"),
        natives=UNFOLD_NATIVES,
        rounding_terms=None,  # pure data movement: exact in every dtype
        forbidden_torch=("unfold", "im2col"),
    ),
    OpSpec(
        name="fold",
        topic="convlike",
        arg_names=("input", "output_size", "kernel_size", "dilation", "padding", "stride"),
        cases=fold_cases,
        bad_cases=lambda: bad_cases("fold"),
        natives=FOLD_NATIVES,
        rounding_terms=_fold_terms,
        forbidden_torch=("fold", "col2im"),
    ),
    OpSpec(
        name="conv",
        topic="convlike",
        arg_names=("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
        cases=conv_cases,
        bad_cases=lambda: bad_cases("conv"),
        natives=CONV_NATIVES,
        rounding_terms=_conv_terms,
        forbidden_torch=("conv1d", "conv2d", "conv3d", "convolution", "_convolution",
                         "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                         "unfold", "im2col", "mkldnn_convolution", "cudnn_convolution"),
    ),
    OpSpec(
        name="max_pool",
        topic="convlike",
        arg_names=("input", "kernel_size", "stride", "padding", "dilation"),
        cases=max_pool_cases,
        bad_cases=lambda: bad_cases("max_pool"),
        natives=MAX_POOL_NATIVES,
        rounding_terms=None,  # a max rounds nothing
        forbidden_torch=("max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
                         "max_pool2d_with_indices", "max_pool3d_with_indices",
                         "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
                         "unfold", "im2col"),
    ),
)
UNFOLD, FOLD, CONV, MAX_POOL = OPS

# --------------------------------------------------------------- properties


def _unfold_geometry(case: Case):
    x, k, d, p, s = case.args
    return check_unfold(x, k, d, p, s)


def _fold_call(cols: np.ndarray, g) -> Case:
    return Case((cols, g.size, g.kernel_size, g.dilation, g.padding, g.stride))


@st.composite
def _adjoint_cases(draw):
    case = draw(unfold_cases(integral=True))
    g = _unfold_geometry(case)
    x = case.args[0]
    y = draw(values(x.dtype, (g.batch, g.channels * g.kernel_volume, g.num_blocks), integral=True))
    return case, y


def _check_adjoint(target: Target, drawn) -> Comparison:
    """<unfold(x), y> == <x, fold(y)>, exactly (integer-valued data)."""
    case, y = drawn
    g = _unfold_geometry(case)
    x = case.args[0]
    unfolded = target.call(case)
    folded = target.sibling(FOLD).call(_fold_call(y, g))
    lhs = np.sum(unfolded.astype(np.float64) * y)
    rhs = np.sum(x.astype(np.float64) * folded)
    return assert_close(np.float64(lhs), np.float64(rhs), EXACT,
                        path="<unfold(x), y> vs <x, fold(y)>")


@st.composite
def _roundtrip_cases(draw, tiling=False):
    if tiling:
        return (draw(unfold_cases(layout=layouts(tiling=True))),)
    return (draw(unfold_cases(integral=True)),)


def _fold_of_unfold(target: Target, case: Case, x: np.ndarray) -> np.ndarray:
    g = _unfold_geometry(case)
    cols = target.sibling(UNFOLD).call(case.with_args(x, *case.args[1:]))
    return target.call(_fold_call(cols, g))


def _check_counts(target: Target, drawn) -> Comparison:
    """fold(unfold(x)) == x * fold(unfold(ones)): each position times its overlap count."""
    (case,) = drawn
    x = case.args[0]
    counts = _fold_of_unfold(target, case, np.ones_like(x))
    return assert_close(_fold_of_unfold(target, case, x), x * counts, EXACT,
                        path="fold(unfold(x)) vs x * fold(unfold(ones))")


def _check_tiling(target: Target, drawn) -> Comparison:
    """For blocks that tile the image (stride == kernel, no dilation) fold inverts unfold."""
    (case,) = drawn
    x = case.args[0]
    return assert_close(_fold_of_unfold(target, case, x), x, EXACT,
                        path="fold(unfold(x)) vs x for tiling blocks")


def _differentiable(target: Target) -> bool:
    return target.framework in ("torch", "jax")


@st.composite
def _unfold_grad_cases(draw):
    case = draw(unfold_cases(dtypes=FLOAT_DTYPES))
    g = _unfold_geometry(case)
    x = case.args[0]
    y = draw(values(x.dtype, (g.batch, g.channels * g.kernel_volume, g.num_blocks)))
    return case, y


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
    cols = case.args[0]
    return case, draw(values(cols.dtype, (g.batch, g.channels) + g.size))


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
    x = case.args[0]
    return case, draw(values(x.dtype, (g.batch, g.channels) + g.blocks))


def _check_max_pool_grad(target: Target, drawn) -> Comparison:
    """Each window's gradient goes to its (unique) max; windows sharing a max add up."""
    case, cotangent = drawn
    x = case.args[0]
    g = check_max_pool(*case.args)
    (grad,) = vjp(target, case, wrt=(0,), cotangent=cotangent)
    # where each window's max sits, found with refs.unfold on the values and their positions
    pad = [(0, 0), (0, 0)] + [(p, p) for p in g.padding]
    where = np.pad(np.arange(x.size).reshape(x.shape), pad, constant_values=-1)
    values_ = np.pad(x.astype(np.float64), pad, constant_values=-np.inf)
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
             _adjoint_cases, _check_adjoint),
    Property("unfold", "grad_is_fold",
             "autograd / jax.vjp of unfold equals refs.fold of the cotangent",
             _unfold_grad_cases, _check_unfold_grad, _differentiable),
    Property("fold", "fold_of_unfold_counts_overlaps",
             "fold(unfold(x)) == x * fold(unfold(ones)) (exact, integer-valued data)",
             _roundtrip_cases, _check_counts),
    Property("fold", "inverts_unfold_on_tiling_blocks",
             "fold(unfold(x)) == x when stride == kernel_size and the blocks cover the image",
             lambda: _roundtrip_cases(tiling=True), _check_tiling),
    Property("fold", "grad_is_unfold",
             "autograd / jax.vjp of fold equals refs.unfold of the cotangent (exact)",
             _fold_grad_cases, _check_fold_grad, _differentiable),
    Property("max_pool", "grad_goes_to_the_max",
             "on distinct values, each window's cotangent lands on its max (jax.vjp / autograd)",
             _max_pool_grad_cases, _check_max_pool_grad, _differentiable),
)
