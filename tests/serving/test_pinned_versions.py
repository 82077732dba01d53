"""Versions called by number over real HTTP: always the artifact the number was given to,
refused once deleted or archived, in V2 and V1 alike, and loaded within a bound."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.deployments import DeploymentService
from aiaas.registry import Registry
from aiaas.sdk import Client
from aiaas.store import Database, open_artifact_store
from tests._auth import AUTH
from tests._servers import ServerProcess, free_port, spawn, wait_until
from tests.conftest import fresh_database, server_environment
from tests.serving.conftest import IrisModel, Stack, artifact_root

ATOL = 1e-6


def _v2(x: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {
        "inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.reshape(-1).tolist()}]
    }


def _probabilities(response: httpx.Response) -> np.ndarray[Any, Any]:
    assert response.status_code == 200, response.text
    out = {o["name"]: o for o in response.json()["outputs"]}["probabilities"]
    return np.asarray(out["data"]).reshape(out["shape"])


def test_a_deleted_number_is_refused_and_never_answers_for_another_model(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    """The abuse campaign's repro: v3 called, deleted, another model registered."""
    x = iris_x[:5]
    for c in (1.0, 0.01, 0.1):
        stack.registry.register_version("renumber", iris_model(c).package)
    stack.registry.set_alias("renumber", "production", 1)
    stack.deployments.create("renumber", model="renumber", alias="production")
    stack.wait_served("renumber", 1)
    path = "/v2/models/renumber/versions/3/infer"
    np.testing.assert_allclose(
        _probabilities(stack.http.post(path, json=_v2(x))), iris_model(0.1).proba(x), atol=ATOL
    )

    stack.registry.delete_version("renumber", 3)
    replacement = stack.registry.register_version("renumber", iris_model(3.0).package)
    assert replacement.version == 4

    gone = stack.http.post(path, json=_v2(x))
    assert gone.status_code == 404, gone.text
    assert "version 3 of model 'renumber' was deleted" in gone.json()["error"]
    # Moving the alias off and back does not bring the deleted model back either.
    stack.registry.set_alias("renumber", "production", 2)
    stack.wait_served("renumber", 2)
    assert stack.http.post(path, json=_v2(x)).status_code == 404
    fresh = stack.http.post("/v2/models/renumber/versions/4/infer", json=_v2(x))
    assert fresh.headers["x-aiaas-model-version"] == "4"
    np.testing.assert_allclose(_probabilities(fresh), iris_model(3.0).proba(x), atol=ATOL)


