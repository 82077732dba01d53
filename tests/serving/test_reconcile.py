"""The running server follows the DB without a restart: new deployments, alias moves
(with no failed request), rollbacks, and versions whose artifact is corrupted."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from tests._auth import AUTH
from tests._servers import wait_until
from tests.serving.conftest import IrisModel, Stack

RTOL = 1e-5
ATOL = 1e-7


def v2_body(x: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {
        "inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.reshape(-1).tolist()}]
    }


def probabilities(response: httpx.Response) -> np.ndarray[Any, Any]:
    out = next(o for o in response.json()["outputs"] if o["name"] == "probabilities")
    return np.asarray(out["data"]).reshape(out["shape"])


def test_deployment_created_after_start_becomes_servable(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    model = iris_model(0.5)
    assert stack.http.get("/v2/models/late/ready").status_code == 404
    stack.registry.register_version("late", model.package)
    stack.deployments.create("late", model="late")

    wait_until(
        lambda: stack.http.get("/v2/models/late/ready").status_code == 200,
        timeout=30,
        what="deployment 'late' to become ready",
    )
    r = stack.http.post("/v2/models/late/infer", json=v2_body(iris_x))
    np.testing.assert_allclose(probabilities(r), model.proba(iris_x), rtol=RTOL, atol=ATOL)


@dataclass
class Traffic:
    """A client thread sending requests back to back, recording every answer."""

    url: str
    x: np.ndarray[Any, Any]
    answers: list[tuple[str, np.ndarray[Any, Any]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        body = v2_body(self.x)
        with httpx.Client(base_url=self.url, timeout=30, headers=AUTH) as http:
            while not self.stop.is_set():
                try:
                    r = http.post("/v2/models/ab/infer", json=body)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if r.status_code != 200:
                    self.failures.append(f"{r.status_code}: {r.text}")
                    continue
                self.answers.append((r.json()["model_version"], probabilities(r)))

    def count(self, version: str) -> int:
        return sum(1 for v, _ in self.answers if v == version)

    def last_version(self) -> str | None:
        return self.answers[-1][0] if self.answers else None


def test_moving_an_alias_switches_versions_with_no_failed_request(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    models = {"1": iris_model(1.0), "2": iris_model(0.01)}
    stack.registry.register_version("ab", models["1"].package)
    stack.registry.register_version("ab", models["2"].package)
    stack.registry.set_alias("ab", "production", 1)
    stack.deployments.create("ab", model="ab", alias="production")
    stack.wait_served("ab", 1)

    traffic = Traffic(stack.url, iris_x[::10])
    client = threading.Thread(target=traffic.run, daemon=True)
    client.start()
    try:
        wait_until(lambda: traffic.count("1") >= 20, timeout=30, what="traffic on version 1")
        stack.registry.set_alias("ab", "production", 2)
        wait_until(lambda: traffic.last_version() == "2", timeout=30, what="version 2 to be served")
        served_2 = traffic.count("2")
        wait_until(lambda: traffic.count("2") >= served_2 + 20, timeout=30, what="traffic on version 2")

        stack.registry.set_alias("ab", "production", 1)  # roll back
        wait_until(lambda: traffic.last_version() == "1", timeout=30, what="rollback to version 1")
        served_1 = traffic.count("1")
        wait_until(lambda: traffic.count("1") >= served_1 + 20, timeout=30, what="traffic after rollback")
    finally:
        traffic.stop.set()
        client.join(timeout=30)

    assert traffic.failures == []
    switches = [v for i, (v, _) in enumerate(traffic.answers) if i == 0 or traffic.answers[i - 1][0] != v]
    assert switches == ["1", "2", "1"]
    for version, proba in traffic.answers:
        np.testing.assert_allclose(proba, models[version].proba(traffic.x), rtol=RTOL, atol=ATOL)


def test_deployment_with_corrupted_artifact_is_unavailable(
    stack: Stack, iris_model: Callable[[float], IrisModel]
) -> None:
    version = stack.registry.register_version("rotten", iris_model(0.3).package)
    stack.corrupt(version.artifact_digest)
    stack.deployments.create("rotten", model="rotten")

    wait_until(
        lambda: stack.http.get("/v2/models/rotten/ready").status_code == 503,
        timeout=30,
        what="deployment 'rotten' to be known and unavailable",
    )
    for r in (
        stack.http.get("/v2/models/rotten/ready"),
        stack.http.post("/v2/models/rotten/infer", json=v2_body(np.zeros((1, 4), np.float32))),
        stack.http.post("/v1/models/rotten:predict", json={"instances": [[0.0, 0.0, 0.0, 0.0]]}),
    ):
        assert r.status_code == 503
        message = r.json()["error"]
        assert "corrupted" in message
        assert "'rotten'" in message
    assert stack.http.get("/v2/health/ready").status_code == 200


def test_switch_to_corrupted_version_keeps_serving_the_old_one(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    good, bad = iris_model(2.0), iris_model(0.2)
    stack.registry.register_version("steady", good.package)
    broken = stack.registry.register_version("steady", bad.package)
    stack.registry.set_alias("steady", "production", 1)
    stack.deployments.create("steady", model="steady", alias="production")
    stack.wait_served("steady", 1)

    stack.corrupt(broken.artifact_digest)
    stack.registry.set_alias("steady", "production", 2)
    wait_until(
        lambda: "deployment 'steady' cannot load version 2" in stack.server.output(),
        timeout=30,
        what="the load failure to be recorded in the server log",
    )
    assert "corrupted" in stack.server.output().split("deployment 'steady' cannot load version 2", 1)[1]

    r = stack.http.post("/v2/models/steady/infer", json=v2_body(iris_x))
    assert r.json()["model_version"] == "1"
    np.testing.assert_allclose(probabilities(r), good.proba(iris_x), rtol=RTOL, atol=ATOL)
    assert stack.http.get("/v2/models/steady/ready").status_code == 200
    pinned = stack.http.get("/v2/models/steady/versions/2/ready")
    assert pinned.status_code == 503
    assert "corrupted" in pinned.json()["error"]
