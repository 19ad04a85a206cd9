"""einsum and matmul as the loops on the course's "Advanced Tensor Multiplication" slides."""

from __future__ import annotations

import numpy as np

from refs.checks.einsum import check_matmul, parse_einsum


def einsum(subscripts, *operands):
    """Einstein summation: multiply along shared letters, sum the letters not in the output.

    For ``'ikmlj,iljk,i->ijk'`` (the deck's example)::

        out[i, j, k] = sum_l sum_m x[i, k, m, l, j] * y[i, l, j, k] * z[i]

    and in general: every letter ranges over its size; for every combination
    of all the letters' values, the operands' elements at those values are
    multiplied and the product is added into ``out`` at the output letters'
    values. A letter twice in one operand reads its diagonal (``'ii->i'``);
    a letter missing from the output is summed (``'ii'`` is the trace). ``...``
    stands for the dims not named by letters, broadcast across operands, and a
    size-1 dim broadcasts against the same letter's larger size elsewhere.
    Without ``->`` the output is the ``...`` dims, then the letters that appear
    exactly once, in ASCII order (uppercase before lowercase).

    Args:
        subscripts: e.g. ``'ij,jk->ik'``, ``'bnk, bkm'``, ``'...ii->...i'``;
            letters a-z A-Z, ``,``, ``->``, ``...``, white space anywhere.
        *operands: one array per input term, of the rank the term names.

    Raises:
        TypeError: ``subscripts`` not a str.
        ValueError: a malformed expression, or operands whose number, ranks or
            sizes do not fit it.

    Warning:
        The deck's batched product ``einsum('bnk, bkm', mat1, mat2)  # B×N×M``
        is implicit mode, and there ``b`` appears twice, so it is summed like
        ``k``: the result is the letters that appear once, sorted, ``'mn'``,
        an (M, N) matrix ``sum_b (mat1[b] @ mat2[b]).T`` -- not (B, N, M).
        Write the output: ``'bnk,bkm->bnm'``. torch and NumPy do the same
        (``tests/test_deck_einsum.py``).

    >>> einsum('ij,j', np.array([[1, 2], [3, 4]]), np.array([10, 1]))
    array([12, 34])
    >>> mat1, mat2 = np.ones((2, 3, 4)), np.ones((2, 4, 5))   # B, N, K, M = 2, 3, 4, 5
    >>> einsum('bnk, bkm', mat1, mat2).shape                   # (M, N): b summed
    (5, 3)
    >>> einsum('bnk,bkm->bnm', mat1, mat2).shape               # the batched product
    (2, 3, 5)
    """
    operands = [np.asarray(x) for x in operands]
    parsed = parse_einsum(subscripts, [x.shape for x in operands])
    size = parsed.size
    letters = [label for label, _ in parsed.sizes]
    dtype = np.result_type(*operands)
    out = np.zeros(parsed.output_shape, dtype=dtype)
    for values in np.ndindex(*[size[label] for label in letters]):
        at = dict(zip(letters, values))
        product = np.ones((), dtype=dtype)
        for x, labels in zip(operands, parsed.inputs):
            # a size-1 dim broadcasts: it is read at 0 whatever its letter's value
            product = product * x[tuple(0 if n == 1 else at[label] for label, n in zip(labels, x.shape))]
        out[tuple(at[label] for label in parsed.output)] += product
    return out


def matmul(a, b):
    """The matrix product ``a @ b`` with NumPy's batch broadcasting.

    For matrices (any leading batch dims ``...`` broadcast)::

        out[..., i, k] = sum_j a[..., i, j] * b[..., j, k]

    A 1-D ``a`` is treated as a row ``(1, n)`` and a 1-D ``b`` as a column
    ``(n, 1)``; the promoted dim is removed from the result again, so vector
    @ vector is 0-d.

    Args:
        a: array of rank >= 1.
        b: array of rank >= 1 with ``b.shape[-2]`` (or ``b.shape[0]`` when
            1-D) equal to ``a.shape[-1]``.

    Raises:
        ValueError: a 0-d operand, inner sizes that differ, batch dims that do
            not broadcast.

    >>> matmul(np.array([[1, 2], [3, 4]]), np.array([1, 10]))
    array([21, 43])
    """
    a, b = np.asarray(a), np.asarray(b)
    check_matmul(a, b)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    (rows, inner), cols = a2.shape[-2:], b2.shape[-1]
    out = np.zeros(batch + (rows, cols), dtype=np.result_type(a, b))
    for pos in np.ndindex(*batch):
        at_a, at_b = _broadcast_index(pos, a2), _broadcast_index(pos, b2)
        for i in range(rows):
            for k in range(cols):
                for j in range(inner):
                    out[pos + (i, k)] += a2[at_a + (i, j)] * b2[at_b + (j, k)]
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def _broadcast_index(pos, x):
    """``x``'s batch index for the broadcast batch position ``pos`` (aligned on the right)."""
    own = pos[len(pos) - (x.ndim - 2) :] if x.ndim > 2 else ()
    return tuple(0 if n == 1 else p for p, n in zip(own, x.shape[:-2]))
