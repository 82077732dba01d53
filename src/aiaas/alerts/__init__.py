"""Alerts: metric series of deployments and jobs, rules on them, their states and notifications.

- :mod:`.metrics`: the metrics a rule can follow, in one table.
- :mod:`.series`: any metric as a value over a window or a time series, read where it is kept.
- :mod:`.anomaly`: anomaly rules: Isolation Forest or LOF on a deployment's own metric windows.
- :mod:`.state`: a rule's state machine, pending → firing → resolved, as a pure function.
- :mod:`.evaluator`: the control plane's loop (one process at a time, by a database lease)
  that steps the rules, writes transitions with their outbox rows, and delivers them.
- :mod:`.webhooks`: a signed POST (``X-Aiaas-Signature``, ``X-Aiaas-Delivery``) or a log line.
- :mod:`.service`: rules, silences and webhooks as users manage them, checked.

Anomaly rules are a further condition source feeding the same state machine, history and
outbox; rollout guards are meant to be another.
"""

from __future__ import annotations

from aiaas.alerts.anomaly import (
    ANOMALY_METRICS,
    DEFAULT_METRICS,
    DETECTORS,
    MIN_HISTORY,
    AnomalyJudge,
    Verdict,
    detect,
)
from aiaas.alerts.evaluator import LEASE, Evaluator, payload_of
from aiaas.alerts.metrics import METRICS, MetricInfo
from aiaas.alerts.series import MAX_POINTS, MetricReader, Point, Scope
from aiaas.alerts.service import MAX_SILENCE_S, MAX_WINDOW_S, AlertService, parse_duration
from aiaas.alerts.state import NOTIFIED, OPERATORS, Step, holds, step
from aiaas.alerts.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, sign, verify

__all__ = [
    "ANOMALY_METRICS",
    "DEFAULT_METRICS",
    "DELIVERY_HEADER",
    "DETECTORS",
    "LEASE",
    "MAX_POINTS",
    "MAX_SILENCE_S",
    "MAX_WINDOW_S",
    "METRICS",
    "MIN_HISTORY",
    "NOTIFIED",
    "OPERATORS",
    "SIGNATURE_HEADER",
    "AlertService",
    "AnomalyJudge",
    "Evaluator",
    "MetricInfo",
    "MetricReader",
    "Point",
    "Scope",
    "Step",
    "Verdict",
    "detect",
    "holds",
    "parse_duration",
    "payload_of",
    "sign",
    "step",
    "verify",
]
