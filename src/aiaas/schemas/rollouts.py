"""Guarded rollouts on the wire.

The request models only give the shape for the OpenAPI document; the rules (weights increase
to 100, a guard's metric is a version's, its window is not empty, it watches this deployment's
new version) are checked by :class:`aiaas.rollouts.RolloutService`, which names the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ConfigDict, Field

from aiaas.schemas._base import Wire, WireIn

__all__ = [
    "GuardIn",
    "Rollout",
    "RolloutCreate",
    "RolloutEvent",
    "RolloutGuard",
    "RolloutList",
    "RolloutStep",
    "RolloutStepIn",
]

_DURATION = "seconds, or a number and a unit s, m, h or d (30s, 5m)"


class RolloutStepIn(WireIn):
    """Send ``weight`` percent of requests to the new version, then bake for ``bake``."""

    weight: int = Field(
        description="Percent of requests, 1-100, greater than the step before; the last is 100."
    )
    bake: float | str = Field(default=0.0, description=f"How long the guards watch this step: {_DURATION}.")


class GuardIn(WireIn):
    """An alert rule on the new version: the rollout rolls back when it fires."""

    name: str | None = Field(default=None, description="Unique among the guards (default: the metric).")
    metric: str = Field(
        description="A deployment metric: latency_p50, latency_p99, error_rate, throughput, "
        "replica_restarts, cpu, memory, queue_depth, accuracy, f1, drift."
    )
    op: str = Field(description="The comparison: >, >=, <, <=, == or !=.")
    threshold: float
    window: float | str = Field(description=f"How far back the metric is read: {_DURATION}.")
    for_: float | str = Field(
        default=0, alias="for", description=f"How long the condition must hold before it fires: {_DURATION}."
    )
    feature: str | None = Field(default=None, max_length=256, description="drift only: this feature.")
    deployment: str | None = Field(default=None, description="Leave out (must be this deployment).")
    version: int | None = Field(default=None, description="Leave out (must be the new version).")

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


class RolloutCreate(WireIn):
    """Roll ``version`` out on the deployment in ``steps``, watched by ``guards``."""

    version: int = Field(description="The new version, of the deployment's model.")
    steps: list[RolloutStepIn] = Field(
        description='Weights increasing to 100, e.g. [{"weight": 10, "bake": "5m"}, {"weight": 100, '
        '"bake": "10m"}]; the step at 100 promotes the new version (moves the alias the deployment '
        "follows, or pins it) and its bake is the promotion's guard window."
    )
    guards: list[GuardIn] = Field(default_factory=list)

    def plain(self) -> dict[str, Any]:
        """The body as the service takes it: plain values, left-out fields absent."""
        return {
            "version": self.version,
            "steps": [s.model_dump() for s in self.steps],
            "guards": [g.model_dump(by_alias=True, exclude_none=True) for g in self.guards],
        }


class RolloutStep(Wire):
    weight: int
    bake_s: float


class RolloutGuard(Wire):
    name: str
    metric: str
    op: str
    threshold: float
    window_s: float
    for_s: float
    feature: str | None = None
    rule: str = Field(description="The alert rule that evaluates it (its history: GET /api/v1/alerts?rule=).")


class RolloutEvent(Wire):
    """What the rollout did and why."""

    at: dt.datetime
    kind: str = Field(
        description="started, step, baked, promoted, completed, abort, aborted, rolled_back, failed."
    )
    step: int | None
    weight: int | None
    message: str
    guard: str | None = None
    value: float | None = None


class Rollout(Wire):
    id: int
    deployment: str
    model: str
    version: int
    via: str = Field(description="alias: promotion moves the alias the deployment follows; version: pins it.")
    previous_version: int | None = Field(description="The version served before; a rollback returns to it.")
    steps: list[RolloutStep]
    guards: list[RolloutGuard]
    state: str = Field(description="running, aborting, completed, rolled_back, aborted or failed.")
    step: int = Field(description="Index of the step under way (-1: none yet).")
    weight: int = Field(description="The new version's share of requests the rollout has set.")
    step_started_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None = None
    reason: str = ""
    events: list[RolloutEvent] = Field(default_factory=list, description="Oldest first (in show only).")


class RolloutList(Wire):
    rollouts: list[Rollout]
