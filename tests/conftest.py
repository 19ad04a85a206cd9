"""Backends, devices and the hypothesis profile for the test session."""

from __future__ import annotations

import os

import pytest

from crosscheck import backends, profiles


def pytest_addoption(parser):
    parser.addoption(
        "--backends",
        default=None,
        help="comma-separated backends that must be present and run "
        f"(default: every present one of {', '.join(backends.ALL_BACKENDS)}); "
        f"same as {backends.ENV_VAR}",
    )


def pytest_configure(config):
    requested = config.getoption("--backends")
    if requested:
        os.environ[backends.ENV_VAR] = requested
    try:
        chosen = backends.selected()
    except backends.BackendUnavailable as e:
        raise pytest.UsageError(str(e)) from e
    for backend in chosen:
        backend.missing()  # loads each present framework with the suite's numerics
    if not config.getoption("hypothesis_profile", None):
        profiles.load()


def pytest_report_header(config):
    from hypothesis import settings

    lines = []
    for b in backends.selected():
        why = b.missing()
        lines.append(f"  {b.name:<11} {'ready' if why is None else 'skipped: ' + why}")
    profile = settings._current_profile
    return [
        "crosscheck backends (framework-device):",
        *lines,
        f"crosscheck hypothesis profile: {profile} "
        f"(max_examples={settings.default.max_examples}, derandomize={settings.default.derandomize})",
    ]


def _skip_if_missing(backend):
    why = backend.missing()
    if why:
        pytest.skip(f"backend {backend.name} not present: {why}")


@pytest.fixture
def require_backend():
    return _skip_if_missing
