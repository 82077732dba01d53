"""Alert rules, their transitions, silences, webhooks and deliveries, as the store hands them out.

Below both :mod:`aiaas.store` (the repository that writes them) and :mod:`aiaas.alerts` (the
domain that evaluates rules and delivers notifications), so neither imports the other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AlertEvent",
    "AnomalySpec",
    "Delivery",
    "Rule",
    "RuleKind",
    "RuleSpec",
    "RuleState",
    "Silence",
    "Webhook",
]

#: Where a rule's evaluation stands: its condition false (or never evaluated), true for less
#: than its ``for`` duration, or true for at least that long.
RuleState = Literal["inactive", "pending", "firing"]
#: A rule's condition: ``metric op threshold`` (threshold), or a detector's verdict on the latest
#: window against the deployment's own history (anomaly).
RuleKind = Literal["threshold", "anomaly"]


@dataclass(frozen=True)
class AnomalySpec:
    """What an anomaly rule watches and how: the metrics that make one window's point, the
    detector (``isolation_forest`` or ``lof``), how much history it is fitted on, how many
    windows of history it needs before it may fire, and the share of anomalous windows the
    history is assumed to hold (None: the detector's own ``auto`` boundary)."""

    metrics: tuple[str, ...]
    detector: str = "isolation_forest"
    training_window_s: float = 3600.0
    min_history: int = 20
    contamination: float | None = None


@dataclass(frozen=True)
class RuleSpec:
    """What a user asks for: the scope (a deployment, optionally one version; or a job), the
    metric (and the feature, for drift), the condition, the window and the ``for`` duration."""

    name: str
    metric: str
    op: str
    threshold: float
    window_s: float
    for_s: float = 0.0
    deployment: str | None = None
    version: int | None = None
    job: int | None = None
    feature: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""
    kind: RuleKind = "threshold"
    #: For ``kind="anomaly"``: the detector's settings (``metric`` is then ``"anomaly"``, the
    #: condition ``anomaly > 0``: the window's score beyond the derived boundary).
    anomaly: AnomalySpec | None = None


@dataclass(frozen=True)
class Rule(RuleSpec):
    """A stored rule and where its evaluation stands."""

    id: int = 0
    created_at: dt.datetime | None = None
    state: RuleState = "inactive"
    state_since: dt.datetime | None = None
    value: float | None = None
    evaluated_at: dt.datetime | None = None


@dataclass(frozen=True)
class AlertEvent:
    """One transition of a rule: to pending, firing, resolved (firing ended) or inactive (a pending
    condition that ended before its ``for`` duration). ``silenced_by`` is the silence that kept it
    from being sent; ``payload`` is the notification body, as sent."""

    id: int
    rule_id: int
    rule: str
    state: str
    value: float | None
    at: dt.datetime
    silenced_by: int | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Silence:
    """No notification for transitions of rule ``rule`` and/or of deployment ``deployment``'s
    rules until ``ends_at``."""

    id: int
    rule: str | None
    deployment: str | None
    ends_at: dt.datetime
    comment: str
    created_at: dt.datetime

    def matches(self, rule: Rule, at: dt.datetime) -> bool:
        return (
            at < self.ends_at
            and (self.rule is None or self.rule == rule.name)
            and (self.deployment is None or self.deployment == rule.deployment)
        )


@dataclass(frozen=True)
class Webhook:
    """A URL transitions are POSTed to, signed with ``secret``."""

    id: int
    name: str
    url: str
    secret: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Delivery:
    """One notification of one transition to one target (``webhook`` or ``log``), until sent."""

    id: int
    event_id: int
    target: str
    webhook_id: int | None
    delivery_id: str
    attempts: int
    next_attempt_at: dt.datetime
    delivered_at: dt.datetime | None
    failed_at: dt.datetime | None
    last_error: str | None
    payload: dict[str, Any]
