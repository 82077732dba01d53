"""The control plane's alert loop: evaluate every rule, write transitions, deliver notifications.

One thread per control-plane process, started and stopped with the API (as the job scheduler
is); of several processes only the holder of the ``alerts-evaluator`` database lease works
(:class:`aiaas.store.leases.LeaseStore`), so a transition is written once whatever the count
of API workers. Each ``AIAAS_ALERTS_EVALUATION_INTERVAL_S`` the holder:

1. reads each rule's metric over its window (:class:`.series.MetricReader`), or for an anomaly
   rule has its detector judge the latest window (:class:`.anomaly.AnomalyJudge`), and steps its
   state machine (:func:`.state.step`); a transition is written in one transaction with the
   rule's new state and one outbox row per target (the log, every webhook), none when a
   silence matches or the event is only history (pending, inactive);
2. sends the outbox rows that are due. A failed webhook attempt is tried again after
   ``AIAAS_ALERTS_RETRY_BASE_S`` doubled per attempt (at most ``AIAAS_ALERTS_RETRY_MAX_S``),
   and given up after ``AIAAS_ALERTS_MAX_ATTEMPTS``.

Because the rule's state, the transition and its outbox rows are in the database, a restart
carries on: a firing rule stays firing (no second "firing"), and an undelivered row is sent
by the next holder.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from aiaas.alerts.anomaly import AnomalyJudge
from aiaas.alerts.series import MetricReader, Scope
from aiaas.alerts.state import NOTIFIED, holds, step
from aiaas.alerts.webhooks import send_log, send_webhook
from aiaas.config import Settings
from aiaas.entities.alerts import Rule, Silence, Webhook
from aiaas.errors import AiaasError, Unavailable
from aiaas.store.alerts import AlertStore
from aiaas.store.leases import LeaseStore

__all__ = ["LEASE", "Evaluator", "payload_of"]

LEASE = "alerts-evaluator"
#: Outbox rows sent per pass; the rest wait for the next pass.
_BATCH = 100

log = logging.getLogger("aiaas.alerts")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def payload_of(
    rule: Rule, event: str, value: float | None, at: dt.datetime, anomaly: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The notification body of ``rule``'s transition to ``event`` (before its delivery id);
    an anomaly rule's carries the detector's verdict (``anomaly``: why, metric by metric)."""
    body: dict[str, Any] = {
        "rule": rule.name,
        "state": event,
        "value": value,
        "metric": rule.metric,
        "feature": rule.feature,
        "op": rule.op,
        "threshold": rule.threshold,
        "window_s": rule.window_s,
        "for_s": rule.for_s,
        "deployment": rule.deployment,
        "version": rule.version,
        "job": rule.job,
        "labels": dict(rule.labels),
        "description": rule.description,
        "at": at.isoformat(),
        "kind": rule.kind,
    }
    if rule.anomaly is not None:
        body["detector"] = rule.anomaly.detector
        body["metrics"] = list(rule.anomaly.metrics)
        body["anomaly"] = anomaly
        body["reason"] = anomaly.get("reason") if anomaly else None
    return body


