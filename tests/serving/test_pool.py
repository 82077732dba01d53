"""The model pool in-process: reconciling, reuse of loaded models, load failures, DB errors."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aiaas.errors import NotFound, Unavailable
from aiaas.registry import Registry
from aiaas.serving import DeploymentService
from aiaas.serving.pool import ModelPool
from aiaas.store import Database, open_artifact_store
from tests._servers import wait_until
from tests.serving.conftest import IrisModel, corrupt_blob


@dataclass
class World:
    db: Database
    registry: Registry
    deployments: DeploymentService
    pool: ModelPool


@pytest.fixture
def world(home: Path, database_url: str) -> Iterator[World]:
    db = Database(database_url)
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
    out = loaded.run({"X": iris_x}, ["probabilities"])
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
    world: World, database_url: str, iris_model: Callable[[float], IrisModel]
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the server test covers a PostgreSQL outage")
    world.registry.register_version("iris", iris_model(1.0).package)
    world.deployments.create("iris", model="iris")
    world.pool.start()
    wait_until(lambda: "iris" in world.pool.routes, timeout=30, what="the pool to load 'iris'")
    served = world.pool.get("iris")

    # Move the DB file away: new connections find an empty database with no tables.
    db_file = Path(database_url.removeprefix("sqlite:///"))
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
