"""Replica settings of a deployment: stored, resolved for the inference server, and every
bad value refused with an error naming the field, leaving the stored deployment as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from aiaas.deployments import DeploymentService
from aiaas.errors import InvalidArgument
from aiaas.formats import package_model
from aiaas.registry import Registry
from aiaas.store import Database, FileArtifactStore


@pytest.fixture
def deployments(migrated_database_url: str, home: Path) -> Iterator[DeploymentService]:
    x, y = load_iris(return_X_y=True)
    db = Database(migrated_database_url)
    db.upgrade()
    registry = Registry(db, FileArtifactStore(home / "artifacts"))
    registry.register_version("iris", package_model(LogisticRegression(max_iter=500).fit(x, y), x[:3]))
    try:
        yield DeploymentService(registry)
    finally:
        db.dispose()


def test_defaults_are_one_replica_and_given_values_reach_the_served_target(
    deployments: DeploymentService,
) -> None:
    plain = deployments.create("plain", model="iris")
    assert (plain.min_replicas, plain.max_replicas, plain.target_in_flight, plain.scale_down_delay_s) == (
        1,
        1,
        4,
        30.0,
    )
    deployments.create(
        "scaled", model="iris", min_replicas=0, max_replicas=3, target_in_flight=8, scale_down_delay_s=2.5
    )
    (target,) = [t for t in deployments.desired_state() if t.deployment == "scaled"]
    assert (target.min_replicas, target.max_replicas, target.target_in_flight, target.scale_down_delay_s) == (
        0,
        3,
        8,
        2.5,
    )
    # An update changes only what it gives.
    updated = deployments.update("scaled", max_replicas=5)
    assert (updated.min_replicas, updated.max_replicas, updated.target_in_flight) == (0, 5, 8)
    assert updated.serving_version == 1


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"min_replicas": -1}, "min_replicas"),
        ({"min_replicas": 65}, "min_replicas"),
        ({"min_replicas": 1.5}, "min_replicas"),
        ({"max_replicas": 0}, "max_replicas"),
        ({"max_replicas": True}, "max_replicas"),
        ({"target_in_flight": 0}, "target_in_flight"),
        ({"scale_down_delay_s": -1.0}, "scale_down_delay_s"),
        ({"scale_down_delay_s": float("nan")}, "scale_down_delay_s"),
        ({"min_replicas": 3, "max_replicas": 2}, "max_replicas"),
        ({"min_replicas": 3}, "max_replicas"),  # above the default (1) and the stored (2) max
    ],
)
def test_bad_replica_settings_are_refused_naming_the_field(
    deployments: DeploymentService, settings: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArgument, match=field) as created:
        deployments.create("bad", model="iris", **settings)
    assert created.value.details["field"] == field
    assert [d.name for d in deployments.list()] == []

    deployments.create("good", model="iris", max_replicas=2)
    with pytest.raises(InvalidArgument, match=field) as updated:
        deployments.update("good", **settings)
    assert updated.value.details["field"] == field
    kept = deployments.get("good")
    assert (kept.min_replicas, kept.max_replicas) == (1, 2)


def test_migration_0005_gives_existing_deployments_the_defaults_and_downgrades(
    database_url: str, home: Path
) -> None:
    from sqlalchemy import inspect, text

    from tests.serving.test_deployment_config import _downgrade_to, _upgrade_to

    x, y = load_iris(return_X_y=True)
    db = Database(database_url)
    try:
        _upgrade_to(db, "0002")
        assert "min_replicas" not in {c["name"] for c in inspect(db.engine).get_columns("deployments")}
        registry = Registry(db, FileArtifactStore(home / "artifacts"))
        db.upgrade()
        assert db.current_revision() == db.head_revision()
        registry.register_version("iris", package_model(LogisticRegression(max_iter=500).fit(x, y), x[:3]))
        deployments = DeploymentService(registry)
        deployments.create("old", model="iris")
        with db.engine.begin() as conn:  # a row as written before 0005: every new column NULL
            conn.execute(
                text(
                    "UPDATE deployments SET min_replicas = NULL, max_replicas = NULL, "
                    "target_in_flight = NULL, scale_down_delay_s = NULL"
                )
            )
        old = deployments.get("old")
        assert (old.min_replicas, old.max_replicas, old.target_in_flight, old.scale_down_delay_s) == (
            1,
            1,
            4,
            30.0,
        )
        deployments.delete("old")
        _downgrade_to(db, "0002")
        assert "scaling_events" not in inspect(db.engine).get_table_names()
        assert "min_replicas" not in {c["name"] for c in inspect(db.engine).get_columns("deployments")}
    finally:
        db.dispose()
