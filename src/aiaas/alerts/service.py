"""Alert rules, silences and webhooks as users manage them: checked, then stored.

A rule is refused with a 400 naming its field when it could never be evaluated: an unknown
metric or comparison, an empty, zero or too long window, a negative ``for``, a scope that does
not fit the metric (a deployment metric needs a deployment, a job metric a job), a deployment
or job that does not exist, or a version the deployment's model does not have. An anomaly rule
likewise: a metric it cannot watch (``metrics``), an unknown ``detector``, a ``min_history`` too
short to learn from, a ``training_window`` that holds fewer windows than ``min_history`` (or more
than a thousand), a ``contamination`` outside (0, 0.5].
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiaas.alerts.anomaly import ANOMALY_METRICS, DETECTORS, MAX_HISTORY_WINDOWS, MIN_HISTORY
from aiaas.alerts.metrics import METRICS
from aiaas.alerts.series import Deployments, MetricReader, Point, Scope
from aiaas.alerts.state import OPERATORS
from aiaas.entities.alerts import AlertEvent, Delivery, Rule, RuleSpec, Silence, Webhook
from aiaas.errors import InvalidArgument, NotFound
from aiaas.registry import Registry
from aiaas.store import check_name
from aiaas.store.alerts import AlertStore
from aiaas.training import JobStore

__all__ = ["MAX_SILENCE_S", "MAX_WINDOW_S", "AlertService", "parse_duration"]

#: The longest window a rule reads (and the longest ``for``): 30 days.
MAX_WINDOW_S = 30 * 86400.0
#: The longest silence: 90 days.
MAX_SILENCE_S = 90 * 86400.0
#: A duration such as ``90s``, ``15m``, ``24h`` or ``7d`` (or a number of seconds).
DURATION_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,3})?[smhd]$"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, field: str, *, minimum: float = 0.0, maximum: float = MAX_WINDOW_S) -> float:
    """Seconds from ``value`` (seconds as a number, or ``90s``/``15m``/``24h``/``7d``).

    Raises:
        InvalidArgument: naming ``field``, when it is neither, or outside ``[minimum, maximum]``
            (a minimum of 0 is exclusive for windows: callers pass ``minimum=-1`` to allow 0).
    """
    if isinstance(value, bool):
        seconds = math.nan
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(DURATION_PATTERN, value.strip()):
        text = value.strip()
        seconds = float(text[:-1]) * _UNITS[text[-1]]
    else:
        seconds = math.nan
    if math.isnan(seconds):
        raise InvalidArgument(
            f"{field} must be seconds or a number and a unit s, m, h or d, such as 30s or 5m; got {value!r}",
            details={"field": field, "value": value},
        )
    low_ok = seconds > minimum if minimum >= 0 else seconds >= 0
    if not low_ok or seconds > maximum:
        expected = "greater than 0" if minimum >= 0 else "0 or more"
        raise InvalidArgument(
            f"{field} must be {expected} and at most {maximum:g} seconds; got {value!r}",
            details={"field": field, "value": value},
        )
    return seconds


class AlertService:
    """Rules, silences, webhooks and the history, over the alerts repository."""

    def __init__(
        self,
        store: AlertStore,
        reader: MetricReader,
        *,
        deployments: Deployments,
        registry: Registry,
        jobs: JobStore,
    ) -> None:
        self.store = store
        self.reader = reader
        self.deployments = deployments
        self.registry = registry
        self.jobs = jobs

    # -- rules -----------------------------------------------------------------------------

    def create_rule(self, spec: RuleSpec) -> Rule:
        """Check ``spec`` and store it as a new, inactive rule."""
        return self.store.create_rule(self.check(spec))

    def check(self, spec: RuleSpec) -> RuleSpec:
        """``spec`` if it can be evaluated; else InvalidArgument naming the field."""
        check_name(spec.name)
        if spec.kind == "anomaly":
            return self._check_anomaly(spec)
        info = METRICS.get(spec.metric)
        if info is None:
            raise InvalidArgument(
                f"metric must be one of {', '.join(METRICS)}; got {spec.metric!r}",
                details={"field": "metric", "value": spec.metric, "expected": list(METRICS)},
            )
        if spec.op not in OPERATORS:
            raise InvalidArgument(
                f"op must be one of {' '.join(OPERATORS)}; got {spec.op!r}",
                details={"field": "op", "value": spec.op},
            )
        if not math.isfinite(spec.threshold):
            raise InvalidArgument("threshold must be a finite number", details={"field": "threshold"})
        if not spec.window_s > 0 or spec.window_s > MAX_WINDOW_S:
            raise InvalidArgument(
                f"window must be greater than 0 and at most {MAX_WINDOW_S:g} seconds; got {spec.window_s}",
                details={"field": "window", "value": spec.window_s},
            )
        if not spec.for_s >= 0 or spec.for_s > MAX_WINDOW_S:
            raise InvalidArgument(
                f"for must be 0 or more and at most {MAX_WINDOW_S:g} seconds; got {spec.for_s}",
                details={"field": "for", "value": spec.for_s},
            )
        if spec.feature is not None and spec.metric != "drift":
            raise InvalidArgument(
                f"feature is for the drift metric only; {spec.metric} has none", details={"field": "feature"}
            )
        if info.scope == "job":
            self._check_job_scope(spec)
        else:
            self._check_deployment_scope(spec)
        return spec

    def _check_anomaly(self, spec: RuleSpec) -> RuleSpec:
        anomaly = spec.anomaly
        if anomaly is None:
            raise InvalidArgument("an anomaly rule needs its detector's settings", details={"field": "kind"})
        if not anomaly.metrics:
            raise InvalidArgument(
                f"metrics must name at least one of {', '.join(ANOMALY_METRICS)}",
                details={"field": "metrics", "expected": list(ANOMALY_METRICS)},
            )
        for metric in anomaly.metrics:
            if metric not in ANOMALY_METRICS:
                raise InvalidArgument(
                    f"metrics: {metric!r} cannot be watched for anomalies; give metrics of "
                    f"{', '.join(ANOMALY_METRICS)}",
                    details={"field": "metrics", "value": metric, "expected": list(ANOMALY_METRICS)},
                )
        if len(set(anomaly.metrics)) != len(anomaly.metrics):
            raise InvalidArgument("metrics must not repeat a metric", details={"field": "metrics"})
        if anomaly.detector not in DETECTORS:
            raise InvalidArgument(
                f"detector must be one of {', '.join(DETECTORS)}; got {anomaly.detector!r}",
                details={"field": "detector", "value": anomaly.detector, "expected": list(DETECTORS)},
            )
        if not spec.window_s > 0 or spec.window_s > MAX_WINDOW_S:
            raise InvalidArgument(
                f"window must be greater than 0 and at most {MAX_WINDOW_S:g} seconds; got {spec.window_s}",
                details={"field": "window", "value": spec.window_s},
            )
        if not spec.for_s >= 0 or spec.for_s > MAX_WINDOW_S:
            raise InvalidArgument(
                f"for must be 0 or more and at most {MAX_WINDOW_S:g} seconds; got {spec.for_s}",
                details={"field": "for", "value": spec.for_s},
            )
        if anomaly.min_history < MIN_HISTORY:
            raise InvalidArgument(
                f"min_history must be at least {MIN_HISTORY} windows: a shorter history teaches a "
                f"detector nothing; got {anomaly.min_history}",
                details={"field": "min_history", "value": anomaly.min_history},
            )
        windows = math.floor(anomaly.training_window_s / spec.window_s)
        if windows < anomaly.min_history:
            raise InvalidArgument(
                f"training_window must hold at least min_history ({anomaly.min_history}) windows of "
                f"{spec.window_s:g} s, {anomaly.min_history * spec.window_s:g} s; got "
                f"{anomaly.training_window_s:g} s",
                details={"field": "training_window", "value": anomaly.training_window_s},
            )
        if windows > MAX_HISTORY_WINDOWS:
            raise InvalidArgument(
                f"training_window must hold at most {MAX_HISTORY_WINDOWS} windows of {spec.window_s:g} s; "
                f"got {anomaly.training_window_s:g} s (give a longer window)",
                details={"field": "training_window", "value": anomaly.training_window_s},
            )
        if anomaly.contamination is not None and not 0 < anomaly.contamination <= 0.5:
            raise InvalidArgument(
                "contamination must be greater than 0 and at most 0.5 (or none); "
                f"got {anomaly.contamination}",
                details={"field": "contamination", "value": anomaly.contamination},
            )
        if spec.feature is not None and "drift" not in anomaly.metrics:
            raise InvalidArgument(
                "feature is for the drift metric only; metrics has no drift", details={"field": "feature"}
            )
        self._check_deployment_scope(spec)
        return spec

    def _check_job_scope(self, spec: RuleSpec) -> None:
        if spec.job is None:
            raise InvalidArgument(f"{spec.metric} is a job's metric: give job", details={"field": "job"})
        if spec.deployment is not None or spec.version is not None:
            field = "deployment" if spec.deployment is not None else "version"
            raise InvalidArgument(
                f"{field} does not go with a job's metric ({spec.metric})", details={"field": field}
            )
        try:
            self.jobs.get(spec.job)
        except NotFound:
            raise InvalidArgument(
                f"job {spec.job} does not exist", details={"field": "job", "value": spec.job}
            ) from None

    def _check_deployment_scope(self, spec: RuleSpec) -> None:
        if spec.job is not None:
            raise InvalidArgument(
                f"job does not go with a deployment's metric ({spec.metric}); give deployment",
                details={"field": "job"},
            )
        if spec.deployment is None:
            raise InvalidArgument(
                f"{spec.metric} is a deployment's metric: give deployment", details={"field": "deployment"}
            )
        try:
            deployment = self.deployments.get(spec.deployment)
        except NotFound:
            raise InvalidArgument(
                f"deployment {spec.deployment!r} does not exist",
                details={"field": "deployment", "value": spec.deployment},
            ) from None
        if spec.version is not None:
            try:
                self.registry.get_version(deployment.model, spec.version)
            except NotFound:
                raise InvalidArgument(
                    f"version {spec.version} is not a version of {deployment.model!r}, the model "
                    f"deployment {spec.deployment!r} serves",
                    details={"field": "version", "value": spec.version},
                ) from None

    def list_rules(self) -> list[Rule]:
        return self.store.list_rules()

    def get_rule(self, name: str) -> Rule:
        return self.store.get_rule(name)

    def delete_rule(self, name: str) -> None:
        self.store.delete_rule(name)

    def history(
        self, *, rule: str | None = None, limit: int = 100
    ) -> list[tuple[AlertEvent, list[Delivery]]]:
        """Transitions newest first, each with its deliveries."""
        events = self.store.events(rule=rule, limit=limit)
        deliveries: dict[int, list[Delivery]] = {}
        for delivery in self.store.deliveries(e.id for e in events):
            deliveries.setdefault(delivery.event_id, []).append(delivery)
        return [(e, deliveries.get(e.id, [])) for e in events]

    # -- series ----------------------------------------------------------------------------

    def series(
        self,
        metric: str,
        scope: Scope,
        start: dt.datetime,
        end: dt.datetime,
        step_s: float | None = None,
    ) -> list[Point]:
        """``metric`` of ``scope`` as a time series (see :meth:`MetricReader.series`)."""
        spec = RuleSpec(
            name="series",
            metric=metric,
            op=">",
            threshold=0.0,
            window_s=1.0,
            deployment=scope.deployment,
            version=scope.version,
            job=scope.job,
            feature=scope.feature,
        )
        self.check(spec)
        return self.reader.series(metric, scope, start, end, step_s)

    # -- silences --------------------------------------------------------------------------

    def silence(
        self, *, rule: str | None, deployment: str | None, ends_at: dt.datetime, comment: str = ""
    ) -> Silence:
        """Silence a rule, a deployment's rules, or a rule of one deployment, until ``ends_at``."""
        if rule is None and deployment is None:
            raise InvalidArgument("give rule or deployment (or both) to silence", details={"field": "rule"})
        if rule is not None:
            check_name(rule, field="rule")
        if deployment is not None:
            check_name(deployment, field="deployment")
        now = dt.datetime.now(dt.UTC)
        if ends_at <= now or (ends_at - now).total_seconds() > MAX_SILENCE_S:
            raise InvalidArgument(
                f"ends_at must be in the future and at most {MAX_SILENCE_S / 86400:g} days away; "
                f"got {ends_at.isoformat()}",
                details={"field": "ends_at"},
            )
        return self.store.create_silence(rule=rule, deployment=deployment, ends_at=ends_at, comment=comment)

    def silences(self, *, active: bool = True) -> list[Silence]:
        return self.store.silences(active_at=dt.datetime.now(dt.UTC) if active else None)

    def delete_silence(self, silence_id: int) -> None:
        self.store.delete_silence(silence_id)

    # -- webhooks --------------------------------------------------------------------------

    def add_webhook(self, name: str, url: str, secret: str | None = None) -> Webhook:
        """Store a webhook; without a secret, one is made (and shown once, in the answer)."""
        check_name(name)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgument(
                f"url must be an http:// or https:// URL; got {url!r}", details={"field": "url"}
            )
        if secret is not None and not 16 <= len(secret) <= 256:
            raise InvalidArgument("secret must be 16 to 256 characters", details={"field": "secret"})
        return self.store.create_webhook(name, url, secret or secrets.token_hex(32))

    def webhooks(self) -> list[Webhook]:
        return self.store.webhooks()

    def delete_webhook(self, name: str) -> None:
        self.store.delete_webhook(name)
