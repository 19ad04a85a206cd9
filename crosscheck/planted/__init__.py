"""Planted wrong implementations, as targets: the harness's test of itself."""

from __future__ import annotations

from crosscheck.backends import Backend
from crosscheck.ops import BY_NAME, TOPICS
from crosscheck.optable import Native, Target


def planted_targets() -> list[Target]:
    """Every topic's ``PLANTED`` (op, bug, fn) as a NumPy target that claims the API contract."""
    return [
        Target(BY_NAME[op], f"planted: {bug}", Backend("numpy"),
               Native(f"planted: {bug}", "numpy", fn, checks_input=True))
        for topic in TOPICS
        for op, bug, fn in getattr(topic, "PLANTED", ())
    ]


def assertions_in(exc: BaseException) -> list[AssertionError]:
    """The AssertionErrors in ``exc`` (hypothesis may group several): a plant caught by a comparison."""
    if isinstance(exc, AssertionError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        return [a for e in exc.exceptions for a in assertions_in(e)]
    return []
