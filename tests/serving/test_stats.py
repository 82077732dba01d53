"""Per-model statistics: the V2 statistics shape and the Prometheus exposition."""

from __future__ import annotations

import doctest

from aiaas.serving import stats as stats_module
from aiaas.serving.stats import ServingMetrics


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
