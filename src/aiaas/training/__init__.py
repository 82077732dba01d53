"""Training: job specs, trainers, checkpoints, data-parallel launch, and the job scheduler."""

from __future__ import annotations

from aiaas.training.jobs import JOB_STATUSES, Job, JobLogLine, JobMetrics, JobStore, NewJob
from aiaas.training.scheduler import Scheduler

__all__ = ["JOB_STATUSES", "Job", "JobLogLine", "JobMetrics", "JobStore", "NewJob", "Scheduler"]
