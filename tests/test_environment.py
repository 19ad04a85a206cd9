"""The environment record: serializable, complete, cheap to import, honest about git."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crosscheck import backends, environment


def test_environment_is_json_with_every_topic():
    env = json.loads(json.dumps(environment.environment("ci")))
    assert set(env) >= {"python", "platform", "cpu", "packages", "torch", "jax", "commit",
                        "example_database"}
    assert set(env["packages"]) >= set(environment.PACKAGES)
    assert env["python"]["version"].count(".") == 2 and env["cpu"]["cores"] >= 1
    assert env["example_database"]["profile"] == "ci"
    if backends.Backend("torch-cpu").missing() is None:
        assert env["packages"]["torch"] and "float32_matmul_precision" in env["torch"]["precision"]
    if backends.Backend("jax-cpu").missing() is None:
        # read after load_jax(): the suite's numerics, not JAX's defaults
        assert env["jax"]["precision"] == {"jax_default_matmul_precision": "highest",
                                           "jax_enable_x64": True}


def test_summary_is_one_line_per_topic():
    lines = environment.summary_lines(environment.environment())
    assert len(lines) == 6
    assert [line.split()[0] for line in lines] == ["python", "cpu:", "packages:", "torch:", "jax:",
                                                   "commit"]


def test_absent_packages_are_none_and_never_imported(monkeypatch):
    def fail():
        raise AssertionError("imported a framework that is not installed")

    real = environment._installed
    monkeypatch.setattr(environment, "_installed", lambda m: m not in ("torch", "jax") and real(m))
    monkeypatch.setattr(backends, "load_torch", fail)
    monkeypatch.setattr(backends, "load_jax", fail)
    monkeypatch.setattr(environment, "PACKAGES", ("numpy", "no-such-distribution"))
    env = environment.environment()
    assert env["torch"] is None and env["jax"] is None
    assert env["packages"]["no-such-distribution"] is None
    assert "torch: not installed" in environment.summary_lines(env)


def test_importing_it_imports_no_framework():
    code = ("import sys, crosscheck.environment; "
            "print([m for m in ('numpy', 'torch', 'jax', 'hypothesis') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=environment.REPOSITORY)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args],
                   cwd=cwd, check=True, capture_output=True)


def test_git_commit_clean_dirty_and_outside(tmp_path):
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    assert environment.git_commit(tmp_path) == "unknown"       # not a checkout
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "a")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True).stdout.strip()
    assert environment.git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("b")
    assert environment.git_commit(tmp_path) == head + "-dirty"
    # a directory inside some checkout is not that checkout's code
    (tmp_path / "sub").mkdir()
    assert environment.git_commit(tmp_path / "sub") == "unknown"
