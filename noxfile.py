"""Sessions of the cross-check suite. ``nox --list`` shows them; ``nox`` runs the default set.

CPU sessions install the CPU wheel of torch pinned below (plain ``torch``
resolves to a multi-GB CUDA build); set ``CROSSCHECK_TORCH`` to test another
torch, e.g. ``CROSSCHECK_TORCH="torch==2.11.0" nox -s tests``. The ``cuda``
session runs in the ambient environment, because the GPU machines we use have
torch + jax with CUDA installed but no nox and no network.
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec

import nox

nox.options.sessions = ["lint", "tests", "doctest"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
TORCH = os.environ.get("CROSSCHECK_TORCH", "torch==2.13.0")
JAX_CACHE = {"CROSSCHECK_JAX_CACHE": os.path.abspath(".cache/jax")}


def _install(session: nox.Session, *extras: str) -> None:
    session.install(TORCH)
    session.install("-e", f".[{','.join(('jax', *extras))}]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """CPU test session (what CI runs): properties, meta-tests, deck snippets, rules."""
    _install(session, "test")
    workers = os.environ.get("CROSSCHECK_WORKERS", "auto")
    session.run(
        "pytest", "-n", workers, "--durations=10", *session.posargs,
        env={"CROSSCHECK_PROFILE": "ci", **JAX_CACHE},
    )


@nox.session(python=False, venv_backend="none", default=False)
def cuda(session: nox.Session) -> None:
    """CUDA/GPU backends in the ambient environment (needs torch+jax with CUDA; fails if absent)."""
    # nox itself runs in the ambient Python here, so this asks the environment under test
    workers = ["-n", os.environ.get("CROSSCHECK_WORKERS", "8")] if find_spec("xdist") else []
    session.run(
        sys.executable, "-m", "pytest", *workers,
        "--backends", "numpy,torch-cuda,jax-cuda", *session.posargs,
        env={"CROSSCHECK_PROFILE": "ci", **JAX_CACHE},
    )


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """The main job: the cross-check matrix over every op x implementation x device."""
    _install(session, "harness")
    args = session.posargs or ["--examples", "40", "--json", "reports/crosscheck.json"]
    os.makedirs("reports", exist_ok=True)
    session.run("python", "-m", "crosscheck", *args, env=JAX_CACHE)


@nox.session(python=PYTHON, default=False)
def regression(session: nox.Session) -> None:
    """Long property run (1000 examples each), replaying the kept example database first."""
    _install(session, "test")
    session.run(
        "pytest", "-n", "auto", "tests/test_properties.py", *session.posargs,
        env={"CROSSCHECK_PROFILE": "regression", **JAX_CACHE},
    )


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Time torch_impl / jax_impl against their native twins (ratios and GB/s)."""
    _install(session, "harness")
    os.makedirs("reports", exist_ok=True)
    if session.posargs:
        session.run("python", "-m", "crosscheck.bench", *session.posargs, env=JAX_CACHE)
        return
    session.run("python", "-m", "crosscheck.bench", "--json", "reports/bench.json", env=JAX_CACHE)
    # torch CPU again with its outputs on huge pages, so that page faults on fresh
    # memory (the same for ours and the native) do not hide the ops' own cost
    session.run("python", "-m", "crosscheck.bench", "--torch-hugepages", "--backends", "torch-cpu",
                "--json", "reports/bench-torch-hugepages.json")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def doctest(session: nox.Session) -> None:
    """Run every docstring example in refs, torch_impl and crosscheck.jax_impl."""
    _install(session, "test")
    session.run(
        "pytest", "--doctest-modules", "refs", "torch_impl", "crosscheck/jax_impl",
        "-p", "no:cacheprovider", env={"CROSSCHECK_PROFILE": "dev"},
    )
