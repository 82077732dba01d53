"""Deployments: the desired state the inference server converges to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from aiaas.deployments import DeploymentService, ServedTarget
from aiaas.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from aiaas.formats import ModelPackage, package_model
from aiaas.registry import Registry
from aiaas.store import Database, FileArtifactStore


@pytest.fixture(scope="module")
def packages() -> tuple[ModelPackage, ModelPackage]:
    """Two iris classifiers with different artifacts, so each version has its own digest."""
    x, y = load_iris(return_X_y=True)
    return (
        package_model(LogisticRegression(C=1.0, max_iter=500).fit(x, y), x[:3]),
        package_model(LogisticRegression(C=0.05, max_iter=500).fit(x, y), x[:3]),
    )


@pytest.fixture
def registry(
    migrated_database_url: str, home: Path, packages: tuple[ModelPackage, ModelPackage]
) -> Iterator[Registry]:
    """A registry holding model ``iris`` with versions 1 and 2 (different artifacts)."""
    db = Database(migrated_database_url)
    db.upgrade()
    registry = Registry(db, FileArtifactStore(home / "artifacts"))
    for package in packages:
        registry.register_version("iris", package)
    yield registry
    db.dispose()


@pytest.fixture
def deployments(registry: Registry) -> DeploymentService:
    return DeploymentService(registry)


def _served(deployments: DeploymentService) -> dict[str, int]:
    return {t.deployment: t.version for t in deployments.desired_state()}


# -- create ------------------------------------------------------------------------------


def test_create_pinned_to_a_version(deployments: DeploymentService) -> None:
    d = deployments.create("iris-v1", model="iris", version=1)
    assert (d.name, d.model, d.version, d.alias, d.serving_version) == ("iris-v1", "iris", 1, None, 1)
    assert deployments.get("iris-v1") == d


def test_create_following_an_alias(deployments: DeploymentService, registry: Registry) -> None:
    registry.set_alias("iris", "production", 1)
    d = deployments.create("iris-prod", model="iris", alias="production")
    assert (d.version, d.alias, d.serving_version) == (None, "production", 1)


def test_create_without_a_target_pins_the_latest_version(
    deployments: DeploymentService, registry: Registry, packages: tuple[ModelPackage, ModelPackage]
) -> None:
    d = deployments.create("iris", model="iris")
    assert (d.version, d.alias, d.serving_version) == (2, None, 2)
    # Pinned, not following: a newer version does not change what is served.
    registry.register_version("iris", packages[0])
    assert deployments.get("iris").serving_version == 2
    assert _served(deployments) == {"iris": 2}


def test_create_bumps_the_serving_revision(deployments: DeploymentService, registry: Registry) -> None:
    before = registry.db.revision()
    deployments.create("iris", model="iris", version=1)
    assert registry.db.revision() == before + 1


def test_duplicate_name_is_already_exists(deployments: DeploymentService) -> None:
    deployments.create("iris", model="iris", version=1)
    with pytest.raises(AlreadyExists, match="deployment 'iris' already exists"):
        deployments.create("iris", model="iris", version=2)
    assert deployments.get("iris").version == 1


def test_unknown_model_version_or_alias_is_not_found(deployments: DeploymentService) -> None:
    with pytest.raises(NotFound, match="model 'nope' not found"):
        deployments.create("d", model="nope")
    with pytest.raises(NotFound, match="model 'iris' has no version 7"):
        deployments.create("d", model="iris", version=7)
    with pytest.raises(NotFound, match="model 'iris' has no alias 'production'"):
        deployments.create("d", model="iris", alias="production")
    assert deployments.list() == []


def test_version_and_alias_together_are_an_invalid_argument(
    deployments: DeploymentService, registry: Registry
) -> None:
    registry.set_alias("iris", "production", 1)
    with pytest.raises(InvalidArgument, match="either version or alias, not both"):
        deployments.create("d", model="iris", version=1, alias="production")
    assert deployments.list() == []


def test_invalid_deployment_and_alias_names_are_refused(deployments: DeploymentService) -> None:
    with pytest.raises(InvalidArgument, match="name must be"):
        deployments.create("bad/name", model="iris", version=1)
    with pytest.raises(InvalidArgument, match="alias must start with a letter"):
        deployments.create("d", model="iris", alias="latest")


def test_model_without_versions_or_an_archived_version_cannot_be_deployed(
    deployments: DeploymentService, registry: Registry
) -> None:
    registry.create_model("empty")
    with pytest.raises(Conflict, match="model 'empty' has no versions to deploy"):
        deployments.create("d", model="empty")
    registry.archive_version("iris", 1)
    with pytest.raises(Conflict, match="version 1 of 'iris' is archived"):
        deployments.create("d", model="iris", version=1)


# -- update ------------------------------------------------------------------------------


def test_update_switches_the_target_and_bumps_the_revision(
    deployments: DeploymentService, registry: Registry
) -> None:
    created = deployments.create("iris", model="iris", version=1)
    before = registry.db.revision()
    updated = deployments.update("iris", version=2)
    assert (updated.version, updated.serving_version) == (2, 2)
    assert updated.created_at == created.created_at
    assert registry.db.revision() == before + 1
    assert deployments.get("iris").serving_version == 2

    registry.set_alias("iris", "production", 1)
    switched = deployments.update("iris", alias="production")
    assert (switched.version, switched.alias, switched.serving_version) == (None, "production", 1)
    assert registry.db.revision() == before + 3  # set_alias and update each bump it


def test_update_without_a_target_pins_the_latest(deployments: DeploymentService, registry: Registry) -> None:
    registry.set_alias("iris", "production", 1)
    deployments.create("iris", model="iris", alias="production")
    d = deployments.update("iris")
    assert (d.version, d.alias, d.serving_version) == (2, None, 2)


def test_bad_update_changes_nothing(deployments: DeploymentService, registry: Registry) -> None:
    deployments.create("iris", model="iris", version=1)
    before = registry.db.revision()
    with pytest.raises(NotFound, match="has no version 9"):
        deployments.update("iris", version=9)
    with pytest.raises(NotFound, match="has no alias 'staging'"):
        deployments.update("iris", alias="staging")
    with pytest.raises(InvalidArgument, match="not both"):
        deployments.update("iris", version=2, alias="staging")
    with pytest.raises(NotFound, match="deployment 'other' not found"):
        deployments.update("other", version=2)
    assert deployments.get("iris").version == 1
    assert registry.db.revision() == before


# -- desired state -----------------------------------------------------------------------


def test_desired_state_resolves_each_deployment(deployments: DeploymentService, registry: Registry) -> None:
    deployments.create("b-pinned", model="iris", version=1)
    registry.set_alias("iris", "production", 2)
    deployments.create("a-prod", model="iris", alias="production")
    v2 = registry.get_version("iris", 2)
    assert deployments.desired_state() == [
        ServedTarget(
            deployment="a-prod",
            model="iris",
            version=2,
            artifact_digest=v2.artifact_digest,
            signature=v2.signature,
            flavor=v2.flavor,
        ),
        ServedTarget(
            deployment="b-pinned",
            model="iris",
            version=1,
            artifact_digest=registry.get_version("iris", 1).artifact_digest,
            signature=registry.get_version("iris", 1).signature,
            flavor=registry.get_version("iris", 1).flavor,
        ),
    ]


def test_desired_state_follows_alias_moves_and_rollback(
    deployments: DeploymentService, registry: Registry
) -> None:
    registry.set_alias("iris", "production", 1)
    deployments.create("iris-prod", model="iris", alias="production")
    deployments.create("iris-v1", model="iris", version=1)
    digests = {v.version: v.artifact_digest for v in registry.list_versions("iris")}
    assert digests[1] != digests[2]

    revision = registry.db.revision()
    registry.set_alias("iris", "production", 2)
    assert registry.db.revision() > revision
    assert _served(deployments) == {"iris-prod": 2, "iris-v1": 1}
    (prod,) = [t for t in deployments.desired_state() if t.deployment == "iris-prod"]
    assert prod.artifact_digest == digests[2]
    assert deployments.get("iris-prod").serving_version == 2

    registry.set_alias("iris", "production", 1)  # roll back
    assert _served(deployments) == {"iris-prod": 1, "iris-v1": 1}


def test_target_gives_a_specific_version_of_a_deployments_model(deployments: DeploymentService) -> None:
    deployments.create("iris", model="iris", version=2)
    t = deployments.target("iris", 1)
    assert (t.deployment, t.model, t.version) == ("iris", "iris", 1)
    with pytest.raises(NotFound, match="has no version 5"):
        deployments.target("iris", 5)
    with pytest.raises(NotFound, match="deployment 'nope' not found"):
        deployments.target("nope", 1)


# -- list and delete ---------------------------------------------------------------------


def test_list_is_sorted_by_name(deployments: DeploymentService) -> None:
    for name in ("zeta", "alpha", "mid"):
        deployments.create(name, model="iris", version=1)
    assert [d.name for d in deployments.list()] == ["alpha", "mid", "zeta"]


def test_delete(deployments: DeploymentService, registry: Registry) -> None:
    deployments.create("iris", model="iris", version=1)
    deployments.create("keep", model="iris", version=2)
    before = registry.db.revision()
    deployments.delete("iris")
    assert registry.db.revision() == before + 1
    with pytest.raises(NotFound, match="deployment 'iris' not found"):
        deployments.get("iris")
    with pytest.raises(NotFound, match="deployment 'iris' not found"):
        deployments.delete("iris")
    assert [d.name for d in deployments.list()] == ["keep"]
    assert _served(deployments) == {"keep": 2}
    # The name can be used again.
    assert deployments.create("iris", model="iris", version=2).serving_version == 2
