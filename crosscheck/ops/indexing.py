"""gather and scatter_add: strategies, native twins, and their own properties."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import refs
from crosscheck.autodiff import vjp
from crosscheck.compare import Comparison, assert_close
from crosscheck.optable import BadCase, Case, Native, OpSpec, Property, Target
from crosscheck.strategies import (
    DATA_DTYPES,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    index_values,
    shapes,
    sizes,
    values,
)
from crosscheck.tolerance import EXACT, rounding_bound

# ---------------------------------------------------------------- strategies


def _layout(draw, rank, *, min_size=0):
    """(input shape, dim as given, normalized dim, index shape) valid for torch's rules."""
    in_shape = draw(shapes(rank, min_size=min_size))
    span = max(rank, 1)
    dim = draw(st.integers(-span, span - 1))
    d = dim % span
    idx_shape = [
        draw(sizes(min_size=min_size)) if k == d
        else draw(sizes(min_size=min_size, max_size=in_shape[k]))
        for k in range(rank)
    ]
    size = in_shape[d] if rank else 1
    if size == 0:  # nothing valid to point at: the index must be empty
        idx_shape[d] = 0
    return in_shape, dim, d, tuple(idx_shape), size


@st.composite
def gather_cases(draw, dtypes=DATA_DTYPES, integral=False):
    rank = draw(st.integers(0, 3))
    in_shape, dim, d, idx_shape, size = _layout(draw, rank)
    dtype = draw(st.sampled_from(dtypes))
    index = draw(index_values(draw(st.sampled_from(INDEX_DTYPES)), idx_shape, size,
                              duplicates=draw(st.booleans())))
    data = values(dtype, in_shape, integral=integral)
    return Case((draw(data), dim, index), noncontiguous=draw(st.booleans()))


@st.composite
def scatter_add_cases(draw, dtypes=DATA_DTYPES, integral=False, larger_src=False):
    rank = draw(st.integers(1 if larger_src else 0, 3))
    in_shape, dim, d, idx_shape, size = _layout(draw, rank)
    src_shape = [draw(sizes(min_size=n)) for n in idx_shape]
    if larger_src:  # src strictly larger than the index somewhere
        k = draw(st.integers(0, rank - 1))
        src_shape[k] = max(src_shape[k], idx_shape[k] + 1)
    dtype = draw(st.sampled_from(dtypes))
    index = draw(index_values(draw(st.sampled_from(INDEX_DTYPES)), idx_shape, size,
                              duplicates=draw(st.booleans())))
    return Case(
        (draw(values(dtype, in_shape, integral=integral)), dim, index,
         draw(values(dtype, tuple(src_shape), integral=integral))),
        noncontiguous=draw(st.booleans()),
    )


_GATHER_FAULTS = ("index out of range", "negative index", "float index", "bool index",
                  "rank mismatch", "index larger than input", "dim out of range")
_SCATTER_FAULTS = _GATHER_FAULTS + ("src too small", "src dtype differs", "src rank mismatch")


@st.composite
def bad_indexing_cases(draw, op):
    """A valid call with exactly one thing broken, and what that must raise."""
    fault = draw(st.sampled_from(_SCATTER_FAULTS if op == "scatter_add" else _GATHER_FAULTS))
    rank = draw(st.integers(2 if fault == "index larger than input" else 1, 3))
    in_shape, dim, d, idx_shape, size = _layout(draw, rank, min_size=1)
    index = draw(index_values("int64", idx_shape, size, duplicates=False))
    src_shape = list(idx_shape)
    dtype = draw(st.sampled_from(DATA_DTYPES))
    exc, arg = ValueError, "index"
    if fault in ("index out of range", "negative index"):
        exc = IndexError
        at = tuple(draw(st.integers(0, n - 1)) for n in idx_shape)
        index[at] = size + draw(st.integers(0, 3)) if fault == "index out of range" \
            else -draw(st.integers(1, size))
    elif fault == "float index":
        exc, index = TypeError, index.astype(np.float32)
    elif fault == "bool index":
        exc, index = TypeError, index.astype(bool)
    elif fault == "rank mismatch":
        index = index[..., None] if draw(st.booleans()) else index[0]
    elif fault == "index larger than input":
        k = draw(st.sampled_from([k for k in range(rank) if k != d]))
        grown = list(idx_shape)
        grown[k] = in_shape[k] + 1
        index = np.zeros(grown, dtype=np.int64)
        src_shape = grown
    elif fault == "dim out of range":
        arg = "dim"
        dim = draw(st.sampled_from([rank, rank + 1, -rank - 1]))
    elif fault == "src too small":
        arg = "src"
        k = draw(st.integers(0, rank - 1))
        src_shape[k] -= 1
    elif fault == "src rank mismatch":
        arg = "src"
        src_shape.append(1)
    input = np.zeros(in_shape, dtype=dtype)
    if op == "gather":
        return BadCase((input, dim, index), exc, arg, fault)
    src = np.ones(src_shape, dtype=dtype)
    if fault == "src dtype differs":
        exc, arg = TypeError, "src"
        src = src.astype(np.float64 if dtype != "float64" else np.float32)
    return BadCase((input, dim, index, src), exc, arg, fault)


