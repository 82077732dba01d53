"""The model pool in-process: reconciling, reuse of loaded models, load failures, DB errors."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from aiaas.deployments import DeploymentService
from aiaas.errors import Conflict, NotFound, ResourceExhausted, Unavailable
from aiaas.registry import Registry
from aiaas.serving import ServingStates
from aiaas.serving.pool import ModelPool
from aiaas.serving.routes import LoadedVersion
from aiaas.store import Database, FileArtifactStore, open_artifact_store
from aiaas.store.tables import ModelVersionRow
from tests._servers import wait_until
from tests.serving.conftest import IrisModel, corrupt_blob


@dataclass
class World:
    db: Database
    registry: Registry
    deployments: DeploymentService
    pool: ModelPool


def _run(loaded: LoadedVersion, inputs: dict[str, Any], outputs: list[str]) -> dict[str, Any]:
    """The version's outputs, through its runtime (as the dispatcher calls it)."""
    result, _ = asyncio.run(loaded.runtime.run(inputs, outputs, timeout_s=30))
    return result


@pytest.fixture
def world(home: Path, migrated_database_url: str) -> Iterator[World]:
    db = Database(migrated_database_url)
    db.upgrade()
    registry = Registry(db, open_artifact_store(str(home / "artifacts")))
    deployments = DeploymentService(registry)
    pool = ModelPool(deployments, interval_s=0.02)
    try:
        yield World(db, registry, deployments, pool)
    finally:
        pool.stop()
        db.dispose()


def test_pool_is_unavailable_before_its_first_reconcile(world: World) -> None:
    assert not world.pool.ready
    with pytest.raises(Unavailable, match="still loading"):
        world.pool.get("iris")


