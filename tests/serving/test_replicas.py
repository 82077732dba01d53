"""Replica processes: a deployment runs in child processes of the inference server, a
killed replica is replaced, and requests in flight on it are retried, so clients see no error."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import psutil

from tests._auth import AUTH
from tests._servers import wait_until
from tests.serving.conftest import IrisModel, Stack
from tests.serving.test_reconcile import ATOL, RTOL, probabilities, v2_body


def replica_pids(stack: Stack, deployment: str, version: int) -> set[int]:
    """The live replica processes serving ``deployment`` at ``version``, by their ``ps`` tag."""
    tag = f"{deployment}/v{version}"
    pids = set()
    for child in psutil.Process(stack.server.proc.pid).children():
        try:
            if child.cmdline()[-1:] == [tag] and child.status() != psutil.STATUS_ZOMBIE:
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return pids


def replica_parameters(stack: Stack, deployment: str) -> dict[str, Any]:
    r = stack.http.get(f"/v2/models/{deployment}")
    assert r.status_code == 200, r.text
    replicas: dict[str, Any] = r.json()["parameters"]["replicas"]
    return replicas


@dataclass
class Load:
    """Client threads sending requests back to back to one deployment, keeping every answer."""

    url: str
    deployment: str
    x: np.ndarray[Any, Any]
    clients: int = 4
    answers: list[tuple[str, np.ndarray[Any, Any]]] = field(default_factory=list)
    #: Each client thread's versions, in the order it got its answers.
    by_client: dict[int, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def _client(self) -> None:
        body = v2_body(self.x)
        with httpx.Client(base_url=self.url, timeout=30, headers=AUTH) as http:
            while not self.stop.is_set():
                try:
                    r = http.post(f"/v2/models/{self.deployment}/infer", json=body)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if r.status_code != 200:
                    self.failures.append(f"{r.status_code}: {r.text}")
                    continue
                version = r.json()["model_version"]
                self.answers.append((version, probabilities(r)))
                self.by_client.setdefault(threading.get_ident(), []).append(version)

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def wait_for_more(self, count: int, what: str) -> None:
        start = len(self.answers)
        wait_until(lambda: len(self.answers) >= start + count or bool(self.failures), timeout=30, what=what)


def test_deployment_runs_in_replica_processes_of_the_server(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    model = iris_model(0.7)
    stack.registry.register_version("isolated", model.package)
    stack.deployments.create("isolated", model="isolated", min_replicas=2, max_replicas=3)
    stack.wait_served("isolated", 1)

    wait_until(lambda: len(replica_pids(stack, "isolated", 1)) == 2, timeout=30, what="2 replicas")
    params = replica_parameters(stack, "isolated")
    assert params["min_replicas"] == 2 and params["max_replicas"] == 3
    assert params["running"] == 2 and params["in_process"] is False
    r = stack.http.post("/v2/models/isolated/infer", json=v2_body(iris_x))
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(probabilities(r), model.proba(iris_x), rtol=RTOL, atol=ATOL)
    # A replica imports numpy and ONNX Runtime only: it stays small when idle.
    for pid in replica_pids(stack, "isolated", 1):
        assert psutil.Process(pid).memory_info().rss < 150 * 1024 * 1024


def test_killed_replica_costs_no_request_and_is_replaced(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    model = iris_model(0.9)
    stack.registry.register_version("crashy", model.package)
    stack.deployments.create("crashy", model="crashy", min_replicas=2, max_replicas=2)
    stack.wait_served("crashy", 1)
    wait_until(lambda: len(replica_pids(stack, "crashy", 1)) == 2, timeout=30, what="2 replicas")
    before = replica_pids(stack, "crashy", 1)
    victim = min(before)
    restarts = replica_parameters(stack, "crashy")["restarts"]

    with Load(stack.url, "crashy", iris_x[::7], clients=6) as load:
        load.wait_for_more(100, "traffic on two replicas")
        os.kill(victim, signal.SIGKILL)
        load.wait_for_more(100, "traffic after the kill")

        def restored() -> bool:
            pids = replica_pids(stack, "crashy", 1)
            return (
                victim not in pids and len(pids) == 2 and replica_parameters(stack, "crashy")["running"] == 2
            )

        wait_until(restored, timeout=30, what="the supervisor to restore 2 replicas")
        load.wait_for_more(100, "traffic on the replacement")

    assert load.failures == []
    assert replica_parameters(stack, "crashy")["restarts"] == restarts + 1
    assert stack.server.alive()
    for version, proba in load.answers:
        assert version == "1"
        np.testing.assert_allclose(proba, model.proba(load.x), rtol=RTOL, atol=ATOL)


def test_killed_single_replica_is_retried_on_its_successor(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    model = iris_model(1.1)
    stack.registry.register_version("lonely", model.package)
    stack.deployments.create("lonely", model="lonely", min_replicas=1, max_replicas=1, timeout_s=20)
    stack.wait_served("lonely", 1)
    wait_until(lambda: len(replica_pids(stack, "lonely", 1)) == 1, timeout=30, what="1 replica")
    (victim,) = replica_pids(stack, "lonely", 1)

    with Load(stack.url, "lonely", iris_x[::7], clients=4) as load:
        load.wait_for_more(50, "traffic on the replica")
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: len(replica_pids(stack, "lonely", 1) - {victim}) == 1, timeout=30, what="a successor"
        )
        load.wait_for_more(50, "traffic on the successor")

    assert load.failures == []
    for _, proba in load.answers:
        np.testing.assert_allclose(proba, model.proba(load.x), rtol=RTOL, atol=ATOL)


def test_version_switch_under_load_starts_new_replicas_first_and_drains_the_old(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    models = {"1": iris_model(2.0), "2": iris_model(0.02)}
    stack.registry.register_version("swap", models["1"].package)
    stack.registry.register_version("swap", models["2"].package)
    stack.deployments.create("swap", model="swap", version=1, min_replicas=2, max_replicas=2)
    stack.wait_served("swap", 1)
    wait_until(lambda: len(replica_pids(stack, "swap", 1)) == 2, timeout=30, what="2 replicas of v1")
    old = replica_pids(stack, "swap", 1)

    with Load(stack.url, "swap", iris_x[::5], clients=6) as load:
        load.wait_for_more(100, "traffic on version 1")
        stack.deployments.update("swap", version=2)
        wait_until(
            lambda: (bool(load.answers) and load.answers[-1][0] == "2") or bool(load.failures),
            timeout=30,
            what="version 2 to be served",
        )
        # The old processes exit once drained, while the load goes on.
        wait_until(
            lambda: not any(psutil.pid_exists(p) and _alive(p) for p in old),
            timeout=30,
            what="the old replicas to exit",
        )
        load.wait_for_more(100, "traffic on version 2")

    assert load.failures == []
    assert len(replica_pids(stack, "swap", 2)) == 2
    versions = [v for v, _ in load.answers]
    switch = versions.index("2")
    assert set(versions[:switch]) == {"1"} and switch >= 100
    # A request sent before the switch may still be answered by v1 after the first v2 answer
    # (one per other client); a request a client sends once it has seen v2 never is.
    assert versions[switch:].count("1") <= load.clients - 1
    for seen in load.by_client.values():
        if "2" in seen:
            assert "1" not in seen[seen.index("2") :], seen
    for version, proba in load.answers:
        np.testing.assert_allclose(proba, models[version].proba(load.x), rtol=RTOL, atol=ATOL)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
