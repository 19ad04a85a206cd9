"""Sessions of the cross-check suite. ``nox --list`` shows them; ``nox`` runs the default set.

Sessions run on the first of CPython 3.11, 3.12, 3.13 found on PATH and fail (never
skip) when there is none. Knobs, read from the environment:

* ``CROSSCHECK_TORCH``: the torch requirement (default the pinned CPU wheel below;
  plain ``torch`` resolves to a multi-GB CUDA build), e.g. ``"torch==2.11.0"``;
* ``CROSSCHECK_JAX``: the JAX requirement (default ``jax``), e.g. ``"jax==0.9.2"``;
* ``CROSSCHECK_PIP_ARGS``: extra pip options for installing those two, e.g.
  ``"--index-url https://download.pytorch.org/whl/nightly/cpu --pre"``.

A reused venv remembers what it was built with (a marker file in the venv: the
framework requirements, pip options, extras and pyproject.toml), installs nothing while
those stay the same, and reinstalls the frameworks whose requirement changed. The ``cuda`` session runs in the
ambient environment, because the GPU machines we use have torch + jax with CUDA
installed but no nox and no network. ``nox -s versions`` runs the report under each
environment of the ``VERSIONS`` table below and compares each with the first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests", "doctest"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13")
TORCH = os.environ.get("CROSSCHECK_TORCH", "torch==2.13.0")
JAX = os.environ.get("CROSSCHECK_JAX", "jax")
PIP_ARGS = shlex.split(os.environ.get("CROSSCHECK_PIP_ARGS", ""))
# compiled kernels kept across runs: JAX's persistent cache and Inductor's (torch.compile)
JAX_CACHE = {"CROSSCHECK_JAX_CACHE": os.path.abspath(".cache/jax"),
             "TORCHINDUCTOR_CACHE_DIR": os.path.abspath(".cache/torchinductor")}
MARKER = "crosscheck-frameworks.json"

# nox -s versions: name -> requirements replacing the defaults (TORCH, JAX) of the same
# project; the first is the baseline the others are compared with. Newest on PyPI when
# written: jax/jaxlib 0.10.2 and 0.9.2; numpy 2.4 and 2.3 (jax 0.10 needs numpy >= 2.0).
# Override with CROSSCHECK_VERSIONS: names of this table, comma-separated (a subset, in
# that order), or a JSON object {"name": ["requirement", ...], ...} replacing it.
VERSIONS: dict[str, list[str]] = {
    "jax0.10.2-np2.4": ["jax==0.10.2", "jaxlib==0.10.2", "numpy==2.4.*"],
    "jax0.9.2-np2.4": ["jax==0.9.2", "jaxlib==0.9.2", "numpy==2.4.*"],
    "jax0.10.2-np2.3": ["jax==0.10.2", "jaxlib==0.10.2", "numpy==2.3.*"],
}


def _first_python() -> str:
    """The first supported CPython that runs; the oldest when none does (nox then fails)."""
    for version in SUPPORTED_PYTHONS:
        path = shutil.which(f"python{version}")
        if path is None:
            continue
        try:  # a pyenv shim exists for versions that are installed but not selected
            ok = subprocess.run([path, "-c", ""], capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return version
    return SUPPORTED_PYTHONS[0]


PYTHON = _first_python()


def _project(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else requirement


#: What a run imports from the frameworks' packages, in two groups compiled side by side
#: (torch's, and numpy's and JAX's). pip byte-compiles every module it installs, and torch
#: and JAX with their dependencies are ~7,600 of them: a fresh venv's ``pip install torch
#: jax`` took 40-46 s with that, 11-15 s without (--no-compile, this project's 2-core
#: machine). So the frameworks are installed without it, and importing these once (~2,000
#: modules) compiles what a default run loads from them (all but 2 of the 1,952 framework
#: modules of its 2,040 site-packages modules, counted; the rest, hypothesis and einops, come
#: with the project's extras, which pip compiles as usual); any other is compiled when
#: imported (every time, where PYTHONDONTWRITEBYTECODE is set). Without this step each
#: process of every run would compile torch's and JAX's sources again (+9 s) where
#: PYTHONDONTWRITEBYTECODE is set, as on this project's machines. In one process the imports
#: took 12.4-13.6 s, in these two side by side 9.6-10.3 s (both import numpy; a module
#: compiled twice is written twice, each write atomic).
FRAMEWORK_MODULES = (("torch", "torch._dynamo", "torch.utils.data", "torch.profiler"),
                     ("numpy", "numpy.typing", "jax", "jax.numpy", "jax.experimental",
                      "jax.experimental.checkify", "jaxlib.mlir.dialects.builtin",
                      "jaxlib.mlir.dialects.mhlo", "opt_einsum"))
#: ...and what ``torch.compile`` adds to torch's group (Inductor: +6.6 s to compile), for
#: the sessions that run the compiled mode (the tests, the regression tier)
COMPILE_MODULES = ("torch._inductor.compile_fx",)
_IMPORT_EACH = ("import importlib, sys\n"
                "for name in sys.argv[1:]:\n"
                "    try:\n"
                "        importlib.import_module(name)\n"
                "    except Exception:\n"
                "        pass  # not installed here: nothing to compile\n")


def _compile_frameworks(session: nox.Session, python: str,
                        groups: tuple[tuple[str, ...], ...]):
    """Start byte-compiling the framework modules a run imports, by importing them once
    with bytecode writing on (into the venv; the variable only stops writing, never
    reading), one background process per group: they overlap each other and pip's install
    of the project (~5 s). Returns the function that waits for them."""
    session.log("byte-compiling what a run imports from the frameworks: "
                + "; ".join(" ".join(group) for group in groups))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    processes = [subprocess.Popen([python, "-c", _IMPORT_EACH, *group], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for group in groups]

    def wait() -> None:
        for process in processes:
            process.wait()

    return wait


def _provision(session: nox.Session, venv: Path, python: str, requirements: list[str],
               extras: tuple[str, ...],
               modules: tuple[tuple[str, ...], ...] = FRAMEWORK_MODULES) -> None:
    """pip-install ``requirements`` with PIP_ARGS and this project (editable, with
    ``extras``) into ``venv``; reinstall the requirements that changed since the venv's
    last install (all of them when PIP_ARGS changed).

    Nothing runs when the venv's marker says that exactly this was installed (the same
    requirements, pip options, extras and pyproject.toml): pip's "already satisfied"
    checks and the editable build took ~6 s of every session. An unpinned requirement
    (plain ``jax``) is not upgraded in a reused venv either way; a new venv takes the newest.
    """
    wanted = {"requirements": requirements, "pip_args": PIP_ARGS, "extras": sorted(extras),
              "pyproject": hashlib.sha256(Path("pyproject.toml").read_bytes()).hexdigest()}
    marker = venv / MARKER
    try:
        last = json.loads(marker.read_text())
    except (OSError, ValueError):
        last = None  # a new venv, or one built before the marker existed
    if last == wanted:
        session.log(f"{venv.name}: requirements and project installed as recorded in {MARKER}")
        return
    frameworks = {k: wanted[k] for k in ("requirements", "pip_args")}
    if last is not None and {k: last.get(k) for k in frameworks} != frameworks:
        # --force-reinstall: an installed torch 2.13.0+cpu satisfies "torch==2.13.0" from
        # another index, and an installed jax satisfies a plain "jax" with --pre
        changed = requirements if last.get("pip_args") != PIP_ARGS else [
            r for r in requirements if r not in last.get("requirements", [])]
        session.log(f"framework requirements changed since this venv was built: {last}")
        if changed:
            session.run(python, "-m", "pip", "install", *PIP_ARGS, "--upgrade",
                        "--force-reinstall", "--no-compile", *changed, external=True)
    session.run(python, "-m", "pip", "install", *PIP_ARGS, "--no-compile", *requirements,
                external=True)
    compiled = _compile_frameworks(session, python, modules)
    try:
        session.run(python, "-m", "pip", "install", "-e", f".[{','.join(extras)}]",
                    external=True)
    finally:
        compiled()
    marker.write_text(json.dumps(wanted))


def _install(session: nox.Session, *extras: str, compiled: bool = False) -> None:
    """The frameworks and this project with ``extras``; ``compiled``: the session runs
    ``torch.compile`` (its Inductor modules are compiled at install too)."""
    # nox's --no-install on a reused venv skips installs (nox keeps the flag private)
    if getattr(session._runner.global_config, "no_install", False) and getattr(
            session.virtualenv, "_reused", False):
        return
    venv = Path(session.virtualenv.location)
    torch_modules, other_modules = FRAMEWORK_MODULES
    if compiled:
        torch_modules += COMPILE_MODULES
    _provision(session, venv, str(venv / "bin" / "python"), [TORCH, JAX], ("jax", *extras),
               (torch_modules, other_modules))


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """CPU test session (what CI runs): properties, meta-tests, deck snippets, rules."""
    _install(session, "test", compiled=True)
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
    args = session.posargs or ["--json", "reports/crosscheck.json"]
    os.makedirs("reports", exist_ok=True)
    session.run("python", "-m", "crosscheck", *args, env=JAX_CACHE)


@nox.session(python=PYTHON, default=False)
def regression(session: nox.Session) -> None:
    """Long run of the regression tier (modes, layouts, large sizes), replaying the example database first."""
    _install(session, "harness", compiled=True)
    os.makedirs("reports", exist_ok=True)
    args = session.posargs or ["--examples", "200"]
    session.run(
        "python", "-m", "crosscheck", "--regression", "--json", "reports/regression.json",
        "--log", "reports/regression.log", *args, env=JAX_CACHE,
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


@nox.session(python=PYTHON, default=False)
def figures(session: nox.Session) -> None:
    """The lecture's figures, drawn from the suite (PNG and SVG; timings of this machine) into docs/figures."""
    _install(session, "harness", "figures")
    # a later --out in the posargs wins (argparse keeps the last)
    session.run("python", "-m", "crosscheck.figures", "--out", "docs/figures", *session.posargs,
                env=JAX_CACHE)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session(python=PYTHON)
