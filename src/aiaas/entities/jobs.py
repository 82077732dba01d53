"""Plain training-job entities: what the job store returns and the training service hands out.

A job's status moves ``queued → running → succeeded | failed | cancelled`` (a killed
running job goes back to ``queued`` and resumes from its checkpoint); see
:mod:`aiaas.store.jobs` for how each move is made safe against racing processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "CANCELLED",
    "FAILED",
    "JOB_STATUSES",
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "TERMINAL",
    "Job",
    "JobLauncher",
    "JobLogLine",
    "JobMetrics",
    "JobStatus",
    "NewJob",
    "Registration",
]


class JobStatus(StrEnum):
    """Where a job stands; the values are what the database and the JSON hold."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobLauncher(StrEnum):
    """Who runs a job: a scheduler of the control plane, or something outside it (``torchrun``)."""

    SCHEDULER = "scheduler"
    EXTERNAL = "external"


QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)
JOB_STATUSES = tuple(JobStatus)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})


@dataclass(frozen=True)
class Registration:
    """Where a just-submitted job's result will be registered, said at submission.

    A spec without ``register_as`` gets a derived name, and that model may already hold
    versions: the submitter is told, rather than finding a new version in someone's model.

    Attributes:
        model: the model name the result is registered under.
        defaulted: the spec had no ``register_as`` and the name was derived.
        existing_versions: versions the model holds now (0: the job creates the model).
        latest_version: the highest of them, or None.
        note: the same, in one sentence for people.
    """

    model: str
    defaulted: bool
    existing_versions: int
    latest_version: int | None
    note: str


@dataclass(frozen=True)
class Job:
    """A training job as callers see it; ``spec`` is the resolved spec (dataset version pinned).

    ``registration`` is set only on the job :meth:`TrainingService.submit` returns.
    """

    id: int
    status: JobStatus
    spec: dict[str, Any]
    dataset: str
    dataset_version: int
    register_as: str
    workers: int
    epochs: int
    attempts: int
    cancel_requested: bool
    launcher: JobLauncher
    pid: int | None
    error: str
    checkpoint_epoch: int | None
    checkpoint_digest: str | None
    result_version: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    last_epoch: int | None = None
    last_metrics: dict[str, Any] | None = None
    registration: Registration | None = None
    project: str = "default"

    @property
    def kind(self) -> str:
        """``train``, or the ``kind`` its spec names (``optimize``: see :mod:`aiaas.optimize`)."""
        kind = self.spec.get("kind")
        return kind if isinstance(kind, str) else "train"


@dataclass(frozen=True)
class JobMetrics:
    epoch: int
    metrics: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class JobLogLine:
    """One line; ``seq`` increases along a job's log and is the cursor for following it."""

    seq: int
    message: str
    created_at: datetime


@dataclass(frozen=True)
class NewJob:
    """A validated job, ready to queue (see :meth:`aiaas.training.TrainingService.submit`)."""

    spec: dict[str, Any]
    dataset: str
    dataset_version: int
    register_as: str
    workers: int
    epochs: int
