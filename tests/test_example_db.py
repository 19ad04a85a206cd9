"""``CROSSCHECK_DB``: a failing example found in one process is replayed first in the next.

The Redis variant runs a real ``redis-server`` on a free loopback port, started and
stopped here. Without the binary the test is skipped locally and fails under CI
(``CI`` set), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis.database import DirectoryBasedExampleDatabase

from crosscheck import profiles

REPO = Path(__file__).resolve().parent.parent
THRESHOLD = 1234  # the tiny test below fails for x >= THRESHOLD; shrunk, x == THRESHOLD

SCRIPT = textwrap.dedent(f"""
    import json, sys
    from hypothesis import given, seed, settings, strategies as st
    from crosscheck import profiles

    profile, seed_, examples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    profiles.load(profile)
    calls, failing = [], []

    # settings outside seed: hypothesis's seed() sets database=None on the settings
    # applied before (inside) it, and would turn the database off
    @settings(max_examples=examples)
    @seed(seed_)
    @given(st.integers(0, 10**6))
    def test(x):
        calls.append(x)
        if x >= {THRESHOLD}:
            failing.append(x)
            raise AssertionError(x)

    try:
        test()
        outcome = "passed"
    except AssertionError:
        outcome = "failed"
    print(json.dumps(dict(outcome=outcome, calls=calls, failing=failing,
                          database=repr(settings.default.database))))
""")


def _missing(what: str, hint: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing; CI must provide it ({hint})")
    pytest.skip(f"{what} is missing ({hint})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url():
    """A fresh redis-server on 127.0.0.1, stopped at the end of the module."""
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("the redis-server binary", "apt-get install redis-server; .ci/run does")
    try:
        import redis
    except ImportError:
        _missing("the redis Python client", "pip install redis; the test extra has it")
    for _attempt in range(3):  # another process may take the free port before the server
        port = _free_port()
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 15
        while server.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        if server.poll() is None:
            break
    else:
        pytest.fail("redis-server did not start on a free loopback port (3 tries)")
    try:
        client.ping()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushall()  # each test starts from an empty database
    yield client
    client.close()


def run_script(tmp_path, db: str | None, profile: str, seed: int, examples: int) -> dict:
    script = tmp_path / "tiny.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in (profiles.DB_ENV, "CROSSCHECK_PROFILE")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if db is not None:
        env[profiles.DB_ENV] = db
    done = subprocess.run([sys.executable, str(script), profile, str(seed), str(examples)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_replayed_first(tmp_path, db: str, profile: str) -> None:
    # the second process's setting alone passes: one example, the simplest (0)
    before = run_script(tmp_path, db, profile, seed=2, examples=1)
    assert before["outcome"] == "passed" and before["calls"] == [0], before
    found = run_script(tmp_path, db, profile, seed=1, examples=200)
    assert found["outcome"] == "failed" and found["failing"][-1] == THRESHOLD, found
    again = run_script(tmp_path, db, profile, seed=2, examples=1)
    assert again["outcome"] == "failed", again
    assert again["calls"][0] == THRESHOLD          # replayed first, before anything drawn
    assert again["failing"][-1] == THRESHOLD       # and reported on the same shrunk value


@pytest.mark.parametrize("profile", ["ci", "regression"])
def test_redis_database_replays_a_failure_from_another_process(tmp_path, redis_url,
                                                               redis_client, profile):
    assert_replayed_first(tmp_path, redis_url, profile)
    keys = redis_client.keys("hypothesis-example:*")
    assert keys, "nothing was stored in redis"
    # and nothing went to a directory database on the side
    assert not (tmp_path / ".hypothesis" / "regression").exists()


@pytest.mark.parametrize("profile", ["dev", "regression"])
def test_directory_database_replays_a_failure_from_another_process(tmp_path, profile):
    shared = tmp_path / "shared-db"
    assert_replayed_first(tmp_path, str(shared), profile)
    assert any(p.is_file() for p in shared.rglob("*"))
    assert not (tmp_path / ".hypothesis" / "regression").exists()


def test_unset_keeps_the_default_databases(tmp_path):
    # ci: none, so the failure of the first process is not replayed
    found = run_script(tmp_path, None, "ci", seed=1, examples=200)
    assert found["outcome"] == "failed" and found["database"] == "None"
    assert run_script(tmp_path, None, "ci", seed=2, examples=1)["outcome"] == "passed"
    # regression: .hypothesis/regression under the working directory
    found = run_script(tmp_path, None, "regression", seed=1, examples=200)
    assert "regression" in found["database"] and (tmp_path / ".hypothesis" / "regression").is_dir()
    assert run_script(tmp_path, None, "regression", seed=2, examples=1)["calls"][0] == THRESHOLD


def test_profiles_by_setting(tmp_path):
    unset = profiles.build_profiles(None)
    assert unset["dev"]["database"] is None and unset["ci"]["database"] is None
    assert unset["ci"]["derandomize"] is True
    assert isinstance(unset["regression"]["database"], DirectoryBasedExampleDatabase)
    named = profiles.build_profiles(str(tmp_path / "db"))
    assert all(isinstance(p["database"], DirectoryBasedExampleDatabase) for p in named.values())
    assert named["ci"]["derandomize"] is False
    pytest.importorskip("redis")
    from hypothesis.extra.redis import RedisExampleDatabase

    url = profiles.build_profiles("redis://127.0.0.1:1/3")  # connects lazily: no server needed
    assert all(isinstance(p["database"], RedisExampleDatabase) for p in url.values())


def test_database_descriptions_hide_passwords(tmp_path, monkeypatch):
    assert profiles.describe("redis://:s3cret@db.example:6379/2") == "redis://:***@db.example:6379/2"
    assert profiles.describe("redis://u:s3cret@h/0") == "redis://u:***@h/0"
    assert profiles.describe("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379"
    assert profiles.describe("rel/db") == os.path.abspath("rel/db")
    assert profiles.describe(None) is None
    monkeypatch.delenv(profiles.DB_ENV, raising=False)
    assert profiles.database_setting("ci") is None
    assert profiles.database_setting("regression") == profiles.REGRESSION_DB
    monkeypatch.setenv(profiles.DB_ENV, "redis://h:1/0")
    assert profiles.database_setting("dev") == "redis://h:1/0"
