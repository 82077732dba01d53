"""The tables of automatic actions: guarded rollouts and retraining loops with their events
(kept apart from :mod:`aiaas.store.tables` to keep each module short; re-exported there).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aiaas.store.tables import _PROJECT, Base, UTCDateTime, _project_column, utcnow

__all__ = ["RetrainingEventRow", "RetrainingPolicyRow", "RetrainingRunRow", "RolloutEventRow", "RolloutRow"]


class RolloutRow(Base):
    """A guarded rollout of a version on a deployment (migration 0015); see :mod:`aiaas.rollouts`.

    ``active`` is the deployment's name while the rollout is running or aborting and NULL once
    it finished: unique per project (migration 0019), so a second rollout of the same
    deployment is refused by the database itself, whichever control plane asks.
    """

    __tablename__ = "rollouts"
    __table_args__ = (UniqueConstraint("project", "active", name="uq_rollouts_project_active"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = _project_column()
    deployment: Mapped[str] = mapped_column(String(128), index=True)
    active: Mapped[str | None] = mapped_column(String(128), nullable=True)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    via: Mapped[str] = mapped_column(String(16))
    previous: Mapped[dict[str, Any]] = mapped_column(JSON)
    steps: Mapped[list[Any]] = mapped_column(JSON)
    guards: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(Integer)
    step_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")


class RolloutEventRow(Base):
    """One step, promotion or rollback of a rollout, with its reason (migration 0015)."""

    __tablename__ = "rollout_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16))
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    weight: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text)
    guard: Mapped[str | None] = mapped_column(String(128), nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


class RetrainingPolicyRow(Base):
    """A deployment's retraining policy (migration 0017; keyed per project by 0019); see
    :mod:`aiaas.retraining`."""

    __tablename__ = "retraining_policies"

    project: Mapped[str] = mapped_column(
        _PROJECT, ForeignKey("projects.name"), primary_key=True, index=True, default="default"
    )
    deployment: Mapped[str] = mapped_column(String(128), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RetrainingRunRow(Base):
    """One run of a deployment's retraining loop (migration 0017).

    ``active`` is the deployment's name while the run is under way and NULL once it finished:
    unique per project (migration 0019), so at most one run per deployment is in progress.
    """

    __tablename__ = "retraining_runs"
    __table_args__ = (UniqueConstraint("project", "active", name="uq_retraining_runs_project_active"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = _project_column()
    deployment: Mapped[str] = mapped_column(String(128), index=True)
    active: Mapped[str | None] = mapped_column(String(128), nullable=True)
    model: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    served_version: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    evaluation: Mapped[dict[str, Any]] = mapped_column(JSON)
    rollout_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RetrainingEventRow(Base):
    """One step of a retraining run, with its time and reason (migration 0017)."""

    __tablename__ = "retraining_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("retraining_runs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
