"""What a run draws: execution modes, memory layouts, size tiers and which properties.

The default run (``python -m crosscheck``, ``nox -s tests``) stays small and
fast: each target called the way its users mostly call it (torch eagerly, our
implementations as written, JAX's natives under ``jax.jit``), contiguous and
strided torch inputs, sizes 0-5. The regression run (``python -m crosscheck
--regression``, ``nox -s regression``) goes where framework bugs live: every
target in every mode it has (eager and ``jax.jit`` for everything JAX,
``torch.compile`` for torch), every memory layout, a large tier of 2**16-2**20
elements, and the properties that only a long run needs (bitwise repeatability).
Both replay the named historic cases first.
"""

from __future__ import annotations

from dataclasses import dataclass

from crosscheck import layouts, modes

SIZES = ("small", "large")


@dataclass(frozen=True)
class Selection:
    name: str = "default"
    modes: tuple[str, ...] = modes.DEFAULT
    layouts: tuple[str, ...] = layouts.DEFAULT_KINDS
    sizes: tuple[str, ...] = ("small",)
    #: ``"default"`` runs the default-tier properties; ``"regression"`` all of them
    tier: str = "default"
    #: of the examples a cell draws, about one in ``large_every`` is of the large tier
    large_every: int = 4
    #: at most this many examples in a ``torch.compile`` cell (None: as many as the others):
    #: every new shape or layout there is an Inductor compilation of 1-10 s on CPU
    compile_examples: int | None = None
    #: (framework, modes) pairs: the modes a framework's own ops (its natives) run in,
    #: where they differ from ``modes``. Our implementations, the oracle and the planted
    #: stand-ins for ours always run in ``modes``.
    native_modes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def wants(self, property_tier: str) -> bool:
        return property_tier == "default" or self.tier == "regression"

    def modes_for(self, framework: str, native=None) -> tuple[str, ...]:
        """The modes a target of ``framework`` runs in: ``native_modes`` for a framework's own
        op (a :class:`~crosscheck.optable.Native` with ``frameworks_own``), else ``modes``."""
        if native is not None and native.frameworks_own:
            for fw, chosen in self.native_modes:
                if fw == framework:
                    return chosen
        return self.modes

    def all_modes(self) -> tuple[str, ...]:
        """Every mode some target of this selection runs in, in ``MODES`` order."""
        used = set(self.modes).union(*(chosen for _, chosen in self.native_modes))
        return tuple(m for m in modes.MODES if m in used)

    def modes_text(self) -> str:
        """The modes in a few words: ``eager (JAX natives: jit)``."""
        natives = "; ".join(f"{'JAX' if fw == 'jax' else fw} natives: {', '.join(chosen)}"
                            for fw, chosen in self.native_modes)
        return ", ".join(self.modes) + (f" ({natives})" if natives else "")

    def describe(self) -> dict:
        return {"tier": self.name, "modes": list(self.modes),
                "native_modes": {fw: list(chosen) for fw, chosen in self.native_modes},
                "layouts": list(self.layouts), "sizes": list(self.sizes),
                "compile_examples": self.compile_examples}


#: JAX code calls the natives (``jnp.take_along_axis``, ``.at[].add``, ``lax.conv_*``) inside
#: ``jax.jit``, so the default run checks them there; their eager, op-by-op path is the
#: regression run's. Run eagerly, a native's composite dispatches each primitive as its own
#: program (``.at[].add``: ~11 per new shape, ``linear_transpose`` of the patches op every
#: primitive of the transposed jaxpr): in the default report the eager natives lowered
#: 1,594 programs, jitted 646, and the JAX cells took 154 s of CPU instead of 214 with an
#: empty compilation cache (measured on the 2-core CPU machine, one process).
DEFAULT = Selection(native_modes=(("jax", ("jit",)),))
REGRESSION = Selection("regression", modes.MODES, layouts.KINDS, SIZES, "regression",
                       compile_examples=12)
