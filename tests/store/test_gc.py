"""Garbage collection of blobs: what no row refers to goes, everything referenced stays.

The references are made by the real services (registry, datasets, training jobs), so a
digest column or JSON key that collection overlooked shows up here as a blob that could
not be read back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from aiaas.datasets import DatasetService
from aiaas.formats import package_model
from aiaas.registry import Registry
from aiaas.store import Database, FileArtifactStore, collect_garbage, referenced_digests
from aiaas.training import JobStore, NewJob

_CSV = b"a,b,label\n" + b"".join(f"{i},{i * 2},{'xy'[i % 2]}\n".encode() for i in range(40))


@dataclass
class World:
    db: Database
    store: FileArtifactStore
    registry: Registry
    datasets: DatasetService
    jobs: JobStore


@pytest.fixture
def world(migrated_database_url: str, home: Path) -> Iterator[World]:
    db = Database(migrated_database_url)
    db.upgrade()
    store = FileArtifactStore(home / "artifacts")
    try:
        yield World(db, store, Registry(db, store), DatasetService(db, store), JobStore(db, store))
    finally:
        db.dispose()


def _age(store: FileArtifactStore, seconds: float) -> None:
    """Make every stored blob look ``seconds`` old."""
    then = time.time() - seconds
    for blob in store.blobs():
        os.utime(store.path(blob.digest), (then, then))


def test_only_unreferenced_old_blobs_are_collected(world: World) -> None:
    x, y = load_iris(return_X_y=True)
    kept_model = world.registry.register_version(
        "m", package_model(LogisticRegression(max_iter=300).fit(x, y), x[:2])
    )
    doomed = world.registry.register_version(
        "m", package_model(LogisticRegression(C=0.01, max_iter=300).fit(x, y), x[:2])
    )
    state = world.store.put(b"trained weights")  # what a training job keeps for warm starts
    trained = world.registry.register_version(
        "t", package_model(LogisticRegression(max_iter=300).fit(x, y), x[:2]), lineage={"state_digest": state}
    )
    dataset = world.datasets.create_version("d", _CSV, filename="d.csv", target="label")
    job = world.jobs.create(
        NewJob(spec={"x": 1}, dataset="d", dataset_version=1, register_as="t", workers=1, epochs=1)
    )
    world.jobs.save_checkpoint(job.id, 1, b"checkpoint after epoch 1")
    orphan = world.store.put(b"uploaded, then the registration failed")
    world.registry.delete_version("m", doomed.version)
    _age(world.store, 7200)

    report = collect_garbage(world.db, world.store, grace_s=3600)

    assert sorted(b.digest for b in report.deleted) == sorted([doomed.artifact_digest, orphan])
    assert report.freed_bytes == doomed.artifact_size_bytes + len(b"uploaded, then the registration failed")
    # Everything a row refers to still reads back, verified.
    assert world.registry.load_artifact(world.registry.get_version("m", kept_model.version))
    assert world.registry.load_artifact(world.registry.get_version("t", trained.version))
    assert world.store.get(state) == b"trained weights"
    assert world.datasets.load("d", dataset.version).row_count == 40
    assert world.jobs.checkpoint(world.jobs.get(job.id)) == b"checkpoint after epoch 1"
    # A second run finds nothing left to do.
    assert collect_garbage(world.db, world.store, grace_s=0).deleted == []


def test_every_digest_column_counts_as_a_reference(world: World) -> None:
    dataset = world.datasets.create_version("d", _CSV, filename="d.csv", target="label")
    job = world.jobs.create(
        NewJob(spec={"x": 1}, dataset="d", dataset_version=1, register_as="t", workers=1, epochs=1)
    )
    world.jobs.save_checkpoint(job.id, 1, b"ckpt")
    refs = referenced_digests(world.db)
    assert dataset.artifact_digest in refs
    assert dataset.split["indices_digest"] in refs
    assert world.jobs.get(job.id).checkpoint_digest in refs


def test_young_unreferenced_blobs_are_spared(world: World) -> None:
    """A registration in flight has stored its blob but not yet committed its row."""
    in_flight = world.store.put(b"blob of a registration in flight")
    report = collect_garbage(world.db, world.store, grace_s=3600)
    assert (report.deleted, report.young) == ([], 1)
    assert world.store.exists(in_flight)


def test_storing_an_old_unreferenced_blob_again_makes_it_young(world: World) -> None:
    """Re-registering the bytes of a long-deleted version must not lose them to collection."""
    digest = world.store.put(b"same bytes as a deleted version")
    _age(world.store, 7200)
    world.store.put(b"same bytes as a deleted version")  # the new registration, not committed yet
    assert collect_garbage(world.db, world.store, grace_s=3600).deleted == []
    assert world.store.exists(digest)


def test_dry_run_deletes_nothing(world: World) -> None:
    orphan = world.store.put(b"orphan")
    _age(world.store, 7200)
    report = collect_garbage(world.db, world.store, grace_s=60, dry_run=True)
    assert [b.digest for b in report.deleted] == [orphan]
    assert world.store.exists(orphan)


def test_negative_grace_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="grace_s must be >= 0"):
        collect_garbage(world.db, world.store, grace_s=-1)


def test_the_cli_default_grace_period_is_the_store_default() -> None:
    from aiaas.cli.gc import _DEFAULT_GRACE_S
    from aiaas.store import DEFAULT_GC_GRACE_S

    assert _DEFAULT_GRACE_S == DEFAULT_GC_GRACE_S
