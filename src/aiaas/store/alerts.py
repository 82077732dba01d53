"""Alerts' repository: rules and their state, transitions, the notification outbox, silences, webhooks.

The outbox is what makes notifications survive a restart without being sent twice: a
transition is written in one transaction with the rule's new state and one outbox row per
notification target, so either all of it is stored or none; a deliverer then sends each
undelivered row and marks it delivered. A restart between the two finds the row undelivered
and sends it (again, if the first send's answer was lost): each row carries a delivery id the
receiver can deduplicate on. Nothing else ever writes a transition, so the evaluator reading
the rule's stored state after a restart continues where it stood instead of firing again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from aiaas.entities.alerts import AlertEvent, AnomalySpec, Delivery, Rule, RuleSpec, Silence, Webhook
from aiaas.errors import AlreadyExists, NotFound
from aiaas.store.database import Database
from aiaas.store.tables import (
    AlertEventRow,
    AlertOutboxRow,
    AlertRuleRow,
    AlertSilenceRow,
    AlertWebhookRow,
    utcnow,
)

__all__ = ["AlertStore"]


class AlertStore:
    """Every alerts table, read and written in whole transactions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- rules -----------------------------------------------------------------------------

    def create_rule(self, spec: RuleSpec) -> Rule:
        try:
            with self.db.transaction() as s:
                row = AlertRuleRow(
                    name=spec.name,
                    deployment=spec.deployment,
                    version=spec.version,
                    job=spec.job,
                    metric=spec.metric,
                    feature=spec.feature,
                    op=spec.op,
                    threshold=spec.threshold,
                    window_s=spec.window_s,
                    for_s=spec.for_s,
                    labels=dict(spec.labels),
                    description=spec.description,
                    created_at=utcnow(),
                    state="inactive",
                    kind=spec.kind,
                    anomaly=_anomaly_json(spec.anomaly),
                )
                s.add(row)
                s.flush()
                return _rule(row)
        except IntegrityError:
            raise AlreadyExists(
                f"alert rule {spec.name!r} already exists", details={"field": "name", "value": spec.name}
            ) from None

    def get_rule(self, name: str) -> Rule:
        with self.db.transaction() as s:
            row = s.scalar(select(AlertRuleRow).where(AlertRuleRow.name == name))
            if row is None:
                raise NotFound(f"alert rule {name!r} not found", details={"rule": name})
            return _rule(row)

    def list_rules(self) -> list[Rule]:
        with self.db.transaction() as s:
            return [_rule(r) for r in s.scalars(select(AlertRuleRow).order_by(AlertRuleRow.name))]

    def delete_rule(self, name: str) -> None:
        with self.db.transaction() as s:
            result = s.execute(delete(AlertRuleRow).where(AlertRuleRow.name == name))
            if not int(getattr(result, "rowcount", 0) or 0):
                raise NotFound(f"alert rule {name!r} not found", details={"rule": name})

    def evaluated(self, rule_id: int, value: float | None, at: dt.datetime) -> None:
        """Note a rule's latest value, its state unchanged."""
        with self.db.transaction() as s:
            s.execute(
                update(AlertRuleRow).where(AlertRuleRow.id == rule_id).values(value=value, evaluated_at=at)
            )

    def transition(
        self,
        rule: Rule,
        state: str,
        since: dt.datetime | None,
        event: str,
        value: float | None,
        at: dt.datetime,
        payload: dict[str, Any],
        *,
        silenced_by: int | None,
        targets: Sequence[tuple[str, int | None]],
    ) -> AlertEvent | None:
        """Move ``rule`` to ``state`` and record ``event`` with an outbox row per target, at once.

        Only if the rule still stands where ``rule`` says (its state and since): otherwise
        another evaluator moved it first, nothing is written and None is returned.
        """
        with self.db.transaction() as s:
            result = s.execute(
                update(AlertRuleRow)
                .where(
                    AlertRuleRow.id == rule.id,
                    AlertRuleRow.state == rule.state,
                    AlertRuleRow.state_since == rule.state_since
                    if rule.state_since is not None
                    else AlertRuleRow.state_since.is_(None),
                )
                .values(state=state, state_since=since, value=value, evaluated_at=at)
            )
            if int(getattr(result, "rowcount", 0) or 0) != 1:
                return None
            row = AlertEventRow(
                rule_id=rule.id,
                rule=rule.name,
                state=event,
                value=value,
                at=at,
                silenced_by=silenced_by,
                payload=payload,
            )
            s.add(row)
            s.flush()
            for target, webhook_id in targets:
                s.add(
                    AlertOutboxRow(
                        event_id=row.id,
                        target=target,
                        webhook_id=webhook_id,
                        delivery_id=str(uuid.uuid4()),
                        attempts=0,
                        next_attempt_at=at,
                    )
                )
            return _event(row)

    def events(self, *, rule: str | None = None, limit: int = 100) -> list[AlertEvent]:
        """Transitions, newest first."""
        query = select(AlertEventRow).order_by(AlertEventRow.at.desc(), AlertEventRow.id.desc()).limit(limit)
        if rule is not None:
            query = query.where(AlertEventRow.rule == rule)
        with self.db.transaction() as s:
            return [_event(r) for r in s.scalars(query)]

    # -- the outbox ------------------------------------------------------------------------

    def due(self, now: dt.datetime, limit: int = 100) -> list[Delivery]:
        """Undelivered, not given up deliveries whose next attempt is due, oldest first."""
        query = (
            select(AlertOutboxRow, AlertEventRow.payload)
            .join(AlertEventRow, AlertOutboxRow.event_id == AlertEventRow.id)
            .where(
                AlertOutboxRow.delivered_at.is_(None),
                AlertOutboxRow.failed_at.is_(None),
                AlertOutboxRow.next_attempt_at <= now,
            )
            .order_by(AlertOutboxRow.id)
            .limit(limit)
        )
        with self.db.transaction() as s:
            return [_delivery(row, payload) for row, payload in s.execute(query)]

    def deliveries(self, event_ids: Iterable[int]) -> list[Delivery]:
        ids = list(event_ids)
        if not ids:
            return []
        query = (
            select(AlertOutboxRow, AlertEventRow.payload)
            .join(AlertEventRow, AlertOutboxRow.event_id == AlertEventRow.id)
            .where(AlertOutboxRow.event_id.in_(ids))
            .order_by(AlertOutboxRow.id)
        )
        with self.db.transaction() as s:
            return [_delivery(row, payload) for row, payload in s.execute(query)]

    def attempted(
        self,
        delivery: Delivery,
        at: dt.datetime,
        *,
        error: str | None = None,
        retry_at: dt.datetime | None = None,
    ) -> None:
        """Record an attempt: delivered (no ``error``), to be tried again at ``retry_at``, or given up."""
        values: dict[str, Any] = {"attempts": delivery.attempts + 1, "last_error": error}
        if error is None:
            values["delivered_at"] = at
        elif retry_at is not None:
            values["next_attempt_at"] = retry_at
        else:
            values["failed_at"] = at
        with self.db.transaction() as s:
            s.execute(update(AlertOutboxRow).where(AlertOutboxRow.id == delivery.id).values(**values))

    # -- silences --------------------------------------------------------------------------

    def create_silence(
        self, *, rule: str | None, deployment: str | None, ends_at: dt.datetime, comment: str
    ) -> Silence:
        with self.db.transaction() as s:
            row = AlertSilenceRow(
                rule=rule, deployment=deployment, ends_at=ends_at, comment=comment, created_at=utcnow()
            )
            s.add(row)
            s.flush()
            return _silence(row)

    def silences(self, *, active_at: dt.datetime | None = None) -> list[Silence]:
        query = select(AlertSilenceRow).order_by(AlertSilenceRow.id)
        if active_at is not None:
            query = query.where(AlertSilenceRow.ends_at > active_at)
        with self.db.transaction() as s:
            return [_silence(r) for r in s.scalars(query)]

    def delete_silence(self, silence_id: int) -> None:
        with self.db.transaction() as s:
            result = s.execute(delete(AlertSilenceRow).where(AlertSilenceRow.id == silence_id))
            if not int(getattr(result, "rowcount", 0) or 0):
                raise NotFound(f"silence {silence_id} not found", details={"silence": silence_id})

    # -- webhooks --------------------------------------------------------------------------

    def create_webhook(self, name: str, url: str, secret: str) -> Webhook:
        try:
            with self.db.transaction() as s:
                row = AlertWebhookRow(name=name, url=url, secret=secret, created_at=utcnow())
                s.add(row)
                s.flush()
                return _webhook(row)
        except IntegrityError:
            raise AlreadyExists(
                f"webhook {name!r} already exists", details={"field": "name", "value": name}
            ) from None

    def webhooks(self) -> list[Webhook]:
        with self.db.transaction() as s:
            return [_webhook(r) for r in s.scalars(select(AlertWebhookRow).order_by(AlertWebhookRow.name))]

    def webhook(self, webhook_id: int) -> Webhook | None:
        with self.db.transaction() as s:
            row = s.get(AlertWebhookRow, webhook_id)
            return None if row is None else _webhook(row)

    def delete_webhook(self, name: str) -> None:
        with self.db.transaction() as s:
            result = s.execute(delete(AlertWebhookRow).where(AlertWebhookRow.name == name))
            if not int(getattr(result, "rowcount", 0) or 0):
                raise NotFound(f"webhook {name!r} not found", details={"webhook": name})


