"""Dataset files under encryption at rest: stored sealed, loaded back the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiaas.datasets import DatasetService
from aiaas.errors import EncryptionKeyError
from aiaas.store import Database, EncryptionKey, FileArtifactStore, Keyring
from tests.datasets.conftest import CSV, stored_blobs


def test_a_dataset_file_and_its_split_are_stored_sealed_and_load_the_same(
    migrated_database_url: str, artifacts_root: Path
) -> None:
    key = EncryptionKey.generate()
    db = Database(migrated_database_url)
    db.upgrade()
    try:
        datasets = DatasetService(db, FileArtifactStore(artifacts_root, Keyring(key)))
        version = datasets.create_version("plants", CSV, filename="plants.csv", target="species")
        blobs = stored_blobs(artifacts_root)
        assert len(blobs) == 2  # the file and its split's indices
        for blob in blobs:
            on_disk = blob.read_bytes()
            assert b"length,width,flag,species" not in on_disk and b"1.5,0.2,true,a" not in on_disk
        assert datasets.load_data(version) == CSV
        loaded = datasets.load("plants")
        assert loaded.version.version == 1

        unkeyed = DatasetService(db, FileArtifactStore(artifacts_root))
        with pytest.raises(EncryptionKeyError, match="AIAAS_ENCRYPTION_KEY"):
            unkeyed.load_data(version)
    finally:
        db.dispose()
