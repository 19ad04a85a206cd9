"""einsum and matmul from diagonals, sums, permutes and ``torch.bmm`` (no torch.einsum / matmul).

Both run the plan of ``refs.contraction.contraction_plan``: per operand,
take the diagonals of repeated letters, drop size-1 dims that broadcast, sum
the letters nobody else needs; then contract pairwise (each pair one ``bmm``
of ``(batch, left_free, contract) x (batch, contract, right_free)``) in the
order ``opt_einsum`` picks; then permute into the output's order.
"""

from __future__ import annotations

import torch

from refs.contraction import Contract
from torch_impl._host import check_matmul, contraction_plan, parse_einsum, require_array


def einsum(subscripts: str, *operands: torch.Tensor) -> torch.Tensor:
    """``out[i, j, k] = sum_l sum_m x[i, k, m, l, j] * y[i, l, j, k] * z[i]`` for
    ``'ikmlj,iljk,i->ijk'``; the whole grammar of ``refs.einsum``.

    >>> einsum('ij,j', torch.tensor([[1, 2], [3, 4]]), torch.tensor([10, 1]))
    tensor([12, 34])
    """
    for i, x in enumerate(operands):
        require_array("einsum", f"operands[{i}]", x, torch.Tensor)
    shapes = tuple(tuple(x.shape) for x in operands)
    return _run(parse_einsum(subscripts, shapes), operands, shapes)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``out[..., i, k] = sum_j a[..., i, j] * b[..., j, k]``, with ``@``'s 1-D promotion.

    A batch dim of size 1 is dropped rather than expanded, so ``bmat @ mat``
    is a single ``(B*N, K) x (K, M)`` product, as in torch.

    >>> matmul(torch.tensor([[1, 2], [3, 4]]), torch.tensor([1, 10]))
    tensor([21, 43])
    """
    require_array("matmul", "a", a, torch.Tensor)
    require_array("matmul", "b", b, torch.Tensor)
    shapes = (tuple(a.shape), tuple(b.shape))
    return _run(check_matmul(a, b), (a, b), shapes)


def _run(parsed, operands, shapes) -> torch.Tensor:
    plan = contraction_plan(parsed, shapes)
    live = []
    for x, prep in zip(operands, plan.prepare):
        for d1, d2 in prep.diagonals:
            x = torch.diagonal(x, 0, d1, d2)
        if prep.squeeze:
            x = x.squeeze(prep.squeeze)
        if prep.sum:
            x = _sum(x, prep.sum)
        live.append(x)
    labels = [p.labels for p in plan.prepare]
    for step in plan.steps:
        out = _contract(live[step.left], labels[step.left], live[step.right], labels[step.right],
                        step, plan)
        # `j != ...` twice, not `j not in (...)`: Dynamo (torch 2.13, dynamic=True) gets the
        # tuple test wrong for ints that came out of the untraced planner (README)
        live = [x for j, x in enumerate(live) if j != step.left and j != step.right] + [out]
        labels = [x for j, x in enumerate(labels) if j != step.left and j != step.right]
        labels.append(step.batch + step.left_free + step.right_free)
    return live[0].permute(plan.permutation)


def _contract(a, la, b, lb, step: Contract, plan) -> torch.Tensor:
    """``out[batch, left_free, right_free]`` = one batched product over ``contract``."""
    nb, m, k, n = (_numel(plan.shape(s)) for s in (step.batch, step.left_free, step.contract,
                                                  step.right_free))
    a = a.permute([la.index(x) for x in step.batch + step.left_free + step.contract])
    b = b.permute([lb.index(x) for x in step.batch + step.contract + step.right_free])
    out_shape = plan.shape(step.batch + step.left_free + step.right_free)
    if not step.contract:
        # an outer product: broadcasting beats a bmm with an inner size of 1
        a = a.reshape(plan.shape(step.batch + step.left_free) + (1,) * len(step.right_free))
        b = b.reshape(plan.shape(step.batch) + (1,) * len(step.left_free) + plan.shape(step.right_free))
        return a * b
    a, b = a.reshape(nb, m, k), b.reshape(nb, k, n)
    if (a.dtype.is_floating_point or a.dtype.is_complex) and n == 1 < m:
        # matrix @ vector: BLAS is faster as the transposed vector @ matrix (~1.5x on CPU);
        # (nb, 1, m) has the memory order of (nb, m, 1)
        out = torch.bmm(b.transpose(1, 2), a.transpose(1, 2))
    elif a.dtype.is_floating_point or a.dtype.is_complex:
        out = torch.bmm(a, b)
    else:
        out = integer_matmul(a, b)
    return out.reshape(out_shape)


def integer_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for integer tensors (batch dims broadcast), as a multiply and a sum.

    Integer bmm/matmul is missing on CUDA (torch#44428); products of ints are exact in
    any order. The sum keeps the product's dtype: torch's ``sum`` would widen int32 to
    int64, which ``matmul`` does not.
    """
    products = a.unsqueeze(-1) * b.unsqueeze(-3)
    return products.sum(-2, dtype=products.dtype)


def _sum(x: torch.Tensor, dims) -> torch.Tensor:
    # torch's sum promotes integers to int64; the API keeps the operands' dtype
    return x.sum(dim=dims, dtype=x.dtype)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
