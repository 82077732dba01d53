"""Training jobs on the wire: a job, its per-epoch metrics and its log lines.

The job *spec* (what to train) is :class:`aiaas.schemas.JobSpec`; these are what the control
plane says about a submitted job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from aiaas.entities.jobs import JobLauncher, JobStatus
from aiaas.schemas._base import Wire

__all__ = ["Job", "JobList", "JobLogLine", "JobLogs", "JobMetrics", "JobMetricsList", "JobRegistration"]


class JobRegistration(Wire):
    """Where a submitted job's result will be registered (in the answer to a submission)."""

    model: str = Field(description="The model the result is registered under.")
    defaulted: bool = Field(
        description="The spec had no register_as: the name is <dataset>-<family> (or the warm-start model)."
    )
    existing_versions: int = Field(description="Versions the model holds now; 0: the job creates it.")
    latest_version: int | None = Field(description="The highest of those versions.")
    note: str = Field(description="The same in one sentence, for people.")


class Job(Wire):
    """A job (training, or optimization of a registered version) and where it stands."""

    id: int
    kind: str = Field(default="train", description="train, or optimize (spec: an optimization request).")
    status: JobStatus = Field(description="queued, running, succeeded, failed or cancelled.")
    spec: dict[str, Any] = Field(description="The spec as resolved at submission (dataset version pinned).")
    dataset: str
    dataset_version: int
    register_as: str = Field(description="The model the result is registered under.")
    workers: int = Field(description="Data-parallel processes, i.e. CPU slots the job holds.")
    epochs: int = Field(description="Epochs; for an optimization job, its steps (methods, then measuring).")
    launcher: JobLauncher = Field(
        description="scheduler (a child of the control plane) or external (torchrun)."
    )
    attempts: int = Field(description="Times the job was started (a resumed job counts again).")
    cancel_requested: bool
    error: str
    checkpoint_epoch: int | None = Field(
        description="The epoch of the last checkpoint, where a resume starts."
    )
    result_version: int | None = Field(description="The registered model version, once succeeded.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    last_epoch: int | None = None
    last_metrics: dict[str, Any] | None = None
    registration: JobRegistration | None = Field(
        default=None,
        description="Only in the answer to a submission: the model the result goes to, and the "
        "versions it holds already.",
    )

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


class JobList(Wire):
    jobs: list[Job]


class JobMetrics(Wire):
    epoch: int
    metrics: dict[str, Any]
    created_at: datetime


class JobMetricsList(Wire):
    metrics: list[JobMetrics]


class JobLogLine(Wire):
    seq: int = Field(description="Increases along the log; pass the last one as `after` to follow.")
    message: str
    created_at: datetime


class JobLogs(Wire):
    lines: list[JobLogLine]
    next_after: int = Field(description="The `after` to ask with next (the last seq, or the one given).")
