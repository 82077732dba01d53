"""The settings' one definition, and everything derived from it or checked against it.

A setting missing from the CLI, the SDK, the wire schema or the README fails here; the
deployment service refuses what the definition refuses, naming the field; and the ``drift``
setting (the deployment's drift thresholds) is stored, resolved and replaced like the others.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from aiaas import schemas
from aiaas.cli import app
from aiaas.deployments import DeploymentService
from aiaas.errors import InvalidArgument
from aiaas.formats import package_model
from aiaas.registry import Registry
from aiaas.schemas.deployment_settings import (
    SETTINGS,
    DeploymentSettings,
    SettingValues,
    setting_leaves,
    settings_table,
)
from aiaas.sdk import Client
from aiaas.store import Database, FileArtifactStore
from tests._models import iris, iris_classifier

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_DRIFT = schemas.DriftThresholds().model_dump()


# -- every place a setting must appear ------------------------------------------------------------


def test_the_readme_table_is_the_definitions() -> None:
    text = README.read_text()
    found = re.search(r"<!-- deployment-settings[^>]*-->\n(.*?)<!-- /deployment-settings -->", text, re.S)
    assert found is not None, "README.md lost its deployment-settings table"
    assert found.group(1) == settings_table(), (
        "README.md's deployment-settings table differs from the definition; paste this:\n" + settings_table()
    )
    for name in SETTINGS:
        assert f"| `{name}" in found.group(1)


def test_every_setting_is_an_option_of_aiaas_deploy() -> None:
    command = typer.main.get_command(app).commands["deploy"]  # type: ignore[attr-defined]
    flags = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for leaf in setting_leaves():
        for flag in leaf.flag.split("/"):
            assert flag in flags, f"aiaas deploy has no {flag} for {leaf.path}"
    assert {"--batching", "--no-batching", "--max-batch-size", "--log-sample-rate"} <= flags
    assert "--drift-psi-threshold" in flags


def test_every_setting_is_an_argument_of_the_sdk() -> None:
    hints = typing.get_type_hints(SettingValues)
    assert list(hints) == list(SETTINGS)
    for name, kind in hints.items():
        field = DeploymentSettings.model_fields[name].annotation
        assert field in typing.get_args(kind), f"SettingValues[{name!r}] does not take a {field}"
    for method in (
        Client.deploy,
        Client.update_deployment,
        DeploymentService.create,
        DeploymentService.update,
    ):
        (kwargs,) = [p for p in inspect.signature(method).parameters.values() if p.kind is p.VAR_KEYWORD]
        assert "SettingValues" in str(kwargs.annotation), method


def test_every_setting_is_in_the_wire_schema_with_the_definitions_bounds() -> None:
    for schema in (schemas.DeploymentCreate, schemas.DeploymentUpdate):
        for name, field in DeploymentSettings.model_fields.items():
            given = schema.model_fields[name]
            assert given.default is None and given.metadata == field.metadata, (schema, name)
    shown = schemas.Deployment.model_fields
    for name in SETTINGS:
        assert shown[name].annotation == DeploymentSettings.model_fields[name].annotation
    with pytest.raises(ValueError, match="max_queue_size"):
        schemas.DeploymentCreate(name="x", model="x", max_queue_size=0)


# -- the service ------------------------------------------------------------------------------------


@pytest.fixture
def deployments(database_url: str, home: Path) -> Iterator[DeploymentService]:
    """Model ``iris`` with one version, on a fresh database."""
    registry = Registry(Database(database_url), FileArtifactStore(home / "artifacts"))
    registry.db.upgrade()
    registry.register_version("iris", package_model(iris_classifier(), iris()[0][:3]))
    yield DeploymentService(registry)
    registry.db.dispose()


def test_batching_on_with_one_row_per_batch_is_refused_naming_the_field(
    deployments: DeploymentService,
) -> None:
    one = {"enabled": True, "max_batch_size": 1}
    with pytest.raises(InvalidArgument, match=r"^batching\.max_batch_size must be at least 2") as error:
        deployments.create("iris", model="iris", batching=one)
    assert error.value.details == {"field": "batching.max_batch_size", "value": 1}
    assert deployments.list() == []

    deployments.create("iris", model="iris", batching={"max_batch_size": 1})  # off: nothing to ignore
    with pytest.raises(InvalidArgument, match=r"batching\.max_batch_size"):
        deployments.update("iris", batching=one)
    assert deployments.get("iris").batching == {
        "enabled": False,
        "max_batch_size": 1,
        "max_queue_delay_ms": 2.0,
    }
    assert deployments.update("iris", batching={"enabled": True, "max_batch_size": 2}).batching["enabled"]


def test_an_unknown_setting_is_refused_naming_it(deployments: DeploymentService) -> None:
    with pytest.raises(InvalidArgument, match=r"^max_queue is not a deployment setting") as error:
        deployments.create("iris", model="iris", max_queue=3)  # type: ignore[call-arg]
    assert error.value.details["field"] == "max_queue"


def test_the_drift_setting_is_stored_resolved_and_replaced(deployments: DeploymentService) -> None:
    d = deployments.create("iris", model="iris")
    assert d.settings.drift == schemas.DriftThresholds() and d.drift == DEFAULT_DRIFT

    d = deployments.update("iris", drift={"psi_threshold": 0.5, "numeric_method": "ks"})
    assert d.drift == {**DEFAULT_DRIFT, "psi_threshold": 0.5, "numeric_method": "ks"}
    assert d.settings.drift.psi_threshold == 0.5
    assert deployments.get("iris").drift == d.drift  # stored
    (served,) = deployments.desired_state()
    assert served.settings.drift.numeric_method == "ks"

    d = deployments.update("iris", max_queue_size=7)  # another setting keeps it
    assert (d.drift["psi_threshold"], d.max_queue_size) == (0.5, 7)
    d = deployments.update("iris", drift={"min_rows": 10})  # given whole: the rest take the defaults
    assert d.drift == {**DEFAULT_DRIFT, "min_rows": 10}
    assert deployments.update("iris", drift={}).drift == DEFAULT_DRIFT


@pytest.mark.parametrize(
    ("drift", "field", "message"),
    [
        ({"psi_threshold": 0}, "drift.psi_threshold", "must be a number above 0; got 0"),
        ({"ks_threshold": 2}, "drift.ks_threshold", "must be a number above 0 and at most 1; got 2"),
        ({"numeric_method": "chi2"}, "drift.numeric_method", "must be one of psi, ks, wasserstein"),
        ({"min_rows": 0.5}, "drift.min_rows", "must be an integer at least 1; got 0.5"),
        ({"numeric_bins": 5}, "drift.numeric_bins", "is not a known key"),
        ([0.2], "drift", "must be an object such as"),
    ],
)
def test_bad_drift_thresholds_are_refused_naming_the_key(
    deployments: DeploymentService, drift: Any, field: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)) as error:
        deployments.create("iris", model="iris", drift=drift)
    assert error.value.details["field"] == field
    assert deployments.list() == []


def test_migration_0010_keeps_deployments_made_before_it_and_downgrades(
    database_url: str, home: Path
) -> None:
    from sqlalchemy import inspect, text

    from tests.serving.test_deployment_config import _downgrade_to, _upgrade_to

    db = Database(database_url)
    try:
        db.upgrade()
        registry = Registry(db, FileArtifactStore(home / "artifacts"))
        registry.register_version("iris", package_model(iris_classifier(), iris()[0][:3]))
        deployments = DeploymentService(registry)
        deployments.create("old", model="iris", max_queue_size=5)
        _downgrade_to(db, "0009")  # as made before 0010: no settings column
        assert "settings" not in {c["name"] for c in inspect(db.engine).get_columns("deployments")}
        with db.engine.begin() as conn:
            assert conn.execute(text("SELECT max_queue_size FROM deployments")).scalar() == 5
        _upgrade_to(db, "head")
        old = deployments.get("old")
        assert (old.max_queue_size, old.drift) == (5, DEFAULT_DRIFT)  # kept; drift at its defaults
        assert deployments.update("old", drift={"min_rows": 3}).drift["min_rows"] == 3
    finally:
        db.dispose()
