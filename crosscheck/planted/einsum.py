"""Planted wrong einsums and matmuls; each must be caught by a property of its op.

Each validates its input like the real thing (via the shared parser), so only its
arithmetic is wrong.
"""

from __future__ import annotations

import string

import numpy as np

import refs
from crosscheck.ops.einsum import np_einsum_oracle
from crosscheck.optable import Plant
from refs.checks.einsum import ELLIPSIS, check_matmul, parse_einsum


def _explicit_output(parsed) -> str:
    """The output of a parsed expression as subscripts ('...' for the ellipsis labels)."""
    out, ellipsis_done = [], False
    for label in parsed.output:
        if label.startswith(ELLIPSIS):
            if not ellipsis_done:
                out.append(ELLIPSIS)
                ellipsis_done = True
        else:
            out.append(label)
    return "".join(out)


def _parsed(subscripts, operands):
    return parse_einsum(subscripts, [np.shape(x) for x in operands])


def implicit_unsorted(subscripts, *operands):
    _parsed(subscripts, operands)
    if "->" in subscripts:
        return refs.einsum(subscripts, *operands)
    letters = [c for c in subscripts if c in string.ascii_letters]
    once = "".join(dict.fromkeys(c for c in letters if letters.count(c) == 1))  # first-seen order
    return refs.einsum(f"{subscripts}->...{once}", *operands)


def diagonal_not_taken(subscripts, *operands):
    parsed = _parsed(subscripts, operands)
    lhs = subscripts.replace(" ", "").partition("->")[0]
    spare = iter(sorted(set(string.ascii_letters) - set(subscripts)))
    terms = []
    for term in lhs.split(","):
        seen, renamed = set(), []
        for c in term:  # a repeat becomes a fresh letter: summed instead of read on the diagonal
            renamed.append(next(spare) if c in seen and c in string.ascii_letters else c)
            seen.add(c)
        terms.append("".join(renamed))
    return refs.einsum(",".join(terms) + "->" + _explicit_output(parsed), *operands)


def sums_kept_letter(subscripts, *operands):
    parsed = _parsed(subscripts, operands)
    output = _explicit_output(parsed)
    letters = [c for c in output if c in string.ascii_letters]
    if not letters:
        return refs.einsum(subscripts, *operands)
    dropped = letters[-1]
    lhs = subscripts.replace(" ", "").partition("->")[0]
    partial = refs.einsum(f"{lhs}->{output.replace(dropped, '')}", *operands)
    at = parsed.output.index(dropped)
    return np.broadcast_to(np.expand_dims(partial, at), parsed.output_shape).copy()


def _swap_last(a):
    if a.ndim == 0:
        return a
    return a.swapaxes(-1, -2).reshape(a.shape) if a.ndim >= 2 else a[::-1].copy()


def einsum_transposed(subscripts, *operands):
    return _swap_last(refs.einsum(subscripts, *operands))


def implicit_drops_ellipsis(subscripts, *operands):
    parsed = _parsed(subscripts, operands)
    if "->" in subscripts:
        return refs.einsum(subscripts, *operands)
    letters = "".join(x for x in parsed.output if not x.startswith(ELLIPSIS))
    return refs.einsum(f"{subscripts}->{letters}", *operands)


def matmul_no_batch_broadcast(a, b):
    check_matmul(a, b)
    if b.ndim > 2:  # every batch of a against b's first matrix
        b = b[(0,) * (b.ndim - 2)]
    return refs.matmul(a, b)


def matmul_keeps_promoted_dim(a, b):
    check_matmul(a, b)
    return refs.matmul(a if a.ndim > 1 else a[None, :], b)


def matmul_transposed(a, b):
    return _swap_last(refs.matmul(a, b))


# --- wrong only where the regression run goes ---------------------------------------


def einsum_transposed_when_large(subscripts, *operands):
    """The vectorized einsum, except that with an operand of 2**16 elements or more the
    result comes back transposed: the shape of pytorch/pytorch#46764, where torch.einsum
    ignored a transpose only once the inputs were large."""
    out = np_einsum_oracle(subscripts, *operands)  # parses (and so checks) the call first
    if max((np.size(x) for x in operands), default=0) >= 2**16:
        out = _swap_last(out)
    return out


def matmul_drops_last_row_when_large(a, b):
    """np.matmul, except that past 2**16 elements the last row of every product is lost
    (the shape of a blocked kernel that mishandles its remainder block)."""
    check_matmul(a, b)
    out = np.matmul(a, b)
    if max(a.size, b.size) >= 2**16 and min(a.ndim, b.ndim) >= 2:
        out[..., -1, :] = 0
    return out


PLANTED = (
    Plant("einsum", "implicit output in first-seen order, not sorted", implicit_unsorted),
    Plant("einsum", "repeated letter summed, diagonal not taken", diagonal_not_taken),
    Plant("einsum", "last output letter summed and broadcast back", sums_kept_letter),
    Plant("einsum", "result transposed", einsum_transposed),
    Plant("einsum", "implicit output drops the '...' dims", implicit_drops_ellipsis),
    Plant("matmul", "b's first matrix for every batch (no batch broadcasting)",
          matmul_no_batch_broadcast),
    Plant("matmul", "1-D a not removed from the result", matmul_keeps_promoted_dim),
    Plant("matmul", "result transposed", matmul_transposed),
    Plant("einsum", "result transposed past 2**16 elements", einsum_transposed_when_large,
          axis="size:large"),
    Plant("matmul", "last row lost past 2**16 elements", matmul_drops_last_row_when_large,
          axis="size:large"),
)
