"""Deployments' serving configuration: traffic split, shadow, batching, queue size and timeout.

On SQLite and PostgreSQL: the migration that adds it, what is stored and resolved, how
each rule is enforced, and what the inference server reads from :meth:`desired_state`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sqlalchemy import DateTime, bindparam, inspect, text

from aiaas import schemas
from aiaas.deployments import (
    DEFAULT_MAX_QUEUE_SIZE,
    DEFAULT_TIMEOUT_S,
    DeploymentService,
    Route,
    RouteTarget,
    ServedTarget,
    default_batching,
)
from aiaas.errors import Conflict, InvalidArgument, NotFound
from aiaas.formats import ModelPackage, package_model
from aiaas.registry import Registry
from aiaas.store import Database, FileArtifactStore

NEW_COLUMNS = {"traffic", "shadow", "batching", "max_queue_size", "timeout_s"}


@pytest.fixture(scope="module")
def packages() -> dict[str, ModelPackage]:
    """Three iris classifiers taking the same inputs (four features), and one taking three."""
    x, y = load_iris(return_X_y=True)
    return {
        "a": package_model(LogisticRegression(C=1.0, max_iter=500).fit(x, y), x[:3]),
        "b": package_model(LogisticRegression(C=0.3, max_iter=500).fit(x, y), x[:3]),
        "c": package_model(LogisticRegression(C=0.05, max_iter=500).fit(x, y), x[:3]),
        "narrow": package_model(LogisticRegression(max_iter=500).fit(x[:, :3], y), x[:3, :3]),
    }


def _registry(database_url: str, home: Path, packages: dict[str, ModelPackage]) -> Registry:
    db = Database(database_url)
    db.upgrade()
    registry = Registry(db, FileArtifactStore(home / "artifacts"))
    for key in ("a", "b", "c", "narrow"):
        registry.register_version("iris", packages[key])
    return registry


@pytest.fixture
def registry(database_url: str, home: Path, packages: dict[str, ModelPackage]) -> Iterator[Registry]:
    """Model ``iris``: versions 1, 2 and 3 take the same inputs; version 4 takes fewer."""
    registry = _registry(database_url, home, packages)
    yield registry
    registry.db.dispose()


@pytest.fixture
def deployments(registry: Registry) -> DeploymentService:
    return DeploymentService(registry)


def _target(t: ServedTarget) -> tuple[Any, ...]:
    return (
        [(r.version, r.weight) for r in t.routes],
        None if t.shadow is None else (t.shadow.version, t.shadow.weight),
        t.batching,
        t.max_queue_size,
        t.timeout_s,
    )


def _served(deployments: DeploymentService) -> dict[str, tuple[Any, ...]]:
    return {t.deployment: _target(t) for t in deployments.desired_state()}


def _digest(registry: Registry, version: int) -> str:
    return registry.get_version("iris", version).artifact_digest


# -- migration ------------------------------------------------------------------------------


def _upgrade_to(db: Database, revision: str) -> None:
    db.migrate(revision)


def _downgrade_to(db: Database, revision: str) -> None:
    db.migrate(revision, down=True)


def _columns(db: Database) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns("deployments")}


def test_migration_keeps_deployments_made_before_it_with_the_defaults(
    database_url: str, home: Path, packages: dict[str, ModelPackage]
) -> None:
    db = Database(database_url)
    try:
        # Versions are registered with today's schema (the registry writes its newest columns),
        # then the database goes back to 0001, where the deployments are made.
        db.upgrade()
        registry = Registry(db, FileArtifactStore(home / "artifacts"))
        for key in ("a", "b"):
            registry.register_version("iris", packages[key])
        registry.set_alias("iris", "production", 2)
        _downgrade_to(db, "0001")
        assert db.current_revision() == "0001" and not NEW_COLUMNS & _columns(db)
        with db.engine.begin() as conn:
            model_id = conn.execute(text("SELECT id FROM models WHERE name = 'iris'")).scalar_one()
            now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
            for name, version, alias in (("pinned", 1, None), ("prod", None, "production")):
                conn.execute(
                    text(
                        "INSERT INTO deployments (name, model_id, version, alias, created_at, updated_at) "
                        "VALUES (:name, :model_id, :version, :alias, :now, :now)"
                    ).bindparams(bindparam("now", type_=DateTime(timezone=True))),
                    {"name": name, "model_id": model_id, "version": version, "alias": alias, "now": now},
                )

        db.upgrade()

        assert db.current_revision() == db.head_revision()
        assert _columns(db) >= NEW_COLUMNS
        deployments = DeploymentService(registry)
        pinned = deployments.get("pinned")
        assert (pinned.version, pinned.serving_version, pinned.created_at) == (1, 1, now)
        assert (pinned.traffic, pinned.shadow, pinned.shadow_version) == ([], None, None)
        assert (
            pinned.batching
            == default_batching()
            == {
                "enabled": False,
                "max_batch_size": 32,
                "max_queue_delay_ms": 2.0,
            }
        )
        assert (pinned.max_queue_size, pinned.timeout_s) == (1024, 30.0)
        assert pinned.routes == [(1, 100)]
        assert _served(deployments) == {
            "pinned": ([(1, 100)], None, default_batching(), 1024, 30.0),
            "prod": ([(2, 100)], None, default_batching(), 1024, 30.0),
        }
        # The old rows take the new settings like any other.
        updated = deployments.update("prod", traffic=[{"version": 1, "weight": 20}], timeout_s=2.5)
        assert (updated.alias, updated.routes, updated.timeout_s) == ("production", [(2, 80), (1, 20)], 2.5)
    finally:
        db.dispose()


def test_downgrade_drops_the_settings_and_keeps_the_deployments(
    database_url: str, home: Path, packages: dict[str, ModelPackage]
) -> None:
    registry = _registry(database_url, home, packages)
    db = registry.db
    try:
        DeploymentService(registry).create(
            "iris", model="iris", version=1, traffic=[{"version": 2, "weight": 10}], max_queue_size=7
        )
        _downgrade_to(db, "0001")
        assert db.current_revision() == "0001" and not NEW_COLUMNS & _columns(db)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT name, version FROM deployments")).all() == [("iris", 1)]
        db.upgrade()
        d = DeploymentService(registry).get("iris")
        assert (d.version, d.traffic, d.routes, d.max_queue_size) == (1, [], [(1, 100)], 1024)
    finally:
        db.dispose()


# -- what is stored and resolved -------------------------------------------------------------


def test_a_deployment_without_settings_serves_its_target_alone_with_the_defaults(
    deployments: DeploymentService, registry: Registry
) -> None:
    d = deployments.create("iris", model="iris", version=2)
    assert (d.traffic, d.shadow, d.routes, d.shadow_version) == ([], None, [Route(2, 100)], None)
    assert (d.batching, d.max_queue_size, d.timeout_s) == (default_batching(), 1024, 30.0)
    v2 = registry.get_version("iris", 2)
    (served,) = deployments.desired_state()
    assert served == ServedTarget(
        deployment="iris",
        model="iris",
        version=2,
        artifact_digest=v2.artifact_digest,
        signature=v2.signature,
        routes=(RouteTarget(2, v2.artifact_digest, v2.signature, 100, flavor=v2.flavor),),
        shadow=None,
        batching=default_batching(),
        max_queue_size=DEFAULT_MAX_QUEUE_SIZE,
        timeout_s=DEFAULT_TIMEOUT_S,
        flavor=v2.flavor,
    )


def test_create_with_every_setting(deployments: DeploymentService, registry: Registry) -> None:
    registry.set_alias("iris", "staging", 3)
    before = registry.db.revision()
    d = deployments.create(
        "iris",
        model="iris",
        version=1,
        traffic=[{"version": 2, "weight": 10}, {"alias": "staging", "weight": 5}],
        shadow={"alias": "staging"},
        batching={"enabled": True, "max_batch_size": 64},
        max_queue_size=10,
        timeout_s=0.5,
    )
    assert registry.db.revision() == before + 1
    assert d.traffic == [{"version": 2, "weight": 10}, {"alias": "staging", "weight": 5}]
    assert (d.shadow, d.shadow_version) == ({"alias": "staging"}, 3)
    assert d.routes == [(1, 85), (2, 10), (3, 5)]
    assert d.batching == {"enabled": True, "max_batch_size": 64, "max_queue_delay_ms": 2.0}
    assert (d.max_queue_size, d.timeout_s) == (10, 0.5)
    assert deployments.get("iris") == d

    (served,) = deployments.desired_state()
    v1, v2, v3 = (registry.get_version("iris", v) for v in (1, 2, 3))
    # The primary's fields are what a reader that knows nothing of routes serves.
    assert (served.version, served.artifact_digest, served.signature) == (1, v1.artifact_digest, v1.signature)
    assert served.routes == (
        RouteTarget(1, v1.artifact_digest, v1.signature, 85, flavor=v1.flavor),
        RouteTarget(2, v2.artifact_digest, v2.signature, 10, flavor=v2.flavor),
        RouteTarget(3, v3.artifact_digest, v3.signature, 5, flavor=v3.flavor),
    )
    assert served.shadow == RouteTarget(3, v3.artifact_digest, v3.signature, 0, flavor=v3.flavor)
    assert (served.batching, served.max_queue_size, served.timeout_s) == (d.batching, 10, 0.5)


def test_weights_may_leave_the_primary_nothing_and_a_route_may_weigh_zero(
    deployments: DeploymentService,
) -> None:
    d = deployments.create(
        "iris", model="iris", version=1, traffic=[{"version": 2, "weight": 100}, {"version": 3, "weight": 0}]
    )
    assert d.routes == [(1, 0), (2, 100), (3, 0)]
    assert _served(deployments)["iris"][0] == [(1, 0), (2, 100), (3, 0)]


def test_update_changes_what_is_given_and_keeps_the_rest(
    deployments: DeploymentService, registry: Registry
) -> None:
    registry.set_alias("iris", "production", 1)
    deployments.create(
        "iris",
        model="iris",
        alias="production",
        traffic=[{"version": 2, "weight": 10}],
        shadow={"version": 3},
        batching={"enabled": True},
        max_queue_size=50,
        timeout_s=5,
    )
    steps: list[tuple[dict[str, Any], tuple[Any, ...]]] = [
        ({"timeout_s": 1.5}, ([(1, 90), (2, 10)], (3, 0), True, 50, 1.5)),
        ({"max_queue_size": 9}, ([(1, 90), (2, 10)], (3, 0), True, 9, 1.5)),
        ({"traffic": [{"version": 3, "weight": 25}]}, ([(1, 75), (3, 25)], (3, 0), True, 9, 1.5)),
        ({"shadow": {"version": 2}}, ([(1, 75), (3, 25)], (2, 0), True, 9, 1.5)),
        ({"batching": {"max_queue_delay_ms": 0}}, ([(1, 75), (3, 25)], (2, 0), False, 9, 1.5)),
        ({"version": 2, "shadow": {"version": 1}}, ([(2, 75), (3, 25)], (1, 0), False, 9, 1.5)),
    ]
    for change, (routes, shadow, enabled, queue, timeout) in steps:
        before = registry.db.revision()
        d = deployments.update("iris", **change)
        assert registry.db.revision() == before + 1, change
        assert _served(deployments)["iris"] == (routes, shadow, d.batching, queue, timeout), change
        assert (d.routes, d.batching["enabled"], d.max_queue_size, d.timeout_s) == (
            routes,
            enabled,
            queue,
            timeout,
        )
    # Only the primary target was switched by the last step; the alias is no longer followed.
    assert (d.version, d.alias) == (2, None)
    assert d.batching == {"enabled": False, "max_batch_size": 32, "max_queue_delay_ms": 0.0}


def test_empty_values_clear_traffic_shadow_and_batching(
    deployments: DeploymentService, registry: Registry
) -> None:
    deployments.create(
        "iris",
        model="iris",
        version=1,
        traffic=[{"version": 2, "weight": 30}],
        shadow={"version": 3},
        batching={"enabled": True, "max_batch_size": 8},
        timeout_s=3,
    )
    d = deployments.update("iris", traffic=[], shadow={}, batching={})
    assert (d.version, d.traffic, d.shadow, d.shadow_version) == (1, [], None, None)
    assert (d.routes, d.batching, d.timeout_s) == ([(1, 100)], default_batching(), 3.0)
    assert _served(deployments)["iris"] == ([(1, 100)], None, default_batching(), 1024, 3.0)
    with registry.db.engine.connect() as conn:  # cleared is NULL, as for a row that never had them
        row = conn.execute(text("SELECT traffic, shadow, batching FROM deployments")).one()
    assert tuple(row) == (None, None, None)


def test_update_without_a_target_pins_the_latest_only_when_nothing_else_is_given(
    deployments: DeploymentService, registry: Registry
) -> None:
    registry.set_alias("iris", "production", 1)
    deployments.create("iris", model="iris", alias="production")
    assert deployments.update("iris", timeout_s=2).alias == "production"
    d = deployments.update("iris")
    assert (d.version, d.alias, d.serving_version) == (4, None, 4)


def test_target_of_a_specific_version_carries_the_deployments_settings(
    deployments: DeploymentService,
) -> None:
    deployments.create(
        "iris", model="iris", version=1, traffic=[{"version": 2, "weight": 50}], max_queue_size=3
    )
    t = deployments.target("iris", 3)
    assert [(r.version, r.weight) for r in t.routes] == [(3, 100)]
    assert (t.version, t.shadow, t.max_queue_size) == (3, None, 3)


def test_schema_defaults_are_the_services() -> None:
    assert schemas.Batching().model_dump() == default_batching()
    fields = schemas.Deployment.model_fields
    assert fields["max_queue_size"].default == DEFAULT_MAX_QUEUE_SIZE
    assert fields["timeout_s"].default == DEFAULT_TIMEOUT_S


# -- aliases are followed --------------------------------------------------------------------


def test_canary_and_shadow_routes_follow_alias_moves_and_rollback(
    deployments: DeploymentService, registry: Registry
) -> None:
    registry.set_alias("iris", "production", 1)
    registry.set_alias("iris", "canary", 2)
    registry.set_alias("iris", "mirror", 3)
    deployments.create(
        "iris",
        model="iris",
        alias="production",
        traffic=[{"alias": "canary", "weight": 10}],
        shadow={"alias": "mirror"},
    )
    (t,) = deployments.desired_state()
    assert [(r.version, r.artifact_digest) for r in t.routes] == [
        (1, _digest(registry, 1)),
        (2, _digest(registry, 2)),
    ]
    assert t.shadow is not None and (t.shadow.version, t.shadow.artifact_digest) == (3, _digest(registry, 3))

    revision = registry.db.revision()
    registry.set_alias("iris", "canary", 3)
    registry.set_alias("iris", "mirror", 1)
    registry.set_alias("iris", "production", 2)
    assert registry.db.revision() == revision + 3
    assert _served(deployments)["iris"][:2] == ([(2, 90), (3, 10)], (1, 0))
    d = deployments.get("iris")
    assert (d.routes, d.shadow_version) == ([(2, 90), (3, 10)], 1)
    assert d.traffic == [{"alias": "canary", "weight": 10}]  # as configured: still the alias

    registry.set_alias("iris", "canary", 2)  # roll the canary back
    assert _served(deployments)["iris"][0] == [(2, 90), (2, 10)]


# -- rules ---------------------------------------------------------------------------------------


INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"traffic": {"version": 2, "weight": 10}}, "traffic", "must be a list of routes"),
    ({"traffic": [7]}, "traffic[0]", "must be an object"),
    ({"traffic": [{"weight": 10}]}, "traffic[0]", "exactly one of version or alias"),
    ({"traffic": [{"version": 2, "alias": "staging", "weight": 1}]}, "traffic[0]", "exactly one of"),
    ({"traffic": [{"version": 2}]}, "traffic[0].weight", "is required"),
    ({"traffic": [{"version": 2, "weight": 101}]}, "traffic[0].weight", "integer from 0 to 100; got 101"),
    ({"traffic": [{"version": 2, "weight": -1}]}, "traffic[0].weight", "integer from 0 to 100; got -1"),
    ({"traffic": [{"version": 2, "weight": 2.5}]}, "traffic[0].weight", "integer from 0 to 100; got 2.5"),
    ({"traffic": [{"version": 2, "weight": True}]}, "traffic[0].weight", "integer"),
    ({"traffic": [{"version": 0, "weight": 1}]}, "traffic[0].version", "integer from 1"),
    ({"traffic": [{"version": 2, "weight": 1, "share": 3}]}, "traffic[0].share", "not a known key"),
    ({"traffic": [{"alias": "latest", "weight": 1}]}, "traffic[0].alias", "alias must start with a letter"),
    (
        {"traffic": [{"version": 2, "weight": 60}, {"version": 3, "weight": 50}]},
        "traffic",
        "add up to at most 100 (the primary gets 100 minus their sum), but they add up to 110",
    ),
    (
        {"traffic": [{"version": 2, "weight": 1}, {"version": 3, "weight": 1}, {"version": 2, "weight": 1}]},
        "traffic[2].version",
        "each route once, but version 2 is also traffic[0]",
    ),
    ({"traffic": [{"version": 9, "weight": 1}]}, "traffic[0].version", "must be a version of model 'iris'"),
    ({"traffic": [{"alias": "nope", "weight": 1}]}, "traffic[0].alias", "alias of model"),
    ({"traffic": [{"version": 1, "weight": 5}]}, "traffic[0].version", "must differ from the primary"),
    ({"shadow": [2]}, "shadow", "must be an object"),
    ({"shadow": {"version": 2, "weight": 5}}, "shadow.weight", "not a known key"),
    ({"shadow": {"version": 9}}, "shadow.version", "must be a version of model 'iris'"),
    ({"shadow": {"version": 1}}, "shadow.version", "must differ from the primary"),
    ({"batching": True}, "batching", "must be an object"),
    ({"batching": {"enabled": "yes"}}, "batching.enabled", "must be true or false; got 'yes'"),
    ({"batching": {"max_batch_size": 0}}, "batching.max_batch_size", "integer from 1 to 4096; got 0"),
    ({"batching": {"max_batch_size": 4097}}, "batching.max_batch_size", "integer from 1 to 4096"),
    ({"batching": {"max_queue_delay_ms": -1}}, "batching.max_queue_delay_ms", "number from 0 to 1000"),
    ({"batching": {"max_queue_delay_ms": 1000.5}}, "batching.max_queue_delay_ms", "number from 0 to 1000"),
    ({"batching": {"size": 3}}, "batching.size", "not a known key"),
    ({"max_queue_size": 0}, "max_queue_size", "integer from 1 to 100000; got 0"),
    ({"max_queue_size": 100_001}, "max_queue_size", "integer from 1 to 100000"),
    ({"max_queue_size": 1.5}, "max_queue_size", "integer"),
    ({"timeout_s": 0}, "timeout_s", "number from 0.001 to 3600; got 0"),
    ({"timeout_s": 3601}, "timeout_s", "number from 0.001 to 3600"),
    ({"timeout_s": float("nan")}, "timeout_s", "number from 0.001 to 3600"),
]


@pytest.mark.parametrize(
    ("settings", "field", "message"), INVALID, ids=[f"{i}-{field}" for i, (_, field, _) in enumerate(INVALID)]
)
def test_invalid_settings_are_refused_naming_the_field_and_change_nothing(
    deployments: DeploymentService,
    registry: Registry,
    settings: dict[str, Any],
    field: str,
    message: str,
) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)) as create_error:
        deployments.create("fresh", model="iris", version=1, **settings)
    assert create_error.value.details["field"] == field
    assert str(create_error.value).startswith(field)
    assert [d.name for d in deployments.list()] == []

    deployments.create("iris", model="iris", version=1)
    before = (registry.db.revision(), _served(deployments))
    with pytest.raises(InvalidArgument, match=re.escape(message)) as update_error:
        deployments.update("iris", **settings)
    assert update_error.value.details["field"] == field
    assert (registry.db.revision(), _served(deployments)) == before


def test_a_route_to_a_version_that_is_not_ready_is_a_conflict(
    deployments: DeploymentService, registry: Registry
) -> None:
    registry.archive_version("iris", 3)
    with pytest.raises(Conflict, match=r"traffic\[0\].version: version 3 of 'iris' is archived") as error:
        deployments.create("iris", model="iris", version=1, traffic=[{"version": 3, "weight": 5}])
    assert error.value.details["field"] == "traffic[0].version"
    with pytest.raises(Conflict, match=r"shadow\.version: version 3 of 'iris' is archived"):
        deployments.create("iris", model="iris", version=1, shadow={"version": 3})
    assert deployments.list() == []


def test_a_route_taking_other_inputs_than_the_primary_is_a_conflict(
    deployments: DeploymentService, registry: Registry
) -> None:
    registry.set_alias("iris", "narrow", 4)
    with pytest.raises(Conflict, match=r"traffic\[1\].version: version 4 of 'iris' takes inputs") as error:
        deployments.create(
            "iris",
            model="iris",
            version=1,
            traffic=[{"version": 2, "weight": 5}, {"version": 4, "weight": 5}],
        )
    assert error.value.details == {"field": "traffic[1].version", "value": 4, "primary_version": 1}
    with pytest.raises(Conflict, match=r"traffic\[0\].alias: version 4 .* the primary \(version 1\)"):
        deployments.create("iris", model="iris", version=1, traffic=[{"alias": "narrow", "weight": 5}])
    with pytest.raises(Conflict, match=r"shadow\.version: version 4"):
        deployments.create("iris", model="iris", version=1, shadow={"version": 4})
    assert deployments.list() == []


def test_moving_an_alias_a_route_follows_is_checked_against_the_other_routes(
    deployments: DeploymentService, registry: Registry
) -> None:
    registry.set_alias("iris", "production", 1)
    registry.set_alias("iris", "canary", 2)
    deployments.create("iris", model="iris", alias="production", traffic=[{"alias": "canary", "weight": 10}])
    before = (registry.db.revision(), _served(deployments))
    with pytest.raises(
        Conflict, match=r"moving alias 'canary' of 'iris' to version 4 would leave deployment"
    ) as e:
        registry.set_alias("iris", "canary", 4)
    assert e.value.details == {"model": "iris", "alias": "canary", "deployment": "iris"}
    with pytest.raises(Conflict, match=r"its primary \(version 4\)"):
        registry.set_alias("iris", "production", 4)  # the primary moves away from the canary's inputs
    assert (registry.db.revision(), _served(deployments)) == before
    assert {a.name: a.version for a in registry.list_aliases("iris")} == {"production": 1, "canary": 2}
    registry.set_alias("iris", "canary", 3)  # same inputs: fine
    assert [(r.version, r.weight) for r in deployments.desired_state()[0].routes] == [(1, 90), (3, 10)]


def test_switching_the_primary_is_checked_against_the_routes_kept(
    deployments: DeploymentService, registry: Registry
) -> None:
    deployments.create("iris", model="iris", version=1, traffic=[{"version": 2, "weight": 10}])
    before = (registry.db.revision(), _served(deployments))
    with pytest.raises(Conflict, match=r"traffic\[0\].version: version 2 .* the primary \(version 4\)"):
        deployments.update("iris", version=4)
    with pytest.raises(InvalidArgument, match=r"traffic\[0\].version must differ from the primary"):
        deployments.update("iris", version=2)
    assert (registry.db.revision(), _served(deployments)) == before
    # Giving the new routes with the new primary is one change.
    d = deployments.update("iris", version=2, traffic=[{"version": 3, "weight": 10}])
    assert d.routes == [(2, 90), (3, 10)]


def test_unknown_deployment_is_not_found(deployments: DeploymentService) -> None:
    with pytest.raises(NotFound, match="deployment 'nope' not found"):
        deployments.update("nope", timeout_s=1)


# -- versions and aliases in use -----------------------------------------------------------------


def test_canary_and_shadow_versions_cannot_be_archived_or_deleted(
    deployments: DeploymentService, registry: Registry
) -> None:
    deployments.create(
        "iris", model="iris", version=1, traffic=[{"version": 2, "weight": 10}], shadow={"version": 3}
    )
    for version in (2, 3):
        with pytest.raises(Conflict, match=rf"cannot archive version {version} of 'iris'.*\['iris'\]"):
            registry.archive_version("iris", version)
        with pytest.raises(Conflict, match=rf"cannot delete version {version} of 'iris'"):
            registry.delete_version("iris", version)
    assert registry.archive_version("iris", 4).status == "archived"  # not served: free to go

    deployments.update("iris", traffic=[], shadow={})
    assert registry.archive_version("iris", 2).status == "archived"
    registry.delete_version("iris", 3)


def test_versions_reached_through_an_alias_route_and_the_alias_itself_are_in_use(
    deployments: DeploymentService, registry: Registry
) -> None:
    registry.set_alias("iris", "canary", 2)
    registry.set_alias("iris", "mirror", 3)
    deployments.create(
        "iris",
        model="iris",
        version=1,
        traffic=[{"alias": "canary", "weight": 10}],
        shadow={"alias": "mirror"},
    )
    with pytest.raises(Conflict, match="cannot archive version 2"):
        registry.archive_version("iris", 2)
    with pytest.raises(Conflict, match="cannot archive version 3"):
        registry.archive_version("iris", 3)
    for alias in ("canary", "mirror"):
        with pytest.raises(
            Conflict, match=rf"alias '{alias}' is followed by deployments \['iris'\]"
        ) as error:
            registry.delete_alias("iris", alias)
        assert error.value.details == {"alias": alias, "deployments": ["iris"]}

    # Once the alias moves on, the version it left is free; the alias is still in use.
    registry.set_alias("iris", "canary", 3)
    assert registry.archive_version("iris", 2).status == "archived"
    deployments.update("iris", traffic=[])
    registry.delete_alias("iris", "canary")
    assert [a.name for a in registry.list_aliases("iris")] == ["mirror"]
