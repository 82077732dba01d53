"""Any metric of a deployment (optionally one version) or of a job, as a value over a window or
as a time series.

Each source is read where it is already kept, with the code that already reads it:

- latency, errors, throughput, restarts, CPU, memory, queue depth: the inference server's
  per-interval metric samples (:mod:`aiaas.store.metric_samples`), merged over the window;
  latency quantiles are interpolated in the merged histogram
  (:func:`aiaas.entities.metrics.quantile`).
- accuracy and F1: the prediction log joined with feedback and scored by the live performance
  code (:func:`aiaas.monitoring.performance.score`).
- drift: the drift count rows of the window checked against each version's reference
  (:func:`aiaas.monitoring.check_drift`, DriftSettings' defaults).
- a job's status and run time: its row.

A window is read in whole sample intervals (those that start inside it), so a value can lag
by up to one ``AIAAS_METRICS_INTERVAL_S``. No data is ``None``: a rule on it does not hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiaas.alerts.metrics import METRICS
from aiaas.entities.metrics import MetricSample, quantile
from aiaas.errors import AiaasError
from aiaas.monitoring import BinCounts, check_drift
from aiaas.monitoring.performance import Task, score, task_of
from aiaas.registry import ReferenceStore, Registry
from aiaas.schemas import DriftSettings
from aiaas.store.drift import CountStore
from aiaas.store.feedback import FeedbackStore
from aiaas.store.metric_samples import SampleStore
from aiaas.store.predictions import read_predictions
from aiaas.training import JobStore

__all__ = ["MAX_POINTS", "Deployments", "MetricReader", "Point", "Scope", "from_sample"]

#: The most points one series holds; a longer range needs a larger step.
MAX_POINTS = 2000


class Deployments(Protocol):
    """What the reader needs of the deployments service: a deployment by name (NotFound if none)."""

    def get(self, name: str) -> Any: ...


@dataclass(frozen=True)
class Scope:
    """What a metric is read of: a deployment (and optionally one version), or a job."""

    deployment: str | None = None
    version: int | None = None
    job: int | None = None
    feature: str | None = None


@dataclass(frozen=True)
class Point:
    """A metric's value over ``[start, start + step)``; None when there was nothing to measure."""

    start: dt.datetime
    value: float | None