def test_reconcile_loads_targets_and_only_rebuilds_on_a_new_revision(
    world: World, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    model = iris_model(1.0)
    assert world.pool.reconcile_once()
    assert world.pool.ready
    assert world.pool.routes == {}
    with pytest.raises(NotFound, match="'iris'"):
        world.pool.get("iris")

    world.registry.register_version("iris", model.package)
    world.deployments.create("iris", model="iris")
    assert world.pool.reconcile_once()
    assert not world.pool.reconcile_once()  # nothing changed since

    loaded = world.pool.get("iris")
    assert (loaded.deployment, loaded.model, loaded.version) == ("iris", "iris", 1)
    out = _run(loaded, {"X": iris_x}, ["probabilities"])
    assert list(out) == ["probabilities"]
    np.testing.assert_allclose(out["probabilities"], model.proba(iris_x), rtol=1e-5, atol=1e-7)


def test_same_version_in_two_deployments_is_loaded_once(
    world: World, iris_model: Callable[[float], IrisModel]
) -> None:
    world.registry.register_version("iris", iris_model(1.0).package)
    world.deployments.create("a", model="iris", version=1)
    world.pool.reconcile_once()
    first = world.pool.get("a")
    world.deployments.create("b", model="iris", version=1)
    world.pool.reconcile_once()
    assert world.pool.get("b").runtime is first.runtime
    assert world.pool.get("a") is first


def test_corrupted_artifact_keeps_the_old_version_and_records_the_error(
    world: World, iris_model: Callable[[float], IrisModel]
) -> None:
    world.registry.register_version("iris", iris_model(1.0).package)
    bad = world.registry.register_version("iris", iris_model(0.01).package)
    world.registry.set_alias("iris", "production", 1)
    world.deployments.create("iris", model="iris", alias="production")
    world.pool.reconcile_once()
    old = world.pool.get("iris")

    corrupt_blob(world.registry, bad.artifact_digest)
    world.registry.set_alias("iris", "production", 2)
    world.pool.reconcile_once()

    assert world.pool.get("iris") is old
    assert "corrupted" in world.pool.errors["iris"]
    with pytest.raises(Unavailable, match="corrupted"):
        world.pool.get_version("iris", 2)

    # Rolling back clears the error; a new deployment of the broken version is unavailable.
    world.registry.set_alias("iris", "production", 1)
    world.deployments.create("broken", model="iris", version=2)
    world.pool.reconcile_once()
    assert "iris" not in world.pool.errors
    assert world.pool.get("iris").version == 1
    with pytest.raises(Unavailable, match=r"cannot load version 2 of model 'iris'.*corrupted"):
        world.pool.get("broken")


def test_missing_artifact_is_recorded(world: World, iris_model: Callable[[float], IrisModel]) -> None:
    version = world.registry.register_version("iris", iris_model(0.7).package)
    os.remove(world.registry.artifacts.path(version.artifact_digest))  # type: ignore[attr-defined]
    world.deployments.create("iris", model="iris")
    world.pool.reconcile_once()
    with pytest.raises(Unavailable, match="missing"):
        world.pool.get("iris")


def test_explicit_versions_load_on_demand_and_are_cached(
    world: World, iris_model: Callable[[float], IrisModel]
) -> None:
    world.registry.register_version("iris", iris_model(1.0).package)
    world.registry.register_version("iris", iris_model(0.01).package)
    world.deployments.create("iris", model="iris", version=2)
    world.pool.reconcile_once()

    assert world.pool.get_version("iris", 2) is world.pool.get("iris")
    pinned = world.pool.get_version("iris", 1)
    assert pinned.version == 1
    assert world.pool.get_version("iris", 1) is pinned
    with pytest.raises(NotFound, match="no version 9"):
        world.pool.get_version("iris", 9)
    with pytest.raises(NotFound, match="'ghost'"):
        world.pool.get_version("ghost", 1)

    # Re-pointing the deployment at version 1 reuses the model loaded on demand.
    world.deployments.update("iris", version=1)
    world.pool.reconcile_once()
    assert world.pool.get("iris").runtime is pinned.runtime


def test_database_errors_keep_the_routes_and_the_loop_recovers(
    world: World, migrated_database_url: str, iris_model: Callable[[float], IrisModel]
) -> None:
    if not migrated_database_url.startswith("sqlite"):
        pytest.skip("the server test covers a PostgreSQL outage")
    world.registry.register_version("iris", iris_model(1.0).package)
    world.deployments.create("iris", model="iris")
    world.pool.start()
    wait_until(lambda: "iris" in world.pool.routes, timeout=30, what="the pool to load 'iris'")
    served = world.pool.get("iris")

    # Move the DB file away: new connections find an empty database with no tables.
    db_file = Path(migrated_database_url.removeprefix("sqlite:///"))
    moved = db_file.with_name("moved.db")
    world.pool.stop()
    world.db.engine.dispose()
    os.rename(db_file, moved)
    with pytest.raises(Unavailable, match="state_revision"):
        world.pool.reconcile_once()
    assert world.pool.get("iris") is served

    world.db.engine.dispose()
    os.replace(moved, db_file)
    world.pool.start()
    world.deployments.create("again", model="iris")
    wait_until(lambda: "again" in world.pool.routes, timeout=30, what="the pool to pick up 'again'")
    assert world.pool.get("again").runtime is served.runtime


# -- versions addressed by number: never another model's, bounded, refused when gone ----------


def test_a_deleted_version_is_refused_and_its_number_never_answers_for_another_model(
    world: World, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    world.registry.register_version("iris", iris_model(1.0).package)
    world.registry.register_version("iris", iris_model(0.01).package)
    third = world.registry.register_version("iris", iris_model(0.1).package)
    world.deployments.create("iris", model="iris", version=1)
    world.pool.reconcile_once()
    pinned = world.pool.get_version("iris", 3)
    assert pinned.artifact_digest == third.artifact_digest

    world.registry.delete_version("iris", 3)
    replacement = world.registry.register_version("iris", iris_model(3.0).package)
    assert replacement.version == 4
    with pytest.raises(NotFound, match="version 3 of model 'iris' was deleted"):
        world.pool.get_version("iris", 3)
    served = world.pool.get_version("iris", 4)
    assert served.artifact_digest == replacement.artifact_digest
    out = _run(served, {"X": iris_x}, ["probabilities"])["probabilities"]
    np.testing.assert_allclose(out, iris_model(3.0).proba(iris_x), rtol=1e-5, atol=1e-6)


def test_an_archived_version_is_refused_naming_its_state(
    world: World, iris_model: Callable[[float], IrisModel]
) -> None:
    world.registry.register_version("iris", iris_model(1.0).package)
    world.registry.register_version("iris", iris_model(0.01).package)
    world.deployments.create("iris", model="iris", version=1)
    world.pool.reconcile_once()
    world.pool.get_version("iris", 2)
    world.registry.archive_version("iris", 2)
    with pytest.raises(Conflict, match="version 2 of model 'iris' is archived") as info:
        world.pool.get_version("iris", 2)
    assert info.value.details["status"] == "archived"


def test_loaded_versions_are_keyed_by_artifact_digest(
    world: World, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    """A number that came to mean another artifact (as the old max+1 numbering allowed) is
    served with that artifact, never the one loaded for the number before."""
    world.registry.register_version("iris", iris_model(1.0).package)
    world.registry.register_version("iris", iris_model(0.01).package)
    other = world.registry.register_version("other", iris_model(3.0).package)
    world.deployments.create("iris", model="iris", version=1)
    world.pool.reconcile_once()
    before = world.pool.get_version("iris", 2)
    with world.db.transaction() as s:
        row = s.scalar(select(ModelVersionRow).where(ModelVersionRow.version == 2))
        assert row is not None
        row.artifact_digest = other.artifact_digest
    after = world.pool.get_version("iris", 2)
    assert after is not before
    assert after.artifact_digest == other.artifact_digest
    out = _run(after, {"X": iris_x}, ["probabilities"])["probabilities"]
    np.testing.assert_allclose(out, iris_model(3.0).proba(iris_x), rtol=1e-5, atol=1e-6)


def test_on_demand_versions_are_kept_in_a_bounded_lru(
    home: Path, migrated_database_url: str, iris_model: Callable[[float], IrisModel]
) -> None:
    db = Database(migrated_database_url)
    db.upgrade()
    registry = Registry(db, open_artifact_store(str(home / "artifacts")))
    deployments = DeploymentService(registry)
    pool = ModelPool(deployments, max_pinned_versions=2)
    try:
        for c in (1.0, 0.01, 0.1, 3.0):
            registry.register_version("iris", iris_model(c).package)
        deployments.create("iris", model="iris", version=1)
        pool.reconcile_once()
        two = pool.get_version("iris", 2)
        assert pool.get_version("iris", 3) is not two
        assert pool.get_version("iris", 2) is two  # used last: 3 is now the oldest
        pool.get_version("iris", 4)  # evicts 3
        assert pool.get_version("iris", 2) is two
        assert pool.get_version("iris", 3).version == 3  # loaded again
        assert pool.get_version("iris", 4) is not None
        assert pool.get_version("iris", 2) is not two  # evicted by 3 and 4
    finally:
        db.dispose()


class _SlowStore(FileArtifactStore):
    """An artifact store whose reads of one blob wait until released."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.slow: str | None = None
        self.reading = threading.Event()
        self.release = threading.Event()

    def get(self, digest: str) -> bytes:
        if digest == self.slow:
            self.reading.set()
            assert self.release.wait(60)
        return super().get(digest)


def test_loads_past_the_limit_are_refused_with_429_and_one_version_is_loaded_once(
    home: Path, migrated_database_url: str, iris_model: Callable[[float], IrisModel]
) -> None:
    db = Database(migrated_database_url)
    db.upgrade()
    store = _SlowStore(home / "artifacts")
    registry = Registry(db, store)
    deployments = DeploymentService(registry)
    pool = ModelPool(deployments, max_pinned_versions=1)
    try:
        for c in (1.0, 0.01, 0.1):
            registry.register_version("iris", iris_model(c).package)
        deployments.create("iris", model="iris", version=1)
        pool.reconcile_once()
        store.slow = registry.get_version("iris", 2).artifact_digest
        results: list[Any] = []
        first = threading.Thread(target=lambda: results.append(pool.get_version("iris", 2)))
        second = threading.Thread(target=lambda: results.append(pool.get_version("iris", 2)))
        first.start()
        assert store.reading.wait(60)
        second.start()
        # The one slot is taken by a load in flight: another version is refused, not loaded.
        with pytest.raises(ResourceExhausted, match=r"all 1 on-demand slot\(s\) are busy") as info:
            pool.get_version("iris", 3)
        assert info.value.details["limit"] == 1
        store.release.set()
        first.join(60)
        second.join(60)
        assert len(results) == 2 and results[0] is results[1]
        assert pool.get_version("iris", 3).version == 3  # the slot is free again (2 is idle)
    finally:
        store.release.set()
        db.dispose()


def test_a_pinned_version_keeps_answering_while_the_database_is_down(
    world: World, migrated_database_url: str, iris_model: Callable[[float], IrisModel]
) -> None:
    if not migrated_database_url.startswith("sqlite"):
        pytest.skip("moving the database file away is how this test takes SQLite down")
    for c in (1.0, 0.01, 0.1):
        world.registry.register_version("iris", iris_model(c).package)
    world.deployments.create("iris", model="iris", version=1)
    world.pool.reconcile_once()
    pinned = world.pool.get_version("iris", 2)

    db_file = Path(migrated_database_url.removeprefix("sqlite:///"))
    world.db.engine.dispose()
    os.rename(db_file, db_file.with_name("moved.db"))
    try:
        assert world.pool.get_version("iris", 2) is pinned
        with pytest.raises(Unavailable, match="cannot resolve version 3 of deployment 'iris'"):
            world.pool.get_version("iris", 3)
    finally:
        world.db.engine.dispose()
        os.replace(db_file.with_name("moved.db"), db_file)


def test_what_is_really_served_is_published_for_the_control_plane(
    world: World, iris_model: Callable[[float], IrisModel]
) -> None:
    world.registry.register_version("iris", iris_model(1.0).package)
    bad = world.registry.register_version("iris", iris_model(0.01).package)
    world.deployments.create("iris", model="iris", version=1)
    world.pool.reconcile_once()
    states = ServingStates(world.db)
    state = states.get("iris")
    assert state is not None
    assert (state.desired_version, state.serving_version, state.error) == (1, 1, None)
    assert state.revision == world.db.revision()

    corrupt_blob(world.registry, bad.artifact_digest)
    world.deployments.update("iris", version=2)
    world.pool.reconcile_once()
    state = states.get("iris")
    assert state is not None
    assert (state.desired_version, state.serving_version) == (2, 1)
    assert state.error is not None and "cannot load version 2" in state.error and "corrupted" in state.error

    world.deployments.delete("iris")
    world.pool.reconcile_once()
    assert states.get("iris") is None
