"""Parsing and argument checks for ``einsum`` and ``matmul``, shared by all three implementations.

``parse_einsum(subscripts, shapes)`` reads the subscripts the way NumPy and torch
do and checks them against the operands' shapes; it returns an :class:`Einsum`
in which every dim of every operand carries a *label*: its letter, or
``"...0"``, ``"...1"``, ... for the dims the ellipsis stands for, numbered from
the left of the broadcast ellipsis shape (so an operand whose ``...`` covers
fewer dims gets the rightmost labels, as broadcasting aligns shapes on the
right). ``check_matmul`` does the same for ``a @ b`` and returns the
``Einsum`` of ``'...ij,...jk->...ik'`` with NumPy's 1-D promotion.

The contraction plan the vectorized versions execute lives in
:mod:`refs.contraction`. Everything here depends on the subscripts and the
shapes only, so JAX runs it at trace time, and the results are cached per
(subscripts, shapes).

Semantics where NumPy and torch differ, and which one we follow:

* an explicit output without ``...`` while an input has ``...``: the dims
  under the ellipsis are summed (torch and JAX); NumPy raises.
"""

from __future__ import annotations

import functools
import string
from typing import NamedTuple

from refs.checks.common import fail, shape_of

ELLIPSIS = "..."
LETTERS = frozenset(string.ascii_letters)


class Einsum(NamedTuple):
    """A checked einsum: the labels of every operand's dims and of the output."""

    subscripts: str  # as given, for messages
    inputs: tuple[tuple[str, ...], ...]  # one label per dim of each operand
    output: tuple[str, ...]  # one label per dim of the result
    sizes: tuple[tuple[str, int], ...]  # every label's (broadcast) size, first-seen order

    @property
    def size(self) -> dict[str, int]:
        return dict(self.sizes)

    @property
    def summed(self) -> tuple[str, ...]:
        """Labels that appear in some operand but not in the output."""
        return tuple(label for label, _ in self.sizes if label not in self.output)

    @property
    def output_shape(self) -> tuple[int, ...]:
        size = self.size
        return tuple(size[label] for label in self.output)


def parse_einsum(subscripts, shapes, *, fn: str = "einsum") -> Einsum:
    """Check ``subscripts`` against the operands' ``shapes``; label every dim.

    Raises:
        TypeError: ``subscripts`` is not a str.
        ValueError: a malformed expression, or operands that do not fit it.
    """
    if not isinstance(subscripts, str):
        fail(TypeError, fn, f"subscripts must be a str, got {type(subscripts).__name__} {subscripts!r}")
    return _parse(subscripts, tuple(tuple(int(n) for n in s) for s in shapes), fn)


@functools.lru_cache(maxsize=1024)
def _parse(subscripts: str, shapes: tuple[tuple[int, ...], ...], fn: str) -> Einsum:
    where = f"subscripts {subscripts!r}"
    tokens = _tokenize(subscripts, fn, where)
    if tokens.count("->") > 1:
        fail(ValueError, fn, f"{where}: '->' appears {tokens.count('->')} times (at most once)")
    explicit = "->" in tokens
    lhs = tokens[: tokens.index("->")] if explicit else tokens
    rhs = tokens[tokens.index("->") + 1 :] if explicit else None
    terms = _split(lhs, ",")
    for k, term in enumerate(terms):
        if term.count(ELLIPSIS) > 1:
            fail(ValueError, fn, f"{where}: input term {k} {''.join(term)!r} has more than one '...'")

    if not shapes:
        fail(ValueError, fn, f"operands: expected at least one operand for {where}")
    if len(terms) != len(shapes):
        fail(
            ValueError,
            fn,
            f"operands: {where} has {len(terms)} input term(s) but {len(shapes)} operand(s) "
            f"were given",
        )

    covered = []  # how many dims each operand's '...' stands for (None: no '...')
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        letters = len(term) - term.count(ELLIPSIS)
        if ELLIPSIS in term:
            if len(shape) < letters:
                fail(ValueError, fn, _rank_message(k, shape, term, where, at_least=True))
            covered.append(len(shape) - letters)
        else:
            if len(shape) != letters:
                fail(ValueError, fn, _rank_message(k, shape, term, where, at_least=False))
            covered.append(None)
    rank = max((c for c in covered if c is not None), default=0)
    inputs = tuple(_labels(term, c, rank) for term, c in zip(terms, covered))
    sizes = _sizes(inputs, shapes, fn, where)

    if rhs is None:  # implicit: the '...' dims, then letters seen once, in ASCII order
        letters = [t for term in terms for t in term if t != ELLIPSIS]
        once = sorted(t for t in set(letters) if letters.count(t) == 1)
        output = _ellipsis_labels(rank, rank) + tuple(once)
    else:
        output = _output(rhs, terms, rank, fn, where)
    return Einsum(subscripts, inputs, output, tuple(sizes.items()))


def _tokenize(subscripts: str, fn: str, where: str) -> list[str]:
    """Letters, '...', ',' and '->' as tokens; white space dropped anywhere between them."""
    tokens, i = [], 0
    while i < len(subscripts):
        c = subscripts[i]
        if c.isspace():
            i += 1
        elif c in LETTERS or c == ",":
            tokens.append(c)
            i += 1
        elif subscripts.startswith(ELLIPSIS, i):
            tokens.append(ELLIPSIS)
            i += 3
        elif subscripts.startswith("->", i):
            tokens.append("->")
            i += 2
        elif c == ".":
            fail(ValueError, fn, f"{where}: '.' at position {i} is not part of an ellipsis '...'")
        elif c == "-":
            fail(ValueError, fn, f"{where}: '-' at position {i} is not followed by '>'")
        else:
            fail(
                ValueError,
                fn,
                f"{where}: unknown character {c!r} at position {i} (valid: letters a-z A-Z, "
                f"',', '->', '...', white space)",
            )
    return tokens


