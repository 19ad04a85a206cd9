"""One-line reproducers: the failing call, written out for every framework."""

from __future__ import annotations

import numpy as np

from crosscheck.optable import Target, call_of

_SETUP = {
    "numpy": ("import numpy as np, refs", "refs", "np.array({}, dtype='{}')"),
    "torch": (
        "import torch, torch_impl",
        "torch_impl",
        "torch.tensor({}, dtype=torch.{})",
    ),
    "jax": (
        "import jax; jax.config.update('jax_enable_x64', True); "
        "import jax.numpy as jnp; from crosscheck import jax_impl",
        "jax_impl",
        "jnp.array({}, dtype='{}')",
    ),
}


_EMPTY = {
    "numpy": "np.zeros({}, dtype='{}')",
    "torch": "torch.zeros({}, dtype=torch.{})",
    "jax": "jnp.zeros({}, dtype='{}')",
}


def literal(a, framework: str) -> str:
    """``a`` as source code that rebuilds it exactly in ``framework``."""
    if isinstance(a, dict):
        body = ", ".join(f"{k!r}: {literal(v, framework)}" for k, v in a.items())
        return f"{type(a).__name__}({{{body}}})" if type(a) is not dict else f"{{{body}}}"
    if isinstance(a, (list, tuple)):
        items = [literal(v, framework) for v in a]
        if hasattr(type(a), "_fields"):  # a namedtuple, by name (define it to rerun)
            return f"{type(a).__name__}({', '.join(items)})"
        if isinstance(a, tuple):
            return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
        return f"[{', '.join(items)}]"
    if not isinstance(a, np.ndarray):
        return repr(a)
    if a.size == 0 and a.ndim:  # tolist() would lose the shape
        return _EMPTY[framework].format(a.shape, a.dtype)
    body = repr(a.tolist()).replace("nan", "float('nan')").replace("inf", "float('inf')")
    return _SETUP[framework][2].format(body, a.dtype)


def line(op_name: str, args: tuple, framework: str, call: str | None = None) -> str:
    setup, module, _ = _SETUP[framework]
    call = call or f"{module}.{op_name}"
    rendered = ", ".join(literal(a, framework) for a in args)
    return f"{setup}; print({call}({rendered}))"


def reproducers(target: Target, drawn) -> str:
    """Lines for refs, torch_impl and jax_impl, plus the target's own if it is a native."""
    case = call_of(drawn)
    args = case.args
    lines = [f"reproduce ({fw}): {line(target.op.name, args, fw)}" for fw in _SETUP]
    if target.native is not None:
        note = f"  # {target.native.note}" if target.native.note else ""
        native = line(target.op.name, args, target.framework, call=_native_call(target))
        lines.append(f"reproduce ({target.native.name}): {native}{note}")
    if getattr(case, "noncontiguous", False):
        lines.append("(the torch arrays were passed as non-contiguous strided views)")
    return "\n".join(lines)


def _native_call(target: Target) -> str:
    fn = target.native.fn
    module = getattr(fn, "__module__", "")
    if module.startswith("crosscheck."):
        return f"__import__('{module}', fromlist=['_']).{fn.__name__}"
    return target.native.name
