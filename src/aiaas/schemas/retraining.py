"""Retraining policies and runs on the wire.

The request model only gives the shape for the OpenAPI document; the rules (a trigger metric
and its threshold's range, a registered dataset, a job spec the overrides leave valid, a
canary plan) are checked by :class:`aiaas.retraining.RetrainingService`, which names the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from aiaas.schemas._base import Wire, WireIn

__all__ = ["RetrainingEvent", "RetrainingPolicy", "RetrainingPolicyIn", "RetrainingRun", "RetrainingRunList"]

_DURATION = "seconds, or a number and a unit s, m, h or d (30s, 5m)"


class RetrainingPolicyIn(WireIn):
    """When to retrain a deployment's model, on what, and how the result reaches the traffic."""

    trigger: dict[str, Any] = Field(
        description='{"metric", "threshold", "window", "feature"?}: metric drift_share (share of drifted '
        "features, > threshold, 0-1), drift (drifted features, or a feature's score with feature, > "
        "threshold), accuracy or f1 (from feedback, < threshold, 0-1); window: " + _DURATION + "."
    )
    data: dict[str, Any] = Field(
        description='{"dataset": NAME}: its newest version at each run; or {"feedback": true}: the '
        "prediction log joined with its feedback (as dataset <deployment>-feedback)."
    )
    training: dict[str, Any] | None = Field(
        default=None,
        description="Overrides of the served version's job spec (model, optimizer, schedule, epochs, "
        "batch_size, early_stopping, seed, workers) and warm_start (default true: continue from the "
        "served version).",
    )
    evaluation: dict[str, Any] | None = Field(
        default=None,
        description='{"tolerance": 0.0, "dataset": "name[:version]"?}: the candidate is kept when its '
        "score (accuracy, or R² for regression) on the held-out split is at least the served "
        "version's minus tolerance; held-out: the validation split of the training data, or of dataset.",
    )
    rollout: dict[str, Any] | None = Field(
        default=None,
        description='{"steps": [...], "guards": [...]} as in POST .../rollouts (default steps: 10% '
        "for 1m, then 100% for 1m).",
    )
    cooldown: float | str | None = Field(
        default=None,
        description=f"Least time from a run's end to the next trigger (default 1h): {_DURATION}.",
    )

    def plain(self) -> dict[str, Any]:
        """The body as the service takes it: left-out fields absent."""
        return self.model_dump(exclude_unset=True)


class RetrainingPolicy(Wire):
    deployment: str
    trigger: dict[str, Any]
    data: dict[str, Any]
    training: dict[str, Any]
    evaluation: dict[str, Any]
    rollout: dict[str, Any]
    cooldown_s: float
    created_at: dt.datetime
    updated_at: dt.datetime


class RetrainingEvent(Wire):
    """One step of a run and why."""

    at: dt.datetime
    kind: str = Field(
        description="triggered, job, trained, evaluated, discarded, rollout, promoted, rolled_back, failed."
    )
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class RetrainingRun(Wire):
    id: int
    deployment: str
    model: str
    state: str = Field(description="training, rolling_out, promoted, rolled_back, discarded or failed.")
    served_version: int = Field(description="The version served when the trigger held.")
    trigger: dict[str, Any] = Field(description="The trigger and the value that started the run.")
    job_id: int | None
    version: int | None = Field(description="The version the job registered (the candidate).")
    evaluation: dict[str, Any] = Field(
        description="metric, served, candidate, tolerance, rows, dataset, kept."
    )
    rollout_id: int | None
    reason: str
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None = None
    events: list[RetrainingEvent] = Field(default_factory=list, description="Oldest first.")


class RetrainingRunList(Wire):
    runs: list[RetrainingRun]