def _split(tokens: list[str], sep: str) -> list[list[str]]:
    terms = [[]]
    for t in tokens:
        if t == sep:
            terms.append([])
        else:
            terms[-1].append(t)
    return terms


def _rank_message(k, shape, term, where, *, at_least):
    letters = len(term) - term.count(ELLIPSIS)
    names = f"at least {letters} dim(s) ('...' covers the rest)" if at_least else f"{letters} dim(s)"
    return (
        f"operands[{k}] has shape {shape} (rank {len(shape)}) but its term "
        f"{''.join(term)!r} in {where} names {names}"
    )


def _ellipsis_labels(covered: int, rank: int) -> tuple[str, ...]:
    """Labels of the rightmost ``covered`` of ``rank`` broadcast ellipsis dims."""
    return tuple(f"...{d}" for d in range(rank - covered, rank))


def _labels(term, covered, rank) -> tuple[str, ...]:
    out = []
    for t in term:
        out.extend(_ellipsis_labels(covered, rank) if t == ELLIPSIS else [t])
    return tuple(out)


def _sizes(inputs, shapes, fn, where) -> dict[str, int]:
    """Each label's size: equal within an operand (a diagonal), broadcast across operands."""
    sizes: dict[str, int] = {}
    set_by: dict[str, int] = {}  # the operand that gave the label its size
    for k, (labels, shape) in enumerate(zip(inputs, shapes)):
        own: dict[str, int] = {}
        for label, n in zip(labels, shape):
            if label in own and own[label] != n:
                fail(
                    ValueError,
                    fn,
                    f"operands[{k}] has shape {shape}: letter {label!r} repeats with sizes "
                    f"{own[label]} and {n} in {where} (a repeated letter takes a diagonal, "
                    f"so its sizes must be equal)",
                )
            own[label] = n
        for label, n in own.items():
            if label not in sizes or (sizes[label] == 1 and n != 1):
                sizes[label], set_by[label] = n, k
            elif n not in (1, sizes[label]):
                j = set_by[label]
                if label.startswith(ELLIPSIS):
                    fail(
                        ValueError,
                        fn,
                        f"operands: the dims under '...' do not broadcast in {where}: "
                        f"{_under_ellipsis(inputs[j], shapes[j])} in operands[{j}] (shape "
                        f"{shapes[j]}) vs {_under_ellipsis(labels, shape)} in operands[{k}] "
                        f"(shape {shape})",
                    )
                fail(
                    ValueError,
                    fn,
                    f"operands: letter {label!r} has size {sizes[label]} in operands[{j}] "
                    f"(shape {shapes[j]}) and size {n} in operands[{k}] (shape {shape}) in "
                    f"{where}; sizes that share a letter must be equal or 1",
                )
    return sizes


def _under_ellipsis(labels, shape) -> tuple[int, ...]:
    return tuple(n for x, n in zip(labels, shape) if x.startswith(ELLIPSIS))


def _output(rhs, terms, rank, fn, where) -> tuple[str, ...]:
    if "," in rhs:
        fail(ValueError, fn, f"{where}: the output (after '->') contains ','")
    if rhs.count(ELLIPSIS) > 1:
        fail(ValueError, fn, f"{where}: the output has more than one '...'")
    letters = {t for term in terms for t in term}
    output: list[str] = []
    for t in rhs:
        if t == ELLIPSIS:
            output.extend(_ellipsis_labels(rank, rank))
        elif t in output:
            fail(ValueError, fn, f"{where}: output letter {t!r} appears more than once")
        elif t not in letters:
            fail(ValueError, fn, f"{where}: output letter {t!r} does not appear in any input")
        else:
            output.append(t)
    return tuple(output)


# ------------------------------------------------------------------ matmul


def check_matmul(a, b, *, fn: str = "matmul") -> Einsum:
    """Check ``a @ b`` (NumPy's rules); return it as ``'...ij,...jk->...ik'``.

    A 1-D ``a`` is a row (``'j'``, and ``i`` leaves the output), a 1-D ``b`` a
    column (``'j'``, and ``k`` leaves the output); batch dims broadcast.

    Raises:
        ValueError: a 0-d operand, inner sizes that differ, batch dims that do
            not broadcast.
    """
    sa, sb = shape_of(a), shape_of(b)
    for arg, s in (("a", sa), ("b", sb)):
        if not s:
            fail(ValueError, fn, f"{arg} is 0-d (shape ()); matmul needs at least 1 dim per operand")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        b_dim = "b.shape[0]" if len(sb) == 1 else "b.shape[-2]"
        fail(
            ValueError,
            fn,
            f"inner sizes differ: a has shape {sa}, b has shape {sb} "
            f"(a.shape[-1] = {ka} != {b_dim} = {kb})",
        )
    batch_a, batch_b = sa[:-2], sb[:-2]
    for n, m in zip(reversed(batch_a), reversed(batch_b)):
        if n != m and 1 not in (n, m):
            fail(
                ValueError,
                fn,
                f"batch dims do not broadcast: a has shape {sa} (batch {batch_a}), b has "
                f"shape {sb} (batch {batch_b})",
            )
    left = "j" if len(sa) == 1 else "...ij"
    right = "j" if len(sb) == 1 else "...jk"
    out = "..." + ("i" if len(sa) > 1 else "") + ("k" if len(sb) > 1 else "")
    return _parse(f"{left},{right}->{out}", (sa, sb), fn)