def _rule(row: AlertRuleRow) -> Rule:
    return Rule(
        id=row.id,
        name=row.name,
        deployment=row.deployment,
        version=row.version,
        job=row.job,
        metric=row.metric,
        feature=row.feature,
        op=row.op,
        threshold=row.threshold,
        window_s=row.window_s,
        for_s=row.for_s,
        labels={str(k): str(v) for k, v in (row.labels or {}).items()},
        description=row.description,
        created_at=row.created_at,
        state=row.state,  # type: ignore[arg-type]
        state_since=row.state_since,
        value=row.value,
        evaluated_at=row.evaluated_at,
        kind="anomaly" if row.kind == "anomaly" else "threshold",
        anomaly=_anomaly(row.anomaly),
    )


def _anomaly_json(spec: AnomalySpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    return {
        "metrics": list(spec.metrics),
        "detector": spec.detector,
        "training_window_s": spec.training_window_s,
        "min_history": spec.min_history,
        "contamination": spec.contamination,
    }


def _anomaly(data: dict[str, Any] | None) -> AnomalySpec | None:
    if not data:
        return None
    return AnomalySpec(
        metrics=tuple(str(m) for m in data["metrics"]),
        detector=str(data["detector"]),
        training_window_s=float(data["training_window_s"]),
        min_history=int(data["min_history"]),
        contamination=None if data.get("contamination") is None else float(data["contamination"]),
    )


def _event(row: AlertEventRow) -> AlertEvent:
    return AlertEvent(
        id=row.id,
        rule_id=row.rule_id,
        rule=row.rule,
        state=row.state,
        value=row.value,
        at=row.at,
        silenced_by=row.silenced_by,
        payload=dict(row.payload),
    )


def _delivery(row: AlertOutboxRow, payload: dict[str, Any]) -> Delivery:
    return Delivery(
        id=row.id,
        event_id=row.event_id,
        target=row.target,
        webhook_id=row.webhook_id,
        delivery_id=row.delivery_id,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        failed_at=row.failed_at,
        last_error=row.last_error,
        payload=dict(payload),
    )


def _silence(row: AlertSilenceRow) -> Silence:
    return Silence(
        id=row.id,
        rule=row.rule,
        deployment=row.deployment,
        ends_at=row.ends_at,
        comment=row.comment,
        created_at=row.created_at,
    )


def _webhook(row: AlertWebhookRow) -> Webhook:
    return Webhook(id=row.id, name=row.name, url=row.url, secret=row.secret, created_at=row.created_at)
