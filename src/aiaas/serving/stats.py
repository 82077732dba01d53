"""Per-model serving statistics: counters the inference server keeps for every version.

Two views of the same numbers: ``/v2/models/{name}/stats`` in the shape of the V2
statistics extension (what tritonclient's ``get_inference_statistics`` reads), and
Prometheus metrics on ``/metrics``. Each app owns its own :class:`ServingMetrics` and
Prometheus registry, so tests and several apps in one process never share counters.

Recording is a handful of integer additions under a lock plus one histogram observation,
so it can stay on in the hot path.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["PROMETHEUS_CONTENT_TYPE", "ServingMetrics", "VersionStats"]

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

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


@dataclass
class VersionStats:
    """Counters of one deployment's version; shared by every request that version serves."""

    deployment: str
    model: str
    version: int
    _metrics: ServingMetrics
    success: _Duration = field(default_factory=_Duration)
    fail: _Duration = field(default_factory=_Duration)
    queue: _Duration = field(default_factory=_Duration)
    compute: _Duration = field(default_factory=_Duration)
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    batch_sizes: dict[int, _Duration] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        labels = (self.deployment, self.model, str(self.version))
        m = self._metrics
        self._requests_ok = m.requests.labels(*labels, "success")
        self._requests_failed = m.requests.labels(*labels, "failure")
        self._rows = m.rows.labels(*labels)
        self._latency = m.request_seconds.labels(*labels)
        self._queue = m.queue_seconds.labels(*labels)
        self._compute = m.compute_seconds.labels(*labels)
        self._batch = m.batch_size.labels(*labels)

    def record_success(self, *, rows: int, total_s: float, queue_s: float, compute_s: float) -> None:
        """One request answered: ``rows`` inferences; ``queue_s`` of it waiting, ``compute_s`` running."""
        with self._lock:
            self.success.add(total_s)
            self.queue.add(queue_s)
            self.compute.add(compute_s)
            self.inference_count += rows
            self.last_inference_ms = int(time.time() * 1000)
        self._requests_ok.inc()
        self._rows.inc(rows)
        self._latency.observe(total_s)
        self._queue.observe(queue_s)
        self._compute.observe(compute_s)

    def record_failure(self, *, total_s: float) -> None:
        with self._lock:
            self.fail.add(total_s)
        self._requests_failed.inc()

    def record_execution(self, *, batch_rows: int, compute_s: float) -> None:
        """One run of the model (a batch of ``batch_rows`` rows, or one request unbatched)."""
        with self._lock:
            self.execution_count += 1
            self.batch_sizes.setdefault(batch_rows, _Duration()).add(compute_s)
        self._batch.observe(batch_rows)

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
        r = self.registry
        self.requests = Counter(
            "aiaas_inference_requests", "Inference requests answered.", [*_LABELS, "outcome"], registry=r
        )
        self.rows = Counter("aiaas_inference_rows", "Rows (inferences) computed.", _LABELS, registry=r)
        self.request_seconds = Histogram(
            "aiaas_request_duration_seconds",
            "Request time in the server.",
            _LABELS,
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.queue_seconds = Histogram(
            "aiaas_queue_duration_seconds",
            "Time waiting for a model run.",
            _LABELS,
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.compute_seconds = Histogram(
            "aiaas_compute_duration_seconds",
            "Model run time of a request's batch.",
            _LABELS,
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.batch_size = Histogram(
            "aiaas_batch_size_rows", "Rows per model run.", _LABELS, buckets=_BATCH_BUCKETS, registry=r
        )
        self._versions: dict[tuple[str, str, int], VersionStats] = {}
        self._lock = threading.Lock()

    def for_version(self, deployment: str, model: str, version: int) -> VersionStats:
        """The counters of one served version, created on first use and kept for the process."""
        key = (deployment, model, version)
        stats = self._versions.get(key)
        if stats is None:
            with self._lock:
                stats = self._versions.get(key)
                if stats is None:
                    stats = VersionStats(deployment, model, version, self)
                    self._versions[key] = stats
        return stats

    def model_stats(self, deployment: str, version: int | None = None) -> list[dict[str, Any]]:
        """Entries of ``deployment`` (one version, or every version it has served)."""
        return [
            s.snapshot()
            for (d, _, v), s in sorted(self._versions.items(), key=lambda kv: kv[0][2])
            if d == deployment and (version is None or v == version)
        ]

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
