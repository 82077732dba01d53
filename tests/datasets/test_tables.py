"""Migration 0003: it adds the dataset tables, and its downgrade removes them cleanly."""

from __future__ import annotations

from sqlalchemy import inspect

from aiaas.store import Database

DATASET_TABLES = {"datasets", "dataset_versions"}


def _migrate(db: Database, to: str, *, down: bool = False) -> None:
    db.migrate(to, down=down)


def test_migration_0003_upgrades_and_downgrades(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.upgrade()
        assert db.current_revision() == db.head_revision()
        assert set(inspect(db.engine).get_table_names()) >= DATASET_TABLES
        _migrate(db, "0002", down=True)
        assert db.current_revision() == "0002"
        assert not DATASET_TABLES & set(inspect(db.engine).get_table_names())
        assert "models" in inspect(db.engine).get_table_names()
        _migrate(db, "head")
        assert set(inspect(db.engine).get_table_names()) >= DATASET_TABLES
    finally:
        db.dispose()
