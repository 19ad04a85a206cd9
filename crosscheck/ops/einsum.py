"""einsum and matmul: strategies, faults, native twins, oracles, the large tier, historic cases,
properties."""

from __future__ import annotations

import math
import string
from typing import NamedTuple

import numpy as np
from hypothesis import note
from hypothesis import strategies as st

from crosscheck import sizes
from crosscheck.compare import Comparison, Mismatch, assert_close
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
)
from crosscheck.strategies import BOOLEANS, DATA_DTYPES, SIZES, pick, values
from crosscheck.tolerance import EXACT
from refs.checks.einsum import ELLIPSIS, parse_einsum

# ---------------------------------------------------------------- strategies

EINSUM_ARGS = ("subscripts", "*operands")
MATMUL_ARGS = ("a", "b")

#: the product of every letter's size (ellipsis dims included): the refs loop
#: over every combination, twice per case (result and magnitude)
BUDGET = 1500


class Expression(NamedTuple):
    """A valid einsum expression and operand shapes that fit it."""

    subscripts: str
    shapes: tuple[tuple[int, ...], ...]


def _budgeted_sizes(draw, n: int, budget: int) -> list[int]:
    """``n`` sizes from SIZES whose product stays within ``budget`` (valid by construction)."""
    out = []
    for _ in range(n):
        # zero-size dims half as often as the others: they empty the whole result
        s = draw(pick(s for s in SIZES if s <= max(budget, 1) for _ in range(1 + (s > 0))))
        out.append(s)
        budget //= max(s, 1)
    return out


def _spaced(draw, tokens: list[str]) -> str:
    """Join tokens, sometimes with white space between them (never inside '...' or '->')."""
    if not draw(BOOLEANS):
        return "".join(tokens)
    gaps = pick(("", "", " ", "  "))
    return draw(gaps) + "".join(t + draw(gaps) for t in tokens)


@st.composite
def expressions(draw, *, min_operands=1, max_operands=4, need_letter=False) -> Expression:
    """Random letters (upper and lower case), repeats (diagonals), '...' anywhere, size-1
    dims that broadcast, implicit and explicit output, white space."""
    n_ops = draw(st.integers(min_operands, max_operands))
    letters = draw(st.lists(pick(string.ascii_letters), min_size=int(need_letter),
                            max_size=4, unique=True))
    ell_rank = draw(st.integers(0, 2))
    all_sizes = _budgeted_sizes(draw, len(letters) + ell_rank, BUDGET)
    size = dict(zip(letters, all_sizes))
    ell_sizes = all_sizes[len(letters):]

    terms, shapes = [], []
    for k in range(n_ops):
        min_len = 1 if need_letter and k == 0 else 0
        term = draw(st.permutations(letters))[: draw(st.integers(min(min_len, len(letters)), 3))]
        if term and draw(st.integers(0, 3)) == 0:  # a repeated letter: a diagonal
            term.insert(draw(st.integers(0, len(term))), draw(pick(term)))
        # a letter broadcasts (size 1) in this operand, the same for all its repeats;
        # sorted, so the draws do not depend on the string hash seed (derandomized CI)
        ones = {x for x in sorted(set(term)) if size[x] != 1 and draw(st.integers(0, 5)) == 0}
        dims = [1 if x in ones else size[x] for x in term]
        if draw(BOOLEANS):  # this operand has '...', covering the last `covered` dims
            covered = draw(st.integers(0, ell_rank))
            under = [1 if draw(st.integers(0, 3)) == 0 else n for n in ell_sizes[ell_rank - covered:]]
            at = draw(st.integers(0, len(term)))
            term = term[:at] + [ELLIPSIS] + term[at:]
            dims = dims[:at] + under + dims[at:]
        terms.append(term)
        shapes.append(tuple(dims))

    tokens = [t for k, term in enumerate(terms) for t in ([","] if k else []) + term]
    if draw(BOOLEANS):  # explicit output
        used = sorted({t for term in terms for t in term if t != ELLIPSIS})
        out = draw(st.permutations(used)) if used else []
        out = out[: draw(st.integers(0, len(out)))]
        if draw(st.integers(0, 4)) > 0:  # mostly keep '...'; without it the '...' dims are summed
            out.insert(draw(st.integers(0, len(out))), ELLIPSIS)
        tokens += ["->"] + list(out)
    return Expression(_spaced(draw, tokens), tuple(shapes))


@st.composite
def einsum_cases(draw, exprs=None, dtypes=DATA_DTYPES):
    expr = draw(expressions() if exprs is None else exprs)
    dtype = draw(pick(dtypes))
    operands = tuple(draw(values(dtype, s)) for s in expr.shapes)
    return Case((expr.subscripts, *operands), names=EINSUM_ARGS)