def test_an_archived_version_is_refused_naming_its_state(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    for c in (1.0, 0.01):
        stack.registry.register_version("shelved", iris_model(c).package)
    stack.deployments.create("shelved", model="shelved", version=1)
    stack.wait_served("shelved", 1)
    assert stack.http.post("/v2/models/shelved/versions/2/infer", json=_v2(iris_x[:2])).status_code == 200
    stack.registry.archive_version("shelved", 2)
    refused = stack.http.post("/v2/models/shelved/versions/2/infer", json=_v2(iris_x[:2]))
    assert refused.status_code == 409, refused.text
    assert "version 2 of model 'shelved' is archived" in refused.json()["error"]


# -- V1 bodies with a version ------------------------------------------------------------------


@pytest.fixture
def two_versions(stack: Stack, iris_model: Callable[[float], IrisModel]) -> str:
    name = "v1pin"
    if name not in {m.name for m in stack.registry.list_models()}:  # once per server
        for c in (1.0, 0.01):
            stack.registry.register_version(name, iris_model(c).package)
        stack.deployments.create(name, model=name, version=1)
    stack.wait_served(name, 1)
    return name


def test_v1_predict_of_a_version_is_answered_by_that_version(
    stack: Stack, two_versions: str, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    x = iris_x[::30]
    r = stack.http.post(f"/v1/models/{two_versions}/versions/2:predict", json={"instances": x.tolist()})
    assert r.status_code == 200, r.text
    assert r.headers["x-aiaas-model-version"] == "2"
    probabilities = np.asarray([p["probabilities"] for p in r.json()["predictions"]])
    np.testing.assert_allclose(probabilities, iris_model(0.01).proba(x), atol=ATOL)
    assert stack.http.get(f"/v1/models/{two_versions}/versions/2").json() == {
        "name": two_versions,
        "ready": True,
    }
    assert (
        stack.http.post(
            f"/v1/models/{two_versions}/versions/9:predict", json={"instances": x.tolist()}
        ).status_code
        == 404
    )
    bad = stack.http.post(f"/v1/models/{two_versions}/versions/two:predict", json={"instances": x.tolist()})
    assert bad.status_code == 400 and "'two'" in bad.json()["error"]
    assert stack.http.post(f"/v1/models/{two_versions}/versions/2:generate", json={}).status_code == 404
    # :explain is a verb of its own now (docs/explain.md): an empty body is a 400, not a 404.
    assert stack.http.post(f"/v1/models/{two_versions}/versions/2:explain", json={}).status_code == 400


def test_sdk_and_cli_send_a_v1_body_to_the_version_asked_for(
    stack: Stack, two_versions: str, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    x = iris_x[::30]
    expected = iris_model(0.01).proba(x)
    with Client("http://127.0.0.1:9", inference_url=stack.url) as client:
        body = client.infer_json(two_versions, {"instances": x.tolist()}, protocol="v1", version=2)
    np.testing.assert_allclose([p["probabilities"] for p in body["predictions"]], expected, atol=ATOL)

    result = CliRunner().invoke(
        app,
        ["--inference-url", stack.url, "predict", two_versions, "-", "--version", "2", "--json"],
        input=f'{{"instances": {x.tolist()}}}',
    )
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)["predictions"]
    np.testing.assert_allclose([p["probabilities"] for p in predictions], expected, atol=ATOL)


# -- on-demand loads share the CPU budget ----------------------------------------------------


def _replica_tags(server: ServerProcess) -> list[str]:
    """The ``deployment/vN`` tags of the replica processes ``server`` runs now."""
    tags = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if len(argv) >= 5 and argv[1].endswith("replica_process.py") and argv[3] == str(server.proc.pid):
            tags.append(argv[4])
    return sorted(tags)


@pytest.fixture
def budget_server(
    tmp_path: Path, iris_model: Callable[[float], IrisModel]
) -> Iterator[tuple[ServerProcess, str]]:
    """An inference server with AIAAS_CPU_BUDGET=2 serving deployment ``budget`` at v1 (one
    replica), whose model has versions 2..5 to call on demand: one on-demand slot."""
    home = tmp_path / "home"
    home.mkdir()
    with fresh_database("sqlite", home) as url:
        db = Database(url)
        db.upgrade()
        registry = Registry(db, open_artifact_store(artifact_root(home)))
        for c in (1.0, 0.01, 0.1, 3.0, 0.3):
            registry.register_version("budget", iris_model(c).package)
        DeploymentService(registry).create("budget", model="budget", version=1)
        port = free_port()
        env = {**server_environment(home, url), "AIAAS_INFERENCE_PORT": str(port), "AIAAS_CPU_BUDGET": "2"}
        server = spawn(
            ["-m", "aiaas.serving"],
            env=env,
            ready_url=f"http://127.0.0.1:{port}/v2/health/ready",
            log=tmp_path / "serve.log",
        )
        try:
            wait_until(
                lambda: httpx.get(f"{server.url}/v2/models/budget", headers=AUTH).status_code == 200,
                timeout=60,
                what="budget v1",
            )
            yield server, server.url
        finally:
            server.stop()
            db.dispose()


def test_on_demand_versions_share_the_cpu_budget(
    budget_server: tuple[ServerProcess, str],
    iris_model: Callable[[float], IrisModel],
    iris_x: np.ndarray[Any, Any],
) -> None:
    server, url = budget_server
    x = iris_x[:3]

    def on_demand() -> list[str]:
        return [t for t in _replica_tags(server) if t != "budget/v1"]

    with httpx.Client(base_url=url, timeout=120, headers=AUTH) as http:
        for version, c in ((2, 0.01), (3, 0.1), (4, 3.0)):
            r = http.post(f"/v2/models/budget/versions/{version}/infer", json=_v2(x))
            np.testing.assert_allclose(_probabilities(r), iris_model(c).proba(x), atol=ATOL)
            # The one on-demand slot: the previous version's replica is stopped for this one.
            wait_until(
                lambda: len(on_demand()) <= 1, timeout=30, what=f"one on-demand replica, not {on_demand()}"
            )
            assert "budget/v1" in _replica_tags(server)

        statuses: list[tuple[int, str, str | None]] = []

        def call(version: int) -> None:
            r = http.post(f"/v2/models/budget/versions/{version}/infer", json=_v2(x))
            statuses.append((r.status_code, r.text, r.headers.get("retry-after")))

        threads = [threading.Thread(target=call, args=(v,)) for v in (2, 3, 5, 2, 3, 5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert len(statuses) == 6
    for status, text, retry_after in statuses:
        assert status in (200, 429), text
        if status == 429:
            assert "AIAAS_CPU_BUDGET=2" in text and "on-demand" in text
            assert retry_after == "1"
    wait_until(lambda: len(on_demand()) <= 1, timeout=30, what=f"one on-demand replica, not {on_demand()}")
