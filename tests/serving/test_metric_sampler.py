"""Metric sampling in-process: the server's own counters (a real ServingMetrics registry) read
into per-interval rows as differences, latency buckets per bucket, a counter reset taken as new
traffic, two servers' samples adding up in one row, and quantiles from the merged buckets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from aiaas.entities.metrics import MetricSample, quantile
from aiaas.serving.metric_sampler import MetricSampler
from aiaas.serving.stats import ServingMetrics
from aiaas.store import Database
from aiaas.store.metric_samples import SampleStore
from tests._clock import Clock

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC).timestamp()


@pytest.fixture
def store(database_url: str) -> Iterator[SampleStore]:
    db = Database(database_url)
    db.upgrade()
    yield SampleStore(db)
    db.dispose()


def _sampler(metrics: ServingMetrics, store: SampleStore, clock: Clock) -> MetricSampler:
    return MetricSampler(metrics.registry.collect, store, interval_s=60, clock=clock)


def test_counters_are_written_as_differences_per_interval(store: SampleStore) -> None:
    metrics, clock = ServingMetrics(), Clock()
    sampler = _sampler(metrics, store, clock)
    stats = metrics.for_version("iris", "iris-model", 2)
    for _ in range(3):
        stats.record_success(rows=2, total_s=0.003, queue_s=0.0, compute_s=0.001)
    stats.record_failure(total_s=0.01)
    assert sampler.flush() == 1
    stats.record_success(rows=1, total_s=0.3, queue_s=0.0, compute_s=0.2)
    sampler.flush()  # same interval: merged into the same row
    clock.now += 60
    sampler.flush()  # nothing new: a row of zeros for the next interval
    rows = store.intervals("iris")
    assert [(r[0].timestamp() - T0, r[2]) for r in rows] == [(0.0, 2), (60.0, 2)]
    first, second = rows[0][3], rows[1][3]
    assert (first.requests, first.errors, first.rows) == (4, 1, 7)
    assert first.latency_buckets == {"0.005": 3, "0.5": 1}  # failures are not in the histogram
    assert first.latency_sum_s == pytest.approx(0.309)
    assert (second.requests, second.errors, second.latency_buckets) == (0, 0, {})


def test_two_servers_add_into_one_row_and_a_reset_counts_as_new(store: SampleStore) -> None:
    clock = Clock()
    one, two = ServingMetrics(), ServingMetrics()
    a, b = _sampler(one, store, clock), _sampler(two, store, clock)
    one.for_version("d", "m", 1).record_success(rows=1, total_s=0.001, queue_s=0, compute_s=0)
    for _ in range(2):
        two.for_version("d", "m", 1).record_success(rows=1, total_s=0.001, queue_s=0, compute_s=0)
    a.flush()
    b.flush()
    ((_, _, _, sample),) = store.intervals("d")
    assert sample.requests == 3
    # The server restarts: its counters start again from zero, below the last reading.
    restarted = ServingMetrics()
    b._collect = restarted.registry.collect
    restarted.for_version("d", "m", 1).record_success(rows=1, total_s=0.001, queue_s=0, compute_s=0)
    b.flush()
    ((_, _, _, sample),) = store.intervals("d")
    assert sample.requests == 4


def test_quantiles_interpolate_inside_the_bucket() -> None:
    buckets = {"0.01": 50, "0.1": 0, "1.0": 50, "+Inf": 0}
    assert quantile(buckets, 0.5) == pytest.approx(0.01)
    assert quantile(buckets, 0.75) == pytest.approx(0.1 + 0.9 * 0.5)
    assert quantile({"0.5": 0, "+Inf": 4}, 0.99) == 0.5
    assert quantile({}, 0.5) is None
    merged = MetricSample(latency_buckets={"0.01": 1}).merge(MetricSample(latency_buckets={"0.01": 2}))
    assert merged.latency_buckets == {"0.01": 3}
