"""gather and scatter_add: strategies, faults, native twins, oracles, historic cases, properties."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import refs
from crosscheck import sizes
from crosscheck.autodiff import vjp
from crosscheck.compare import Comparison, assert_close
from crosscheck.layouts import Layout
from crosscheck.optable import (
    BadCase,
    Case,
    Fault,
    Historic,
    Native,
    OpSpec,
    Property,
    Target,
    bad_calls,
)
from crosscheck.strategies import (
    BOOLEANS,
    DATA_DTYPES,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    index_values,
    pick,
    shapes,
    values,
)
from crosscheck.strategies import (
    sizes as dim_sizes,
)
from crosscheck.tolerance import EXACT, rounding_bound

GATHER_ARGS = ("input", "dim", "index")
SCATTER_ADD_ARGS = ("input", "dim", "index", "src")

# ---------------------------------------------------------------- strategies


def _layout(draw, rank, *, min_size=0):
    """(input shape, dim as given, normalized dim, index shape) valid for torch's rules."""
    in_shape = draw(shapes(rank, min_size=min_size))
    span = max(rank, 1)
    dim = draw(st.integers(-span, span - 1))
    d = dim % span
    idx_shape = [
        draw(dim_sizes(min_size=min_size)) if k == d
        else draw(dim_sizes(min_size=min_size, max_size=in_shape[k]))
        for k in range(rank)
    ]
    size = in_shape[d] if rank else 1
    if size == 0:  # nothing valid to point at: the index must be empty
        idx_shape[d] = 0
    return in_shape, dim, d, tuple(idx_shape), size


@st.composite
def gather_cases(draw, dtypes=DATA_DTYPES, integral=False, min_size=0):
    rank = draw(st.integers(1 if min_size else 0, 3))
    in_shape, dim, d, idx_shape, size = _layout(draw, rank, min_size=min_size)
    dtype = draw(pick(dtypes))
    index = draw(index_values(draw(pick(INDEX_DTYPES)), idx_shape, size,
                              duplicates=draw(BOOLEANS)))
    data = values(dtype, in_shape, integral=integral)
    return Case((draw(data), dim, index), names=GATHER_ARGS)


@st.composite
def scatter_add_cases(draw, dtypes=DATA_DTYPES, integral=False, larger_src=False, min_size=0):
    rank = draw(st.integers(1 if larger_src or min_size else 0, 3))
    in_shape, dim, d, idx_shape, size = _layout(draw, rank, min_size=min_size)
    src_shape = [draw(dim_sizes(min_size=n)) for n in idx_shape]
    if larger_src:  # src strictly larger than the index somewhere
        k = draw(st.integers(0, rank - 1))
        src_shape[k] = max(src_shape[k], idx_shape[k] + 1)
    dtype = draw(pick(dtypes))
    index = draw(index_values(draw(pick(INDEX_DTYPES)), idx_shape, size,
                              duplicates=draw(BOOLEANS)))
    return Case(
        (draw(values(dtype, in_shape, integral=integral)), dim, index,
         draw(values(dtype, tuple(src_shape), integral=integral))),
        names=SCATTER_ADD_ARGS,
    )


# ------------------------------------------------------------ bad input
# Each fault breaks one thing of a valid call (every dim at least 1, so there is
# something to break) and says what API.md promises for it.


def _poke(draw, call, value_of):
    index = call["index"].astype(np.int64)
    at = tuple(draw(st.integers(0, n - 1)) for n in index.shape)
    index[at] = value_of(draw, _dim_size(call))
    return {**call, "index": index}


def _dim_size(call) -> int:
    input = call["input"]
    return input.shape[call["dim"] % input.ndim]


def _grow_index(draw, call):
    input, d = call["input"], call["dim"] % call["input"].ndim
    others = [k for k in range(input.ndim) if k != d]
    if not others:
        return None
    k = draw(pick(others))
    grown = list(call["index"].shape)
    grown[k] = input.shape[k] + 1
    out = {**call, "index": np.zeros(grown, np.int64)}
    if "src" in call:
        out["src"] = np.ones(grown, call["src"].dtype)
    return out


