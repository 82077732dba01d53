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
