"""One-line reproducers: the failing call, written out for every framework.

A line rebuilds the exact call: the values (or, for a large case, the recipe
that generates them), torch memory layouts (:meth:`Layout.torch_code`), and the
execution mode (``crosscheck.modes.wrap(fn, 'jit')``).
"""

from __future__ import annotations

import numpy as np

from crosscheck.optable import OURS, Case, Target, call_of

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


def arguments(case: Case, framework: str) -> str:
    """The call's arguments as source, torch layouts applied."""
    if case.recipe is not None:  # too large to print: rebuilt from its recipe
        convert = {"numpy": "a", "torch": "torch.from_numpy(a)", "jax": "jnp.asarray(a)"}[framework]
        laid = [f"crosscheck.layouts.{case.layout(i)!r}.apply({convert})"
                if framework == "torch" and case.layout(i).kind != "contiguous" else convert
                for i in range(len(case.args))]
        pick = ", ".join(f"(lambda a: {x} if isinstance(a, np.ndarray) else a)(args[{i}])"
                         for i, x in enumerate(laid))
        return f"*(lambda args: ({pick},))({case.recipe})"
    parts = []
    for i, a in enumerate(case.args):
        text = literal(a, framework)
        if framework == "torch" and isinstance(a, np.ndarray):
            text = case.layout(i).torch_code(text)
        parts.append(text)
    return ", ".join(parts)


def line(op_name: str, case: Case, framework: str, call: str | None = None, mode: str = "eager") -> str:
    setup, module, _ = _SETUP[framework]
    call = call or f"{module}.{op_name}"
    if mode != "eager":
        setup += "; import crosscheck.modes"
        call = f"crosscheck.modes.wrap({call}, {mode!r})"
    if case.recipe is not None:
        setup += "; import numpy as np, crosscheck.layouts, crosscheck.ops"
        if framework == "jax":
            setup += "; import jax.numpy as jnp"
    return f"{setup}; print({call}({arguments(case, framework)}))"


def reproducers(target: Target, drawn) -> str:
    """Lines for refs, torch_impl and jax_impl, plus the target's own if it is a native."""
    case = call_of(drawn)
    if not isinstance(case, Case):
        return f"reproduce: the drawn value was {drawn!r}"
    lines = []
    for impl, (fw, _) in OURS.items():
        if impl not in target.op.impls:
            continue
        call = None
        if impl in target.op.adapters:  # the op's calling convention, through the harness
            call = f"__import__('crosscheck.ops', fromlist=['_']).implementation({target.op.name!r}, {impl!r})"
        lines.append(f"reproduce ({fw}): {line(target.op.name, case, fw, call)}")
    if target.mode != "eager" and target.native is None:
        call = (f"__import__('crosscheck.ops', fromlist=['_']).implementation("
                f"{target.op.name!r}, {target.impl!r})" if target.impl in target.op.adapters else None)
        lines.append(f"reproduce ({target.name}): "
                     f"{line(target.op.name, case, target.framework, call, mode=target.mode)}")
    if target.native is not None:
        note = f"  # {target.native.note}" if target.native.note else ""
        native = line(target.op.name, case, target.framework, call=_native_call(target),
                      mode=target.mode)
        lines.append(f"reproduce ({target.native.name}): {native}{note}")
    return "\n".join(lines)


def _native_call(target: Target) -> str:
    fn = target.native.fn
    module = getattr(fn, "__module__", "")
    if module.startswith("crosscheck."):
        return f"__import__('{module}', fromlist=['_']).{fn.__name__}"
    return target.native.name