@st.composite
def matmul_layouts(draw, *, min_rank=1, batched=False):
    """Shapes of ``a`` and ``b`` for ``a @ b``: 1-D promotion, batch dims broadcast both ways."""
    lo_a, lo_b = draw(pick(((3, 2), (2, 3)))) if batched else (min_rank, min_rank)
    ra, rb = draw(st.integers(lo_a, 4)), draw(st.integers(lo_b, 4))
    n_batch = max(ra, rb) - 2
    m, k, n, *batch = _budgeted_sizes(draw, 3 + max(n_batch, 0), BUDGET)

    def side(rank):
        own = batch[len(batch) - (rank - 2):] if rank > 2 else []
        return [1 if draw(st.integers(0, 3)) == 0 else s for s in own]

    a = (k,) if ra == 1 else (*side(ra), m, k)
    b = (k,) if rb == 1 else (*side(rb), k, n)
    return a, b


@st.composite
def matmul_cases(draw, dtypes=DATA_DTYPES, *, batched=False, integral=False):
    sa, sb = draw(matmul_layouts(batched=batched))
    dtype = draw(pick(dtypes))
    a, b = (draw(values(dtype, shape, integral=integral)) for shape in (sa, sb))
    return Case((a, b), names=MATMUL_ARGS)


# ------------------------------------------------------------ bad input
# Each fault breaks one thing of a valid call and says what API.md promises for
# it. The einsum faults rewrite the subscripts without their white space; those
# that break the operands rebuild only the operands they change.


def _parts(call) -> tuple[list[str], str, str]:
    """The call's input terms, '->' (or ''), and output, white space dropped."""
    lhs, arrow, rhs = call["subscripts"].replace(" ", "").partition("->")
    return lhs.split(","), arrow, rhs


def _fresh(draw, call) -> str:
    """A letter the subscripts do not use."""
    return draw(pick(sorted(set(string.ascii_letters) - set(call["subscripts"]))))


def _subscripts(call, subscripts: str) -> dict:
    return {**call, "subscripts": subscripts}


def _expression(call, terms, arrow, rhs, operands) -> dict:
    return {"subscripts": ",".join(terms) + arrow + rhs, "operands": tuple(operands)}


def _like(call, shape) -> np.ndarray:
    """An operand of ``shape`` in the call's dtype (values do not matter to a fault)."""
    return np.ones(shape, dtype=call["operands"][0].dtype)


def _unknown_character(draw, call):
    subscripts = call["subscripts"].replace(" ", "")
    at = draw(st.integers(0, len(subscripts)))
    bad = draw(pick("0129!#$%&*+/:;<=?@[]^_{|}~"))
    return _subscripts(call, subscripts[:at] + bad + subscripts[at:])


def _broken_ellipsis(draw, call):
    terms, arrow, rhs = _parts(call)
    at = draw(st.integers(0, len(terms[0])))
    dots = draw(pick((".", "..", ". ..", ".. .")))
    terms[0] = terms[0][:at] + dots + terms[0][at:]
    return _expression(call, terms, arrow, rhs, call["operands"])


def _two_ellipses(draw, call):
    terms, arrow, rhs = _parts(call)
    terms[0] = ELLIPSIS + terms[0] + ELLIPSIS
    return _expression(call, terms, arrow, rhs, call["operands"])


def _letter_twice(draw, call, rhs):
    letter = draw(pick(t for t in _parts(call)[0][0] if t in string.ascii_letters))
    return letter + rhs.replace(letter, "") + letter


def _too_few_operands(draw, call):
    return {**call, "operands": call["operands"][:-1]}


def _too_many_operands(draw, call):
    return {**call, "operands": (*call["operands"], _like(call, (2,)))}


def _rank_mismatch(draw, call):
    """One operand with a rank its term cannot name: too few dims for its letters, a '...'
    term given a 0-d operand with a letter added, or one dim more or less."""
    terms, arrow, rhs = _parts(call)
    operands = list(call["operands"])
    k = draw(st.integers(0, len(terms) - 1))
    shape = operands[k].shape
    n_letters = len(terms[k].replace(ELLIPSIS, ""))
    if ELLIPSIS in terms[k] and n_letters:
        shape = shape[: n_letters - 1]  # fewer dims than letters
    elif ELLIPSIS in terms[k]:
        terms[k] += _fresh(draw, call)
        shape = ()
    elif n_letters and draw(BOOLEANS):
        shape = shape[:-1]
    else:
        shape = (*shape, 2)
    operands[k] = _like(call, shape)
    return _expression(call, terms, arrow, rhs, operands)


def _repeated_sizes_differ(draw, call):
    terms, arrow, rhs = _parts(call)
    operands = list(call["operands"])
    n, m = draw(pick(((2, 3), (3, 2), (1, 2), (5, 0))))
    fresh = _fresh(draw, call)
    terms[0] += fresh + fresh
    operands[0] = _like(call, (*operands[0].shape, n, m))
    return _expression(call, terms, arrow, rhs, operands)


