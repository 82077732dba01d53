"""Retraining policies and runs as the store hands them out.

Below both :mod:`aiaas.store` (the repository) and :mod:`aiaas.retraining` (the domain that
checks policies and drives runs), so neither imports the other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["RUN_FINISHED", "Policy", "Run", "RunEvent", "RunState"]

#: ``training``: the job was submitted and is awaited; ``rolling_out``: the candidate passed its
#: evaluation and its guarded canary is under way; then one of the finished states.
RunState = Literal["training", "rolling_out", "promoted", "rolled_back", "discarded", "failed"]
#: States a run never leaves.
RUN_FINISHED = frozenset({"promoted", "rolled_back", "discarded", "failed"})


@dataclass(frozen=True)
class Policy:
    """A deployment's retraining policy, as checked by :func:`aiaas.retraining.check_policy`.

    ``spec`` holds the checked policy in its stored (plain JSON) form: ``trigger``, ``data``,
    ``training``, ``evaluation``, ``rollout`` and ``cooldown_s``.
    """

    deployment: str
    spec: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    project: str = "default"


@dataclass(frozen=True)
class Run:
    """One pass of the loop: trigger → job → version → evaluation → rollout → outcome."""

    id: int
    deployment: str
    model: str
    state: RunState
    served_version: int
    trigger: dict[str, Any]
    job_id: int | None
    version: int | None
    evaluation: dict[str, Any]
    rollout_id: int | None
    reason: str
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None = None
    project: str = "default"


@dataclass(frozen=True)
class RunEvent:
    """One step of a run with its time and reason (``kind``: triggered, job, trained, evaluated,
    discarded, rollout, promoted, rolled_back, failed)."""

    id: int
    run_id: int
    at: dt.datetime
    kind: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