class MetricReader:
    """Reads metrics from where the platform keeps them.

    Args:
        samples, counts, feedback: the repositories of metric samples, drift counts, labels.
        registry: versions' signatures (the task of a version) and drift references.
        deployments: deployments by name.
        jobs: jobs by id.
        prediction_log_dir: the prediction log's folder (accuracy and F1).
    """

    def __init__(
        self,
        *,
        samples: SampleStore,
        counts: CountStore,
        feedback: FeedbackStore,
        registry: Registry,
        deployments: Deployments,
        jobs: JobStore,
        prediction_log_dir: Path,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.samples, self.counts, self.feedback = samples, counts, feedback
        self.registry = registry
        self.references = ReferenceStore(registry.db)
        self.deployments = deployments
        self.jobs = jobs
        self.prediction_log_dir = prediction_log_dir
        self.clock = clock

    def value(self, metric: str, scope: Scope, start: dt.datetime, end: dt.datetime) -> float | None:
        """``metric`` of ``scope`` over ``[start, end)``."""
        source = METRICS[metric].source
        if source == "job":
            return self._job(metric, scope)
        assert scope.deployment is not None
        if source == "samples":
            merged = MetricSample()
            for _, _, _, sample in self.samples.intervals(
                scope.deployment, version=scope.version, start=start, end=end
            ):
                merged = merged.merge(sample)
            return from_sample(metric, merged, (end - start).total_seconds())
        if source == "feedback":
            return self._performance(metric, scope, start, end)
        return self._drift(scope, start, end)

    def series(
        self, metric: str, scope: Scope, start: dt.datetime, end: dt.datetime, step_s: float | None
    ) -> list[Point]:
        """``metric`` per step over ``[start, end)``: one point per sample interval when no
        step is given and the metric is sampled, else one per ``step_s`` (a job's: its value now)."""
        source = METRICS[metric].source
        if source == "job":
            return [Point(self.clock(), self._job(metric, scope))]
        assert scope.deployment is not None
        if source == "samples" and step_s is None:
            per_interval: dict[dt.datetime, tuple[float, MetricSample]] = {}
            for at, interval_s, _, sample in self.samples.intervals(
                scope.deployment, version=scope.version, start=start, end=end
            ):
                old = per_interval.get(at)
                per_interval[at] = (interval_s, old[1].merge(sample) if old else sample)
            return [
                Point(at, from_sample(metric, sample, interval_s))
                for at, (interval_s, sample) in sorted(per_interval.items())
            ][-MAX_POINTS:]
        step = step_s or 60.0
        points: list[Point] = []
        at = start
        while at < end and len(points) < MAX_POINTS:
            upto = min(at + dt.timedelta(seconds=step), end)
            points.append(Point(at, self.value(metric, scope, at, upto)))
            at = upto
        return points

    # -- sources ---------------------------------------------------------------------------

    def _job(self, metric: str, scope: Scope) -> float | None:
        assert scope.job is not None
        job = self.jobs.get(scope.job)
        if metric == "job_failed":
            return 1.0 if job.status == "failed" else 0.0
        if job.started_at is None:
            return None
        return ((job.finished_at or self.clock()) - job.started_at).total_seconds()

    def _performance(self, metric: str, scope: Scope, start: dt.datetime, end: dt.datetime) -> float | None:
        assert scope.deployment is not None
        deployment = self.deployments.get(scope.deployment)
        table = read_predictions(
            self.prediction_log_dir, scope.deployment, version=scope.version, start=start, end=end
        )
        if table.num_rows == 0:
            return None
        labels = self.feedback.labels(scope.deployment, table.column("request_id").to_pylist())
        if not labels:
            return None
        tasks: dict[int, Task] = {}

        def task_for(version: int) -> Task:
            if version not in tasks:
                try:
                    tasks[version] = task_of(self.registry.get_version(deployment.model, version).signature)
                except AiaasError:
                    tasks[version] = Task(value="")
            return tasks[version]

        values = [
            v.metrics.get(metric) for v in score(table, labels, task_for) if v.metrics.get(metric) is not None
        ]
        # Several versions in the window: the worst one decides (a rule watches for trouble).
        return min(v for v in values if v is not None) if values else None

    def _drift(self, scope: Scope, start: dt.datetime, end: dt.datetime) -> float | None:
        assert scope.deployment is not None
        deployment = self.deployments.get(scope.deployment)
        counted = self.counts.window(scope.deployment, start=start, end=end)
        if scope.version is not None:
            versions = {scope.version}
        else:
            versions = {r.version for r in deployment.routes} | {deployment.serving_version}
        worst: float | None = None
        for version in sorted(versions):
            reference = self.references.get(deployment.model, version)
            if reference is None:
                continue
            profile = reference.profile
            live = counted.get((version, profile.digest), BinCounts.zeros(profile))
            if live.rows == 0:
                continue
            report = check_drift(profile, live, DriftSettings())
            if scope.feature is None:
                value: float | None = float(len(report.drifted))
            else:
                value = next((f.score for f in report.features if f.name == scope.feature), None)
            if value is not None and (worst is None or value > worst):
                worst = value
        return worst


def from_sample(metric: str, sample: MetricSample, seconds: float) -> float | None:
    """A sampled metric from the sample of a window ``seconds`` long."""
    answered = sample.requests + sample.errors
    if metric == "latency_p50":
        return quantile(sample.latency_buckets, 0.5)
    if metric == "latency_p99":
        return quantile(sample.latency_buckets, 0.99)
    if metric == "error_rate":
        return sample.errors / answered if answered else None
    if metric == "throughput":
        return sample.requests / seconds if seconds > 0 else None
    if metric == "replica_restarts":
        return float(sample.restarts)
    if metric == "cpu":
        return sample.cpu_seconds / seconds if seconds > 0 else None
    if metric == "memory":
        return sample.memory_bytes
    if metric == "queue_depth":
        return sample.queue_depth
    raise KeyError(metric)
