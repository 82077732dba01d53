"""Training jobs as the training domain names them: the entities and their store.

The job rows and their SQL live in :mod:`aiaas.store.jobs`, the entities in
:mod:`aiaas.entities.jobs`; this module gathers both under the name the scheduler, the
worker and their callers have always imported them by.
"""

from __future__ import annotations

from aiaas.entities.jobs import (
    CANCELLED,
    FAILED,
    JOB_STATUSES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    Job,
    JobLauncher,
    JobLogLine,
    JobMetrics,
    JobStatus,
    NewJob,
    Registration,
)
from aiaas.store.jobs import JobStore

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
    "JobStore",
    "NewJob",
    "Registration",
]