def _shrink_src(draw, call):
    """src one shorter than the index in one dim (a src larger than the index is valid)."""
    src, index = call["src"], call["index"]
    k = draw(st.integers(0, src.ndim - 1))
    return {**call, "src": src[tuple(slice(0, n - 1 if j == k else n)
                                     for j, n in enumerate(index.shape))]}


def _other_dtype(a):
    return a.astype(np.float64 if a.dtype != np.float64 else np.float32)


INDEX_FAULTS = (
    Fault("index out of range", "index", IndexError,
          lambda draw, call: _poke(draw, call, lambda draw, n: n + draw(st.integers(0, 3))),
          needs_values=True),
    Fault("negative index", "index", IndexError,
          lambda draw, call: _poke(draw, call, lambda draw, n: -draw(st.integers(1, n))),
          needs_values=True),
    Fault("float index", "index", TypeError,
          lambda draw, call: {**call, "index": call["index"].astype(np.float32)}),
    Fault("bool index", "index", TypeError,
          lambda draw, call: {**call, "index": call["index"].astype(bool)}),
    Fault("rank mismatch", "index", ValueError,
          lambda draw, call: {**call, "index": call["index"][..., None] if draw(BOOLEANS)
                              else np.asarray(call["index"][0])}),
    Fault("index larger than input", "index", ValueError, _grow_index),
    Fault("dim out of range", "dim", ValueError,
          lambda draw, call: {**call, "dim": draw(pick(
              [call["input"].ndim, call["input"].ndim + 1, -call["input"].ndim - 1]))}),
)
SRC_FAULTS = (
    Fault("src too small", "src", ValueError, _shrink_src),
    Fault("src dtype differs", "src", TypeError,
          lambda draw, call: {**call, "src": _other_dtype(call["src"])}),
    Fault("src rank mismatch", "src", ValueError,
          lambda draw, call: {**call, "src": call["src"][..., None]}),
)


def bad_gather_cases():
    return bad_calls(GATHER_ARGS, lambda: gather_cases(min_size=1), INDEX_FAULTS)


def bad_scatter_add_cases():
    return bad_calls(SCATTER_ADD_ARGS, lambda: scatter_add_cases(min_size=1),
                     INDEX_FAULTS + SRC_FAULTS)


# ------------------------------------------------------------ native twins
# Each native sees the same call; where its rules differ from torch's, the
# adapter restricts the call to where the semantics coincide, and says how.
# The NumPy ones are also the vectorized oracles of the large tier.


def _crop(a, shape, skip=None):
    if all(k == skip or n == a.shape[k] for k, n in enumerate(shape)):
        return a  # nothing to crop: no slice to dispatch (a compiled program on a JAX array)
    return a[tuple(slice(None) if k == skip else slice(0, n) for k, n in enumerate(shape))]


def np_take_along_axis(input, dim, index):
    if input.ndim == 0:
        return input.copy()
    return np.take_along_axis(_crop(input, index.shape, dim % input.ndim), index, dim)


def np_add_at(input, dim, index, src):
    out = input.copy()
    if input.ndim == 0:
        return out + src
    np.add.at(out, coordinates(np, index, dim % input.ndim), _crop(src, index.shape))
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
    if input.ndim == 0:
        return input + src
    # the aranges of the other dims are NumPy: .at[] takes them as constants, where
    # jnp.arange would be two more compiled programs (iota, reshape) for every shape
    return input.at[coordinates(np, index, dim % input.ndim)].add(_crop(src, index.shape))


def _torch_index(index):
    import torch

    return index if index.dtype in (torch.int64, torch.int32) else index.long()


def coordinates(xp, index, dim):
    """Full coordinates of every element of ``index``: ``index`` on ``dim``, its own position elsewhere."""
    rank = index.ndim
    return tuple(
        index if k == dim else xp.arange(n).reshape([n if j == k else 1 for j in range(rank)])
        for k, n in enumerate(index.shape)
    )