def _letter_sizes_clash(draw, call):
    terms, arrow, rhs = _parts(call)
    operands = list(call["operands"])
    n, m = draw(pick(((2, 3), (3, 5), (0, 2))))
    fresh = _fresh(draw, call)
    terms[0] += fresh
    operands[0] = _like(call, (*operands[0].shape, n))
    return _expression(call, [*terms, fresh], arrow, rhs, [*operands, _like(call, (m,))])


def _ellipsis_sizes_clash(draw, call):
    n, m = draw(pick(((2, 3), (3, 5), (0, 2))))
    _, arrow, _ = _parts(call)
    return _expression(call, [_fresh(draw, call) + ELLIPSIS, ELLIPSIS], arrow, "",
                       [_like(call, (2, n)), _like(call, (m,))])


def _with_output(rewrite):
    """A fault that replaces the output (after '->', added where implicit) by ``rewrite``."""
    def apply(draw, call):
        terms, _, rhs = _parts(call)
        return _expression(call, terms, "->", rewrite(draw, call, rhs), call["operands"])

    return apply


EINSUM_FAULTS = (
    Fault("unknown character", "subscripts", ValueError, _unknown_character),
    Fault("broken ellipsis", "subscripts", ValueError, _broken_ellipsis),
    Fault("two ellipses in one term", "subscripts", ValueError, _two_ellipses),
    Fault("'->' twice", "subscripts", ValueError,
          _with_output(lambda draw, call, rhs: f"{rhs}->{rhs}")),
    Fault("output letter not in inputs", "subscripts", ValueError,
          _with_output(lambda draw, call, rhs: rhs + _fresh(draw, call))),
    Fault("output letter repeated", "subscripts", ValueError, _with_output(_letter_twice)),
    Fault("comma in output", "subscripts", ValueError,
          _with_output(lambda draw, call, rhs: f"{rhs},{rhs}")),
    Fault("too few operands", "operands", ValueError, _too_few_operands),
    Fault("too many operands", "operands", ValueError, _too_many_operands),
    Fault("no operands", "operands", ValueError, lambda draw, call: {**call, "operands": ()}),
    Fault("rank mismatch", "operands", ValueError, _rank_mismatch),
    Fault("repeated letter sizes differ", "operands", ValueError, _repeated_sizes_differ),
    Fault("letter sizes do not broadcast", "operands", ValueError, _letter_sizes_clash),
    Fault("ellipsis sizes do not broadcast", "operands", ValueError, _ellipsis_sizes_clash),
)


def bad_einsum_cases():
    # at most three operands, and a letter in the first term for the faults that move one
    return bad_calls(EINSUM_ARGS, lambda: einsum_cases(
        expressions(max_operands=3, need_letter=True)), EINSUM_FAULTS)


def _zero_d(name):
    def apply(draw, call):
        return {**call, name: np.ones((), dtype=call[name].dtype)}

    return apply


def _inner_sizes_differ(draw, call):
    a, b = call["a"], call["b"]
    shape = list(b.shape)
    shape[0 if b.ndim == 1 else -2] = a.shape[-1] + draw(st.integers(1, 2))
    return {**call, "b": np.ones(shape, dtype=b.dtype)}


def _batched(x, n, vector_as) -> np.ndarray:
    """``x`` with its batch dim nearest the matrix set to ``n`` (added where it has none);
    a 1-D ``x`` becomes the matrix ``vector_as(k)`` first, so the inner sizes still fit."""
    matrix = x.shape[-2:] if x.ndim >= 2 else vector_as(x.shape[0])
    batch = list(x.shape[:-2]) if x.ndim > 2 else [n]
    batch[-1] = n
    return np.ones((*batch, *matrix), dtype=x.dtype)


def _batch_dims_clash(draw, call):
    # the batch dim just left of the matrices: 2 in a, 3 in b
    return {"a": _batched(call["a"], 2, lambda k: (1, k)),
            "b": _batched(call["b"], 3, lambda k: (k, 1))}


MATMUL_FAULTS = (
    Fault("a is 0-d", "a", ValueError, _zero_d("a")),
    Fault("b is 0-d", "b", ValueError, _zero_d("b")),
    Fault("inner sizes differ", "b", ValueError, _inner_sizes_differ),
    Fault("batch dims do not broadcast", "b", ValueError, _batch_dims_clash),
)


def bad_matmul_cases():
    return bad_calls(MATMUL_ARGS, matmul_cases, MATMUL_FAULTS)


# ------------------------------------------------------------ native twins
# np.einsum, torch.einsum, jnp.einsum take the API's call as it is; einops
# needs named axes separated by spaces and an explicit output, so its adapter
# rewrites the expression (independently of refs.checks.einsum).


