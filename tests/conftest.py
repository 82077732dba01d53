"""Shared fixtures: a private AIAAS_HOME, databases (SQLite and, when reachable, PostgreSQL),
and real server processes on free ports; and the two test tiers (see :data:`TIERS`)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Test processes share two cores (pytest-xdist workers, each with its servers, replicas and
# jobs): a library's default of one busy-waiting OpenMP thread per core in every one of those
# processes (PyTorch, OpenBLAS) spins on cores another process needs. Set before anything
# imports them; every process a test starts inherits it, and code that asks for a number of
# threads (a job's ``threads``, a replica's intra-op threads) still gets what it asks for.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

from tests._auth import ADMIN_KEY, write_admin_key
from tests._servers import ServerProcess, free_port, spawn
from tests._tiers import PROCESS, message, no_processes, tier_of

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
def fresh_database(kind: str, home: Path, *, migrated: bool = False) -> Iterator[str]:
    """A fresh database URL: a SQLite file in ``home``, or a new PostgreSQL database dropped
    afterwards (skips the test, saying why, when PostgreSQL is not reachable).

    Empty, or with ``migrated`` at the head revision: a copy of the session's migrated
    template (:class:`_Templates`), which costs a file copy or a ``CREATE DATABASE ...
    TEMPLATE`` instead of running every migration again.
    """
    if kind == "sqlite":
        path = home / "aiaas.db"
        if migrated:
            shutil.copyfile(_templates.sqlite(), path)
        yield f"sqlite:///{path}"
        return
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"aiaas_test_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{_templates.postgresql()}"' if migrated else ""
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{template}')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_url(name: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


class _Templates:
    """One migrated database per kind and test session, made on first use and copied for each
    test that asks for a migrated one. Migrating costs Alembic's import and every migration
    (a third of a second on SQLite, more on PostgreSQL); a copy costs a few milliseconds."""

    def __init__(self) -> None:
        self._folder: Path | None = None
        self._sqlite: Path | None = None
        self._postgresql: str | None = None

    def sqlite(self) -> Path:
        if self._sqlite is None:
            from aiaas.store import Database

            self._folder = Path(tempfile.mkdtemp(prefix="aiaas-test-template-"))
            path = self._folder / "template.db"
            db = Database(f"sqlite:///{path}")
            db.upgrade()
            db.dispose()  # the last connection's close checkpoints the WAL into the file
            assert (
                not path.with_name(path.name + "-wal").exists()
                or not path.with_name(path.name + "-wal").stat().st_size
            ), "the template's WAL was not checkpointed"
            self._sqlite = path
        return self._sqlite

    def postgresql(self) -> str:
        if self._postgresql is None:
            import psycopg

            from aiaas.store import Database

            name = f"aiaas_test_template_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            db = Database(_pg_url(name))
            db.upgrade()
            db.dispose()  # CREATE DATABASE ... TEMPLATE needs the template without sessions
            self._postgresql = name
        return self._postgresql

    def drop(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        if self._postgresql is not None:
            import psycopg

            with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self._postgresql}" WITH (FORCE)')
        self.__init__()  # type: ignore[misc]


_templates = _Templates()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _templates.drop()


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

#: Where tests run on SQLite only. The SQL itself is the store's business, and the tests of the
#: domains that hold it (store, registry, datasets, the job queue, the deployment service) run on
#: both databases; tests that drive real servers over HTTP check behaviour above it, so they run
#: on SQLite, the default install, except the modules below, which keep both (the lifecycle end
#: to end, what must never be served, the reconciler's polling, the outlier scorer's reads of
#: references). ``AIAAS_TEST_ALL_DATABASES=1`` runs every test on both, as a longer check by hand.
ONE_DATABASE_FOLDERS = ("tests/serving/", "tests/e2e/")
BOTH_DATABASES_MODULES = frozenset(
    {
        "tests/e2e/test_lifecycle.py",
        "tests/e2e/test_trust.py",
        "tests/serving/test_deployments.py",
        "tests/serving/test_deployment_config.py",
        "tests/serving/test_outlier_scorer.py",
        "tests/serving/test_pool.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier (``inprocess`` or ``process``, from its path: see
    ``tests/_tiers.py``; ``e2e`` too under tests/e2e/), and deselect the PostgreSQL runs of
    :data:`ONE_DATABASE_FOLDERS` (see there why)."""
    for item in items:
        tier = tier_of(item.nodeid)
        item.add_marker(tier)
        if item.nodeid.startswith("tests/e2e/"):
            item.add_marker("e2e")
    if os.environ.get("AIAAS_TEST_ALL_DATABASES") == "1":
        return
    keep, dropped = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        on_postgres = params is not None and "postgresql" in (
            params.params.get("database_url"),
            params.params.get("platform"),
            params.params.get("serving_database_url"),
            params.params.get("migrated_database_url"),
        )
        module = item.nodeid.split("::", 1)[0]
        if on_postgres and module.startswith(ONE_DATABASE_FOLDERS) and module not in BOTH_DATABASES_MODULES:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _in_tier(item: pytest.Item) -> Generator[None, Any, Any]:
    """Run one phase of an in-process test with process starts refused (``tests/_tiers.py``);
    fail it when it tried, even if the code under test swallowed the refusal."""
    if tier_of(item.nodeid) == PROCESS:
        return (yield)
    with no_processes(item.nodeid) as tried:
        result = yield
    if tried:
        pytest.fail(message(item.nodeid, tried[0]), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _in_tier(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _in_tier(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    return (yield from _in_tier(item))


def pytest_report_header(config: pytest.Config) -> str:
    if os.environ.get("AIAAS_TEST_ALL_DATABASES") == "1":
        return "databases: every test on SQLite and PostgreSQL (AIAAS_TEST_ALL_DATABASES=1)"
    return "databases: server tests on SQLite, store-level tests on both (AIAAS_TEST_ALL_DATABASES=1: both)"


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, home: Path) -> Iterator[str]:
    """A fresh, empty database for one test, on SQLite and on PostgreSQL."""
    with fresh_database(request.param, home) as url:
        yield url


@pytest.fixture(params=DATABASES)
def migrated_database_url(request: pytest.FixtureRequest, home: Path) -> Iterator[str]:
    """A fresh database at the head revision for one test, on SQLite and on PostgreSQL: a copy
    of the session's migrated template, for tests of what runs on the schema, not of the
    migrations (those take ``database_url``)."""
    with fresh_database(request.param, home, migrated=True) as url:
        yield url


@pytest.fixture(autouse=True, scope="session")
def _admin_key_in_environment() -> Iterator[None]:
    """SDK clients and in-process CLI runs of the tests send the test admin key (``tests/_auth.py``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIAAS_API_KEY", ADMIN_KEY)
        yield


def server_environment(home: Path, database_url: str) -> dict[str, str]:
    """Environment for server subprocesses: this home and database, no inherited AIAAS_*, and
    the test admin key in the home (``tests/_auth.py``), for the servers and the CLI."""
    write_admin_key(home)
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
