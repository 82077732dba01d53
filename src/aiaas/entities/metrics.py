"""Metric samples: what the inference server observed of a deployment's version per interval.

Defined below the store (which adds and reads them per interval) and the alerts domain (which
turns them into time series), so neither imports the other. A sample is additive:
:meth:`MetricSample.merge` of two samples of the same interval (two servers) or of a window
(several intervals) is a sample again, counters added and gauges at their highest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["MetricSample", "SampleKey", "quantile"]


@dataclass(frozen=True)
class SampleKey:
    """Which row a sample goes into: a deployment's version and its interval's start."""

    deployment: str
    version: int
    started_at: dt.datetime


@dataclass(frozen=True)
class MetricSample:
    """Counters over an interval (they add) and gauges sampled in it (their highest).

    ``latency_buckets`` maps a bucket's upper bound in seconds (``"0.005"``, ``"+Inf"``) to
    the requests whose latency fell in it: not cumulative, so samples add bucket by bucket.
    """

    requests: int = 0
    errors: int = 0
    rows: int = 0
    latency_sum_s: float = 0.0
    latency_buckets: Mapping[str, int] = field(default_factory=dict)
    restarts: int = 0
    cpu_seconds: float = 0.0
    memory_bytes: float = 0.0
    queue_depth: float = 0.0
    in_flight: float = 0.0

    def merge(self, other: MetricSample) -> MetricSample:
        buckets = dict(self.latency_buckets)
        for bound, count in other.latency_buckets.items():
            buckets[bound] = buckets.get(bound, 0) + count
        return MetricSample(
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            rows=self.rows + other.rows,
            latency_sum_s=self.latency_sum_s + other.latency_sum_s,
            latency_buckets=buckets,
            restarts=self.restarts + other.restarts,
            cpu_seconds=self.cpu_seconds + other.cpu_seconds,
            memory_bytes=max(self.memory_bytes, other.memory_bytes),
            queue_depth=max(self.queue_depth, other.queue_depth),
            in_flight=max(self.in_flight, other.in_flight),
        )

    @property
    def empty(self) -> bool:
        return self == MetricSample()


def quantile(buckets: Mapping[str, int], q: float) -> float | None:
    """The ``q`` quantile (0 to 1) of latencies counted in ``buckets``, in seconds; None if none.

    Interpolated linearly inside the bucket it falls in, as Prometheus' ``histogram_quantile``
    does; in the ``+Inf`` bucket it is the highest finite bound.
    """
    ordered = sorted(((float(b), n) for b, n in buckets.items()), key=lambda x: x[0])
    total = sum(n for _, n in ordered)
    if total == 0:
        return None
    finite = [b for b in (float(k) for k in buckets) if b != float("inf")]
    rank = q * total
    seen, lower = 0, 0.0
    for bound, count in ordered:
        if count > 0 and seen + count >= rank:
            if bound == float("inf"):
                return max(finite) if finite else None
            return lower + (bound - lower) * ((rank - seen) / count)
        seen += count
        lower = bound
    return lower