def einops_einsum(subscripts, *operands):
    import einops

    lhs, arrow, rhs = subscripts.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if not arrow:  # the implicit rule, written out: '...' first, then letters seen once, sorted
        letters = [c for c in lhs if c in string.ascii_letters]
        once = sorted(c for c in set(letters) if letters.count(c) == 1)
        rhs = (ELLIPSIS if ELLIPSIS in lhs else "") + "".join(once)
    pattern = ", ".join(_named_axes(t) for t in terms) + " -> " + _named_axes(rhs)
    return einops.einsum(*operands, pattern)


def _named_axes(term: str) -> str:
    """'ab...c' -> 'a b ... c': one named axis per letter."""
    before, ellipsis, after = term.partition(ELLIPSIS)
    return " ".join([*before, *([ELLIPSIS] if ellipsis else []), *after])


def _ellipsis_summed(case: Case) -> bool:
    """An explicit output without '...' while an input's '...' covers dims."""
    subscripts, operands = case["subscripts"], case["operands"]
    if "->" not in subscripts or ELLIPSIS in subscripts.partition("->")[2]:
        return False
    parsed = parse_einsum(subscripts, [x.shape for x in operands])
    return any(label.startswith(ELLIPSIS) for labels in parsed.inputs for label in labels)


def _np_einsum_unsupported(case, target):
    if _ellipsis_summed(case):
        # NumPy raises "output has more dimensions than subscripts given ... but no '...'";
        # torch and JAX (and API.md, which follows torch) sum those dims
        return "np.einsum rejects an output without '...' when an input's '...' covers dims"
    return None


def _torch_cuda_integers(dtype, target):
    # torch has no integer matmul on CUDA ("addmm_cuda"/"bmm_cuda" not implemented for
    # 'Long', torch#44428); on the CPU it has.
    if target.backend.device == "cuda" and dtype.kind in "iu":
        return "torch has no integer matmul on CUDA (torch#44428)"
    return None


def _inductor_integer_bmm(case, target) -> bool:
    """torch.compile on CPU lowers a bmm whose M or N is 1 to a product and a sum, and the
    sum's int64 accumulator leaks out: int32 operands, an int64 result (values right).
    pytorch/pytorch#191308, open in torch 2.13 (fix proposed in #191324).

    Whether torch.matmul reaches that bmm follows its decomposition (torch._decomp's
    ``matmul`` and ``should_fold``, Inductor's ``bmm``): two operands of at most 2 dims
    take mm / mv / dot; a batched operand against one of at most 2 dims is folded into a
    single mm when it is contiguous (or empty) -- unless ``a`` is the 2-D one; K == 1 is an
    outer product, and M == N == 1 a sum cast back to the input dtype. Checked against
    torch 2.13 over ranks 1-4, sizes 0-2 and every layout of the regression tier.
    """
    a, b = case["a"], case["b"]
    if (target.mode != "compile" or target.backend.device != "cpu" or a.dtype.kind not in "iu"
            or a.dtype.itemsize >= 8 or max(a.ndim, b.ndim) < 3):
        return False
    m = a.shape[-2] if a.ndim > 1 else 1
    n = b.shape[-1] if b.ndim > 1 else 1
    if (m == 1) == (n == 1) or a.shape[-1] == 1:
        return False
    batched, i = (a, 0) if a.ndim >= b.ndim else (b, 1)
    if min(a.ndim, b.ndim) <= 2 and a.ndim != 2:  # torch.matmul may fold the batch into an mm
        if batched.size == 0:
            return False
        target.backend.load()
        return not target.backend.asarray(batched, case.layout(i)).is_contiguous()
    return True


def _torch_matmul_unsupported(case, target):
    if _inductor_integer_bmm(case, target):
        return "torch.compile returns int64 for an int32 bmm with M or N of 1 (torch#191308)"
    return _torch_cuda_integers(case["a"].dtype, target)


def _torch_einsum_unsupported(case, target):
    # torch 2.13's einsum on int32 operands lets torch.sum's int64 promotion leak out
    # wherever it sums a letter on its own (traces, letters private to one operand,
    # zero-size dims): the result comes back int64 ('aa' on a (0, 0) array, 'aa,a'), or
    # a later product raises "expected scalar type Long but found Int" ('ab,bcd->').
    # Found by this suite; einops.einsum delegates to torch.einsum and inherits it.
    operands = case["operands"]
    if not operands:
        return None
    if operands[0].dtype == np.int32:
        return "torch.einsum on int32: internal sums promote to int64"
    return _torch_cuda_integers(operands[0].dtype, target)


def np_einsum(subscripts, *operands):
    return np.einsum(subscripts, *operands)


def torch_einsum(subscripts, *operands):
    import torch

    return torch.einsum(subscripts, *operands)


def jnp_einsum(subscripts, *operands):
    import jax.numpy as jnp

    return jnp.einsum(subscripts, *operands)