def _torch_scatter_add_known(prop, drawn, target):
    # ScatterAddBackward0 returns grad.gather(dim, index) -- index's shape -- as src's
    # gradient, so autograd rejects it whenever src is larger than index ("returned an
    # invalid gradient at index 1"); seen in torch 2.13. torch_impl has no such limit.
    if prop == "grad_is_gather" and drawn[0]["src"].shape != drawn[0]["index"].shape:
        return "torch.scatter_add backward rejects src larger than index"
    return None


_CROP = "input cropped to index's extent off dim (the natives broadcast instead)"
GATHER_NATIVES = (
    Native("np.take_along_axis", "numpy", np_take_along_axis, _CROP),
    Native("torch.gather", "torch", torch_gather, "uint8 index cast to int64"),
    Native("jnp.take_along_axis", "jax", jnp_take_along_axis, _CROP),
)
SCATTER_ADD_NATIVES = (
    Native("np.add.at", "numpy", np_add_at, "coordinates built from index + aranges"),
    Native("torch.scatter_add", "torch", torch_scatter_add, "uint8 index cast to int64",
           known_difference=_torch_scatter_add_known),
    Native("jax .at[].add", "jax", jax_at_add, "coordinates built from index + aranges"),
)

# ------------------------------------------------------------ the large tier


