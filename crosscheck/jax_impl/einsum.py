"""einsum and matmul from diagonals, sums and ``lax.dot_general`` (no jnp.einsum / matmul).

Both run the plan of ``refs.contraction.contraction_plan``: per operand,
take the diagonals of repeated letters, drop size-1 dims that broadcast, sum
the letters nobody else needs; then contract pairwise with one
``lax.dot_general`` each, in the order ``opt_einsum`` picks; then transpose
into the output's order.

Parsing and checking depend on the subscripts and shapes only, so they run at
trace time under ``jax.jit``; the plan is a static argument of one jitted
function, compiled once per (expression, shapes). Precision follows
``jax_default_matmul_precision``, as ``jnp.einsum`` does.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from crosscheck.jax_impl._framework import as_array
from refs.checks.einsum import check_matmul, parse_einsum
from refs.contraction import Plan, contraction_plan


def einsum(subscripts, *operands):
    """``out[i, j, k] = sum_l sum_m x[i, k, m, l, j] * y[i, l, j, k] * z[i]`` for
    ``'ikmlj,iljk,i->ijk'``; the whole grammar of ``refs.einsum``.

    >>> einsum('ij,j', jnp.array([[1, 2], [3, 4]]), jnp.array([10, 1])).tolist()
    [12, 34]
    """
    operands = tuple(as_array(x) for x in operands)
    shapes = tuple(x.shape for x in operands)
    return _run(contraction_plan(parse_einsum(subscripts, shapes), shapes), *operands)


def matmul(a, b):
    """``out[..., i, k] = sum_j a[..., i, j] * b[..., j, k]``, with ``@``'s 1-D promotion.

    >>> matmul(jnp.array([[1, 2], [3, 4]]), jnp.array([1, 10])).tolist()
    [21, 43]
    """
    a, b = as_array(a), as_array(b)
    shapes = (a.shape, b.shape)
    return _run(contraction_plan(check_matmul(a, b), shapes), a, b)


@partial(jax.jit, static_argnums=0)
def _run(plan: Plan, *operands):
    dtype = jnp.result_type(*operands)
    live = []
    for x, prep in zip(operands, plan.prepare):
        x = x.astype(dtype)
        for d1, d2 in prep.diagonals:
            x = jnp.diagonal(x, 0, d1, d2)
        if prep.squeeze:
            x = lax.squeeze(x, prep.squeeze)
        if prep.sum:
            x = jnp.sum(x, axis=prep.sum, dtype=dtype)
        live.append(x)
    labels = [p.labels for p in plan.prepare]
    for step in plan.steps:
        a, la, b, lb = live[step.left], labels[step.left], live[step.right], labels[step.right]
        contracting = ([la.index(x) for x in step.contract], [lb.index(x) for x in step.contract])
        batch = ([la.index(x) for x in step.batch], [lb.index(x) for x in step.batch])
        # dot_general lays out its result as batch, a's free dims, b's free dims
        out = lax.dot_general(a, b, (contracting, batch), preferred_element_type=dtype)
        live = [x for j, x in enumerate(live) if j not in (step.left, step.right)] + [out]
        labels = [x for j, x in enumerate(labels) if j not in (step.left, step.right)]
        labels.append(step.batch + step.left_free + step.right_free)
    return jnp.transpose(live[0], plan.permutation)
