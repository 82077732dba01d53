"""Rollouts' repository: the plan and where it stands, its events, and its guards' alert rules.

A rollout, its guards' alert rules and its first event are written in one transaction, so a
rollout never exists without the rules that guard it. Every later move (the next step, a
rollback, the end) is a compare-and-set on the state and step the driver read: a second
control plane that read the same row writes nothing, and a restart carries on from the row.

A rollout belongs to its deployment's project (migration 0019), and its guards' rules to the
same project. A store of one project sees that project's rollouts only (another's is not
found, as if it did not exist); a store of every project (``project=None``) is the driver's,
which moves each rollout through its own project's services.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, cast

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError

from aiaas.entities.alerts import RuleSpec
from aiaas.entities.projects import DEFAULT_PROJECT
from aiaas.entities.rollouts import FINISHED, Guard, Rollout, RolloutEvent, RolloutState, Step
from aiaas.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from aiaas.store.database import Database
from aiaas.store.tables import AlertRuleRow, RolloutEventRow, RolloutRow, utcnow

__all__ = ["EventSpec", "RolloutStore"]

#: (kind, step, weight, message, guard, value, details): one event to record with a change.
EventSpec = tuple[str, int | None, int | None, str, str | None, float | None, dict[str, Any]]


class RolloutStore:
    """The ``rollouts`` and ``rollout_events`` tables (and the guards' rows of ``alert_rules``)
    of one project, or of every project (``project=None``: read and moved, never created)."""

    def __init__(self, db: Database, *, project: str | None = DEFAULT_PROJECT) -> None:
        self.db = db
        self.project = project

    def _mine(self, query: Select[Any]) -> Select[Any]:
        return query if self.project is None else query.where(RolloutRow.project == self.project)

    def _own(self) -> str:
        if self.project is None:
            raise InvalidArgument("a rollout is started in one project: this store reads every project's")
        return self.project

    def create(
        self,
        *,
        deployment: str,
        model: str,
        version: int,
        via: str,
        previous: dict[str, Any],
        steps: Sequence[Step],
        guards: Sequence[Guard],
        rule_of: Callable[[int, Guard], RuleSpec],
        event: EventSpec,
    ) -> Rollout:
        """Store a running rollout with its guards' rules (named by ``rule_of(id, guard)``).

        Raises:
            Conflict: another rollout of ``deployment`` is in progress.
        """
        now = utcnow()
        project = self._own()
        try:
            with self.db.transaction() as s:
                running = s.scalar(
                    select(RolloutRow).where(RolloutRow.project == project, RolloutRow.active == deployment)
                )
                if running is not None:
                    raise _in_progress(deployment, running.id)
                row = RolloutRow(
                    project=project,
                    deployment=deployment,
                    active=deployment,
                    model=model,
                    version=version,
                    via=via,
                    previous=dict(previous),
                    steps=[asdict(st) for st in steps],
                    guards=[],
                    state="running",
                    step=-1,
                    step_started_at=None,
                    created_at=now,
                    updated_at=now,
                    reason="",
                )
                s.add(row)
                s.flush()
                named = []
                for guard in guards:
                    spec = rule_of(row.id, guard)
                    named.append({**asdict(guard), "rule": spec.name})
                    s.add(
                        AlertRuleRow(
                            project=project,
                            name=spec.name,
                            deployment=spec.deployment,
                            version=spec.version,
                            job=None,
                            metric=spec.metric,
                            feature=spec.feature,
                            op=spec.op,
                            threshold=spec.threshold,
                            window_s=spec.window_s,
                            for_s=spec.for_s,
                            labels=dict(spec.labels),
                            description=spec.description,
                            created_at=now,
                            state="inactive",
                        )
                    )
                row.guards = named
                s.add(_event_row(row.id, now, event))
                s.flush()
                return _rollout(row)
        except IntegrityError:
            raise AlreadyExists(
                f"deployment {deployment!r} has a rollout in progress, or an alert rule named like one "
                "of this rollout's guards exists",
                details={"field": "deployment", "value": deployment},
            ) from None

    def get(self, rollout_id: int, *, deployment: str | None = None) -> Rollout:
        with self.db.transaction() as s:
            row = s.scalar(self._mine(select(RolloutRow).where(RolloutRow.id == rollout_id)))
            if row is None or (deployment is not None and row.deployment != deployment):
                where = f" of deployment {deployment!r}" if deployment is not None else ""
                raise NotFound(f"rollout {rollout_id}{where} not found", details={"rollout": rollout_id})
            return _rollout(row)

    def list(self, *, deployment: str | None = None, limit: int = 100) -> builtins.list[Rollout]:
        """Newest first."""
        query = self._mine(select(RolloutRow).order_by(RolloutRow.id.desc()).limit(limit))
        if deployment is not None:
            query = query.where(RolloutRow.deployment == deployment)
        with self.db.transaction() as s:
            return [_rollout(r) for r in s.scalars(query)]

    def in_progress(self) -> builtins.list[Rollout]:
        """Running or aborting rollouts, oldest first: what the driver works on."""
        query = self._mine(select(RolloutRow).where(RolloutRow.active.is_not(None)).order_by(RolloutRow.id))
        with self.db.transaction() as s:
            return [_rollout(r) for r in s.scalars(query)]

    def events(self, rollout_id: int) -> builtins.list[RolloutEvent]:
        """Oldest first (none for another project's rollout)."""
        query = self._mine(
            select(RolloutEventRow)
            .join(RolloutRow, RolloutRow.id == RolloutEventRow.rollout_id)
            .where(RolloutEventRow.rollout_id == rollout_id)
            .order_by(RolloutEventRow.id)
        )
        with self.db.transaction() as s:
            return [_event(r) for r in s.scalars(query)]

    def move(
        self,
        rollout: Rollout,
        *,
        at: dt.datetime,
        events: Sequence[EventSpec],
        step: int | None = None,
        state: RolloutState | None = None,
        reason: str | None = None,
    ) -> Rollout | None:
        """Record ``events`` and move ``rollout`` to ``step`` (entered at ``at``) and/or ``state``.

        Only if it still stands where ``rollout`` says (state and step); else another driver
        or an abort moved it first: nothing is written and None is returned. A finished state
        frees the deployment for the next rollout.
        """
        values: dict[str, Any] = {"updated_at": at}
        if step is not None:
            values |= {"step": step, "step_started_at": at}
        if state is not None:
            values["state"] = state
            if state in FINISHED:
                values |= {"active": None, "finished_at": at}
        if reason is not None:
            values["reason"] = reason
        with self.db.transaction() as s:
            result = s.execute(
                update(RolloutRow)
                .where(
                    RolloutRow.id == rollout.id,
                    RolloutRow.project == rollout.project,
                    RolloutRow.state == rollout.state,
                    RolloutRow.step == rollout.step,
                )
                .values(**values)
            )
            if int(getattr(result, "rowcount", 0) or 0) != 1:
                return None
            for event in events:
                s.add(_event_row(rollout.id, at, event))
            row = s.get(RolloutRow, rollout.id)
            assert row is not None
            s.flush()
            s.refresh(row)
            return _rollout(row)


def _in_progress(deployment: str, rollout_id: int) -> Conflict:
    return Conflict(
        f"deployment {deployment!r} already has rollout {rollout_id} in progress; wait for it or "
        f"abort it (aiaas rollouts abort {deployment})",
        details={"field": "deployment", "value": deployment, "rollout": rollout_id},
    )


def _event_row(rollout_id: int, at: dt.datetime, event: EventSpec) -> RolloutEventRow:
    kind, step, weight, message, guard, value, details = event
    return RolloutEventRow(
        rollout_id=rollout_id,
        at=at,
        kind=kind,
        step=step,
        weight=weight,
        message=message,
        guard=guard,
        value=value,
        details=dict(details),
    )


def _rollout(row: RolloutRow) -> Rollout:
    return Rollout(
        id=row.id,
        deployment=row.deployment,
        model=row.model,
        version=row.version,
        via=cast(Any, row.via),
        previous=dict(row.previous or {}),
        steps=tuple(Step(int(st["weight"]), float(st["bake_s"])) for st in row.steps or []),
        guards=tuple(Guard(**g) for g in row.guards or []),
        state=cast(RolloutState, row.state),
        step=row.step,
        step_started_at=row.step_started_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        reason=row.reason or "",
        project=row.project,
    )


def _event(row: RolloutEventRow) -> RolloutEvent:
    return RolloutEvent(
        id=row.id,
        rollout_id=row.rollout_id,
        at=row.at,
        kind=row.kind,
        step=row.step,
        weight=row.weight,
        message=row.message,
        guard=row.guard,
        value=row.value,
        details=dict(row.details or {}),
    )
