"""The noxfile's install logic, with nox stubbed out (the test venv has no nox)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class _Session:
    """What ``_provision`` uses of a nox session: ``run`` and ``log``, recorded."""

    def __init__(self):
        self.runs: list[tuple[str, ...]] = []
        self.envs: list[dict | None] = []

    def run(self, *args, **kwargs):
        self.runs.append(args)
        self.envs.append(kwargs.get("env"))

    def log(self, *args):
        pass

    def installs(self) -> list[tuple[str, ...]]:
        return [r[r.index("install") + 1:] for r in self.runs if "install" in r]


@pytest.fixture
def noxfile(monkeypatch, tmp_path):
    stub = types.ModuleType("nox")
    stub.options = types.SimpleNamespace()
    stub.Session = object
    stub.session = lambda *a, **k: (lambda f: f)
    monkeypatch.setitem(sys.modules, "nox", stub)
    monkeypatch.delenv("CROSSCHECK_PIP_ARGS", raising=False)
    spec = importlib.util.spec_from_file_location("crosscheck_noxfile", ROOT / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)  # _provision reads ./pyproject.toml
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    # the background byte-compile, recorded instead of importing torch for real
    module.started = []
    module.subprocess = types.SimpleNamespace(
        DEVNULL=subprocess.DEVNULL,
        Popen=lambda args, env, **kwargs: _Process(module.started, args, env))
    return module


class _Process:
    def __init__(self, started, args, env):
        self.args, self.env, self.waited = args, env, False
        started.append(self)

    def wait(self):
        self.waited = True


def test_a_reused_venv_installs_nothing_until_a_pin_or_the_project_changes(noxfile, tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()

    def provision(requirements, extras=("jax", "harness")):
        session = _Session()
        noxfile._provision(session, venv, "python", requirements, extras)
        return session.installs()

    first = provision(["torch==2.13.0", "jax"])
    assert first == [("--no-compile", "torch==2.13.0", "jax"), ("-e", ".[jax,harness]")]
    assert json.loads((venv / noxfile.MARKER).read_text())["requirements"] == ["torch==2.13.0", "jax"]
    assert provision(["torch==2.13.0", "jax"]) == [], "nothing changed: nothing installed"
    # a changed pin: that framework reinstalled by force, then everything checked again
    assert provision(["torch==2.13.0", "jax==0.9.2"]) == [
        ("--upgrade", "--force-reinstall", "--no-compile", "jax==0.9.2"),
        ("--no-compile", "torch==2.13.0", "jax==0.9.2"), ("-e", ".[jax,harness]")]
    assert provision(["torch==2.13.0", "jax==0.9.2"]) == []
    # other extras, or a changed pyproject.toml: the project again, no framework by force
    assert provision(["torch==2.13.0", "jax==0.9.2"], ("jax", "test")) == [
        ("--no-compile", "torch==2.13.0", "jax==0.9.2"), ("-e", ".[jax,test]")]
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '2'\n")
    assert provision(["torch==2.13.0", "jax==0.9.2"], ("jax", "test")) == [
        ("--no-compile", "torch==2.13.0", "jax==0.9.2"), ("-e", ".[jax,test]")]


def test_the_frameworks_are_compiled_by_importing_what_a_run_loads(noxfile, tmp_path):
    """pip installs the frameworks without byte-compiling them; importing the modules a run
    loads, with bytecode writing on, in one process per group, compiles those while pip
    installs the project, and is waited for before the venv counts as built (a module
    missing is no error)."""
    venv = tmp_path / "venv"
    venv.mkdir()
    session = _Session()
    runs_at_start = []
    record = noxfile.subprocess.Popen

    def popen(args, env, **kwargs):
        runs_at_start.append(len(session.runs))
        return record(args, env, **kwargs)

    noxfile.subprocess.Popen = popen
    noxfile._provision(session, venv, "python", ["torch==2.13.0", "jax"], ("jax",))
    # one process per group, side by side
    assert [tuple(p.args[3:]) for p in noxfile.started] == list(noxfile.FRAMEWORK_MODULES)
    for process in noxfile.started:
        assert process.args[:2] == ["python", "-c"]
        assert process.env["PYTHONDONTWRITEBYTECODE"] == ""
    installs = session.installs()
    assert runs_at_start == [1, 1] and installs[0][-2:] == ("torch==2.13.0", "jax"), (
        "started after the frameworks, before the project")
    assert installs[1][0] == "-e" and all(p.waited for p in noxfile.started)
    assert (venv / noxfile.MARKER).exists()
    done = subprocess.run([sys.executable, "-c", noxfile.started[0].args[2], "json",
                           "no_such_module_here"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("compiled", [False, True])
def test_only_the_sessions_that_run_torch_compile_compile_inductor(noxfile, tmp_path, compiled):
    session = _Session()
    session.virtualenv = types.SimpleNamespace(location=str(tmp_path / "venv"), _reused=False)
    session._runner = types.SimpleNamespace(global_config=types.SimpleNamespace(no_install=False))
    (tmp_path / "venv").mkdir()
    noxfile._install(session, "harness", compiled=compiled)
    torch_group, other_group = (tuple(p.args[3:]) for p in noxfile.started)
    assert torch_group[:4] == noxfile.FRAMEWORK_MODULES[0]
    assert (noxfile.COMPILE_MODULES[0] in torch_group) is compiled
    assert other_group == noxfile.FRAMEWORK_MODULES[1]
