"""Deployments' serving configuration through the running control plane: REST, SDK and CLI."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from aiaas import schemas
from aiaas.cli import app
from aiaas.errors import Conflict, InvalidArgument
from tests._auth import AUTH
from tests._models import iris, iris_classifier
from tests.e2e.conftest import Platform

runner = CliRunner()

DEFAULT_BATCHING = {"enabled": False, "max_batch_size": 32, "max_queue_delay_ms": 2.0}


def _register(platform: Platform, model: str, count: int) -> None:
    """``count`` versions of ``model`` taking the same inputs, told apart by their C."""
    X, _ = iris()
    for i in range(count):
        platform.client.register_model(model, iris_classifier(C=1.0 / (i + 1)), example=X[:3])


def _register_narrow(platform: Platform, model: str) -> int:
    """A version of ``model`` that takes three features instead of four."""
    from sklearn.linear_model import LogisticRegression

    X, y = iris()
    narrow = LogisticRegression(max_iter=500).fit(X[:, :3], y)
    return platform.client.register_model(model, narrow, example=X[:3, :3]).version


def _routes(d: schemas.Deployment) -> list[tuple[int, int]]:
    return [(r.version, r.weight) for r in d.routes]


def _desired(d: schemas.Deployment) -> schemas.Deployment:
    """The deployment as configured, without what the inference server reported (``served``
    changes as the server reconciles; create and update answers do not carry it)."""
    return d.model_copy(update={"served": None})


def aiaas(platform: Platform, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--url", platform.api_url, "--inference-url", platform.inference_url, *args])
    return result.exit_code, result.stdout, result.stderr


# -- SDK ---------------------------------------------------------------------------------------


def test_sdk_deploys_with_every_setting_then_changes_and_clears_them(platform: Platform) -> None:
    c = platform.client
    _register(platform, "cfg-sdk", 4)
    c.set_alias("cfg-sdk", "staging", 3)
    d = c.deploy(
        "cfg-sdk",
        model="cfg-sdk",
        version=1,
        traffic=[{"version": 2, "weight": 10}, {"alias": "staging", "weight": 5}],
        shadow={"alias": "staging"},
        batching={"enabled": True, "max_batch_size": 16},
        max_queue_size=100,
        timeout_s=2.5,
    )
    assert (d.version, d.alias, d.serving_version) == (1, None, 1)
    assert [t.model_dump(exclude_none=True) for t in d.traffic] == [
        {"version": 2, "weight": 10},
        {"alias": "staging", "weight": 5},
    ]
    assert d.shadow == schemas.RouteRef(alias="staging") and d.shadow_version == 3
    assert _routes(d) == [(1, 85), (2, 10), (3, 5)]
    assert d.batching == schemas.Batching(enabled=True, max_batch_size=16, max_queue_delay_ms=2.0)
    assert (d.max_queue_size, d.timeout_s) == (100, 2.5)
    assert _desired(c.get_deployment("cfg-sdk")) == d
    assert [_desired(x) for x in c.list_deployments() if x.name == "cfg-sdk"] == [d]

    # The inference server serves the primary, as before.
    c.wait_until_served("cfg-sdk", 1)
    X, _ = iris()
    assert c.predict("cfg-sdk", X[:2])["label"].shape == (2,)

    # An alias route follows its alias.
    c.set_alias("cfg-sdk", "staging", 4)
    moved = c.get_deployment("cfg-sdk")
    assert (_routes(moved), moved.shadow_version) == ([(1, 85), (2, 10), (4, 5)], 4)

    # One setting at a time; the others keep their value. Schema objects work as well as dicts.
    d = c.update_deployment("cfg-sdk", timeout_s=9)
    assert (d.version, _routes(d), d.timeout_s, d.max_queue_size, d.batching.enabled) == (
        1,
        [(1, 85), (2, 10), (4, 5)],
        9.0,
        100,
        True,
    )
    d = c.update_deployment(
        "cfg-sdk", traffic=[schemas.TrafficRoute(version=3, weight=40)], shadow=schemas.RouteRef(version=2)
    )
    assert (_routes(d), d.shadow_version, d.timeout_s) == ([(1, 60), (3, 40)], 2, 9.0)
    d = c.update_deployment("cfg-sdk", batching=schemas.Batching(max_queue_delay_ms=0.5))
    assert d.batching.model_dump() == {"enabled": False, "max_batch_size": 32, "max_queue_delay_ms": 0.5}

    # Empty values clear.
    d = c.update_deployment("cfg-sdk", traffic=[], shadow={}, batching={})
    assert (d.traffic, d.shadow, d.shadow_version, _routes(d)) == ([], None, None, [(1, 100)])
    assert d.batching.model_dump() == DEFAULT_BATCHING
    assert (d.max_queue_size, d.timeout_s) == (100, 9.0)


def test_a_deployment_without_settings_shows_the_defaults(platform: Platform) -> None:
    c = platform.client
    _register(platform, "cfg-plain", 1)
    d = c.deploy("cfg-plain", model="cfg-plain")
    assert (d.traffic, d.shadow, _routes(d)) == ([], None, [(1, 100)])
    assert (d.batching.model_dump(), d.max_queue_size, d.timeout_s) == (DEFAULT_BATCHING, 1024, 30.0)
    body = httpx.get(f"{platform.api_url}/api/v1/deployments/cfg-plain", headers=AUTH).json()
    assert body["routes"] == [{"version": 1, "weight": 100}] and body["batching"] == DEFAULT_BATCHING


def test_sdk_refuses_values_out_of_range_before_sending_them(platform: Platform) -> None:
    with pytest.raises(InvalidArgument, match="max_queue_size") as error:
        platform.client.deploy("cfg-never", model="cfg-never", max_queue_size=0)
    assert error.value.details["field"] == "max_queue_size"
    with pytest.raises(InvalidArgument, match=r"traffic\.0\.weight"):
        platform.client.deploy("cfg-never", model="cfg-never", traffic=[{"version": 1, "weight": 200}])


# -- REST: every invalid value is a 400 naming its field ---------------------------------------------

INVALID: list[tuple[dict[str, Any], str]] = [
    ({"traffic": {"version": 2, "weight": 1}}, "traffic"),
    ({"traffic": [{"version": 2, "weight": 101}]}, "traffic.0.weight"),
    ({"traffic": [{"version": 2, "weight": -1}]}, "traffic.0.weight"),
    ({"traffic": [{"version": 2}]}, "traffic.0.weight"),
    ({"traffic": [{"version": 0, "weight": 1}]}, "traffic.0.version"),
    ({"traffic": [{"version": 2, "weight": 1, "share": 1}]}, "traffic.0.share"),
    ({"traffic": [{"weight": 1}]}, "traffic[0]"),
    ({"traffic": [{"version": 2, "alias": "staging", "weight": 1}]}, "traffic[0]"),
    ({"traffic": [{"version": 2, "weight": 60}, {"version": 3, "weight": 41}]}, "traffic weights"),
    ({"traffic": [{"version": 2, "weight": 1}, {"version": 2, "weight": 1}]}, "traffic[1].version"),
    ({"traffic": [{"version": 99, "weight": 1}]}, "traffic[0].version"),
    ({"traffic": [{"alias": "missing", "weight": 1}]}, "traffic[0].alias"),
    ({"traffic": [{"alias": "latest", "weight": 1}]}, "traffic[0].alias"),
    ({"traffic": [{"version": 1, "weight": 1}]}, "traffic[0].version"),
    ({"shadow": {"version": 99}}, "shadow.version"),
    ({"shadow": {"version": 2, "weight": 3}}, "shadow.weight"),
    ({"shadow": {"version": 1}}, "shadow.version"),
    ({"shadow": {"version": 2, "alias": "staging"}}, "shadow"),
    ({"batching": {"enabled": "maybe"}}, "batching.enabled"),
    ({"batching": {"max_batch_size": 0}}, "batching.max_batch_size"),
    ({"batching": {"max_batch_size": 4097}}, "batching.max_batch_size"),
    ({"batching": {"max_queue_delay_ms": 1001}}, "batching.max_queue_delay_ms"),
    ({"batching": {"max_queue_delay_ms": -0.5}}, "batching.max_queue_delay_ms"),
    ({"batching": {"size": 4}}, "batching.size"),
    ({"max_queue_size": 0}, "max_queue_size"),
    ({"max_queue_size": 100_001}, "max_queue_size"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"timeout_s": 3601}, "timeout_s"),
    ({"timeout_s": "soon"}, "timeout_s"),
]


@pytest.fixture(scope="module")
def api_model(platform: Platform) -> str:
    """Model ``cfg-api``: versions 1-3 take the same inputs, alias ``staging`` → 3;
    deployment ``cfg-api`` serves version 1."""
    _register(platform, "cfg-api", 3)
    platform.client.set_alias("cfg-api", "staging", 3)
    platform.client.deploy("cfg-api", model="cfg-api", version=1)
    return "cfg-api"


@pytest.mark.parametrize(("body", "field"), INVALID, ids=[f"{i}-{f}" for i, (_, f) in enumerate(INVALID)])
def test_invalid_values_are_400_naming_the_field(
    platform: Platform, api_model: str, body: dict[str, Any], field: str
) -> None:
    before = _desired(platform.client.get_deployment(api_model))
    api = f"{platform.api_url}/api/v1/deployments"
    for response in (
        httpx.post(api, json={"name": "cfg-new", "model": api_model, "version": 1, **body}, headers=AUTH),
        httpx.patch(f"{api}/{api_model}", json=body, headers=AUTH),
    ):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "INVALID_ARGUMENT"
        assert field in error["message"], error["message"]
    assert _desired(platform.client.get_deployment(api_model)) == before
    assert "cfg-new" not in [d.name for d in platform.client.list_deployments()]


def test_a_route_that_cannot_take_the_primarys_requests_is_409(platform: Platform, api_model: str) -> None:
    narrow = _register_narrow(platform, api_model)
    api = f"{platform.api_url}/api/v1/deployments/{api_model}"
    response = httpx.patch(api, json={"traffic": [{"version": narrow, "weight": 5}]}, headers=AUTH)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "CONFLICT"
    assert "traffic[0].version: version 4 of 'cfg-api' takes inputs" in response.json()["error"]["message"]
    with pytest.raises(Conflict, match=r"shadow\.version: version 4"):
        platform.client.update_deployment(api_model, shadow={"version": narrow})
    platform.client.archive_version(api_model, narrow)
    with pytest.raises(Conflict, match="is archived and cannot take requests"):
        platform.client.update_deployment(api_model, shadow={"version": narrow})


# -- versions in use ---------------------------------------------------------------------------------


def test_canary_and_shadow_versions_cannot_be_archived(platform: Platform) -> None:
    c = platform.client
    _register(platform, "cfg-use", 4)
    c.set_alias("cfg-use", "mirror", 4)
    c.deploy(
        "cfg-use",
        model="cfg-use",
        version=1,
        traffic=[{"version": 2, "weight": 20}],
        shadow={"version": 3},
        batching={"enabled": True},
    )
    for version in (2, 3):
        response = httpx.post(
            f"{platform.api_url}/api/v1/models/cfg-use/versions/{version}/archive", headers=AUTH
        )
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "CONFLICT" and error["details"]["deployments"] == ["cfg-use"]
        assert f"cannot archive version {version} of 'cfg-use'" in error["message"]
        with pytest.raises(Conflict, match=rf"cannot delete version {version}"):
            c.delete_version("cfg-use", version)
    assert c.get_version("cfg-use", 2).status == c.get_version("cfg-use", 3).status == "ready"

    c.update_deployment("cfg-use", shadow={"alias": "mirror"})
    with pytest.raises(Conflict, match=r"alias 'mirror' is followed by deployments \['cfg-use'\]"):
        c.delete_alias("cfg-use", "mirror")
    with pytest.raises(Conflict, match="cannot archive version 4"):
        c.archive_version("cfg-use", 4)
    # Version 3 is no longer served; the canary still is.
    assert c.archive_version("cfg-use", 3).status == "archived"
    with pytest.raises(Conflict, match="cannot archive version 2"):
        c.archive_version("cfg-use", 2)


# -- CLI -----------------------------------------------------------------------------------------------


def test_cli_deploys_with_canaries_shadow_and_settings_then_shows_and_clears_them(platform: Platform) -> None:
    _register(platform, "cfg-cli", 3)
    platform.client.set_alias("cfg-cli", "staging", 3)
    code, out, err = aiaas(
        platform,
        "deploy",
        "cfg-cli",
        "--version",
        "1",
        "--canary",
        "2:10",
        "--canary",
        "staging:5",
        "--shadow",
        "3",
        "--batching",
        "--max-batch-size",
        "8",
        "--max-queue-delay-ms",
        "1.5",
        "--max-queue-size",
        "50",
        "--timeout-s",
        "4",
        "--json",
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["routes"] == [
        {"version": 1, "weight": 85},
        {"version": 2, "weight": 10},
        {"version": 3, "weight": 5},
    ]
    assert (created["shadow"], created["shadow_version"]) == ({"version": 3, "alias": None}, 3)
    assert created["batching"] == {"enabled": True, "max_batch_size": 8, "max_queue_delay_ms": 1.5}
    assert (created["max_queue_size"], created["timeout_s"]) == (50, 4.0)

    code, out, _ = aiaas(platform, "deployments", "list")
    assert code == 0 and "v1 85% · v2 10% · v3 5%" in out

    code, out, _ = aiaas(platform, "deployments", "show", "cfg-cli", "--json")
    assert code == 0 and {**json.loads(out), "served": None} == created
    code, out, _ = aiaas(platform, "deployments", "show", "cfg-cli")
    assert code == 0
    for text in ("v1 85% · v2 10% · v3 5%", "@staging 5%", "on: up to 8 requests", "50", "4 s"):
        assert text in out, out

    # On an existing deployment an option changes only itself: batching stays on.
    code, out, err = aiaas(platform, "deploy", "cfg-cli", "--max-batch-size", "4", "--json")
    assert code == 0, err
    changed = json.loads(out)
    assert changed["batching"] == {"enabled": True, "max_batch_size": 4, "max_queue_delay_ms": 1.5}
    assert (changed["version"], changed["routes"], changed["timeout_s"]) == (1, created["routes"], 4.0)

    code, out, err = aiaas(platform, "deploy", "cfg-cli", "--no-canary", "--no-shadow", "--no-batching")
    assert code == 0, err
    assert "serves cfg-cli v1 (version 1)" in out
    cleared = platform.client.get_deployment("cfg-cli")
    assert (_routes(cleared), cleared.shadow, cleared.batching.enabled) == ([(1, 100)], None, False)
    code, out, _ = aiaas(platform, "deployments", "show", "cfg-cli")
    assert "v1 100%" in out and "off" in out


def test_cli_refuses_bad_canaries_and_reports_server_errors(platform: Platform) -> None:
    code, _, err = aiaas(platform, "deploy", "cfg-cli-bad", "--canary", "3", "--no-wait")
    assert code == 2 and "VERSION:WEIGHT" in err
    code, _, err = aiaas(platform, "deploy", "cfg-cli-bad", "--canary", "3:10", "--no-canary")
    assert code == 2 and "not both" in err
    _register(platform, "cfg-cli-bad", 1)
    result = runner.invoke(
        app, ["--url", platform.api_url, "deploy", "cfg-cli-bad", "--canary", "7:10", "--no-wait"]
    )
    assert isinstance(result.exception, InvalidArgument)
    assert "traffic[0].version must be a version of model 'cfg-cli-bad'" in str(result.exception)


@pytest.mark.parametrize("command", [["deploy"], ["deployments", "show"], ["deployments", "list"]])
def test_deployment_commands_document_their_options(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})  # no option name cut short
    assert result.exit_code == 0, result.output
    if command == ["deploy"]:
        for option in (
            "--canary",
            "--shadow",
            "--batching",
            "--max-batch-size",
            "--max-queue-delay-ms",
            "--max-queue-size",
            "--timeout-s",
        ):
            assert option in result.stdout
    assert "Usage:" in result.stdout
