"""Shared fixtures: a private AIAAS_HOME, databases (SQLite and, when reachable, PostgreSQL),
and real server processes on free ports."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests._servers import ServerProcess, free_port, spawn

__all__ = ["ServerProcess", "free_port", "spawn"]

PG_ADMIN_URL = os.environ.get("AIAAS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a pinned dependency
        return f"psycopg not importable: {exc}"
    try:
        with psycopg.connect(_libpq(PG_ADMIN_URL), connect_timeout=2):
            return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).strip().splitlines()[0]}"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty AIAAS_HOME for one test."""
    path = tmp_path / "aiaas-home"
    path.mkdir()
    return path


@contextmanager
def fresh_database(kind: str, home: Path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file in ``home``, or a new PostgreSQL database
    dropped afterwards (skips the test, saying why, when PostgreSQL is not reachable)."""
    if kind == "sqlite":
        yield f"sqlite:///{home / 'aiaas.db'}"
        return
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"aiaas_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

#: Where tests run on SQLite only. The SQL itself is the store's business, and the tests of the
#: domains that hold it (store, registry, datasets, the job queue, the deployment service) run on
#: both databases; tests that drive real servers over HTTP check behaviour above it, so they run
#: on SQLite, the default install, except the modules below, which keep both (the lifecycle end
#: to end, what must never be served, the reconciler's polling). ``AIAAS_TEST_ALL_DATABASES=1``
#: runs every test on both, as a longer check by hand.
ONE_DATABASE_FOLDERS = ("tests/serving/", "tests/e2e/")
BOTH_DATABASES_MODULES = frozenset(
    {
        "tests/e2e/test_lifecycle.py",
        "tests/e2e/test_trust.py",
        "tests/serving/test_deployments.py",
        "tests/serving/test_deployment_config.py",
        "tests/serving/test_pool.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the PostgreSQL runs of :data:`ONE_DATABASE_FOLDERS` (see there why)."""
    if os.environ.get("AIAAS_TEST_ALL_DATABASES") == "1":
        return
    keep, dropped = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        on_postgres = params is not None and "postgresql" in (
            params.params.get("database_url"),
            params.params.get("platform"),
            params.params.get("serving_database_url"),
        )
        module = item.nodeid.split("::", 1)[0]
        if on_postgres and module.startswith(ONE_DATABASE_FOLDERS) and module not in BOTH_DATABASES_MODULES:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> str:
    if os.environ.get("AIAAS_TEST_ALL_DATABASES") == "1":
        return "databases: every test on SQLite and PostgreSQL (AIAAS_TEST_ALL_DATABASES=1)"
    return "databases: server tests on SQLite, store-level tests on both (AIAAS_TEST_ALL_DATABASES=1: both)"


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, home: Path) -> Iterator[str]:
    """A fresh, empty database for one test, on SQLite and on PostgreSQL."""
    with fresh_database(request.param, home) as url:
        yield url


def server_environment(home: Path, database_url: str) -> dict[str, str]:
    """Environment for server subprocesses: this home and database, no inherited AIAAS_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_")}
    env.update(
        AIAAS_HOME=str(home),
        AIAAS_DATABASE_URL=database_url,
        AIAAS_RECONCILE_INTERVAL_S="0.05",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def server_env(home: Path, database_url: str) -> dict[str, str]:
    """Environment for server subprocesses: this test's home and database, nothing inherited."""
    return server_environment(home, database_url)
