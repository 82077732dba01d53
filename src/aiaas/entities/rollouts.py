"""Guarded rollouts as the store hands them out: the plan, where it stands, and what happened.

Below both :mod:`aiaas.store` (the repository) and :mod:`aiaas.rollouts` (the domain that
checks and drives them), so neither imports the other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FINISHED", "Guard", "Rollout", "RolloutEvent", "RolloutState", "Step"]

#: ``running``: stepping; ``aborting``: asked to stop, the driver moves traffic back next pass;
#: ``completed``: promoted and its last bake held; ``rolled_back``: a guard fired;
#: ``aborted``: stopped by a user; ``failed``: a step could not be applied (e.g. the deployment
#: was deleted).
RolloutState = Literal["running", "aborting", "completed", "rolled_back", "aborted", "failed"]
#: States a rollout never leaves.
FINISHED = frozenset({"completed", "rolled_back", "aborted", "failed"})


@dataclass(frozen=True)
class Step:
    """Send ``weight`` percent of requests to the new version, then watch it for ``bake_s``.

    The step at 100 promotes the new version to the deployment's primary (or moves its
    alias) and then bakes like the others: the guard window of a promotion.
    """

    weight: int
    bake_s: float


@dataclass(frozen=True)
class Guard:
    """A condition on the new version (``metric op threshold`` over ``window_s``, true for
    ``for_s``) that rolls the rollout back when it fires; kept as the alert rule ``rule``."""

    name: str
    metric: str
    op: str
    threshold: float
    window_s: float
    for_s: float = 0.0
    feature: str | None = None
    rule: str = ""


@dataclass(frozen=True)
class Rollout:
    """A rollout of ``version`` on ``deployment`` and where it stands.

    ``previous`` is the deployment's routing before it started (``version``, ``alias``,
    ``alias_version``, ``traffic``): what a rollback restores. ``via`` is ``alias`` when the
    deployment follows an alias, which promotion then moves; else ``version``. ``step`` is
    the index of the step under way (-1: none yet), entered at ``step_started_at``.
    """

    id: int
    deployment: str
    model: str
    version: int
    via: Literal["version", "alias"]
    previous: dict[str, Any]
    steps: tuple[Step, ...]
    guards: tuple[Guard, ...]
    state: RolloutState
    step: int
    step_started_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None = None
    reason: str = ""
    project: str = "default"

    @property
    def weight(self) -> int:
        """The new version's share of requests the rollout has set (0 before the first step)."""
        return self.steps[self.step].weight if 0 <= self.step < len(self.steps) else 0


@dataclass(frozen=True)
class RolloutEvent:
    """One thing a rollout did, and why: ``kind`` is started, step, baked, promoted, completed,
    rolled_back, aborted or failed; ``guard`` and ``value`` say which guard fired, at what."""

    id: int
    rollout_id: int
    at: dt.datetime
    kind: str
    step: int | None
    weight: int | None
    message: str
    guard: str | None = None
    value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