def _large_layout(rng: np.random.Generator):
    """An input of 2**16-2**20 elements with one dim of 64 or more, and a dim to index."""
    rank = int(rng.integers(1, 4))
    total = int(rng.integers(16, 21))  # log2 of the element count
    long = int(rng.integers(6, total - 2 * (rank - 1) + 1)) if rank > 1 else total
    rest = total - long
    dims = [2 ** long] + [2 ** (rest // (rank - 1) + (k < rest % (rank - 1))) for k in range(rank - 1)]
    shape = tuple(int(n) for n in rng.permutation(dims))
    dim = int(rng.integers(-rank, rank))
    return shape, dim, dim % rank


def _large_index(rng, shape, d, dtype):
    idx_shape = tuple(int(rng.integers(1, n + 1)) if k != d else int(rng.integers(1, 2 * n + 1))
                      for k, n in enumerate(shape))
    return rng.integers(0, shape[d], size=idx_shape).astype(dtype)


def large_gather(rng: np.random.Generator) -> tuple:
    shape, dim, d = _large_layout(rng)
    dtype = rng.choice(DATA_DTYPES)
    index = _large_index(rng, shape, d, rng.choice(("int64", "int32")))
    return sizes.values(rng, shape, dtype), dim, index


def large_scatter_add(rng: np.random.Generator) -> tuple:
    shape, dim, d = _large_layout(rng)
    dtype = rng.choice(DATA_DTYPES)
    index = _large_index(rng, shape, d, rng.choice(("int64", "int32")))
    src_shape = tuple(n + int(rng.integers(0, 2)) for n in index.shape)
    return (sizes.values(rng, shape, dtype), dim, index, sizes.values(rng, src_shape, dtype))


# ----------------------------------------------------------------- op table


def _scatter_terms(case: Case) -> int:
    """Roundings per output element: one per src element that may land there, plus one."""
    index, dim = case["index"], case["dim"]
    return (index.shape[dim] if index.ndim else 1) + 1


GATHER = OpSpec(
    name="gather",
    topic="indexing",
    arg_names=GATHER_ARGS,
    cases=gather_cases,
    bad_cases=bad_gather_cases,
    natives=GATHER_NATIVES,
    rounding_terms=None,  # pure data movement: exact in every dtype
    forbidden_torch=("gather", "take_along_dim"),
    oracle=np_take_along_axis,
    large=large_gather,
    deterministic=True,
)
SCATTER_ADD = OpSpec(
    name="scatter_add",
    topic="indexing",
    arg_names=SCATTER_ADD_ARGS,
    cases=scatter_add_cases,
    bad_cases=bad_scatter_add_cases,
    natives=SCATTER_ADD_NATIVES,
    rounding_terms=_scatter_terms,
    forbidden_torch=("scatter_add", "scatter_add_", "scatter", "scatter_",
                     "scatter_reduce", "scatter_reduce_"),
    oracle=np_add_at,
    large=large_scatter_add,
)
OPS = (GATHER, SCATTER_ADD)

# --------------------------------------------------------------- properties


@st.composite
def _adjoint_cases(draw):
    case = draw(gather_cases(integral=True))
    x, index = case["input"], case["index"]
    return case, draw(values(x.dtype, index.shape, integral=True))


def _check_adjoint(target: Target, drawn) -> Comparison:
    """<gather(x, d, i), y> == <x, scatter_add(0, d, i, y)>, exactly (integer-valued data)."""
    case, y = drawn
    x, dim, index = case.args
    gathered = target.call(case)
    scattered = target.sibling(SCATTER_ADD).call(
        Case((np.zeros_like(x), dim, index, y), case.layouts + (None,)))
    lhs = np.sum(gathered.astype(np.float64) * y)
    rhs = np.sum(x.astype(np.float64) * scattered)
    return assert_close(np.float64(lhs), np.float64(rhs), EXACT,
                        path="<gather(x), y> vs <x, scatter_add(y)>")


def differentiable(target: Target) -> bool:
    return target.framework in ("torch", "jax")


@st.composite
def _grad_cases(draw, op):
    case = draw((gather_cases if op == "gather" else scatter_add_cases)(dtypes=FLOAT_DTYPES))
    out_shape = case["index"].shape if op == "gather" else case["input"].shape
    cotangent = draw(values(case["input"].dtype, out_shape))
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
    idx_shape[d] = draw(dim_sizes(min_size=1))
    v = draw(st.integers(0, shape[d] - 1))
    dtype = draw(pick(DATA_DTYPES))
    index = np.full(idx_shape, v, dtype=draw(pick(INDEX_DTYPES)))
    return Case((np.zeros(shape, dtype), dim, index, np.ones(idx_shape, dtype)),
                names=SCATTER_ADD_ARGS)


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
    index, src = case["index"], case["src"]
    poisoned = np.full_like(src, np.nan if src.dtype.kind == "f" else 10**6)
    corner = tuple(slice(0, n) for n in index.shape)
    poisoned[corner] = src[corner]
    return case.with_args(*case.args[:3], poisoned), case


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
             _adjoint_cases, _check_adjoint, layouts=True),
    Property("gather", "grad_is_scatter_add",
             "autograd / jax.vjp of gather equals refs.scatter_add of the cotangent",
             lambda: _grad_cases("gather"), _check_gather_grad, differentiable, layouts=True),
    Property("scatter_add", "grad_is_gather",
             "autograd / jax.vjp of scatter_add: identity for input, refs.gather for src",
             lambda: _grad_cases("scatter_add"), _check_scatter_grad, differentiable, layouts=True),
    Property("scatter_add", "duplicates_accumulate",
             "ones scattered through an all-v index add up to the count (closed form)",
             _duplicate_cases, _check_duplicates, layouts=True),
    Property("scatter_add", "reads_only_index_corner_of_src",
             "src values outside index's extent (poisoned with NaN) do not matter",
             _poisoned_src_cases, _check_prefix),
)

# ------------------------------------------------------------ historic cases
# Each reproduces a published bug or surprise in gather / scatter_add; the
# expected values come from refs, never from the framework that had the bug.


def _historic_expanded_index():
    # torch.gather on CPU read the wrong elements for an index of strides (1, 0)
    # (an (N, 1) index expanded along the last dim): pytorch/pytorch#99595, #129093
    x = np.arange(10 * 6 * 4, dtype=np.float64).reshape(10, 6, 4) / 8
    index = np.broadcast_to(np.array([[3], [0], [9], [3], [1], [7]])[None], (1, 6, 4)).copy()
    return Case((x, 0, index), (None, None, Layout("expanded", dim=2)), GATHER_ARGS)


