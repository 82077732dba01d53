"""Metric samples: what ``/metrics`` shows of each deployment's version, written per interval.

Every ``AIAAS_METRICS_FLUSH_INTERVAL_S`` the sampler reads the server's own Prometheus
registry (the same families ``/metrics`` serves: requests and failures, rows, the request
latency histogram, replica restarts, replicas' CPU seconds and resident memory, queue depth
and requests in flight), takes the difference of each counter since its last reading, and
merges it into the version's row of the current ``AIAAS_METRICS_INTERVAL_S`` interval
(:mod:`aiaas.store.metric_samples`); gauges keep their highest reading in the interval. It
runs in the server's one flushing thread type (:class:`~aiaas.serving.flushing.FlushThread`),
like drift counting, so a request pays nothing for it: the counters are kept anyway.

A counter lower than at its last reading was reset (a version's replica set made again, a
replica process replaced): its new value is what happened since. A write that fails is kept
and merged into the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric

from aiaas.config import Settings
from aiaas.entities.metrics import MetricSample, SampleKey
from aiaas.serving.flushing import FlushThread, interval_start
from aiaas.store import Database
from aiaas.store.metric_samples import SampleStore

__all__ = ["MetricSampler"]

logger = logging.getLogger("aiaas.serving.metric_sampler")

#: How often sample rows past their retention are deleted.
_PRUNE_EVERY_S = 600.0

_Key = tuple[str, int]  # deployment, version


@dataclass
class _Reading:
    """Cumulative counters and current gauges of one version, as read from the registry."""

    requests: float = 0.0
    errors: float = 0.0
    rows: float = 0.0
    latency_sum_s: float = 0.0
    latency_cumulative: dict[str, float] = field(default_factory=dict)
    restarts: float = 0.0
    cpu_by_pid: dict[str, float] = field(default_factory=dict)
    memory_bytes: float = 0.0
    queue_depth: float = 0.0
    in_flight: float = 0.0


class MetricSampler:
    """Samples a Prometheus registry's per-version series into per-interval database rows.

    Args:
        collect: the registry's families now (``registry.collect``).
        samples: where rows are merged into.
        interval_s: seconds per row.
        flush_interval_s: seconds between readings (and writes).
        retention: rows older than this are deleted.
        enabled: False samples nothing (``AIAAS_METRICS_SAMPLING=false``).
    """

    def __init__(
        self,
        collect: Callable[[], Iterable[Metric]],
        samples: SampleStore,
        *,
        interval_s: float = 60.0,
        flush_interval_s: float = 10.0,
        retention: dt.timedelta = dt.timedelta(days=7),
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._collect = collect
        self.samples = samples
        self.interval_s = interval_s
        self.retention = retention
        self.enabled = enabled
        self._clock, self._monotonic = clock, monotonic
        self._last: dict[_Key, _Reading] = {}
        self._pending: dict[SampleKey, MetricSample] = {}
        self._lock = threading.Lock()
        self._pruned_at = float("-inf")
        self._flusher = FlushThread("metric-sampler", self.flush, flush_interval_s, after=self._prune)

    @classmethod
    def of(cls, settings: Settings, db: Database, collect: Callable[[], Iterable[Metric]]) -> MetricSampler:
        """The sampler the inference server runs, sized by its ``AIAAS_METRICS_*`` settings."""
        return cls(
            collect,
            SampleStore(db),
            interval_s=settings.metrics_interval_s,
            flush_interval_s=settings.metrics_flush_interval_s,
            retention=dt.timedelta(days=settings.metrics_retention_days),
            enabled=settings.metrics_sampling,
        )

    def start(self) -> None:
        if self.enabled:
            self._flusher.start()

    def close(self) -> None:
        """Stop the thread, take a last reading and write every pending sample."""
        if self.enabled:
            self._flusher.close()

    def flush(self) -> int:
        """Read the registry, add what changed to the pending samples and write them.

        Returns the versions sampled.
        """
        with self._lock:
            readings = _readings(self._collect())
            started = interval_start(self._clock(), self.interval_s)
            for key, now in readings.items():
                delta = _delta(self._last.get(key), now)
                where = SampleKey(key[0], key[1], started)
                self._pending[where] = self._pending[where].merge(delta) if where in self._pending else delta
            self._last = readings
            self._write()
            return len(readings)

    def _write(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            self.samples.add(pending, interval_s=self.interval_s)
        except Exception:
            logger.exception("metric samples could not be written; retrying at the next flush")
            for where, sample in pending.items():
                self._pending[where] = (
                    sample.merge(self._pending[where]) if where in self._pending else sample
                )

    def _prune(self) -> None:
        now = self._monotonic()
        if now - self._pruned_at >= _PRUNE_EVERY_S:
            self._pruned_at = now
            self.samples.prune(dt.datetime.fromtimestamp(self._clock(), dt.UTC) - self.retention)


def _readings(families: Iterable[Metric]) -> dict[_Key, _Reading]:
    """Each version's cumulative counters and gauges, from the server's metric families."""
    out: dict[_Key, _Reading] = {}

    def of(labels: dict[str, str]) -> _Reading | None:
        try:
            key = (labels["deployment"], int(labels["version"]))
        except (KeyError, ValueError):
            return None
        return out.setdefault(key, _Reading())

    for family in families:
        if not family.name.startswith("aiaas_"):
            continue
        for sample in family.samples:
            reading = of(sample.labels)
            if reading is None:
                continue
            name, value = sample.name, float(sample.value)
            if name == "aiaas_inference_requests_total":
                if sample.labels.get("outcome") == "failure":
                    reading.errors += value
                else:
                    reading.requests += value
            elif name == "aiaas_inference_rows_total":
                reading.rows += value
            elif name == "aiaas_request_duration_seconds_bucket":
                bound = sample.labels["le"]
                reading.latency_cumulative[bound] = reading.latency_cumulative.get(bound, 0.0) + value
            elif name == "aiaas_request_duration_seconds_sum":
                reading.latency_sum_s += value
            elif name == "aiaas_replica_restarts_total":
                reading.restarts += value
            elif name == "aiaas_replica_cpu_seconds_total":
                pid = sample.labels.get("pid", "")
                reading.cpu_by_pid[pid] = reading.cpu_by_pid.get(pid, 0.0) + value
            elif name == "aiaas_replica_resident_memory_bytes":
                reading.memory_bytes += value
            elif name == "aiaas_queued_requests":
                reading.queue_depth += value
            elif name == "aiaas_requests_in_flight":
                reading.in_flight += value
    return out


def _grown(before: float, now: float) -> float:
    """What a counter added since ``before``; all of ``now`` when it was reset meanwhile."""
    return now - before if now >= before else now


def _delta(last: _Reading | None, now: _Reading) -> MetricSample:
    last = last or _Reading()
    reset = now.requests + now.errors < last.requests + last.errors
    if reset:
        buckets = _plain(now)
    else:
        now_buckets, last_buckets = _plain(now), _plain(last)
        grown = {b: n - last_buckets.get(b, 0) for b, n in now_buckets.items()}
        buckets = {b: n for b, n in grown.items() if n > 0}
    cpu = sum(_grown(last.cpu_by_pid.get(pid, 0.0), value) for pid, value in now.cpu_by_pid.items())
    return MetricSample(
        requests=int(_grown(last.requests, now.requests)),
        errors=int(_grown(last.errors, now.errors)),
        rows=int(_grown(last.rows, now.rows)),
        latency_sum_s=now.latency_sum_s if reset else _grown(last.latency_sum_s, now.latency_sum_s),
        latency_buckets=buckets,
        restarts=int(_grown(last.restarts, now.restarts)),
        cpu_seconds=cpu,
        memory_bytes=now.memory_bytes,
        queue_depth=now.queue_depth,
        in_flight=now.in_flight,
    )


def _plain(reading: _Reading) -> dict[str, int]:
    """Cumulative bucket counts turned into per-bucket ones."""
    out: dict[str, int] = {}
    previous = 0.0
    for bound in sorted(reading.latency_cumulative, key=float):
        count = reading.latency_cumulative[bound]
        if count - previous:
            out[bound] = int(count - previous)
        previous = count
    return out
