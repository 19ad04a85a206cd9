"""How much of a cell's time went to compiling, as the frameworks themselves report it.

A JAX cell that meets a shape for the first time traces, lowers and compiles a
program (or fetches it from the persistent cache); on a cold cache that is most of
its time, and a new jax or jaxlib release invalidates the whole cache. So a time per
example that tripled after an upgrade says little until the compiling is taken out.
This module counts, in the process that runs the cells:

* JAX, through ``jax.monitoring``: the durations of tracing
  (``/jax/core/compile/jaxpr_trace_duration``, recorded for top-level traces only),
  lowering to MLIR (``jaxpr_to_mlir_module_duration``) and XLA compilation or
  persistent-cache fetch (``backend_compile_duration``); one program per
  backend-compile event, and ``/jax/compilation_cache/cache_hits`` for those the
  persistent cache held. These spans do not nest, so their sum is time spent compiling.
* ``torch.compile``: Dynamo's ``_compile.compile_inner`` entries in
  ``torch._dynamo.utils.compilation_time_metrics`` (each frame's capture and Inductor
  compilation; an internal table, read only where it exists; AOTAutograd's backward
  graph is compiled at the first backward call and is not in it).

``report.run_cell`` takes a :func:`snapshot` before a cell and records :func:`since`
after it; ``tests/test_report.py`` holds both counts to a program compiled on purpose.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

#: the JAX duration events that are compile time (they do not overlap one another)
JAX_DURATIONS = frozenset({
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
})
JAX_PROGRAM = "/jax/core/compile/backend_compile_duration"
JAX_CACHE_HIT = "/jax/compilation_cache/cache_hits"
TORCH_FRAME = "_compile.compile_inner"

_jax = {"seconds": 0.0, "programs": 0, "cache_hits": 0}
_listening = False


class Snapshot(NamedTuple):
    seconds: float
    jax_programs: int
    jax_cache_hits: int


def listen_to_jax(jax) -> None:
    """Count JAX's compile events from now on (once per process; a no-op on a JAX without
    ``jax.monitoring``'s listeners)."""
    global _listening
    monitoring = getattr(jax, "monitoring", None)
    if _listening or monitoring is None:
        return
    register_duration = getattr(monitoring, "register_event_duration_secs_listener", None)
    register_event = getattr(monitoring, "register_event_listener", None)
    if register_duration is None or register_event is None:
        return

    def on_duration(event: str, duration: float, **_) -> None:
        if event in JAX_DURATIONS:
            _jax["seconds"] += duration
            if event == JAX_PROGRAM:
                _jax["programs"] += 1

    def on_event(event: str, **_) -> None:
        if event == JAX_CACHE_HIT:
            _jax["cache_hits"] += 1

    register_duration(on_duration)
    register_event(on_event)
    _listening = True


def _torch_seconds() -> float:
    utils = sys.modules.get("torch._dynamo.utils")  # torch.compile not used: nothing to read
    metrics = getattr(utils, "compilation_time_metrics", None)
    if not isinstance(metrics, dict):
        return 0.0
    return float(sum(metrics.get(TORCH_FRAME, ())))


def snapshot() -> Snapshot:
    """The totals so far in this process."""
    return Snapshot(_jax["seconds"] + _torch_seconds(), _jax["programs"], _jax["cache_hits"])


def since(start: Snapshot) -> dict:
    """What was spent since ``start``: ``seconds`` compiling (JAX and torch.compile),
    ``jax_programs`` lowered, and ``jax_compiled``, those of them the persistent cache did
    not hold (all of them when there is no cache)."""
    now = snapshot()
    programs = now.jax_programs - start.jax_programs
    return {"seconds": max(0.0, now.seconds - start.seconds), "jax_programs": programs,
            "jax_compiled": programs - (now.jax_cache_hits - start.jax_cache_hits)}
