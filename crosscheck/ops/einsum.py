"""einsum and matmul: expression strategies, native twins, and their own properties."""

from __future__ import annotations

import math
import string
from typing import NamedTuple

import numpy as np
from hypothesis import note
from hypothesis import strategies as st

from crosscheck.compare import Comparison, Mismatch, assert_close
from crosscheck.optable import Case, Native, OpSpec, Property, Target, bad_case
from crosscheck.strategies import DATA_DTYPES, SIZES, values
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
        s = draw(st.sampled_from([s for s in SIZES if s <= max(budget, 1) for _ in range(1 + (s > 0))]))
        out.append(s)
        budget //= max(s, 1)
    return out


def _spaced(draw, tokens: list[str]) -> str:
    """Join tokens, sometimes with white space between them (never inside '...' or '->')."""
    if not draw(st.booleans()):
        return "".join(tokens)
    gaps = st.sampled_from(["", "", " ", "  "])
    return draw(gaps) + "".join(t + draw(gaps) for t in tokens)


@st.composite
def expressions(draw, *, min_operands=1, max_operands=4, need_letter=False) -> Expression:
    """Random letters (upper and lower case), repeats (diagonals), '...' anywhere, size-1
    dims that broadcast, implicit and explicit output, white space."""
    n_ops = draw(st.integers(min_operands, max_operands))
    letters = draw(st.lists(st.sampled_from(string.ascii_letters), min_size=int(need_letter),
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
            term.insert(draw(st.integers(0, len(term))), draw(st.sampled_from(term)))
        # a letter broadcasts (size 1) in this operand, the same for all its repeats;
        # sorted, so the draws do not depend on the string hash seed (derandomized CI)
        ones = {x for x in sorted(set(term)) if size[x] != 1 and draw(st.integers(0, 5)) == 0}
        dims = [1 if x in ones else size[x] for x in term]
        if draw(st.booleans()):  # this operand has '...', covering the last `covered` dims
            covered = draw(st.integers(0, ell_rank))
            under = [1 if draw(st.integers(0, 3)) == 0 else n for n in ell_sizes[ell_rank - covered:]]
            at = draw(st.integers(0, len(term)))
            term = term[:at] + [ELLIPSIS] + term[at:]
            dims = dims[:at] + under + dims[at:]
        terms.append(term)
        shapes.append(tuple(dims))

    tokens = [t for k, term in enumerate(terms) for t in ([","] if k else []) + term]
    if draw(st.booleans()):  # explicit output
        used = sorted({t for term in terms for t in term if t != ELLIPSIS})
        out = draw(st.permutations(used)) if used else []
        out = out[: draw(st.integers(0, len(out)))]
        if draw(st.integers(0, 4)) > 0:  # mostly keep '...'; without it the '...' dims are summed
            out.insert(draw(st.integers(0, len(out))), ELLIPSIS)
        tokens += ["->"] + list(out)
    return Expression(_spaced(draw, tokens), tuple(shapes))


@st.composite
def einsum_cases(draw, dtypes=DATA_DTYPES):
    expr = draw(expressions())
    dtype = draw(st.sampled_from(dtypes))
    operands = tuple(draw(values(dtype, s)) for s in expr.shapes)
    return Case((expr.subscripts, *operands), names=EINSUM_ARGS)


@st.composite
def matmul_layouts(draw, *, min_rank=1, batched=False):
    """Shapes of ``a`` and ``b`` for ``a @ b``: 1-D promotion, batch dims broadcast both ways."""
    lo_a, lo_b = draw(st.sampled_from([(3, 2), (2, 3)])) if batched else (min_rank, min_rank)
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
    dtype = draw(st.sampled_from(dtypes))
    a, b = (draw(values(dtype, shape, integral=integral)) for shape in (sa, sb))
    return Case((a, b), names=MATMUL_ARGS)


_FAULTS = ("unknown character", "broken ellipsis", "two ellipses in one term", "'->' twice",
           "output letter not in inputs", "output letter repeated", "comma in output",
           "too few operands", "too many operands", "no operands", "rank mismatch",
           "repeated letter sizes differ", "letter sizes do not broadcast",
           "ellipsis sizes do not broadcast")


@st.composite
def bad_einsum_cases(draw):
    """A valid expression with exactly one thing broken, and what that must raise."""
    fault = draw(st.sampled_from(_FAULTS))
    expr = draw(expressions(max_operands=3, need_letter=True))
    subscripts, shapes = expr.subscripts.replace(" ", ""), [list(s) for s in expr.shapes]
    lhs, arrow, rhs = subscripts.partition("->")
    terms = lhs.split(",")
    unused = sorted(set(string.ascii_letters) - set(subscripts))
    fresh = draw(st.sampled_from(unused))
    arg = "subscripts"
    if fault == "unknown character":
        at = draw(st.integers(0, len(subscripts)))
        subscripts = subscripts[:at] + draw(st.sampled_from("0129!#$%&*+/:;<=?@[]^_{|}~")) + subscripts[at:]
    elif fault == "broken ellipsis":
        at = draw(st.integers(0, len(terms[0])))
        terms[0] = terms[0][:at] + draw(st.sampled_from([".", "..", ". ..", ".. ."])) + terms[0][at:]
        subscripts = ",".join(terms) + arrow + rhs
    elif fault == "two ellipses in one term":
        terms[0] = ELLIPSIS + terms[0] + ELLIPSIS
        subscripts = ",".join(terms) + arrow + rhs
    elif fault == "'->' twice":
        subscripts = lhs + "->" + rhs + "->" + rhs
    elif fault == "output letter not in inputs":
        subscripts = lhs + "->" + rhs + fresh
    elif fault == "output letter repeated":
        letter = draw(st.sampled_from([t for t in terms[0] if t in string.ascii_letters]))
        subscripts = lhs + "->" + letter + rhs.replace(letter, "") + letter
    elif fault == "comma in output":
        subscripts = lhs + "->" + rhs + "," + rhs
    else:
        arg = "operands"
        if fault == "too few operands":
            shapes = shapes[:-1]
        elif fault == "too many operands":
            shapes.append([2])
        elif fault == "no operands":
            shapes = []
        elif fault == "rank mismatch":
            k = draw(st.integers(0, len(terms) - 1))
            n_letters = len(terms[k].replace(ELLIPSIS, ""))
            if ELLIPSIS in terms[k] and n_letters:
                shapes[k] = shapes[k][: n_letters - 1]  # fewer dims than letters
            elif ELLIPSIS in terms[k]:
                terms[k] = terms[k] + fresh
                shapes[k] = []
            elif n_letters and draw(st.booleans()):
                shapes[k] = shapes[k][:-1]
            else:
                shapes[k] = shapes[k] + [2]
        elif fault == "repeated letter sizes differ":
            n, m = draw(st.sampled_from([(2, 3), (3, 2), (1, 2), (5, 0)]))
            terms[0] += fresh + fresh
            shapes[0] = shapes[0] + [n, m]
        elif fault == "letter sizes do not broadcast":
            n, m = draw(st.sampled_from([(2, 3), (3, 5), (0, 2)]))
            terms[0] += fresh
            shapes[0] = shapes[0] + [n]
            terms.append(fresh)
            shapes.append([m])
        elif fault == "ellipsis sizes do not broadcast":
            n, m = draw(st.sampled_from([(2, 3), (3, 5), (0, 2)]))
            terms = [fresh + ELLIPSIS, ELLIPSIS]
            shapes = [[2, n], [m]]
            rhs = ""
        subscripts = ",".join(terms) + arrow + rhs
    operands = tuple(np.zeros(s, dtype=draw(st.sampled_from(DATA_DTYPES))) for s in shapes)
    return bad_case((subscripts, *operands), ValueError, arg, fault, EINSUM_ARGS)


_MATMUL_FAULTS = ("a is 0-d", "b is 0-d", "inner sizes differ", "batch dims do not broadcast")


@st.composite
def bad_matmul_cases(draw):
    fault = draw(st.sampled_from(_MATMUL_FAULTS))
    sa, sb = (list(s) for s in draw(matmul_layouts(batched=fault == "batch dims do not broadcast")))
    arg = "b"
    if fault == "a is 0-d":
        sa, arg = [], "a"
    elif fault == "b is 0-d":
        sb = []
    elif fault == "inner sizes differ":
        sb[0 if len(sb) == 1 else -2] = sa[-1] + draw(st.integers(1, 2))
    else:  # the batch dim just left of the matrices: 2 in a, 3 in b
        sa = sa[:-3] + [2] + sa[-2:] if len(sa) >= 3 else [2, *sa]
        sb = sb[:-3] + [3] + sb[-2:] if len(sb) >= 3 else [3, *sb]
    dtype = draw(st.sampled_from(DATA_DTYPES))
    return bad_case((np.zeros(sa, dtype), np.zeros(sb, dtype)), ValueError, arg, fault, MATMUL_ARGS)


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
    subscripts, *operands = case.args
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


def _torch_cuda_integers(case, target):
    # torch has no integer matmul on CUDA ("addmm_cuda"/"bmm_cuda" not implemented for
    # 'Long', torch#44428); on the CPU it has.
    arrays = [a for a in case.args if isinstance(a, np.ndarray)]
    if target.backend.device == "cuda" and arrays and arrays[0].dtype.kind in "iu":
        return "torch has no integer matmul on CUDA (torch#44428)"
    return None


def _torch_einsum_unsupported(case, target):
    # torch 2.13's einsum on int32 operands lets torch.sum's int64 promotion leak out
    # wherever it sums a letter on its own (traces, letters private to one operand,
    # zero-size dims): the result comes back int64 ('aa' on a (0, 0) array, 'aa,a'), or
    # a later product raises "expected scalar type Long but found Int" ('ab,bcd->').
    # Found by this suite; einops.einsum delegates to torch.einsum and inherits it.
    arrays = [a for a in case.args if isinstance(a, np.ndarray)]
    if arrays and arrays[0].dtype == np.int32:
        return "torch.einsum on int32: internal sums promote to int64"
    return _torch_cuda_integers(case, target)


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
    Native("torch.matmul", "torch", torch_matmul, unsupported=_torch_cuda_integers),
    Native("jnp.matmul", "jax", jnp_matmul),
)

# ----------------------------------------------------------------- op table


def _einsum_terms(case: Case) -> int:
    """Roundings per output element: (operands - 1) products, then a sum of S terms.

    S is the product of the summed letters' sizes. Any pairwise contraction
    order splits that sum into stages of sizes S1 * S2 * ... = S, with
    (S1 - 1) + (S2 - 1) + ... <= S - 1 additions on any term's path, so
    ``operands - 1 + S`` bounds every order (Higham 3.1).
    """
    subscripts, *operands = case.args
    parsed = parse_einsum(subscripts, [x.shape for x in operands])
    size = parsed.size
    return len(operands) - 1 + math.prod(size[x] for x in parsed.summed)


def _matmul_terms(case: Case) -> int:
    """One product and ``K - 1`` additions per output element."""
    a, _ = case.args
    return a.shape[-1]







_FORBIDDEN = ("einsum", "matmul", "__matmul__", "__rmatmul__", "mm", "mv", "dot", "vdot",
              "inner", "tensordot", "baddbmm", "addmm", "addbmm", "chain_matmul", "multi_dot")

OPS = (
    OpSpec(
        name="einsum",
        topic="einsum",
        arg_names=EINSUM_ARGS,
        cases=einsum_cases,
        bad_cases=bad_einsum_cases,
        natives=EINSUM_NATIVES,
        rounding_terms=_einsum_terms,
        forbidden_torch=_FORBIDDEN,
    ),
    OpSpec(
        name="matmul",
        topic="einsum",
        arg_names=MATMUL_ARGS,
        cases=matmul_cases,
        bad_cases=bad_matmul_cases,
        natives=MATMUL_NATIVES,
        rounding_terms=_matmul_terms,
        forbidden_torch=_FORBIDDEN,
    ),
)
EINSUM, MATMUL = OPS

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
        one = Case((a[_broadcast_index(pos, a.shape)], b[_broadcast_index(pos, b.shape)]))
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
    via_matmul = target.sibling(MATMUL).call(Case(case.args[1:], case.layouts[1:]))
    return assert_close(via_einsum, via_matmul, EXACT, path="einsum('...ij,...jk->...ik') vs matmul")


PROPERTIES = (
    Property("matmul", "batched_equals_stack",
             "a @ b with broadcast batch dims equals the stack of per-matrix products (exact)",
             lambda: matmul_cases(batched=True, integral=True), _check_stack),
    Property("einsum", "matmul_pattern_equals_matmul",
             "einsum('...ij,...jk->...ik', a, b) equals matmul(a, b) of the same framework (exact)",
             _matmul_pattern_cases, _check_matmul_pattern),
)
