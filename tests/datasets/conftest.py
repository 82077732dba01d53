"""A dataset service on a fresh database (SQLite and PostgreSQL) and artifact folder per test."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiaas.datasets import DatasetService
from aiaas.store import Database, FileArtifactStore

#: A small labelled table: numeric and bool features, a string label, a gap in "width".
CSV = (
    b"length,width,flag,species\n"
    b"1.5,0.2,true,a\n2.5,,false,b\n3.0,0.4,true,a\n4.25,0.5,false,b\n5.0,0.6,true,c\n"
    b"6.5,0.7,false,a\n7.0,0.8,true,b\n8.5,0.9,false,c\n9.0,1.0,true,a\n10.5,1.1,false,b\n"
)


def parquet_bytes(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


@pytest.fixture
def artifacts_root(home: Path) -> Path:
    return home / "artifacts"


@pytest.fixture
def datasets(migrated_database_url: str, artifacts_root: Path) -> Iterator[DatasetService]:
    db = Database(migrated_database_url)
    db.upgrade()
    yield DatasetService(db, FileArtifactStore(artifacts_root))
    db.dispose()


def stored_blobs(root: Path) -> list[Path]:
    """Every blob in the artifact store (what an upload wrote)."""
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
