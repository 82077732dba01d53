"""Per-model serving statistics: counters the inference server keeps for every version.

Two views of the same numbers: ``/v2/models/{name}/stats`` in the shape of the V2
statistics extension (what tritonclient's ``get_inference_statistics`` reads), and
Prometheus metrics on ``/metrics``. Each app owns its own :class:`ServingMetrics` and
Prometheus registry, so tests and several apps in one process never share counters.

Recording is a handful of additions under one lock per request: the histograms' buckets
are counted here, and the Prometheus families are built from these counts only when
``/metrics`` is scraped. Updating prometheus_client's own metric objects instead (five
calls, each with its own lock, per request) was a visible share of the event loop's time
per request in ``benchmarks/serving.py``, so statistics can stay on in the hot path.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric

__all__ = ["ServingMetrics", "VersionStats"]


_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_LABELS = ("deployment", "model", "version")


@dataclass
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, seconds: float, count: int = 1) -> None:
        self.count += count
        self.ns += int(seconds * 1e9)

    def to_dict(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


class _Histogram:
    """Observations counted per bucket (the last one is +Inf), and their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": the first bound >= value.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        buckets, total = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            # How prometheus_client writes a bound: 8 -> "8.0", infinity -> "+Inf".
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), float(total)))
        return buckets


@dataclass
class VersionStats:
    """Counters of one deployment's version; shared by every request that version serves."""

    deployment: str
    model: str
    version: int
    success: _Duration = field(default_factory=_Duration)
    fail: _Duration = field(default_factory=_Duration)
    queue: _Duration = field(default_factory=_Duration)
    compute: _Duration = field(default_factory=_Duration)
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    batch_sizes: dict[int, _Duration] = field(default_factory=dict)
    _request_seconds: _Histogram = field(default_factory=lambda: _Histogram(_LATENCY_BUCKETS_S))
    _queue_seconds: _Histogram = field(default_factory=lambda: _Histogram(_LATENCY_BUCKETS_S))
    _compute_seconds: _Histogram = field(default_factory=lambda: _Histogram(_LATENCY_BUCKETS_S))
    _batch_rows: _Histogram = field(default_factory=lambda: _Histogram(_BATCH_BUCKETS))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record_success(self, *, rows: int, total_s: float, queue_s: float, compute_s: float) -> None:
        """One request answered: ``rows`` inferences; ``queue_s`` of it waiting, ``compute_s`` running."""
        with self._lock:
            self.success.add(total_s)
            self.queue.add(queue_s)
            self.compute.add(compute_s)
            self.inference_count += rows
            self.last_inference_ms = int(time.time() * 1000)
            self._request_seconds.observe(total_s)
            self._queue_seconds.observe(queue_s)
            self._compute_seconds.observe(compute_s)

    def record_failure(self, *, total_s: float) -> None:
        with self._lock:
            self.fail.add(total_s)

    def record_execution(self, *, batch_rows: int, compute_s: float) -> None:
        """One run of the model (a batch of ``batch_rows`` rows, or one request unbatched)."""
        with self._lock:
            self.execution_count += 1
            self.batch_sizes.setdefault(batch_rows, _Duration()).add(compute_s)
            self._batch_rows.observe(batch_rows)

    def snapshot(self) -> dict[str, Any]:
        """This version's entry of the V2 statistics extension response."""
        with self._lock:
            return {
                "name": self.deployment,
                "version": str(self.version),
                "last_inference": self.last_inference_ms,
                "inference_count": self.inference_count,
                "execution_count": self.execution_count,
                "inference_stats": {
                    "success": self.success.to_dict(),
                    "fail": self.fail.to_dict(),
                    "queue": self.queue.to_dict(),
                    "compute_input": _Duration().to_dict(),
                    "compute_infer": self.compute.to_dict(),
                    "compute_output": _Duration().to_dict(),
                },
                "batch_stats": [
                    {"batch_size": size, "compute_infer": d.to_dict()}
                    for size, d in sorted(self.batch_sizes.items())
                ],
            }


class ServingMetrics:
    """All statistics of one inference server.

    Example:
        >>> metrics = ServingMetrics()
        >>> stats = metrics.for_version("iris", "iris", 1)
        >>> stats.record_success(rows=2, total_s=0.001, queue_s=0.0, compute_s=0.0005)
        >>> metrics.model_stats("iris")[0]["inference_count"]
        2
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._versions: dict[tuple[str, str, int], VersionStats] = {}
        self._lock = threading.Lock()
        self.registry.register(_Collector(self))

    def for_version(self, deployment: str, model: str, version: int) -> VersionStats:
        """The counters of one served version, created on first use and kept for the process."""
        key = (deployment, model, version)
        stats = self._versions.get(key)
        if stats is None:
            with self._lock:
                stats = self._versions.get(key)
                if stats is None:
                    stats = VersionStats(deployment, model, version)
                    self._versions[key] = stats
        return stats

    def model_stats(self, deployment: str, version: int | None = None) -> list[dict[str, Any]]:
        """Entries of ``deployment`` (one version, or every version it has served)."""
        return [
            s.snapshot()
            for (d, _, v), s in sorted(self._versions.items(), key=lambda kv: kv[0][2])
            if d == deployment and (version is None or v == version)
        ]

    def versions(self) -> list[VersionStats]:
        """Every version's counters, in a stable order."""
        with self._lock:
            return [self._versions[key] for key in sorted(self._versions)]

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


class _Collector:
    """Builds the Prometheus metric families from the versions' counters at scrape time."""

    def __init__(self, metrics: ServingMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "aiaas_inference_requests", "Inference requests answered.", labels=[*_LABELS, "outcome"]
        )
        rows = CounterMetricFamily("aiaas_inference_rows", "Rows (inferences) computed.", labels=_LABELS)
        request_seconds = HistogramMetricFamily(
            "aiaas_request_duration_seconds", "Request time in the server.", labels=_LABELS
        )
        queue_seconds = HistogramMetricFamily(
            "aiaas_queue_duration_seconds", "Time waiting for a model run.", labels=_LABELS
        )
        compute_seconds = HistogramMetricFamily(
            "aiaas_compute_duration_seconds", "Model run time of a request's batch.", labels=_LABELS
        )
        batch_size = HistogramMetricFamily("aiaas_batch_size_rows", "Rows per model run.", labels=_LABELS)
        for s in self._metrics.versions():
            labels = [s.deployment, s.model, str(s.version)]
            with s._lock:
                requests.add_metric([*labels, "success"], s.success.count)
                requests.add_metric([*labels, "failure"], s.fail.count)
                rows.add_metric(labels, s.inference_count)
                for family, histogram in (
                    (request_seconds, s._request_seconds),
                    (queue_seconds, s._queue_seconds),
                    (compute_seconds, s._compute_seconds),
                    (batch_size, s._batch_rows),
                ):
                    family.add_metric(labels, histogram.cumulative(), histogram.sum)
        yield from (requests, rows, request_seconds, queue_seconds, compute_seconds, batch_size)
