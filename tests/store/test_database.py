"""The metadata database: migrations, WAL mode, transactions and the serving revision."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from aiaas.errors import InvalidArgument, Unavailable
from aiaas.store import Database
from aiaas.store.tables import Base, ModelRow, ModelVersionCounterRow, StateRevisionRow, utcnow

TABLES = {"models", "model_versions", "aliases", "deployments", "state_revision", "alembic_version"}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


def _revision_rows(database: Database) -> int:
    with database.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(StateRevisionRow)) or 0)


def test_upgrade_creates_the_schema(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert database.current_revision() is None
        database.upgrade()
        assert set(inspect(database.engine).get_table_names()) >= TABLES
        assert database.revision() == 0
    finally:
        database.dispose()


def test_current_revision_is_head_after_upgrade(db: Database) -> None:
    assert db.head_revision() is not None
    assert db.current_revision() == db.head_revision()


def test_upgrade_twice_is_a_no_op(db: Database) -> None:
    with db.transaction() as s:
        db.bump_revision(s)
    db.upgrade()
    assert db.current_revision() == db.head_revision()
    assert _revision_rows(db) == 1
    assert db.revision() == 1


def test_upgrade_from_two_threads_at_once(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(2)]
    start = threading.Barrier(len(databases))
    failures: list[BaseException] = []

    def migrate(database: Database) -> None:
        start.wait()
        try:
            database.upgrade()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=migrate, args=(d,)) for d in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert failures == []
        assert databases[0].current_revision() == databases[0].head_revision()
        assert _revision_rows(databases[0]) == 1
    finally:
        for d in databases:
            d.dispose()


def test_upgrade_from_two_processes_at_once(database_url: str) -> None:
    code = (
        "import sys\n"
        "from aiaas.store import Database\n"
        "db = Database(sys.argv[1])\n"
        "db.upgrade()\n"
        "print(db.current_revision())\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    database = Database(database_url)
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == database.head_revision()
    try:
        assert _revision_rows(database) == 1
    finally:
        database.dispose()


def test_orm_tables_match_the_migrations(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode(home: Path) -> None:
    database = Database(f"sqlite:///{home / 'nested' / 'aiaas.db'}")
    try:
        database.upgrade()
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (home / "nested" / "aiaas.db").is_file()
    finally:
        database.dispose()


def test_revision_increases_after_a_committed_bump(db: Database) -> None:
    before = db.revision()
    with db.transaction() as s:
        db.bump_revision(s)
    assert db.revision() == before + 1
    with db.transaction() as s:
        db.bump_revision(s)
    assert db.revision() == before + 2


def test_revision_unchanged_after_a_rolled_back_bump(db: Database) -> None:
    before = db.revision()
    with pytest.raises(RuntimeError, match="abort"), db.transaction() as s:
        db.bump_revision(s)
        raise RuntimeError("abort")
    assert db.revision() == before


def test_exception_inside_a_transaction_rolls_back(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.transaction() as s:
        s.add(ModelRow(name="half-done", description="", tags={}))
        s.flush()
        raise Boom
    with db.transaction() as s:
        assert s.scalars(select(ModelRow.name)).all() == []


def test_committed_transaction_is_visible_to_a_second_connection(db: Database, database_url: str) -> None:
    with db.transaction() as s:
        s.add(ModelRow(name="kept", description="", tags={"k": "v"}))
    other = Database(database_url)
    try:
        with other.transaction() as s:
            row = s.scalar(select(ModelRow).where(ModelRow.name == "kept"))
            assert row is not None
            assert row.tags == {"k": "v"}
    finally:
        other.dispose()


def test_timestamps_come_back_timezone_aware_in_utc(db: Database) -> None:
    written = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    with db.transaction() as s:
        s.add(ModelRow(name="m", description="", tags={}, created_at=written, updated_at=utcnow()))
    with db.transaction() as s:
        row = s.scalar(select(ModelRow).where(ModelRow.name == "m"))
        assert row is not None
        assert row.created_at == written
        assert row.created_at.utcoffset() == timedelta(0)
        assert row.updated_at.tzinfo is not None


def test_postgresql_url_gets_the_psycopg_driver() -> None:
    database = Database("postgresql://user@127.0.0.1:5432/x")
    try:
        assert database.url.drivername == "postgresql+psycopg"
        assert not database.is_sqlite
    finally:
        database.dispose()


def test_malformed_url_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="AIAAS_DATABASE_URL") as info:
        Database("not a url")
    assert info.value.details["field"] == "database_url"


def test_unreachable_database_is_unavailable() -> None:
    # Port 1 on localhost refuses at once: no server, no wait.
    database = Database("postgresql://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises(Unavailable, match="metadata database unavailable") as info:
            database.revision()
        assert info.value.code == "UNAVAILABLE"
    finally:
        database.dispose()


def test_the_fast_check_reads_the_same_head_as_alembic(db: Database) -> None:
    from aiaas.store.database import _linear_head

    assert _linear_head() == db.head_revision()
    assert db.is_current()


def test_a_schema_behind_the_head_is_not_current_and_upgrade_brings_it_there(database_url: str) -> None:

    database = Database(database_url)
    try:
        assert not database.is_current(), "an empty database is behind"
        database.upgrade()
        database.migrate("0001", down=True)
        assert database.current_revision() == "0001"
        assert not database.is_current()
        database.upgrade()
        assert database.current_revision() == database.head_revision()
        assert database.is_current()
    finally:
        database.dispose()


def test_starting_on_a_current_schema_does_not_load_alembic(db: Database, database_url: str) -> None:
    """What keeps server start-up quick: Alembic is imported only when there is a migration."""
    code = (
        "import sys\n"
        "from aiaas.store import Database\n"
        "Database(sys.argv[1]).upgrade()\n"
        "print(sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, database_url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_migration_0006_starts_each_counter_at_the_models_highest_version(database_url: str) -> None:
    """Existing models keep numbering after their highest version, not from 1."""

    database = Database(database_url)
    try:
        database.upgrade()
        database.migrate("0005", down=True)
        with database.engine.begin() as conn:
            now = utcnow()
            conn.execute(
                text(
                    "INSERT INTO models (id, name, description, tags, created_at, updated_at) "
                    "VALUES (7, 'm', '', '{}', :t, :t)"
                ),
                {"t": now},
            )
            for number in (1, 4):
                conn.execute(
                    text(
                        "INSERT INTO model_versions (model_id, version, status, flavor, artifact_digest, "
                        "artifact_size_bytes, signature, example, metrics, params, description, source, "
                        "created_at) "
                        "VALUES (7, :n, 'ready', 'onnx', :d, 1, '{}', '{}', '{}', '{}', '', '', :t)"
                    ),
                    {"n": number, "d": "0" * 64, "t": now},
                )
        database.upgrade()
        with database.transaction() as s:
            assert s.get(ModelVersionCounterRow, ("default", "m")).last_version == 4  # type: ignore[union-attr]
    finally:
        database.dispose()


def test_nan_and_infinity_in_json_columns_are_stored_as_null(db: Database) -> None:
    """Not JSON: PostgreSQL refused the whole row (a 500), SQLite kept unreadable text."""
    with db.transaction() as s:
        s.add(ModelRow(name="nan", description="", tags={"loss": float("nan"), "r": [float("inf"), 1.5]}))
    with db.transaction() as s:
        row = s.scalar(select(ModelRow).where(ModelRow.name == "nan"))
        assert row is not None
        assert row.tags == {"loss": None, "r": [None, 1.5]}
