"""Alert rules, their history, silences, webhooks and metric series on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ConfigDict, Field

from aiaas.schemas._base import MAX_ID, Wire, WireIn

__all__ = [
    "AlertDelivery",
    "AlertEvent",
    "AlertEventList",
    "AlertRule",
    "AlertRuleCreate",
    "AlertRuleList",
    "AnomalyParams",
    "MetricSeries",
    "SeriesPoint",
    "Silence",
    "SilenceCreate",
    "SilenceList",
    "Webhook",
    "WebhookCreate",
    "WebhookList",
]

_DURATION = "seconds, or a number and a unit s, m, h or d (30s, 5m, 1h)"


class AlertRuleCreate(WireIn):
    """A rule: ``metric op threshold`` over ``window``, true for at least ``for``, on a scope; or
    (``kind: anomaly``) a detector judging each ``window`` of ``metrics`` against the
    deployment's own history, with no threshold to set."""

    name: str = Field(description="Unique rule name (letters, digits, '.', '_', '-').")
    kind: str = Field(
        default="threshold",
        description="threshold (metric op threshold) or anomaly (a detector on the deployment's own "
        "history: metrics, detector, training_window, min_history, contamination).",
    )
    metric: str | None = Field(
        default=None,
        description="threshold rules: latency_p50, latency_p99, error_rate, throughput, replica_restarts, "
        "cpu, memory, queue_depth, accuracy, f1, drift (deployment metrics); job_failed, job_duration "
        "(job metrics).",
    )
    op: str | None = Field(default=None, description="threshold rules: the comparison: >, >=, <, <=, ==, !=.")
    threshold: float | None = Field(default=None, description="threshold rules: the value compared with.")
    window: float | str = Field(description=f"How far back the metric is read: {_DURATION}.")
    for_: float | str | None = Field(
        default=None,
        alias="for",
        description=f"How long the condition must hold before the rule fires (0: at once): {_DURATION}. "
        "Default: 0; for anomaly rules one window (a single odd window goes pending, never fires).",
    )
    deployment: str | None = Field(default=None, description="The deployment (deployment metrics).")
    version: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Only this version of the deployment's model."
    )
    job: int | None = Field(default=None, ge=1, le=MAX_ID, description="The job (job metrics).")
    feature: str | None = Field(
        default=None, max_length=256, description="drift only: this feature's score (else: drifted features)."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Free labels, sent with notifications.")
    description: str = Field(default="", max_length=4096)
    metrics: list[str] | None = Field(
        default=None,
        max_length=32,
        description="anomaly rules: the metrics of each window (latency_p50, latency_p99, error_rate, "
        "throughput, replica_restarts, cpu, memory, queue_depth, drift); default: latency_p50, "
        "latency_p99, error_rate, throughput.",
    )
    detector: str | None = Field(
        default=None, description="anomaly rules: isolation_forest (default) or lof (local outlier factor)."
    )
    training_window: float | str | None = Field(
        default=None,
        description=f"anomaly rules: the history before the judged window the detector learns from "
        f"(default 1h): {_DURATION}.",
    )
    min_history: int | None = Field(
        default=None,
        description="anomaly rules: history windows with a value needed before the rule may fire "
        "(default 20, at least 8).",
    )
    contamination: float | None = Field(
        default=None,
        description="anomaly rules: the share of anomalous windows the history is believed to hold "
        "(0 to 0.5); default: none, the detector's own boundary and no window of the history exceeded.",
    )

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, populate_by_name=True, serialize_by_alias=True
    )


class AnomalyParams(Wire):
    """An anomaly rule's detector settings."""

    metrics: list[str]
    detector: str
    training_window_s: float
    min_history: int
    contamination: float | None


class AlertRule(Wire):
    """A stored rule and where its evaluation stands (an anomaly rule: metric ``anomaly``, the
    condition ``> 0`` on its value, the judged window's score beyond the detector's boundary)."""

    id: int
    name: str
    metric: str
    op: str
    threshold: float
    window_s: float
    for_s: float
    deployment: str | None
    version: int | None
    job: int | None
    feature: str | None
    labels: dict[str, str]
    description: str
    created_at: dt.datetime | None
    state: str = Field(description="inactive, pending (condition true, not yet for `for`) or firing.")
    state_since: dt.datetime | None
    value: float | None = Field(description="The metric's value at the latest evaluation.")
    evaluated_at: dt.datetime | None
    kind: str = Field(default="threshold", description="threshold or anomaly.")
    anomaly: AnomalyParams | None = None


class AlertRuleList(Wire):
    rules: list[AlertRule]


class AlertDelivery(Wire):
    """One notification of a transition to a target, and how its delivery went."""

    target: str = Field(description="log or webhook.")
    webhook_id: int | None
    delivery_id: str = Field(description="Sent as X-Aiaas-Delivery: the same on every attempt.")
    attempts: int
    next_attempt_at: dt.datetime
    delivered_at: dt.datetime | None
    failed_at: dt.datetime | None = Field(description="Set when given up (AIAAS_ALERTS_MAX_ATTEMPTS).")
    last_error: str | None


class AlertEvent(Wire):
    """A transition: pending, firing, resolved, or inactive (pending that ended before `for`)."""

    id: int
    rule: str
    state: str
    value: float | None
    at: dt.datetime
    silenced_by: int | None = Field(description="The silence that kept it from being sent.")
    deliveries: list[AlertDelivery]
    reason: str | None = Field(
        default=None, description="anomaly rules: why, metric by metric (value, history median and range)."
    )
    anomaly: dict[str, Any] | None = Field(
        default=None, description="anomaly rules: the verdict (score, boundary, each metric's deviation)."
    )


class AlertEventList(Wire):
    events: list[AlertEvent]


class SilenceCreate(WireIn):
    """Silence a rule, a deployment's rules, or both, until ``ends_at`` (or for ``duration``)."""

    rule: str | None = Field(default=None, description="Silence this rule.")
    deployment: str | None = Field(default=None, description="Silence the rules of this deployment.")
    ends_at: dt.datetime | None = Field(default=None, description="When it ends (ISO 8601; UTC if no zone).")
    duration: float | str | None = Field(default=None, description=f"Or how long from now: {_DURATION}.")
    comment: str = Field(default="", max_length=4096)


class Silence(Wire):
    id: int
    rule: str | None
    deployment: str | None
    ends_at: dt.datetime
    comment: str
    created_at: dt.datetime


class SilenceList(Wire):
    silences: list[Silence]


class WebhookCreate(WireIn):
    """A URL every firing and resolved transition is POSTed to, signed with ``secret``."""

    name: str = Field(description="Unique webhook name.")
    url: str = Field(max_length=2048, description="http:// or https:// URL.")
    secret: str | None = Field(
        default=None, description="16-256 characters to sign with; default: one is made and shown once."
    )


class Webhook(Wire):
    id: int
    name: str
    url: str
    created_at: dt.datetime
    secret: str | None = Field(default=None, description="Only in the answer that created it.")


class WebhookList(Wire):
    webhooks: list[Webhook]


class SeriesPoint(Wire):
    start: dt.datetime
    value: float | None


class MetricSeries(Wire):
    """A metric as a time series: one point per sample interval (or per ``step``)."""

    metric: str
    unit: str
    deployment: str | None
    version: int | None
    job: int | None
    feature: str | None
    points: list[SeriesPoint]
