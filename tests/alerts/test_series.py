"""Metric series read in-process from a real database: sampled metrics' values from the rows the
inference server writes (quantiles, rates, CPU in cores, gauges at their highest, versions
merged or apart), and drift through the drift code: a shifted feature's score, the count of
drifted features, nothing without traffic."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from aiaas.alerts import Scope
from aiaas.config import load_settings
from aiaas.entities.metrics import MetricSample, SampleKey
from aiaas.formats import package_model
from aiaas.monitoring import check_drift, count_batch
from aiaas.platform import Platform, open_platform
from aiaas.registry import ReferenceStore, record_reference
from aiaas.schemas import DriftSettings
from aiaas.store.drift import CountKey, CountStore
from aiaas.store.metric_samples import SampleStore
from aiaas.training import NewJob

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
NAMES = ["a", "b", "c"]


@pytest.fixture
def platform(home: Path, database_url: str) -> Iterator[Platform]:
    p = open_platform(load_settings(home=home, database_url=database_url))
    yield p
    p.close()


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_sampled_metrics_per_interval_and_over_a_window(platform: Platform) -> None:
    samples = SampleStore(platform.db)
    samples.add(
        {
            SampleKey("d", 1, _at(0)): MetricSample(
                requests=90,
                errors=10,
                latency_buckets={"0.01": 45, "0.1": 45},
                cpu_seconds=6.0,
                memory_bytes=2e8,
                queue_depth=3,
                restarts=1,
            ),
            SampleKey("d", 2, _at(0)): MetricSample(requests=30, memory_bytes=1e8, queue_depth=7),
            SampleKey("d", 1, _at(60)): MetricSample(requests=60, latency_buckets={"1.0": 60}),
        },
        interval_s=60,
    )
    reader = platform.metrics

    def value(metric: str, version: int | None = None, end: float = 120) -> float | None:
        return reader.value(metric, Scope(deployment="d", version=version), _at(0), _at(end))

    assert value("throughput", end=60) == pytest.approx(120 / 60)  # both versions
    assert value("throughput", version=2, end=60) == pytest.approx(0.5)
    assert value("error_rate", version=1, end=60) == pytest.approx(0.1)
    assert value("latency_p50", version=1, end=60) == pytest.approx(0.01)
    assert value("latency_p99", version=1, end=60) == pytest.approx(0.01 + 0.09 * (89.1 - 45) / 45)
    assert value("cpu", version=1, end=60) == pytest.approx(0.1)  # 6 CPU seconds in 60 s
    assert value("memory", end=60) == 2e8 and value("queue_depth", end=60) == 7
    assert value("replica_restarts") == 1
    assert value("error_rate", version=2, end=60) == 0.0
    assert reader.value("throughput", Scope(deployment="idle"), _at(0), _at(60)) == 0.0
    assert reader.value("error_rate", Scope(deployment="idle"), _at(0), _at(60)) is None

    points = reader.series("latency_p50", Scope(deployment="d", version=1), _at(0), _at(120), None)
    assert [(p.start, p.value) for p in points] == [
        (_at(0), pytest.approx(0.01)),
        (_at(60), pytest.approx(0.5)),
    ]
    stepped = reader.series("throughput", Scope(deployment="d"), _at(0), _at(120), 60)
    assert [p.value for p in stepped] == [pytest.approx(2.0), pytest.approx(1.0)]


def _rows(n: int, seed: int, shift: float = 0.0) -> np.ndarray[Any, Any]:
    x = np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)
    x[:, 0] += shift
    return x


def test_drift_is_read_through_the_drift_code(platform: Platform) -> None:
    x = _rows(2000, 0)
    clf = LogisticRegression(max_iter=300).fit(x, (x[:, 1] > 0).astype(np.int64))
    platform.registry.register_version("m", package_model(clf, x[:4]))
    record_reference(
        platform.registry, "m", 1, {n: x[:, j] for j, n in enumerate(NAMES)}, NAMES, {"kind": "dataset"}
    )
    platform.deployments.create("d", model="m", version=1)
    reader = platform.metrics
    scope = Scope(deployment="d")
    assert reader.value("drift", scope, _at(0), _at(60)) is None  # no traffic counted

    reference = ReferenceStore(platform.db).get("m", 1)
    assert reference is not None
    live = _rows(3000, 1, shift=1.0)  # feature a moved by one standard deviation
    counts = count_batch(
        reference.profile, {n: live[:, j] for j, n in enumerate(NAMES)}, {"label": clf.predict(live)}
    )
    CountStore(platform.db).add({CountKey("d", 1, reference.profile.digest, _at(0)): counts}, interval_s=60)
    report = check_drift(reference.profile, counts, DriftSettings())
    assert "a" in report.drifted and "b" not in report.drifted
    assert reader.value("drift", scope, _at(0), _at(60)) == len(report.drifted)
    score_a = next(f.score for f in report.features if f.name == "a")
    assert reader.value("drift", Scope(deployment="d", feature="a"), _at(0), _at(60)) == pytest.approx(
        score_a
    )
    assert reader.value("drift", Scope(deployment="d", feature="nope"), _at(0), _at(60)) is None


def test_a_jobs_metrics(platform: Platform) -> None:
    jobs = platform.jobs
    job = jobs.create(NewJob(spec={}, dataset="d", dataset_version=1, register_as="m", workers=1, epochs=1))
    reader, scope = platform.metrics, Scope(job=job.id)
    now = dt.datetime.now(dt.UTC)
    assert reader.value("job_failed", scope, now, now) == 0.0
    assert reader.value("job_duration", scope, now, now) is None  # queued: not started
    assert jobs.claim(job.id)
    assert jobs.finish(job.id, "failed", "it broke", error="boom")
    assert reader.value("job_failed", scope, now, now) == 1.0
    ran = jobs.get(job.id)
    assert ran.started_at is not None and ran.finished_at is not None
    assert reader.value("job_duration", scope, now, now) == (ran.finished_at - ran.started_at).total_seconds()
    (point,) = reader.series("job_failed", scope, now, now, None)
    assert point.value == 1.0
