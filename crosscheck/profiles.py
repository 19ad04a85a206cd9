"""Hypothesis profiles: ``dev`` (fast), ``ci`` (the test session), ``regression`` (long runs).

Select one with ``CROSSCHECK_PROFILE`` or pytest's ``--hypothesis-profile``.
``regression`` keeps an example database under ``.hypothesis/regression`` and
replays every failure it ever found before drawing new examples.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

_COMMON = dict(
    deadline=None,  # first calls include JAX compilation; speed is the bench's business
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

PROFILES = {
    "dev": dict(max_examples=15, database=None, **_COMMON),
    "ci": dict(max_examples=40, derandomize=True, database=None, **_COMMON),
    "regression": dict(
        max_examples=1000,
        database=DirectoryBasedExampleDatabase(".hypothesis/regression"),
        **_COMMON,
    ),
}

for _name, _kwargs in PROFILES.items():
    settings.register_profile(_name, **_kwargs)


def default_profile() -> str:
    return os.environ.get("CROSSCHECK_PROFILE") or ("ci" if os.environ.get("CI") else "dev")


def load(name: str | None = None) -> str:
    name = name or default_profile()
    settings.load_profile(name)
    return name