class Evaluator:
    """Evaluates rules and delivers notifications while it holds the lease.

    Args:
        store: the alerts repository.
        leases: the lease repository.
        reader: reads each rule's metric.
        interval_s: seconds between passes.
        lease_s: how long the lease lasts without renewal.
        retry_base_s, retry_max_s, max_attempts: webhook retries.
        timeout_s: one webhook attempt's limit.
    """

    def __init__(
        self,
        store: AlertStore,
        leases: LeaseStore,
        reader: MetricReader,
        *,
        interval_s: float = 15.0,
        lease_s: float = 60.0,
        retry_base_s: float = 5.0,
        retry_max_s: float = 600.0,
        max_attempts: int = 10,
        timeout_s: float = 10.0,
        sample_interval_s: float = 60.0,
        sample_lag_s: float = 10.0,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self.store, self.leases, self.reader = store, leases, reader
        self.anomalies = AnomalyJudge(reader, interval_s=sample_interval_s, lag_s=sample_lag_s)
        self.interval_s, self.lease_s = interval_s, lease_s
        self.retry_base_s, self.retry_max_s, self.max_attempts = retry_base_s, retry_max_s, max_attempts
        self.clock = clock
        self.holder = uuid.uuid4().hex
        self._http = httpx.Client(timeout=timeout_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: More work done in each pass under the lease, after the rules are evaluated and before
        #: the notifications go out (the rollout driver: a guard that fired rolls back at once).
        self.passes: list[Callable[[], None]] = []

    @classmethod
    def of(cls, settings: Settings, store: AlertStore, leases: LeaseStore, reader: MetricReader) -> Evaluator:
        """The evaluator the control plane runs, timed by its ``AIAAS_ALERTS_*`` settings."""
        return cls(
            store,
            leases,
            reader,
            interval_s=settings.alerts_evaluation_interval_s,
            lease_s=settings.alerts_lease_s,
            retry_base_s=settings.alerts_retry_base_s,
            retry_max_s=settings.alerts_retry_max_s,
            max_attempts=settings.alerts_max_attempts,
            timeout_s=settings.alerts_webhook_timeout_s,
            sample_interval_s=settings.metrics_interval_s,
            sample_lag_s=settings.metrics_flush_interval_s,
        )

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="aiaas-alerts", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish the pass under way, give the lease up (another worker takes over at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        try:
            self.leases.release(LEASE, self.holder)
        except AiaasError as exc:
            log.warning("the alert evaluator's lease could not be released: %s", exc)
        self._http.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must outlive a database outage or a bad rule
                log.exception("the alert evaluator failed a pass; it carries on")
            self._stop.wait(self.interval_s)

    def tick(self) -> bool:
        """One pass if this process holds (or takes) the lease; returns whether it did."""
        if not self.leases.acquire(LEASE, self.holder, self.lease_s):
            return False
        self.evaluate()
        for work in self.passes:
            if self._stop.is_set():
                break
            try:
                work()
            except Unavailable:
                raise
            except Exception:  # the notifications must still go out
                log.exception("the alert evaluator's pass %r failed; it carries on", work)
        self.deliver()
        return True

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self) -> None:
        """Step every rule once, writing the transitions (and their outbox rows) that happen."""
        now = self.clock()
        silences = self.store.silences(active_at=now)
        webhooks = self.store.webhooks()
        for rule in self.store.list_rules():
            if self._stop.is_set():
                return
            try:
                self._evaluate(rule, now, silences, webhooks)
            except Unavailable:
                raise  # the database is down: the whole pass waits for the next one
            except Exception:  # one rule's failure must not keep the others from being evaluated
                log.exception("alert rule %s could not be evaluated", rule.name)

    def _evaluate(
        self, rule: Rule, now: dt.datetime, silences: list[Silence], webhooks: list[Webhook]
    ) -> None:
        detail: dict[str, Any] | None = None
        if rule.kind == "anomaly":
            verdict = self.anomalies.judge(rule, now)
            value, condition, detail = verdict.score, verdict.anomalous, verdict.detail()
        else:
            scope = Scope(rule.deployment, rule.version, rule.job, rule.feature)
            try:
                value = self.reader.value(rule.metric, scope, now - dt.timedelta(seconds=rule.window_s), now)
            except AiaasError as exc:  # its deployment or job is gone: no value, so it does not hold
                log.info("alert rule %s: no value: %s", rule.name, exc)
                value = None
            condition = holds(value, rule.op, rule.threshold)
        move = step(rule.state, rule.state_since, condition, rule.for_s, now)
        if move.event is None:
            self.store.evaluated(rule.id, value, now)
            return
        silence = next((s for s in silences if s.matches(rule, now)), None)
        targets: list[tuple[str, int | None]] = []
        if move.event in NOTIFIED and silence is None:
            targets = [("log", None), *(("webhook", w.id) for w in webhooks)]
        event = self.store.transition(
            rule,
            move.state,
            move.since,
            move.event,
            value,
            now,
            payload_of(rule, move.event, value, now, detail),
            silenced_by=silence.id if silence is not None and move.event in NOTIFIED else None,
            targets=targets,
        )
        if event is not None:
            reason = f": {detail['reason']}" if detail else ""
            log.info("alert rule %s: %s (value %s)%s", rule.name, move.event, value, reason)

    # -- delivery --------------------------------------------------------------------------

    def deliver(self) -> int:
        """Send what is due in the outbox; returns the attempts made."""
        attempts = 0
        for delivery in self.store.due(self.clock(), _BATCH):
            if self._stop.is_set() or not self.leases.acquire(LEASE, self.holder, self.lease_s):
                break
            now = self.clock()
            attempts += 1
            if delivery.target == "log":
                send_log(delivery)
                self.store.attempted(delivery, now)
                continue
            webhook = self.store.webhook(delivery.webhook_id) if delivery.webhook_id is not None else None
            if webhook is None:
                self.store.attempted(delivery, now, error="the webhook was deleted")
                continue
            error = send_webhook(self._http, webhook, delivery)
            if error is None:
                self.store.attempted(delivery, self.clock())
            elif delivery.attempts + 1 >= self.max_attempts:
                log.warning("alert delivery %s to %s given up: %s", delivery.delivery_id, webhook.name, error)
                self.store.attempted(delivery, self.clock(), error=error)
            else:
                wait = min(self.retry_base_s * 2**delivery.attempts, self.retry_max_s)
                retry_at = self.clock() + dt.timedelta(seconds=wait)
                self.store.attempted(delivery, self.clock(), error=error, retry_at=retry_at)
        return attempts
