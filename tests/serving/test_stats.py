"""Per-model statistics: the V2 statistics shape and the Prometheus exposition, in
process and through a real server (batched requests included)."""

from __future__ import annotations

import doctest
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest

from aiaas.serving import stats as stats_module
from aiaas.serving.stats import ServingMetrics
from tests._auth import AUTH
from tests._servers import wait_until
from tests.serving.conftest import IrisModel, Stack


def test_records_add_up_in_the_v2_statistics_shape() -> None:
    metrics = ServingMetrics()
    v1 = metrics.for_version("iris", "iris-model", 1)
    assert metrics.for_version("iris", "iris-model", 1) is v1, "one counter set per served version"
    v1.record_success(rows=3, total_s=0.004, queue_s=0.001, compute_s=0.002)
    v1.record_success(rows=1, total_s=0.002, queue_s=0.0, compute_s=0.001)
    v1.record_execution(batch_rows=4, compute_s=0.002)
    v1.record_failure(total_s=0.0005)
    metrics.for_version("iris", "iris-model", 2).record_success(rows=1, total_s=0.001, queue_s=0, compute_s=0)

    (entry,) = metrics.model_stats("iris", 1)
    assert entry["name"] == "iris" and entry["version"] == "1"
    assert entry["inference_count"] == 4 and entry["execution_count"] == 1
    assert entry["inference_stats"]["success"] == {"count": 2, "ns": 6_000_000}
    assert entry["inference_stats"]["fail"]["count"] == 1
    assert entry["inference_stats"]["queue"] == {"count": 2, "ns": 1_000_000}
    assert entry["batch_stats"] == [{"batch_size": 4, "compute_infer": {"count": 1, "ns": 2_000_000}}]
    assert [e["version"] for e in metrics.model_stats("iris")] == ["1", "2"]
    assert metrics.model_stats("other") == []


def test_prometheus_exposition_has_labelled_series() -> None:
    metrics = ServingMetrics()
    s = metrics.for_version("iris", "iris-model", 7)
    s.record_success(rows=5, total_s=0.003, queue_s=0.001, compute_s=0.001)
    s.record_execution(batch_rows=5, compute_s=0.001)
    text = metrics.exposition().decode()
    series = 'deployment="iris",model="iris-model",outcome="success",version="7"'
    assert f"aiaas_inference_requests_total{{{series}}} 1.0" in text
    assert 'aiaas_inference_rows_total{deployment="iris",model="iris-model",version="7"} 5.0' in text
    assert (
        'aiaas_batch_size_rows_bucket{deployment="iris",le="8.0",model="iris-model",version="7"} 1.0' in text
    )


def test_each_server_has_its_own_registry() -> None:
    a, b = ServingMetrics(), ServingMetrics()
    a.for_version("x", "x", 1).record_success(rows=1, total_s=0.001, queue_s=0, compute_s=0)
    assert b.model_stats("x") == []
    assert b"aiaas_inference_rows_total{" not in b.exposition()


def test_docstring_example_runs() -> None:
    assert doctest.testmod(stats_module).failed == 0


def _v2(x: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]}


def _histogram(text: str, name: str, deployment: str) -> tuple[float, float]:
    """The ``_sum`` and ``_count`` of one deployment's series of a Prometheus histogram."""
    labels = f'{{deployment="{deployment}",model="{deployment}",version="1"}}'
    values = {}
    for line in text.splitlines():
        for part in ("sum", "count"):
            if line.startswith(f"{name}_{part}{labels} "):
                values[part] = float(line.rsplit(" ", 1)[1])
    return values["sum"], values["count"]