# ------------------------------------------------------------ native twins
# Each native sees the same call; where its rules differ from torch's, the
# adapter restricts the call to where the semantics coincide, and says how.


def _crop(a, shape, skip=None):
    return a[tuple(slice(None) if k == skip else slice(0, n) for k, n in enumerate(shape))]


def np_take_along_axis(input, dim, index):
    if input.ndim == 0:
        return input.copy()
    return np.take_along_axis(_crop(input, index.shape, dim % input.ndim), index, dim)


def np_add_at(input, dim, index, src):
    out = input.copy()
    if input.ndim == 0:
        return out + src
    np.add.at(out, _coordinates(np, index, dim % input.ndim), _crop(src, index.shape))
    return out


def torch_gather(input, dim, index):
    import torch

    return torch.gather(input, dim, _torch_index(index))


def torch_scatter_add(input, dim, index, src):
    import torch

    return torch.scatter_add(input, dim, _torch_index(index), src)


def jnp_take_along_axis(input, dim, index):
    import jax.numpy as jnp

    if input.ndim == 0:
        return input
    return jnp.take_along_axis(_crop(input, index.shape, dim % input.ndim), index, dim)


def jax_at_add(input, dim, index, src):
    import jax.numpy as jnp

    if input.ndim == 0:
        return input + src
    return input.at[_coordinates(jnp, index, dim % input.ndim)].add(_crop(src, index.shape))


def _torch_index(index):
    import torch

    return index if index.dtype in (torch.int64, torch.int32) else index.long()


def _coordinates(xp, index, dim):
    rank = index.ndim
    return tuple(
        index if k == dim else xp.arange(n).reshape([n if j == k else 1 for j in range(rank)])
        for k, n in enumerate(index.shape)
    )


_CROP = "input cropped to index's extent off dim (the natives broadcast instead)"
GATHER_NATIVES = (
    Native("np.take_along_axis", "numpy", np_take_along_axis, _CROP),
    Native("torch.gather", "torch", torch_gather, "uint8 index cast to int64"),
    Native("jnp.take_along_axis", "jax", jnp_take_along_axis, _CROP),
)
def _torch_scatter_add_known(prop, drawn, target):
    # ScatterAddBackward0 returns grad.gather(dim, index) -- index's shape -- as src's
    # gradient, so autograd rejects it whenever src is larger than index ("returned an
    # invalid gradient at index 1"); seen in torch 2.13. torch_impl has no such limit.
    case = drawn[0] if prop == "grad_is_gather" else None
    if case is not None and case.args[3].shape != case.args[2].shape:
        return "torch.scatter_add backward rejects src larger than index"
    return None


SCATTER_ADD_NATIVES = (
    Native("np.add.at", "numpy", np_add_at, "coordinates built from index + aranges"),
    Native("torch.scatter_add", "torch", torch_scatter_add, "uint8 index cast to int64",
           known_difference=_torch_scatter_add_known),
    Native("jax .at[].add", "jax", jax_at_add, "coordinates built from index + aranges"),
)

# ----------------------------------------------------------------- op table


def _scatter_terms(case: Case) -> int:
    """Roundings per output element: one per src element that may land there, plus one."""
    _, dim, index, _ = case.args
    return (index.shape[dim] if index.ndim else 1) + 1