def np_matmul(a, b):
    return np.matmul(a, b)


def torch_matmul(a, b):
    import torch

    return torch.matmul(a, b)


def jnp_matmul(a, b):
    import jax.numpy as jnp

    return jnp.matmul(a, b)


EINSUM_NATIVES = (
    Native("np.einsum", "numpy", np_einsum, unsupported=_np_einsum_unsupported),
    Native("torch.einsum", "torch", torch_einsum, unsupported=_torch_einsum_unsupported),
    Native("jnp.einsum", "jax", jnp_einsum),
    Native("einops.einsum", "torch", einops_einsum,
           "expression rewritten as einops' named axes ('ij,j' -> 'i j, j -> i') with the "
           "implicit output written out; einops delegates to torch.einsum, so it runs on torch "
           "only: what it adds is its pattern grammar, which is backend-independent",
           unsupported=_torch_einsum_unsupported),
)
MATMUL_NATIVES = (
    Native("np.matmul", "numpy", np_matmul),
    Native("torch.matmul", "torch", torch_matmul, unsupported=_torch_matmul_unsupported),
    Native("jnp.matmul", "jax", jnp_matmul),
)

# ------------------------------------------------------------ the oracles
# The truth at sizes the loops of refs cannot reach. matmul's is np.matmul, its
# NumPy native already; np.einsum cannot be einsum's as it is, because it
# rejects an explicit output without '...' when an input's '...' covers dims,
# which API.md (after torch) sums. So the oracle hands np.einsum the expression
# as the shared parser labels it: every dim a label of its own ('...0', '...1'
# for the ellipsis dims), the output's labels explicit, summed ellipsis dims
# simply left out of the output.


def np_einsum_oracle(subscripts, *operands):
    """einsum as API.md defines it, vectorized: np.einsum on the parsed labels."""
    parsed = parse_einsum(subscripts, [np.shape(x) for x in operands])
    size = parsed.size
    if len(size) > 52:
        raise ValueError(f"einsum oracle: {len(size)} labels, np.einsum takes at most 52")
    ids = {label: k for k, label in enumerate(size)}
    args = []
    for x, labels in zip(operands, parsed.inputs):
        # a size-1 dim that broadcasts: the operand does not depend on that label (read at
        # 0, as refs does), so the dim goes rather than being expanded in memory
        keep = [n == size[label] for label, n in zip(labels, np.shape(x))]
        args += [np.asarray(x)[tuple(slice(None) if k else 0 for k in keep)],
                 [ids[label] for label, k in zip(labels, keep) if k]]
    out = np.einsum(*args, [ids[label] for label in parsed.output], optimize=True)
    return np.asarray(out, dtype=np.result_type(*operands))


# ------------------------------------------------------------ the large tier
# Every operand of 2**16-2**20 elements and every named dim of 64 or more, in
# four kinds of expression, each with its letters and dim orders drawn (so the
# operands arrive transposed and the result leaves transposed). The summed
# extents stay small enough that float32 meets the a-priori gamma bound of
# rounding_terms with room to spare (its error grows like sqrt(S), the bound
# like S).


def _letters(rng: np.random.Generator, n: int) -> list[str]:
    return [str(c) for c in rng.choice(list(string.ascii_letters), size=n, replace=False)]


def _order(rng: np.random.Generator, labels) -> str:
    return "".join(str(x) for x in rng.permutation(list(labels)))


def _with_ellipsis(rng: np.random.Generator, term: str) -> str:
    at = int(rng.integers(0, len(term) + 1))
    return term[:at] + ELLIPSIS + term[at:]


def _shape(term: str, size: dict[str, int], covered=()) -> tuple[int, ...]:
    before, ellipsis, after = term.partition(ELLIPSIS)
    return (*(size[x] for x in before), *(covered if ellipsis else ()), *(size[x] for x in after))


def _large_batched_matmul(rng):
    """'bij,bjk->bik': sizes 64 or 128 (at most two of them 128)."""
    b, i, j, k = _letters(rng, 4)
    size = {x: 64 for x in (b, i, j, k)}
    for x in rng.choice([b, i, j, k], size=int(rng.integers(0, 3)), replace=False):
        size[str(x)] = 128
    terms = (_order(rng, b + i + j), _order(rng, b + j + k))
    return f"{terms[0]},{terms[1]}->{_order(rng, b + i + k)}", [_shape(t, size) for t in terms]