def doctest(session: nox.Session) -> None:
    """Run every docstring example in refs, torch_impl and crosscheck.jax_impl."""
    _install(session, "test")
    session.run(
        "pytest", "--doctest-modules", "refs", "torch_impl", "crosscheck/jax_impl",
        "-p", "no:cacheprovider", *session.posargs, env={"CROSSCHECK_PROFILE": "dev"},
    )


# ---------------------------------------------------------------- nox -s versions


def _versions_table(session: nox.Session) -> dict[str, list[str]]:
    raw = os.environ.get("CROSSCHECK_VERSIONS", "").strip()
    if not raw:
        table = VERSIONS
    elif raw.startswith("{"):
        table = json.loads(raw)
        if not all(isinstance(v, list) and all(isinstance(r, str) for r in v)
                   for v in table.values()):
            session.error("CROSSCHECK_VERSIONS: a JSON object of name -> list of requirements")
    else:
        names = [n.strip() for n in raw.split(",") if n.strip()]
        unknown = [n for n in names if n not in VERSIONS]
        if unknown:
            session.error(f"CROSSCHECK_VERSIONS names {unknown}; the table has {list(VERSIONS)}")
        table = {n: VERSIONS[n] for n in names}
    bad = [n for n in table if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", n)]
    if bad or len(table) < 2:
        session.error(f"versions: need two or more environments named [A-Za-z0-9._+-]; got "
                      f"{list(table)}")
    return table


def _requirements(row: list[str]) -> list[str]:
    """The defaults (TORCH, JAX) with the row's requirements replacing those of its projects."""
    named = {_project(r) for r in row}
    return [r for r in (TORCH, JAX) if _project(r) not in named] + list(row)


def _version_env(session: nox.Session, location: Path, requirements: list[str]) -> str:
    """A venv at ``location`` with ``requirements`` and this checkout; its python."""
    python = location / "bin" / "python"
    if not python.exists():
        session.run("python", "-m", "venv", str(location))
    _provision(session, location, str(python), requirements, ("jax", "harness"))
    return str(python)


def _cell_counts(doc: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in doc.get("cells", []):
        counts[c.get("status", "?")] = counts.get(c.get("status", "?"), 0) + 1
    return counts


@nox.session(python=PYTHON, default=False)
def versions(session: nox.Session) -> None:
    """The report under each VERSIONS environment, compared with the first; fails only if an environment cannot be built (worse cells are reported, not fatal)."""
    table = _versions_table(session)
    args = list(session.posargs)
    examples = int(args.pop(0)) if args and args[0].isdigit() else 20
    out = Path("reports") / "versions"
    out.mkdir(parents=True, exist_ok=True)
    root = Path(session.virtualenv.location).parent
    pythons, docs = {}, {}
    for name, row in table.items():
        session.log(f"versions: building {name}: {' '.join(_requirements(row))}")
        pythons[name] = python = _version_env(session, root / f"versions-{name}",
                                              _requirements(row))
        path = out / f"{name}.json"
        # exit 1 (a disagreement) is a result; 2 (a backend missing) or a crash is not
        session.run(python, "-m", "crosscheck", "--examples", str(examples), *args,
                    "--json", str(path), external=True, success_codes=[0, 1], env=JAX_CACHE)
        doc = json.loads(path.read_text())
        if not (doc.get("meta") or {}).get("environment"):
            # a report that predates meta.environment: record it from the same venv
            env = session.run(python, "-m", "crosscheck.environment", "--profile", "ci",
                              external=True, silent=True, env=JAX_CACHE)
            doc.setdefault("meta", {})["environment"] = json.loads(env)
            doc["meta"]["environment_added_by"] = "nox -s versions"
            path.write_text(json.dumps(doc, indent=1) + "\n")
        docs[name] = doc

    first = next(iter(table))
    verdicts = {first: "(baseline)"}
    for name in list(table)[1:]:
        text = session.run(pythons[first], "-m", "crosscheck", "compare",
                           str(out / f"{first}.json"), str(out / f"{name}.json"),
                           "--json", str(out / f"compare-{name}.json"),
                           external=True, silent=True, success_codes=[0, 1])
        (out / f"compare-{name}.txt").write_text(text)
        print(f"\n===== {first} -> {name} =====\n{text}")
        verdicts[name] = text.strip().splitlines()[-1].removeprefix("verdict: ")

    session.log(f"versions: {examples} examples per cell; reports and comparisons in {out}/")
    for name, doc in docs.items():
        packages = doc["meta"]["environment"].get("packages", {})
        versions_ = " ".join(f"{k} {packages.get(k)}" for k in ("jax", "jaxlib", "numpy", "torch"))
        counts = ", ".join(f"{v} {k}" for k, v in sorted(_cell_counts(doc).items()))
        seconds = sum(c.get("seconds") or 0 for c in doc.get("cells", []))
        session.log(f"  {name}: {versions_}; cells: {counts}; {seconds:.0f} s in cells")
        session.log(f"    {verdicts[name]}")
