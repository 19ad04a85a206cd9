"""Backends, devices, the run's selection and the hypothesis profile for the test session."""

from __future__ import annotations

import os

import pytest

from crosscheck import backends, profiles
from crosscheck.report import collect_less
from crosscheck.selection import DEFAULT, REGRESSION

TIERS = {"default": DEFAULT, "regression": REGRESSION}


def pytest_addoption(parser):
    parser.addoption(
        "--backends",
        default=None,
        help="comma-separated backends that must be present and run "
        f"(default: every present one of {', '.join(backends.ALL_BACKENDS)}); "
        f"same as {backends.ENV_VAR}",
    )
    parser.addoption(
        "--tier",
        default=os.environ.get("CROSSCHECK_TIER", "default"),
        choices=sorted(TIERS),
        help="what the cells draw: 'default' (eager, JAX natives under jax.jit, contiguous "
        "and strided torch inputs, small sizes) or 'regression' (every target in every mode: "
        "eager, jax.jit, torch.compile; every memory layout, the large tier, "
        "repeatability); same as CROSSCHECK_TIER",
    )


def pytest_configure(config):
    collect_less()  # the test processes run cells as the report's workers do
    # before any test module can touch JAX (load_jax does it too, for the report's workers)
    backends.share_gpu_memory()
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
    tier = TIERS[config.getoption("--tier")]
    return [
        "crosscheck backends (framework-device):",
        *lines,
        f"crosscheck tier: {tier.name} (modes {tier.modes_text()}; layouts "
        f"{', '.join(tier.layouts)}; sizes {', '.join(tier.sizes)})",
        f"crosscheck hypothesis profile: {profile} "
        f"(max_examples={settings.default.max_examples}, derandomize={settings.default.derandomize})",
    ]


@pytest.fixture(scope="session")
def selection(pytestconfig):
    return TIERS[pytestconfig.getoption("--tier")]


def _skip_if_missing(backend):
    why = backend.missing()
    if why:
        pytest.skip(f"backend {backend.name} not present: {why}")


@pytest.fixture
def require_backend():
    return _skip_if_missing


@pytest.fixture
def deck(require_backend):
    """The objects of the deck's training slides: DataLoader, model, criterion, SGD
    (tests/deck_training.py, imported here only when a test asks: it needs torch)."""
    pytest.importorskip("torch")
    from deck_training import make_deck

    return make_deck(require_backend)


def _skip_unless_selected(prop, target, selection):
    """Skip a cell its tier does not run, or whose backend or compiler is missing, saying why."""
    _skip_if_missing(target.backend)
    if target.mode not in selection.modes_for(target.framework, target.native):
        pytest.skip(f"mode {target.mode!r} of this target runs in the regression tier (the "
                    f"{selection.name} tier's modes: {selection.modes_text()}; --tier "
                    "regression, nox -s regression, python -m crosscheck --regression)")
    if not selection.wants(prop.tier):
        pytest.skip(f"property {prop.name!r} runs in the regression tier (--tier regression)")
    why = target.unavailable()
    if why:
        pytest.skip(f"{target.name} cannot run here: {why}")


@pytest.fixture
def require_target():
    return _skip_unless_selected
