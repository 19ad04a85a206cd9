"""Hypothesis profiles: ``dev`` (fast), ``ci`` (the test session), ``regression`` (long runs).

Select one with ``CROSSCHECK_PROFILE`` or pytest's ``--hypothesis-profile``.

The example database (where hypothesis keeps every failing example it found and
replays it first next time) is chosen by one setting, ``CROSSCHECK_DB``:

* unset: ``regression`` keeps ``.hypothesis/regression`` (relative to the working
  directory); ``dev`` and ``ci`` keep none;
* a path: a directory database there, e.g. on a filesystem that several machines share;
* ``redis://host:port[/db]`` (also ``rediss://``, ``unix://``): a Redis server, through
  ``hypothesis.extra.redis`` (needs the ``redis`` client). Hypothesis lets an entry
  expire when its test has not run for 8 days.

Naming a database turns it on for every profile, ``dev`` and ``ci`` included (a user
who names a database wants it). Hypothesis forbids a database together with
``derandomize``, so ``ci`` is then seeded per run instead of derandomized; the report
(``python -m crosscheck --seed N``) seeds every run itself either way.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

DB_ENV = "CROSSCHECK_DB"
REGRESSION_DB = os.path.join(".hypothesis", "regression")
_REDIS_SCHEMES = ("redis", "rediss", "unix")

_COMMON = dict(
    deadline=None,  # first calls include JAX compilation; speed is the bench's business
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


def db_setting() -> str | None:
    """``CROSSCHECK_DB`` as given, or None when unset or blank."""
    return os.environ.get(DB_ENV, "").strip() or None


def _is_url(setting: str) -> bool:
    return urlsplit(setting).scheme in _REDIS_SCHEMES


def example_database(setting: str) -> ExampleDatabase:
    """The database that a ``CROSSCHECK_DB`` value names (a directory or a Redis URL)."""
    if not _is_url(setting):
        return DirectoryBasedExampleDatabase(setting)
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError as e:
        raise ImportError(
            f"{DB_ENV}={describe(setting)} needs the redis client: pip install redis"
        ) from e
    # from_url connects lazily: an unreachable server fails at the first replay or save
    return RedisExampleDatabase(redis.Redis.from_url(setting))


def describe(setting: str | None) -> str | None:
    """A database setting as it may be printed and stored: a Redis URL without its
    password, a directory as an absolute path, None for no database."""
    if not setting:
        return None
    if not _is_url(setting):
        return os.path.abspath(setting)
    parts = urlsplit(setting)
    if parts.password is not None or parts.username:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}:***@{host}" if parts.password else f"{user}@{host}")
    return urlunsplit(parts)


def database_setting(profile: str, setting: str | None = None) -> str | None:
    """What the named profile stores examples in (a path or URL), or None when nothing.

    ``setting`` defaults to ``CROSSCHECK_DB``.
    """
    setting = setting if setting is not None else db_setting()
    if setting:
        return setting
    return REGRESSION_DB if profile == "regression" else None


def build_profiles(setting: str | None = None) -> dict[str, dict]:
    """The keyword arguments of each profile for a ``CROSSCHECK_DB`` value (None: unset)."""
    named = example_database(setting) if setting else None
    return {
        "dev": dict(max_examples=15, database=named, **_COMMON),
        # derandomize=True implies (and requires) database=None in hypothesis
        "ci": dict(max_examples=40, derandomize=named is None, database=named, **_COMMON),
        "regression": dict(
            max_examples=1000,
            database=named or DirectoryBasedExampleDatabase(REGRESSION_DB),
            **_COMMON,
        ),
    }


def register() -> dict[str, dict]:
    """(Re-)register the profiles from the current ``CROSSCHECK_DB``; done at import."""
    profiles = build_profiles(db_setting())
    for name, kwargs in profiles.items():
        settings.register_profile(name, **kwargs)
    return profiles


PROFILES = register()


def default_profile() -> str:
    return os.environ.get("CROSSCHECK_PROFILE") or ("ci" if os.environ.get("CI") else "dev")


def load(name: str | None = None) -> str:
    name = name or default_profile()
    settings.load_profile(name)
    return name
