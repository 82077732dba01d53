"""Retraining's repository: each deployment's policy, the runs of its loop and their events.

A run and its first events are written in one transaction. Every later move (the job's
result, the evaluation, the rollout, the outcome) is a compare-and-set on the state the
driver read: a second control plane that read the same row writes nothing, and a restart
carries on from the row.

Policies and runs belong to their deployment's project (migration 0019). A store of one
project sees that project's only (another's is not found, as if it did not exist); a store
of every project (``project=None``) is the driver's: it lists every policy and run under
way, and takes a deployment's qualified name (:func:`aiaas.store.queries.scoped`).
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Select, delete, select, update
from sqlalchemy.exc import IntegrityError

from aiaas.entities.projects import DEFAULT_PROJECT
from aiaas.entities.retraining import RUN_FINISHED, Policy, Run, RunEvent, RunState
from aiaas.errors import Conflict, NotFound
from aiaas.store.database import Database
from aiaas.store.queries import scoped
from aiaas.store.tables import RetrainingEventRow, RetrainingPolicyRow, RetrainingRunRow, utcnow

__all__ = ["RetrainingStore", "RunEventSpec"]

#: (kind, message, details): one event to record with a change.
RunEventSpec = tuple[str, str, dict[str, Any]]


class RetrainingStore:
    """The ``retraining_policies``, ``retraining_runs`` and ``retraining_events`` tables of one
    project, or of every project (``project=None``)."""

    def __init__(self, db: Database, *, project: str | None = DEFAULT_PROJECT) -> None:
        self.db = db
        self.project = project

    def _mine(self, query: Select[Any], column: Any) -> Select[Any]:
        return query if self.project is None else query.where(column == self.project)

    # -- policies ---------------------------------------------------------------------------

    def put_policy(self, deployment: str, spec: dict[str, Any]) -> Policy:
        """Create or replace ``deployment``'s policy."""
        now = utcnow()
        project, plain = scoped(self.project, deployment)
        with self.db.transaction() as s:
            row = s.get(RetrainingPolicyRow, (project, plain))
            if row is None:
                row = RetrainingPolicyRow(
                    project=project, deployment=plain, spec=spec, created_at=now, updated_at=now
                )
                s.add(row)
            else:
                row.spec, row.updated_at = spec, now
            s.flush()
            return _policy(row)

    def get_policy(self, deployment: str) -> Policy:
        with self.db.transaction() as s:
            row = s.get(RetrainingPolicyRow, scoped(self.project, deployment))
            if row is None:
                raise NotFound(
                    f"deployment {deployment!r} has no retraining policy",
                    details={"deployment": deployment},
                )
            return _policy(row)

    def policies(self) -> builtins.list[Policy]:
        with self.db.transaction() as s:
            return [
                _policy(r)
                for r in s.scalars(
                    self._mine(
                        select(RetrainingPolicyRow).order_by(
                            RetrainingPolicyRow.project, RetrainingPolicyRow.deployment
                        ),
                        RetrainingPolicyRow.project,
                    )
                )
            ]

    def delete_policy(self, deployment: str) -> None:
        project, plain = scoped(self.project, deployment)
        with self.db.transaction() as s:
            result = s.execute(
                delete(RetrainingPolicyRow).where(
                    RetrainingPolicyRow.project == project, RetrainingPolicyRow.deployment == plain
                )
            )
            if int(getattr(result, "rowcount", 0) or 0) == 0:
                raise NotFound(
                    f"deployment {deployment!r} has no retraining policy",
                    details={"deployment": deployment},
                )

    # -- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        deployment: str,
        model: str,
        served_version: int,
        trigger: dict[str, Any],
        at: dt.datetime,
        events: Sequence[RunEventSpec],
    ) -> Run:
        """Store a run in ``training`` (its job not yet known).

        Raises:
            Conflict: another run of ``deployment`` is in progress.
        """
        project, plain = scoped(self.project, deployment)
        try:
            with self.db.transaction() as s:
                row = RetrainingRunRow(
                    project=project,
                    deployment=plain,
                    active=plain,
                    model=model,
                    state="training",
                    served_version=served_version,
                    trigger=dict(trigger),
                    job_id=None,
                    version=None,
                    evaluation={},
                    rollout_id=None,
                    reason="",
                    created_at=at,
                    updated_at=at,
                )
                s.add(row)
                s.flush()
                for event in events:
                    s.add(_event_row(row.id, at, event))
                s.flush()
                return _run(row)
        except IntegrityError:
            raise Conflict(
                f"deployment {deployment!r} has a retraining run in progress",
                details={"field": "deployment", "value": deployment},
            ) from None

    def get_run(self, run_id: int) -> Run:
        with self.db.transaction() as s:
            row = s.scalar(
                self._mine(
                    select(RetrainingRunRow).where(RetrainingRunRow.id == run_id), RetrainingRunRow.project
                )
            )
            if row is None:
                raise NotFound(f"retraining run {run_id} not found", details={"run": run_id})
            return _run(row)

    def runs(self, *, deployment: str | None = None, limit: int = 100) -> builtins.list[Run]:
        """Newest first."""
        query = select(RetrainingRunRow).order_by(RetrainingRunRow.id.desc()).limit(limit)
        if deployment is not None:
            project, plain = scoped(self.project, deployment)
            query = query.where(RetrainingRunRow.project == project, RetrainingRunRow.deployment == plain)
        else:
            query = self._mine(query, RetrainingRunRow.project)
        with self.db.transaction() as s:
            return [_run(r) for r in s.scalars(query)]

    def in_progress(self) -> builtins.list[Run]:
        """Runs under way, oldest first: what the driver works on."""
        query = self._mine(
            select(RetrainingRunRow)
            .where(RetrainingRunRow.active.is_not(None))
            .order_by(RetrainingRunRow.id),
            RetrainingRunRow.project,
        )
        with self.db.transaction() as s:
            return [_run(r) for r in s.scalars(query)]

    def events(self, run_ids: Sequence[int]) -> dict[int, builtins.list[RunEvent]]:
        """Each run's events, oldest first."""
        out: dict[int, builtins.list[RunEvent]] = {i: [] for i in run_ids}
        if not run_ids:
            return out
        query = (
            select(RetrainingEventRow)
            .where(RetrainingEventRow.run_id.in_(list(run_ids)))
            .order_by(RetrainingEventRow.id)
        )
        with self.db.transaction() as s:
            for r in s.scalars(query):
                out[r.run_id].append(_event(r))
        return out

    def move(
        self,
        run: Run,
        *,
        at: dt.datetime,
        events: Sequence[RunEventSpec],
        state: RunState | None = None,
        reason: str | None = None,
        **values: Any,
    ) -> Run | None:
        """Record ``events`` and set ``values`` (job_id, version, evaluation, rollout_id) and/or
        ``state`` on ``run``, only if it still stands in the state ``run`` says; else nothing is
        written and None is returned. A finished state frees the deployment for the next run."""
        unknown = set(values) - {"job_id", "version", "evaluation", "rollout_id"}
        if unknown:
            raise TypeError(f"unknown run fields: {sorted(unknown)}")
        changes: dict[str, Any] = {"updated_at": at, **values}
        if state is not None:
            changes["state"] = state
            if state in RUN_FINISHED:
                changes |= {"active": None, "finished_at": at}
        if reason is not None:
            changes["reason"] = reason
        with self.db.transaction() as s:
            result = s.execute(
                update(RetrainingRunRow)
                .where(
                    RetrainingRunRow.id == run.id,
                    RetrainingRunRow.project == run.project,
                    RetrainingRunRow.state == run.state,
                )
                .values(**changes)
            )
            if int(getattr(result, "rowcount", 0) or 0) != 1:
                return None
            for event in events:
                s.add(_event_row(run.id, at, event))
            row = s.get(RetrainingRunRow, run.id)
            assert row is not None
            s.flush()
            s.refresh(row)
            return _run(row)


def _event_row(run_id: int, at: dt.datetime, event: RunEventSpec) -> RetrainingEventRow:
    kind, message, details = event
    return RetrainingEventRow(run_id=run_id, at=at, kind=kind, message=message, details=dict(details))


def _policy(row: RetrainingPolicyRow) -> Policy:
    return Policy(
        deployment=row.deployment,
        spec=dict(row.spec or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
        project=row.project,
    )


def _run(row: RetrainingRunRow) -> Run:
    return Run(
        id=row.id,
        deployment=row.deployment,
        model=row.model,
        state=cast(RunState, row.state),
        served_version=row.served_version,
        trigger=dict(row.trigger or {}),
        job_id=row.job_id,
        version=row.version,
        evaluation=dict(row.evaluation or {}),
        rollout_id=row.rollout_id,
        reason=row.reason or "",
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        project=row.project,
    )


def _event(row: RetrainingEventRow) -> RunEvent:
    return RunEvent(
        id=row.id,
        run_id=row.run_id,
        at=row.at,
        kind=row.kind,
        message=row.message,
        details=dict(row.details or {}),
    )