def _large_diagonal(rng):
    """'iij,jk->ik': a diagonal read inside a contraction; without i in the output, its
    trace is summed too."""
    i, j, k = _letters(rng, 3)
    nj = 64 * 2 ** int(rng.integers(0, 3))
    size = {i: 64, j: nj, k: 2**16 // nj * 2 ** int(rng.integers(0, 3))}
    terms = (_order(rng, i + i + j), _order(rng, j + k))
    out = _order(rng, i + k) if rng.integers(0, 3) else k
    return f"{terms[0]},{terms[1]}->{out}", [_shape(t, size) for t in terms]


def _large_outer(rng):
    """'bi,bj->bij': an outer product per batch element, nothing summed."""
    b, i, j = _letters(rng, 3)
    size = {b: 1024, i: 64, j: 64}
    terms = (_order(rng, b + i), _order(rng, b + j))
    return f"{terms[0]},{terms[1]}->{_order(rng, b + i + j)}", [_shape(t, size) for t in terms]


def _large_ellipsis(rng):
    """'...mk,...k->...m' with '...' of two ranks broadcasting, (16, 1) against (1024,),
    anywhere in the terms; or an output without '...', which sums those dims."""
    m, k = _letters(rng, 2)
    size = {m: 64, k: 64}
    a, b = _with_ellipsis(rng, _order(rng, m + k)), _with_ellipsis(rng, k)
    out = _with_ellipsis(rng, m) if rng.integers(0, 3) else m
    return f"{a},{b}->{out}", [_shape(a, size, (16, 1)), _shape(b, size, (1024,))]


_LARGE_EINSUMS = (_large_batched_matmul, _large_diagonal, _large_outer, _large_ellipsis)


def large_einsum(rng: np.random.Generator) -> tuple:
    subscripts, shapes = _LARGE_EINSUMS[int(rng.integers(len(_LARGE_EINSUMS)))](rng)
    dtype = rng.choice(DATA_DTYPES)
    return (subscripts, *(sizes.values(rng, shape, dtype) for shape in shapes))


def large_matmul(rng: np.random.Generator) -> tuple:
    """(B1, 1, M, K) @ (B2, K, N) -> (B1, B2, M, N), or the size-1 batch dim on b's side:
    batch dims broadcast both ways; M, N of 64-256, K of 64 or 128, batches of 2 or more."""
    m, n = (2 ** int(e) for e in rng.integers(6, 9, size=2))
    k = 2 ** int(rng.integers(6, 8))
    batch_a = 2**16 // (m * k) * 2 ** int(rng.integers(0, 2))
    batch_b = 2**16 // (k * n)
    if rng.integers(0, 2):
        shapes = (batch_a, 1, m, k), (batch_b, k, n)
    else:
        shapes = (batch_a, m, k), (batch_b, 1, k, n)
    dtype = rng.choice(DATA_DTYPES)
    return tuple(sizes.values(rng, shape, dtype) for shape in shapes)


# ----------------------------------------------------------------- op table


def _einsum_terms(case: Case) -> int:
    """Roundings per output element: (operands - 1) products, then a sum of S terms.

    S is the product of the summed letters' sizes. Any pairwise contraction
    order splits that sum into stages of sizes S1 * S2 * ... = S, with
    (S1 - 1) + (S2 - 1) + ... <= S - 1 additions on any term's path, so
    ``operands - 1 + S`` bounds every order (Higham 3.1).
    """
    operands = case["operands"]
    parsed = parse_einsum(case["subscripts"], [x.shape for x in operands])
    size = parsed.size
    return len(operands) - 1 + math.prod(size[x] for x in parsed.summed)


def _matmul_terms(case: Case) -> int:
    """One product and ``K - 1`` additions per output element."""
    return case["a"].shape[-1]


_FORBIDDEN = ("einsum", "matmul", "__matmul__", "__rmatmul__", "mm", "mv", "dot", "vdot",
              "inner", "tensordot", "baddbmm", "addmm", "addbmm", "chain_matmul", "multi_dot")

EINSUM = OpSpec(
    name="einsum",
    topic="einsum",
    arg_names=EINSUM_ARGS,
    cases=einsum_cases,
    bad_cases=bad_einsum_cases,
    natives=EINSUM_NATIVES,
    rounding_terms=_einsum_terms,
    forbidden_torch=_FORBIDDEN,
    oracle=np_einsum_oracle,
    large=large_einsum,
)
MATMUL = OpSpec(
    name="matmul",
    topic="einsum",
    arg_names=MATMUL_ARGS,
    cases=matmul_cases,
    bad_cases=bad_matmul_cases,
    natives=MATMUL_NATIVES,
    rounding_terms=_matmul_terms,
    forbidden_torch=_FORBIDDEN,
    oracle=np_matmul,  # the NumPy native is the oracle: no target of its own
    large=large_matmul,
)
OPS = (EINSUM, MATMUL)

# --------------------------------------------------------------- properties


def _broadcast_index(pos, shape):
    """The batch index of an operand of ``shape`` at broadcast batch position ``pos``."""
    own = pos[len(pos) - (len(shape) - 2):]
    return tuple(0 if n == 1 else p for p, n in zip(own, shape[:-2]))


def _check_stack(target: Target, case: Case) -> Comparison:
    """a @ b over the batch equals the stack of per-matrix products (exact: integral data)."""
    a, b = case.args
    batched = target.call(case)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    expected_shape = batch + (a.shape[-2], b.shape[-1])
    if batched.shape != expected_shape:
        raise Mismatch(f"batched a @ b: shape {batched.shape} != expected {expected_shape}")
    result = Comparison()
    for pos in np.ndindex(*batch):
        one = Case((a[_broadcast_index(pos, a.shape)], b[_broadcast_index(pos, b.shape)]),
                   names=MATMUL_ARGS)
        note(f"batch {pos}: a[{_broadcast_index(pos, a.shape)}] @ b[{_broadcast_index(pos, b.shape)}]")
        result = result.merge(assert_close(batched[pos], target.call(one), EXACT, path=f"batch {pos}"))
    return result


_MATMUL_PATTERN = "...ij,...jk->...ik"


def _matmul_pattern_cases():
    # drawn as the einsum call itself, so the failure's reproducer is that call
    return matmul_cases(batched=True, integral=True).map(
        lambda case: Case((_MATMUL_PATTERN,) + case.args, names=EINSUM_ARGS))


def _check_matmul_pattern(target: Target, case: Case) -> Comparison:
    """einsum('...ij,...jk->...ik', a, b) == matmul(a, b) (exact: integral data)."""
    via_einsum = target.call(case)
    via_matmul = target.sibling(MATMUL).call(Case(case.args[1:], case.layouts[1:], MATMUL_ARGS))
    return assert_close(via_einsum, via_matmul, EXACT, path="einsum('...ij,...jk->...ik') vs matmul")


PROPERTIES = (
    Property("matmul", "batched_equals_stack",
             "a @ b with broadcast batch dims equals the stack of per-matrix products (exact)",
             lambda: matmul_cases(batched=True, integral=True), _check_stack, layouts=True),
    Property("einsum", "matmul_pattern_equals_matmul",
             "einsum('...ij,...jk->...ik', a, b) equals matmul(a, b) of the same framework (exact)",
             _matmul_pattern_cases, _check_matmul_pattern, layouts=True),
)

# ------------------------------------------------------------ historic cases
# Each reproduces a published bug or surprise in einsum / matmul; the expected
# values come from refs, never from the framework that had the bug. Values are
# small integers or quarters, so every order of summation gives the same bits.


def _values(*shape, offset=0):
    """Distinct, exactly representable values (quarters) of ``shape``."""
    return (np.arange(math.prod(shape), dtype=np.float64).reshape(shape) - offset) / 4


def _einsum(subscripts, *operands):
    return Case((subscripts, *operands), names=EINSUM_ARGS)


def _matmul(a, b, layouts=()):
    return Case((a, b), layouts, MATMUL_ARGS)


def _historic_expanded_operand():
    # Torch7's BLAS path handed a stride-0 (expanded) matrix to gemm, which rejected it
    # ("parameter number 8 had an illegal value") and left zeros: (1, 2) @ (2, 1).expand(2, 2)
    b = np.broadcast_to(np.array([[3.0], [-1.5]]), (2, 2)).copy()
    return _matmul(np.array([[0.5, 2.0]]), b, (None, Layout("expanded", dim=1)))


HISTORIC = (
    Historic("einsum", "agrees_with_ref", "zero-size dim in 'ij,j'",
             "https://github.com/pytorch/pytorch/issues/37628",
             "torch.einsum('ij,j', randn(0, 3), randn(3)) raised \"shape '[1, 1, 3]' is invalid "
             "for input of size 0\" instead of returning an empty vector",
             lambda: _einsum("ij,j", np.zeros((0, 3)), _values(3))),
    Historic("einsum", "agrees_with_ref", "zero-size output of three operands",
             "https://github.com/pytorch/pytorch/issues/111757",
             "torch.einsum('abc,a,b->c') with a 0-size c divided by zero in its path "
             "optimizer (decimal.InvalidOperation), where 'ab,a->b' worked",
             lambda: _einsum("abc,a,b->c", np.zeros((1, 1, 0)), _values(1, offset=-2),
                             _values(1, offset=-3))),
    Historic("einsum", "agrees_with_ref", "'...' of different ranks",
             "https://github.com/pytorch/pytorch/issues/45854",
             "torch.einsum('i...k,k...j->i...j') on (2, 1, 3) and (3, 2) raised \"ellipsis must "
             "represent 1 dimensions in all terms\"; the '...' dims broadcast as in NumPy",
             lambda: _einsum("i...k,k...j->i...j", _values(2, 1, 3), _values(3, 2, offset=3))),
    Historic("einsum", "agrees_with_ref", "batch of 1 against 5",
             "https://github.com/pytorch/pytorch/issues/15671",
             "torch.einsum('bijk, bilm -> bjklm') with b of size 1 and 5 raised \"size of dimension "
             "does not match\" where NumPy broadcasts (shapes scaled down from (1, 3, 24, 20))",
             lambda: _einsum("bijk, bilm -> bjklm", _values(1, 3, 4, 2),
                             _values(5, 3, 4, 2, offset=60))),
    Historic("einsum", "agrees_with_ref", "diagonal not at the end",
             "https://github.com/tinygrad/tinygrad/issues/18207",
             "tinygrad's einsum('iij->ij') moved the diagonal last but not its letter, and "
             "returned (4, 2) for a (2, 2, 4) input where torch returns (2, 4)",
             lambda: _einsum("iij->ij", _values(2, 2, 4))),
    Historic("einsum", "agrees_with_ref", "'...' broadcast in implicit mode",
             "https://github.com/jax-ml/jax/issues/2189",
             "jnp.einsum('...ij,...j') on (2, 1, 3, 3) and (2, 4, 3) raised in dot_general "
             "instead of broadcasting the '...' dims to (2, 4)",
             lambda: _einsum("...ij,...j", _values(2, 1, 3, 3), _values(2, 4, 3, offset=12))),
    Historic("einsum", "agrees_with_ref", "size-1 letter broadcast by the path optimizer",
             "https://github.com/numpy/numpy/issues/10343",
             "np.einsum('t...i,ti->t...') with t of size 10 and 1 worked in NumPy 1.13 and raised "
             "\"Size of label 't' ... does not match\" with optimize=True in 1.14",
             lambda: _einsum("t...i,ti->t...", _values(10, 2), _values(1, 2, offset=1))),
    Historic("einsum", "agrees_with_ref", "letters private to each operand",
             "https://github.com/numpy/numpy/issues/11308",
             "np.einsum('obk,ijk->ioj', optimize=True) raised KeyError: 'b' on letters that "
             "only one operand has (the vectorized oracle uses optimize=True)",
             lambda: _einsum("obk,ijk->ioj", _values(2, 4, 8), _values(2, 4, 8, offset=32))),
    Historic("einsum", "agrees_with_ref", "implicit output sorted by ASCII",
             "https://github.com/pytorch/pytorch/pull/59731",
             "torch.einsum's implicit output put lower-case letters before upper-case ones, "
             "where NumPy sorts by ASCII code: einsum('bA') on a (2, 3) input is the (3, 2) "
             "transpose (output 'Ab'), not the input itself",
             lambda: _einsum("bA", _values(2, 3))),
    Historic("einsum", "matmul_pattern_equals_matmul", "batch of 1 on the left",
             "https://github.com/ml-explore/mlx/issues/4124",
             "mx.einsum('...ij,...jk->...ik') on (1, 3, 4) and (2, 4, 5) took the batch size from "
             "the first operand and failed to reshape; the other operand order worked",
             lambda: Case((_MATMUL_PATTERN, _values(1, 3, 4, offset=5) * 4,
                           _values(2, 4, 5, offset=20) * 4), names=EINSUM_ARGS)),
    Historic("matmul", "agrees_with_ref", "(3, 0, 0) @ (0, 0)",
             "https://github.com/pytorch/pytorch/issues/63352",
             "torch.matmul of (3, 0, 0) and (0, 0) raised \"cannot reshape tensor of 0 elements "
             "into shape [-1, 0]\" instead of returning a (3, 0, 0) result",
             lambda: _matmul(np.zeros((3, 0, 0)), np.zeros((0, 0)))),
    Historic("matmul", "agrees_with_ref", "(0, 0) @ (0, 0, 0)",
             "https://github.com/pytorch/pytorch/issues/20452",
             "torch.matmul's fold of a 2-D a into a batched b reshaped with -1 and failed on "
             "(0, 0) @ (0, 0, 0), which the unfolded path answered",
             lambda: _matmul(np.zeros((0, 0)), np.zeros((0, 0, 0)))),
    Historic("matmul", "agrees_with_ref", "inner size 0 leaves the output unwritten",
             "https://github.com/pytorch/pytorch/issues/31421",
             "torch.bmm of (10, 1, 0) and (10, 0, 43200) on CUDA returned the output buffer's "
             "old contents: cuBLAS does not write C when K is 0; the result must be zeros",
             lambda: _matmul(np.zeros((10, 1, 0), np.float32), np.zeros((10, 0, 43200), np.float32))),
    Historic("matmul", "agrees_with_ref", "expanded (stride-0) operand",
             "https://github.com/torch/torch7/issues/58",
             "Torch7 passed an expanded (stride-0) matrix to BLAS gemm, which rejected its "
             "leading dimension: randn(1, 2) * randn(2, 1):expand(2, 2) gave zeros",
             _historic_expanded_operand),
)
