"""What a run draws: execution modes, memory layouts, size tiers and which properties.

The default run (``python -m crosscheck``, ``nox -s tests``) stays small and
fast: eager calls, contiguous and strided torch inputs, sizes 0-5. The
regression run (``python -m crosscheck --regression``, ``nox -s regression``)
goes where framework bugs live: ``jax.jit`` and ``torch.compile`` targets,
every memory layout, a large tier of 2**16-2**20 elements, and the properties
that only a long run needs (bitwise repeatability). Both replay the named
historic cases first.
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

    def wants(self, property_tier: str) -> bool:
        return property_tier == "default" or self.tier == "regression"

    def describe(self) -> dict:
        return {"tier": self.name, "modes": list(self.modes), "layouts": list(self.layouts),
                "sizes": list(self.sizes), "compile_examples": self.compile_examples}


DEFAULT = Selection()
REGRESSION = Selection("regression", modes.MODES, layouts.KINDS, SIZES, "regression",
                       compile_examples=12)