def _example(op):
    """A deterministic case of about ``scale`` million elements (bench, jaxpr-size tests)."""

    def make(scale: float = 1.0) -> Case:
        rng = np.random.default_rng(0)
        n = max(int(256 * scale**0.5), 2)
        x = rng.standard_normal((n, 64, n // 2 + 1)).astype(np.float32)
        index = rng.integers(0, 64, size=(n, 64, n // 2 + 1))
        if op == "gather":
            return Case((x, 1, index))
        return Case((np.zeros_like(x), 1, index, x))

    return make


OPS = (
    OpSpec(
        name="gather",
        topic="indexing",
        arg_names=("input", "dim", "index"),
        cases=gather_cases,
        bad_cases=lambda: bad_indexing_cases("gather"),
        natives=GATHER_NATIVES,
        rounding_terms=None,  # pure data movement: exact in every dtype
        example=_example("gather"),
        forbidden_torch=("gather", "take_along_dim"),
        known_differences=(
            "torch.gather raises RuntimeError (CPU) or a device-side assert (CUDA) on a bad "
            "index; jnp.take_along_axis fills NaN / the integer minimum; NumPy and JAX wrap "
            "negative indices and broadcast index against input."
        ),
    ),
    OpSpec(
        name="scatter_add",
        topic="indexing",
        arg_names=("input", "dim", "index", "src"),
        cases=scatter_add_cases,
        bad_cases=lambda: bad_indexing_cases("scatter_add"),
        natives=SCATTER_ADD_NATIVES,
        rounding_terms=_scatter_terms,
        example=_example("scatter_add"),
        forbidden_torch=("scatter_add", "scatter_add_", "scatter", "scatter_",
                         "scatter_reduce", "scatter_reduce_"),
        known_differences=(
            "torch.scatter_add raises RuntimeError (CPU) or asserts (CUDA) on a bad index; "
            ".at[].add drops out-of-range updates and wraps negatives; np.add.at wraps "
            "negatives. Float sums with duplicates are not bitwise repeatable on CUDA."
        ),
    ),
)

# --------------------------------------------------------------- properties


@st.composite
def _adjoint_cases(draw):
    case = draw(gather_cases(integral=True))
    x, _, index = case.args
    return case, draw(values(x.dtype, index.shape, integral=True))


def _check_adjoint(target: Target, drawn) -> Comparison:
    """<gather(x, d, i), y> == <x, scatter_add(0, d, i, y)>, exactly (integer-valued data)."""
    case, y = drawn
    x, dim, index = case.args
    gathered = target.call(case)
    scattered = target.sibling("scatter_add").call(
        Case((np.zeros_like(x), dim, index, y), case.noncontiguous))
    lhs = np.sum(gathered.astype(np.float64) * y)
    rhs = np.sum(x.astype(np.float64) * scattered)
    return assert_close(np.float64(lhs), np.float64(rhs), EXACT, path="<gather(x), y> vs <x, scatter_add(y)>")


def _differentiable(target: Target) -> bool:
    return target.framework in ("torch", "jax")


@st.composite
def _grad_cases(draw, op):
    case = draw((gather_cases if op == "gather" else scatter_add_cases)(dtypes=FLOAT_DTYPES))
    out_shape = case.args[2].shape if op == "gather" else case.args[0].shape
    cotangent = draw(values(case.args[0].dtype, out_shape))
    return case, cotangent


def _check_gather_grad(target, drawn) -> Comparison:
    """d/dx <gather(x, d, i), g> = refs.scatter_add(0, d, i, g)."""
    case, g = drawn
    x, dim, index = case.args
    (grad,) = vjp(target, case, wrt=(0,), cotangent=g)
    zeros = np.zeros(x.shape)
    expected = refs.scatter_add(zeros, dim, index, g.astype(np.float64))
    magnitude = refs.scatter_add(zeros, dim, index, np.abs(g.astype(np.float64)))
    n = (index.shape[dim] if index.ndim else 1) + 1
    return assert_close(grad, expected, rounding_bound(x.dtype, n, magnitude), dtype=x.dtype,
                        path="grad of gather")


def _check_scatter_grad(target, drawn) -> Comparison:
    """d/dinput = g and d/dsrc = refs.gather(g, d, i) on index's corner, zero elsewhere."""
    case, g = drawn
    _, dim, index, src = case.args
    grad_input, grad_src = vjp(target, case, wrt=(0, 3), cotangent=g)
    expected_src = np.zeros_like(src)
    expected_src[tuple(slice(0, n) for n in index.shape)] = refs.gather(g, dim, index)
    return assert_close(grad_input, g, EXACT, path="grad of scatter_add wrt input").merge(
        assert_close(grad_src, expected_src, EXACT, path="grad of scatter_add wrt src"))


@st.composite
def _duplicate_cases(draw):
    rank = draw(st.integers(1, 3))
    shape = draw(shapes(rank, min_size=1))
    dim = draw(st.integers(-rank, rank - 1))
    d = dim % rank
    idx_shape = list(shape)
    idx_shape[d] = draw(sizes(min_size=1))
    v = draw(st.integers(0, shape[d] - 1))
    dtype = draw(st.sampled_from(DATA_DTYPES))
    index = np.full(idx_shape, v, dtype=draw(st.sampled_from(INDEX_DTYPES)))
    return Case((np.zeros(shape, dtype), dim, index, np.ones(idx_shape, dtype)),
                draw(st.booleans()))


def _check_duplicates(target, case) -> Comparison:
    """Scattering ones through an all-``v`` index counts them: a closed form, no ref."""
    zeros, dim, index, _ = case.args
    d = dim % zeros.ndim
    expected = np.zeros_like(zeros)
    at = [slice(None)] * zeros.ndim
    at[d] = int(index.flat[0])
    expected[tuple(at)] = index.shape[d]
    return assert_close(target.call(case), expected, EXACT, path="count of duplicates")


@st.composite
def _poisoned_src_cases(draw):
    case = draw(scatter_add_cases(larger_src=True))
    input, dim, index, src = case.args
    poisoned = np.full_like(src, np.nan if src.dtype.kind == "f" else 10**6)
    corner = tuple(slice(0, n) for n in index.shape)
    poisoned[corner] = src[corner]
    return Case((input, dim, index, poisoned), case.noncontiguous), Case(case.args, case.noncontiguous)


def _check_prefix(target, drawn) -> Comparison:
    """Values of src outside index's corner (NaN or 10**6 here) never reach the result."""
    poisoned, clean = drawn
    op = target.op
    expected = op.expected(clean)
    return assert_close(target.call(poisoned), expected, op.tolerance(clean, expected),
                        dtype=op.result_dtype(clean), path="scatter_add with poisoned src tail")


PROPERTIES = (
    Property("gather", "adjoint_of_scatter_add",
             "<gather(x, d, i), y> == <x, scatter_add(0, d, i, y)> (exact, integer-valued data)",
             _adjoint_cases, _check_adjoint),
    Property("gather", "grad_is_scatter_add",
             "autograd / jax.vjp of gather equals refs.scatter_add of the cotangent",
             lambda: _grad_cases("gather"), _check_gather_grad, _differentiable),
    Property("scatter_add", "grad_is_gather",
             "autograd / jax.vjp of scatter_add: identity for input, refs.gather for src",
             lambda: _grad_cases("scatter_add"), _check_scatter_grad, _differentiable),
    Property("scatter_add", "duplicates_accumulate",
             "ones scattered through an all-v index add up to the count (closed form)",
             _duplicate_cases, _check_duplicates),
    Property("scatter_add", "reads_only_index_corner_of_src",
             "src values outside index's extent (poisoned with NaN) do not matter",
             _poisoned_src_cases, _check_prefix),
)

# ------------------------------------------------- planted wrong implementations
# The meta-tests run every property of the op on each of these and require at
# least one to fail: a cross-check that cannot fail is worse than none.


def _swap_last(a):
    if a.ndim == 0:
        return a
    return a.swapaxes(-1, -2).reshape(a.shape) if a.ndim >= 2 else a[::-1]


def _planted_gather_index_transposed(input, dim, index):
    return refs.gather(input, dim, _swap_last(index))


def _planted_gather_output_transposed(input, dim, index):
    return _swap_last(refs.gather(input, dim, index))


def _planted_gather_off_by_one(input, dim, index):
    return refs.gather(input, dim, np.maximum(index.astype(np.int64) - 1, 0))


def _planted_gather_reads_neighbour_slice(input, dim, index):
    # the coordinate of another dim is off by one (wrapping): right shape, wrong values
    if input.ndim < 2:
        return refs.gather(input, dim, index)
    return refs.gather(np.roll(input, 1, axis=(dim + 1) % input.ndim), dim, index)


def _planted_gather_wraps_negative_index(input, dim, index):
    from refs.checks.indexing import check_gather

    check_gather(input, dim, index)  # the static checks, but no look at the values
    return np_take_along_axis(input, dim, index)


def _planted_scatter_overwrites(input, dim, index, src):
    out = np.zeros_like(input)
    if input.ndim == 0:
        return src.copy()
    out[_coordinates(np, index, dim % input.ndim)] = _crop(src, index.shape)
    return out


def _planted_scatter_buffered_add(input, dim, index, src):
    # NumPy's fancy-index ``+=`` is buffered: duplicates do not accumulate
    out = input.copy()
    if input.ndim == 0:
        return out + src
    out[_coordinates(np, index, dim % input.ndim)] += _crop(src, index.shape)
    return out


def _planted_scatter_drops_input(input, dim, index, src):
    return refs.scatter_add(np.zeros_like(input), dim, index, src)


def _planted_scatter_reads_wrong_corner(input, dim, index, src):
    far = src[tuple(slice(s - n, s) for s, n in zip(src.shape, index.shape))]
    return refs.scatter_add(input, dim, index, far)


PLANTED = (
    ("gather", "index transposed", _planted_gather_index_transposed),
    ("gather", "output transposed", _planted_gather_output_transposed),
    ("gather", "index off by one", _planted_gather_off_by_one),
    ("gather", "another dim's coordinate off by one", _planted_gather_reads_neighbour_slice),
    ("gather", "negative index wrapped silently", _planted_gather_wraps_negative_index),
    ("scatter_add", "overwrites instead of adding", _planted_scatter_overwrites),
    ("scatter_add", "buffered += (duplicates lost)", _planted_scatter_buffered_add),
    ("scatter_add", "starts from zeros, drops input", _planted_scatter_drops_input),
    ("scatter_add", "reads src from the far corner", _planted_scatter_reads_wrong_corner),
)
