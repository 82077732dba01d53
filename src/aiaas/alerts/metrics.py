"""The metrics an alert rule (or a chart) can follow, and what scope each one needs.

One table, read by the rule validator, the series reader, the API's docs and the CLI's help,
so a metric is named and described in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["METRICS", "MetricInfo"]


@dataclass(frozen=True)
class MetricInfo:
    """A metric: what it measures, its unit, and its scope (a deployment's, or a job's)."""

    description: str
    unit: str
    scope: Literal["deployment", "job"] = "deployment"
    #: Where it comes from: the inference server's samples, feedback, drift counts, the job.
    source: Literal["samples", "feedback", "drift", "job"] = "samples"


METRICS: dict[str, MetricInfo] = {
    "latency_p50": MetricInfo("median request latency in the inference server", "seconds"),
    "latency_p99": MetricInfo("99th percentile of request latency", "seconds"),
    "error_rate": MetricInfo("failed requests / all requests (none: no value)", "ratio"),
    "throughput": MetricInfo("answered requests per second", "requests/s"),
    "replica_restarts": MetricInfo("replica processes restarted after dying", "restarts"),
    "cpu": MetricInfo("CPU used by the replica processes (1 = one core busy)", "cores"),
    "memory": MetricInfo("resident memory of the replica processes, the highest sampled", "bytes"),
    "queue_depth": MetricInfo("requests waiting in the batcher queue, the highest sampled", "requests"),
    "accuracy": MetricInfo(
        "accuracy of labelled answers (feedback), classifiers only", "ratio", source="feedback"
    ),
    "f1": MetricInfo("macro F1 of labelled answers (feedback), classifiers only", "ratio", source="feedback"),
    "drift": MetricInfo(
        "with a feature: its drift score (PSI by default); without: the count of drifted features",
        "score or features",
        source="drift",
    ),
    "job_failed": MetricInfo("1 when the job failed, else 0", "flag", scope="job", source="job"),
    "job_duration": MetricInfo(
        "seconds the job has run (so far, or in all)", "seconds", scope="job", source="job"
    ),
}