def test_batched_requests_report_their_queue_wait_and_their_batch_run_time(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    """Triton's meaning, which tritonclient users read: a batched request's compute is the
    run time of the batch it ran in, its queue time the wait until that batch started."""
    import tritonclient.http as triton

    model = f"stats-batched-{uuid.uuid4().hex[:8]}"
    stack.registry.register_version(model, iris_model(1.0).package)
    delay_ms = 50
    stack.deployments.create(
        model,
        model=model,
        version=1,
        batching={"enabled": True, "max_batch_size": 8, "max_queue_delay_ms": delay_ms},
    )

    def batching_on() -> bool:
        r = stack.http.get(f"/v2/models/{model}")
        return r.status_code == 200 and r.json()["parameters"]["batching"]["enabled"] is True

    wait_until(batching_on, timeout=30, what=f"batching of {model!r} to apply")

    # One request alone: it waits out the queue delay, then its batch of one runs.
    assert stack.http.post(f"/v2/models/{model}/infer", json=_v2(iris_x[:1])).status_code == 200
    # A burst of single rows: they share batches.
    with ThreadPoolExecutor(12) as pool:
        codes = list(
            pool.map(
                lambda i: httpx.post(
                    f"{stack.url}/v2/models/{model}/infer", json=_v2(iris_x[i : i + 1]), headers=dict(AUTH)
                ),
                range(24),
            )
        )
    assert all(r.status_code == 200 for r in codes), [r.text for r in codes if r.status_code != 200]

    client = triton.InferenceServerClient(stack.url.removeprefix("http://"))
    try:
        (entry,) = client.get_inference_statistics(model, headers=dict(AUTH))["model_stats"]
    finally:
        client.close()
    requests = 25
    stats = entry["inference_stats"]
    assert int(entry["inference_count"]) == requests
    assert int(stats["success"]["count"]) == requests
    assert int(stats["compute_infer"]["count"]) == requests
    assert int(stats["queue"]["count"]) == requests
    compute_ns, queue_ns = int(stats["compute_infer"]["ns"]), int(stats["queue"]["ns"])
    assert compute_ns > 0, "batched requests report their batch's run time as compute"
    # Every request ran in a batch of single rows, so the requests' compute adds up to
    # each batch's run time times the requests in it (1 ns of rounding per request).
    per_batch = sum(int(b["batch_size"]) * int(b["compute_infer"]["ns"]) for b in entry["batch_stats"])
    assert abs(compute_ns - per_batch) <= requests, (compute_ns, per_batch)
    assert queue_ns + compute_ns <= int(stats["success"]["ns"])
    assert int(entry["execution_count"]) < requests, "the burst shared model runs"
    # The lone request waited out the delay (its batch never filled) before its batch ran.
    # (How the two totals compare depends on the machine: a loaded one stretches the runs.)
    assert queue_ns >= delay_ms * 1_000_000 * 0.9

    # Prometheus tells the same story.
    text = stack.http.get("/metrics").text
    compute_sum, compute_count = _histogram(text, "aiaas_compute_duration_seconds", model)
    queue_sum, queue_count = _histogram(text, "aiaas_queue_duration_seconds", model)
    assert compute_count == queue_count == requests
    assert compute_sum == pytest.approx(compute_ns / 1e9, rel=1e-3, abs=1e-6)
    assert queue_sum == pytest.approx(queue_ns / 1e9, rel=1e-3, abs=1e-6)


def test_histogram_buckets_count_a_value_on_a_bound_in_that_bound() -> None:
    """Prometheus buckets are "less than or equal"; the counts are cumulative."""
    metrics = ServingMetrics()
    s = metrics.for_version("d", "m", 1)
    for rows in (8, 9, 2000):
        s.record_execution(batch_rows=rows, compute_s=0.001)
    text = metrics.exposition().decode()

    def bucket(le: str) -> str:
        return f'aiaas_batch_size_rows_bucket{{deployment="d",le="{le}",model="m",version="1"}}'

    assert f"{bucket('4.0')} 0.0" in text
    assert f"{bucket('8.0')} 1.0" in text
    assert f"{bucket('16.0')} 2.0" in text
    assert f"{bucket('1024.0')} 2.0" in text
    assert f"{bucket('+Inf')} 3.0" in text
    assert 'aiaas_batch_size_rows_sum{deployment="d",model="m",version="1"} 2017.0' in text
