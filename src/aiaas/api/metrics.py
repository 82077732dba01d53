"""``GET /metrics`` on the control plane: Prometheus metrics of the server and its jobs.

The inference server has its own ``/metrics`` (traffic, latency, replicas and their CPU and
memory); this one covers what only the control plane knows: the jobs in each state, how far
each running job is, the training slots in use, each deployment's drift (aiaas_drift_*), the
control plane's own CPU and memory (prometheus_client's process collector) and, with a GPU, its
utilisation and memory. Read from the database when scraped, in a worker thread, never on the
event loop. It needs an API key like the API (Prometheus sends one with
``authorization: {credentials_file: ...}`` in its scrape config), unless ``AIAAS_METRICS_PUBLIC``
is on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from aiaas.api.deps import Services
from aiaas.api.routers.drift import deployment_drift
from aiaas.errors import AiaasError
from aiaas.gpus import GpuCollector, GpuSampler
from aiaas.httpserver import PROMETHEUS_CONTENT_TYPE
from aiaas.training import JobStore

__all__ = ["metrics_registry", "router"]


class _JobCollector:
    """Jobs by status, running jobs' progress and the training slots they hold, at scrape time."""

    def __init__(self, jobs: JobStore, slots: int) -> None:
        self._jobs = jobs
        self._slots = slots

    def collect(self) -> Iterator[Metric]:
        by_status = GaugeMetricFamily("aiaas_jobs", "Jobs in each status.", labels=["status"])
        for status, count in self._jobs.status_counts().items():
            by_status.add_metric([status], count)
        progress = GaugeMetricFamily(
            "aiaas_job_progress_ratio",
            "Share of a running job's epochs (optimization: steps) done, 0 to 1.",
            labels=["job", "kind", "model"],
        )
        slots = GaugeMetricFamily(
            "aiaas_training_slots", "CPU slots for jobs, in use and in all.", labels=["state"]
        )
        used = 0
        for job, done in self._jobs.running_progress():
            progress.add_metric([str(job.id), job.kind, job.register_as], done)
            used += job.workers
        slots.add_metric(["used"], used)
        slots.add_metric(["total"], self._slots)
        yield from (by_status, progress, slots)

    def describe(self) -> list[Metric]:
        return []


class _DriftCollector:
    """Each deployment's drift over the last ``AIAAS_DRIFT_METRICS_WINDOW_S``, at scrape time: per
    version and feature the deciding score and the drifted flag (the deployment's thresholds), and
    the count of drifted features. Read from the count rows, O(bins) per deployment."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        labels = ["deployment", "version", "feature", "role"]
        score = GaugeMetricFamily(
            "aiaas_drift_score",
            "The score that decides a feature's drift flag (see method).",
            labels=[*labels, "method"],
        )
        flag = GaugeMetricFamily("aiaas_drift_drifted", "1 when the feature drifted, else 0.", labels=labels)
        drifted = GaugeMetricFamily(
            "aiaas_drift_drifted_features", "Features (and outputs) flagged as drifted.", labels=labels[:2]
        )
        rows = GaugeMetricFamily("aiaas_drift_rows", "Live rows counted in the window.", labels=labels[:2])
        window = dt.timedelta(seconds=self._services.settings.drift_metrics_window_s)
        start = dt.datetime.now(dt.UTC) - window
        # Every project's deployments, labelled by qualified name (``team-a/iris``) as the
        # inference server labels its own series.
        scoped = [self._services.for_project(p.name) for p in self._services.projects.list()]
        for services, deployment in ((s, d) for s in scoped for d in s.deployments.list()):
            try:
                result = deployment_drift(services, deployment.name, start, None)
            except AiaasError:  # deleted while scraped
                continue
            for version in result.versions:
                if version.report is None:
                    continue
                at = [services.deployment_key(deployment.name), str(version.version)]
                for feature in version.report.features:
                    score.add_metric([*at, feature.name, feature.role, feature.method], feature.score)
                    flag.add_metric([*at, feature.name, feature.role], float(feature.drifted))
                drifted.add_metric(at, len(version.report.drifted))
                rows.add_metric(at, version.report.rows)
        yield from (score, flag, drifted, rows)

    def describe(self) -> list[Metric]:
        return []


def metrics_registry(services: Services) -> CollectorRegistry:
    """The control plane's metrics, over ``services`` (made once, when the app starts)."""
    registry = CollectorRegistry()
    registry.register(_JobCollector(services.all_jobs, services.settings.training_slots))
    registry.register(_DriftCollector(services))
    ProcessCollector(registry=registry)
    registry.register(GpuCollector(GpuSampler()))  # training jobs' GPUs; no series without one
    return registry


router = APIRouter()


@router.get(
    "/metrics",
    tags=["health"],
    summary="Prometheus metrics: jobs by status, running jobs' progress, slots, process CPU and memory",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=PROMETHEUS_CONTENT_TYPE)