def _historic_unsqueeze_expand_float64():
    # float64 gather through an unsqueezed-then-expanded index returned one element per
    # batch on CUDA: pytorch/pytorch#151978 (x (3, 5, 2), index zeros (3, 1) -> (3, 1, 2))
    x = (np.arange(30, dtype=np.float64).reshape(3, 5, 2) + 1) / 4
    index = np.zeros((3, 1, 2), np.int64)
    index[1] = 2
    index[2] = 4
    return Case((x, -2, index), (None, None, Layout("expanded", dim=2)), GATHER_ARGS)


def _historic_negative_index():
    # torch.gather does not wrap negative indices (NumPy and JAX do); CPU raises
    # RuntimeError, CUDA asserts: pytorch/pytorch#55143. Ours: IndexError everywhere.
    case = Case((np.arange(6.0).reshape(2, 3), 1, np.array([[0, -1], [2, 1]])), names=GATHER_ARGS)
    return BadCase(case, INDEX_FAULTS[1], "index")


def _historic_take_along_axis_fill():
    # jnp.take_along_axis fills out-of-range reads (NaN / the integer minimum) instead of
    # raising: jax-ml/jax#14193, #7595. Ours must raise IndexError, not return -2**31.
    case = Case((np.arange(4, dtype=np.int32), 0, np.array([1, 4])), names=GATHER_ARGS)
    return BadCase(case, INDEX_FAULTS[0], "index")


def _historic_buffered_add():
    # NumPy's fancy-index `+=` is buffered: duplicates do not accumulate
    # (numpy/numpy#7776); scatter_add must count every duplicate
    return Case((np.zeros(3), 0, np.array([0, 2, 0, 0]), np.array([1.0, 2.0, 3.0, 4.0])),
                names=SCATTER_ADD_ARGS)


def _historic_size_one_scatter():
    # torch.compile fused a size-1 scatter_add_ with a later read and returned stale
    # zeros: pytorch/pytorch#191571 (target (1, 4), index zeros (8,) expanded to (8, 4))
    src = (np.arange(32, dtype=np.float32).reshape(8, 4) - 10) / 4
    index = np.zeros((8, 4), np.int64)
    return Case((np.zeros((1, 4), np.float32), 0, index, src),
                (None, None, Layout("expanded", dim=1), None), SCATTER_ADD_ARGS)


HISTORIC = (
    Historic("gather", "agrees_with_ref", "expanded (N, 1) index",
             "https://github.com/pytorch/pytorch/issues/129093",
             "torch.gather on CPU gave wrong values for an index expanded from (N, 1) "
             "(strides (1, 0)); also pytorch/pytorch#99595", _historic_expanded_index),
    Historic("gather", "agrees_with_ref", "unsqueezed + expanded float64 index",
             "https://github.com/pytorch/pytorch/issues/151978",
             "float64 torch.gather through an unsqueezed, expanded index returned the same "
             "element for every batch on CUDA", _historic_unsqueeze_expand_float64),
    Historic("gather", "rejects_bad_input", "negative index",
             "https://github.com/pytorch/pytorch/issues/55143",
             "torch does not wrap negative indices (NumPy and JAX do): RuntimeError on CPU, a "
             "device-side assert on CUDA; API.md: IndexError everywhere",
             _historic_negative_index),
    Historic("gather", "rejects_bad_input", "take_along_axis fills",
             "https://github.com/jax-ml/jax/issues/14193",
             "JAX fills out-of-range gathers with NaN or the integer minimum instead of "
             "raising; ours must raise IndexError", _historic_take_along_axis_fill),
    Historic("scatter_add", "agrees_with_ref", "buffered += loses duplicates",
             "https://github.com/numpy/numpy/issues/7776",
             "NumPy's a[idx] += v applies each duplicate once; scatter_add must add all",
             _historic_buffered_add),
    Historic("scatter_add", "agrees_with_ref", "size-1 scatter under torch.compile",
             "https://github.com/pytorch/pytorch/issues/191571",
             "torch.compile returned stale zeros for a scatter_add_ into a size-1 leading "
             "dim through an expanded index", _historic_size_one_scatter),
)
