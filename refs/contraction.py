"""How the vectorized einsums execute a checked expression: the contraction plan.

``contraction_plan(einsum, shapes)`` turns an expression parsed by
:func:`refs.checks.einsum.parse_einsum` into the steps ``torch_impl.einsum``
and ``jax_impl.einsum`` execute: per operand, diagonals to take, broadcast
size-1 dims to drop and private letters to sum; then pairwise contractions in
the order ``opt_einsum.contract_path`` picks; then one permutation. It depends
on the subscripts and the shapes only (JAX runs it at trace time) and is cached
per (expression, shapes). ``refs.einsum`` itself does not use it: the loop
reference reads the formula directly.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from refs.checks.einsum import Einsum


class Prepare(NamedTuple):
    """What to do to one operand before any contraction, in this order."""

    diagonals: tuple[tuple[int, int], ...]  # (dim1, dim2) pairs; each diagonal goes last
    squeeze: tuple[int, ...]  # size-1 dims that broadcast against a larger size
    sum: tuple[int, ...]  # dims whose letter appears nowhere else and not in the output
    labels: tuple[str, ...]  # the operand's labels afterwards


class Contract(NamedTuple):
    """One pairwise contraction: ``out[b, l, r] = sum_c left[b, l, c] * right[b, c, r]``.

    ``left`` and ``right`` index the list of live operands; both are removed and
    the result (labels ``batch + left_free + right_free``) is appended, as in
    ``opt_einsum``'s paths.
    """

    left: int
    right: int
    batch: tuple[str, ...]  # in both, and needed later
    contract: tuple[str, ...]  # in both, needed nowhere else: summed by the product
    left_free: tuple[str, ...]  # only in left (in left's order)
    right_free: tuple[str, ...]  # only in right (in right's order)


class Plan(NamedTuple):
    prepare: tuple[Prepare, ...]
    steps: tuple[Contract, ...]
    permutation: tuple[int, ...]  # of the last live operand's dims into the output's order
    sizes: tuple[tuple[str, int], ...]

    def shape(self, labels) -> tuple[int, ...]:
        size = dict(self.sizes)
        return tuple(size[label] for label in labels)


@functools.lru_cache(maxsize=1024)
def contraction_plan(einsum: Einsum, shapes: tuple[tuple[int, ...], ...]) -> Plan:
    """The steps that compute ``einsum`` with diagonals, sums and pairwise products.

    With three or more operands the pairwise order comes from
    ``opt_einsum.contract_path`` (fewest flops), the path torch and JAX use too.
    """
    size = einsum.size
    prepared = []
    for labels, shape in zip(einsum.inputs, shapes):
        labels, diagonals = list(labels), []
        dims = list(shape)
        while len(set(labels)) < len(labels):
            label = next(x for x in labels if labels.count(x) > 1)
            i = labels.index(label)
            j = labels.index(label, i + 1)
            diagonals.append((i, j))
            labels = [x for d, x in enumerate(labels) if d not in (i, j)] + [label]
            dims = [x for d, x in enumerate(dims) if d not in (i, j)] + [dims[i]]
        # A size-1 dim that broadcasts is the same as the operand not having that
        # letter at all: dropping it avoids materializing the broadcast.
        squeeze = tuple(d for d, (x, n) in enumerate(zip(labels, dims)) if n == 1 != size[x])
        labels = [x for d, x in enumerate(labels) if d not in squeeze]
        prepared.append((tuple(diagonals), squeeze, labels))
    final = []
    for k, (diagonals, squeeze, labels) in enumerate(prepared):
        elsewhere = {x for j, (_, _, other) in enumerate(prepared) if j != k for x in other}
        private = tuple(
            d for d, x in enumerate(labels) if x not in elsewhere and x not in einsum.output
        )
        labels = tuple(x for d, x in enumerate(labels) if d not in private)
        final.append(Prepare(diagonals, squeeze, private, labels))

    live = [p.labels for p in final]
    steps = []
    for left, right in _path([p.labels for p in final], size, einsum.output):
        a, b = live[left], live[right]
        rest = [x for j, other in enumerate(live) if j not in (left, right) for x in other]
        needed = set(rest) | set(einsum.output)
        batch = tuple(x for x in a if x in b and x in needed)
        contract = tuple(x for x in a if x in b and x not in needed)
        left_free = tuple(x for x in a if x not in b)
        right_free = tuple(x for x in b if x not in a)
        if not rest and batch + left_free + right_free != einsum.output \
                and batch + right_free + left_free == einsum.output:
            # the last product, operands swapped, lands in the output's order: no transpose
            left, right, left_free, right_free = right, left, right_free, left_free
        steps.append(Contract(left, right, batch, contract, left_free, right_free))
        live = [other for j, other in enumerate(live) if j not in (left, right)]
        live.append(batch + left_free + right_free)
    (last,) = live
    permutation = tuple(last.index(x) for x in einsum.output)
    return Plan(tuple(final), tuple(steps), permutation, einsum.sizes)


def _path(inputs, size, output) -> list[tuple[int, int]]:
    if len(inputs) == 1:
        return []
    if len(inputs) == 2:
        return [(0, 1)]
    import opt_einsum  # only the vectorized versions need a path, and only for 3+ operands

    symbols = {x: opt_einsum.get_symbol(i) for i, x in enumerate(size)}
    expr = ",".join("".join(symbols[x] for x in labels) for labels in inputs)
    expr += "->" + "".join(symbols[x] for x in output)
    shapes = [tuple(size[x] for x in labels) for labels in inputs]
    path, _ = opt_einsum.contract_path(expr, *shapes, shapes=True, optimize="auto")
    pairs = []
    for step in path:
        if len(step) != 2:  # opt_einsum contracts several at once only when told to
            raise AssertionError(f"opt_einsum returned a {len(step)}-way step {step} for {expr}")
        pairs.append(tuple(sorted(step)))
    return pairs
