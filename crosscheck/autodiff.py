"""Vector-Jacobian products through torch autograd or ``jax.vjp``, for any target."""

from __future__ import annotations

import numpy as np

from crosscheck.optable import Case, Target


def vjp(target: Target, case: Case, wrt: tuple[int, ...], cotangent: np.ndarray) -> tuple[np.ndarray, ...]:
    """Gradients of ``<target(*case.args), cotangent>`` w.r.t. the args at ``wrt``."""
    args = list(target.convert(case))
    fn = target.fn
    if target.framework == "torch":
        import torch

        leaves = [args[i].detach().clone().requires_grad_(True) for i in wrt]
        for i, leaf in zip(wrt, leaves):
            args[i] = leaf
        out = fn(*args)
        g = target.backend.asarray(cotangent)
        grads = torch.autograd.grad(out, leaves, grad_outputs=g, allow_unused=True)
        return tuple(
            target.backend.to_numpy(torch.zeros_like(leaf) if gr is None else gr)
            for leaf, gr in zip(leaves, grads)
        )
    if target.framework == "jax":
        import jax

        def f(*leaves):
            full = list(args)
            for i, leaf in zip(wrt, leaves):
                full[i] = leaf
            return fn(*full)

        _, pullback = jax.vjp(f, *[args[i] for i in wrt])
        return tuple(np.asarray(gr) for gr in pullback(target.backend.asarray(cotangent)))
    raise ValueError(f"vjp(): {target.label} is not differentiable (framework {target.framework})")
