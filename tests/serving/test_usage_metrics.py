"""The inference server's ``/metrics`` describes what its models cost: each replica
process's CPU and memory (checked against psutil's reading of the same pid), the replicas
ready and desired, requests in flight, and the server's own process."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiaas.resources import process_usage
from tests._servers import wait_until
from tests.serving.conftest import IrisModel, Stack


def _series(text: str, name: str, deployment: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of ``name`` for ``deployment``, keyed by their other labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels.get("deployment") == deployment:
                rest = tuple(sorted((k, v) for k, v in s.labels.items() if k != "deployment"))
                found[rest] = s.value
    return found


def test_process_usage_reads_what_psutil_reads() -> None:
    code = "import sys; print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"  # started, now idle
        usage = process_usage(child.pid)
        assert usage is not None
        rss = psutil.Process(child.pid).memory_info().rss
        assert usage.resident_bytes == pytest.approx(rss, rel=0.05)
        # This process keeps working between the readings: its CPU time lies between them.
        tick = 0.011
        before = sum(psutil.Process().cpu_times()[:2])
        mine = process_usage(os.getpid())
        after = sum(psutil.Process().cpu_times()[:2])
        assert mine is not None and before - tick <= mine.cpu_seconds <= after + tick
    finally:
        child.communicate(b"")
    assert process_usage(child.pid) is None, "a process that has exited has nothing to read"


def test_each_replica_reports_its_cpu_and_memory(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    model = f"usage-{uuid.uuid4().hex[:8]}"
    stack.registry.register_version(model, iris_model(1.0).package)
    stack.deployments.create(model, model=model, version=1, min_replicas=2, max_replicas=2)
    stack.wait_served(model, 1)
    body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": iris_x[0].tolist()}]}
    for _ in range(20):
        assert stack.http.post(f"/v2/models/{model}/infer", json=body).status_code == 200

    def both_ready() -> bool:
        ready = _series(stack.http.get("/metrics").text, "aiaas_replicas", model)
        return ready.get((("model", model), ("state", "ready"), ("version", "1"))) == 2

    wait_until(both_ready, timeout=30, what="two ready replicas in /metrics")
    text = stack.http.get("/metrics").text
    memory = _series(text, "aiaas_replica_resident_memory_bytes", model)
    cpu = _series(text, "aiaas_replica_cpu_seconds_total", model)
    pids = {int(dict(labels)["pid"]) for labels in memory}
    assert len(pids) == 2 and pids == {int(dict(labels)["pid"]) for labels in cpu}
    server = psutil.Process(stack.server.proc.pid)
    for pid in pids:
        replica = psutil.Process(pid)
        assert replica.ppid() == server.pid, "a replica is a child of the server"
        labels = (("model", model), ("pid", str(pid)), ("version", "1"))
        assert memory[labels] == pytest.approx(replica.memory_info().rss, rel=0.25)
        times = replica.cpu_times()
        assert 0 < cpu[labels] <= times.user + times.system + 0.05
    assert _series(text, "aiaas_requests_in_flight", model) == {(("model", model), ("version", "1")): 0.0}
    assert _series(text, "aiaas_replica_restarts_total", model) == {(("model", model), ("version", "1")): 0.0}
    own = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert own["process_resident_memory_bytes"] == pytest.approx(server.memory_info().rss, rel=0.25)

    stack.deployments.delete(model)
    wait_until(
        lambda: not _series(stack.http.get("/metrics").text, "aiaas_replica_resident_memory_bytes", model),
        timeout=30,
        what="a deleted deployment's replicas to leave /metrics",
    )
