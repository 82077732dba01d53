"""The training jobs' repository: submitted, claimed, reported on, finished, cancelled.

Every transition is one transaction on the job row, and every transition a process makes on
a job it does not own is conditional on the status it expects (``UPDATE ... WHERE status =
'running'``), so a cancel racing a worker's success, or two schedulers racing for one queued
job, leave exactly one winner. The row also holds the digest of the last checkpoint: that is
what makes a killed job resumable by whichever scheduler runs it next.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from aiaas.entities.jobs import (
    CANCELLED,
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
)
from aiaas.entities.projects import DEFAULT_PROJECT
from aiaas.errors import Conflict, InvalidArgument, NotFound
from aiaas.store.artifacts import ArtifactStore
from aiaas.store.database import Database
from aiaas.store.quotas import check_quota
from aiaas.store.tables import TrainingJobLogRow, TrainingJobMetricRow, TrainingJobRow, utcnow

__all__ = ["JobStore"]

_Q = TypeVar("_Q", bound="Select[Any] | Select[Any, Any]")

#: Longest log line kept; a runaway print cannot fill the database.
_MAX_LOG_CHARS = 8_000


class JobStore:
    """The job rows: every state change of a job goes through here.

    Args:
        db: the metadata database.
        artifacts: where checkpoints go (content-addressed, like models).
        project: the project whose jobs it sees (another project's job is not found, as if
            it did not exist) and creates; ``None``: every project's, for the scheduler, which
            runs the queue of all of them.
    """

    def __init__(
        self, db: Database, artifacts: ArtifactStore, *, project: str | None = DEFAULT_PROJECT
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.project = project

    def _mine(self, query: _Q) -> _Q:
        if self.project is None:
            return query
        return cast(_Q, query.where(TrainingJobRow.project == self.project))

    # -- callers (API) ------------------------------------------------------------------------

    def create(self, new: NewJob, *, external: str | None = None) -> Job:
        """Queue a job for the scheduler, or, with ``external`` (who runs it), record a job that
        is already running outside it (a ``torchrun`` launch): no scheduler ever touches it."""
        with self.db.transaction() as s:
            now = utcnow()
            if self.project is None:
                raise InvalidArgument("a job is created in a project: this store sees every project")
            row = TrainingJobRow(
                project=self.project,
                status=QUEUED if external is None else RUNNING,
                launcher=JobLauncher.SCHEDULER if external is None else JobLauncher.EXTERNAL,
                spec=new.spec,
                dataset=new.dataset,
                dataset_version=new.dataset_version,
                register_as=new.register_as,
                workers=new.workers,
                epochs=new.epochs,
                attempts=0 if external is None else 1,
                cancel_requested=False,
                error="",
                created_at=now,
                started_at=None if external is None else now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            check_quota(s, self.project, {"max_jobs": 1, "max_slots": new.workers})
            message = (
                f"queued: needs {new.workers} CPU slot(s)" if external is None else f"started by {external}"
            )
            s.add(TrainingJobLogRow(job_id=row.id, message=message))
            return _job(row)

    def get(self, job_id: int) -> Job:
        with self.db.transaction() as s:
            row = _row(s, job_id, self.project)
            return _job(row, *_last_metrics(s, job_id))

    def status_counts(self) -> dict[str, int]:
        """How many jobs are in each status (every status listed, zeros included)."""
        query = self._mine(select(TrainingJobRow.status, func.count()).group_by(TrainingJobRow.status))
        with self.db.transaction() as s:
            counts = {str(status): int(n) for status, n in s.execute(query)}
        return {status: counts.get(status, 0) for status in JOB_STATUSES}

    def running_progress(self) -> list[tuple[Job, float]]:
        """Each running job with the share of its epochs (or steps) done, from 0 to 1."""
        with self.db.transaction() as s:
            rows = s.scalars(self._mine(select(TrainingJobRow).where(TrainingJobRow.status == RUNNING))).all()
            jobs = [_job(row, *_last_metrics(s, row.id)) for row in rows]
        return [(job, min((job.last_epoch or 0) / job.epochs, 1.0) if job.epochs else 0.0) for job in jobs]

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        if status is not None and status not in JOB_STATUSES:
            raise InvalidArgument(
                f"status must be one of {', '.join(JOB_STATUSES)}; got {status!r}",
                details={"field": "status"},
            )
        query = self._mine(select(TrainingJobRow).order_by(TrainingJobRow.id.desc()).limit(limit))
        if status is not None:
            query = query.where(TrainingJobRow.status == status)
        with self.db.transaction() as s:
            return [_job(row) for row in s.scalars(query)]

    def cancel(self, job_id: int) -> Job:
        """A queued job is cancelled at once; a running one is flagged for its scheduler to stop.

        Cancelling a job that already ended is a conflict, not a silent no-op: the caller
        asked for something that can no longer happen.
        """
        with self.db.transaction() as s:
            row = _row(s, job_id, self.project)
            if row.status in TERMINAL:
                raise Conflict(
                    f"job {job_id} already {row.status}; only queued or running jobs can be cancelled",
                    details={"job": job_id, "status": row.status},
                )
            now = utcnow()
            if row.status == QUEUED:
                row.status, row.finished_at = CANCELLED, now
                s.add(TrainingJobLogRow(job_id=job_id, message="cancelled before it started"))
            elif not row.cancel_requested:
                row.cancel_requested = True
                s.add(TrainingJobLogRow(job_id=job_id, message="cancel requested; stopping the job"))
            row.updated_at = now
            s.flush()
            return _job(row)

    def metrics(self, job_id: int) -> list[JobMetrics]:
        with self.db.transaction() as s:
            _row(s, job_id, self.project)
            rows = s.scalars(
                select(TrainingJobMetricRow)
                .where(TrainingJobMetricRow.job_id == job_id)
                .order_by(TrainingJobMetricRow.epoch)
            )
            return [JobMetrics(r.epoch, dict(r.metrics), r.created_at) for r in rows]

    def logs(self, job_id: int, after: int = 0, limit: int = 1000) -> list[JobLogLine]:
        with self.db.transaction() as s:
            _row(s, job_id, self.project)
            rows = s.scalars(
                select(TrainingJobLogRow)
                .where(TrainingJobLogRow.job_id == job_id, TrainingJobLogRow.id > after)
                .order_by(TrainingJobLogRow.id)
                .limit(limit)
            )
            return [JobLogLine(r.id, r.message, r.created_at) for r in rows]

    # -- the scheduler ------------------------------------------------------------------------

    def queued(self) -> list[Job]:
        """Queued jobs, oldest first (the scheduler's order)."""
        with self.db.transaction() as s:
            rows = s.scalars(
                self._mine(
                    select(TrainingJobRow).where(TrainingJobRow.status == QUEUED).order_by(TrainingJobRow.id)
                )
            )
            return [_job(row) for row in rows]

    def running(self) -> list[Job]:
        """Running jobs that a scheduler started (external launches are their launcher's)."""
        with self.db.transaction() as s:
            rows = s.scalars(
                self._mine(
                    select(TrainingJobRow).where(
                        TrainingJobRow.status == RUNNING, TrainingJobRow.launcher == JobLauncher.SCHEDULER
                    )
                )
            )
            return [_job(row) for row in rows]

    def claim(self, job_id: int) -> bool:
        """Move a queued job to running for this scheduler; False when someone else won it."""
        with self.db.transaction() as s:
            now = utcnow()
            result = s.execute(
                update(TrainingJobRow)
                .where(TrainingJobRow.id == job_id, TrainingJobRow.status == QUEUED)
                .values(status=RUNNING, attempts=TrainingJobRow.attempts + 1, pid=None, updated_at=now)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            row = _row(s, job_id, self.project)
            if row.started_at is None:
                row.started_at = now
            resume = f"; resuming after epoch {row.checkpoint_epoch}" if row.checkpoint_epoch else ""
            s.add(TrainingJobLogRow(job_id=job_id, message=f"attempt {row.attempts} started{resume}"))
            return True

    def set_pid(self, job_id: int, pid: int) -> None:
        with self.db.transaction() as s:
            s.execute(update(TrainingJobRow).where(TrainingJobRow.id == job_id).values(pid=pid))

    def requeue(self, job_id: int, reason: str) -> bool:
        """Put a running job back in the queue (it resumes from its last checkpoint)."""
        return self._transition(job_id, RUNNING, QUEUED, reason, finished=False)

    def finish(self, job_id: int, status: str, message: str, error: str = "") -> bool:
        """End a running job; False when it was no longer running (someone else ended it)."""
        values = {"error": error} if error else {}
        return self._transition(job_id, RUNNING, status, message, finished=True, **values)

    # -- the worker ---------------------------------------------------------------------------

    def begin_attempt(self, job_id: int) -> Job:
        """Forget the metrics of epochs after the last checkpoint: the resumed run reports them again."""
        with self.db.transaction() as s:
            row = _row(s, job_id, self.project)
            s.execute(
                delete(TrainingJobMetricRow).where(
                    TrainingJobMetricRow.job_id == job_id,
                    TrainingJobMetricRow.epoch > (row.checkpoint_epoch or 0),
                )
            )
            return _job(row)

    def log(self, job_id: int, message: str) -> None:
        with self.db.transaction() as s:
            s.add(TrainingJobLogRow(job_id=job_id, message=message[:_MAX_LOG_CHARS]))

    def record_epoch(self, job_id: int, epoch: int, metrics: dict[str, Any]) -> bool:
        """Store one epoch's metrics; returns whether a cancel was requested meanwhile."""
        with self.db.transaction() as s:
            s.execute(
                delete(TrainingJobMetricRow).where(
                    TrainingJobMetricRow.job_id == job_id, TrainingJobMetricRow.epoch == epoch
                )
            )
            s.add(TrainingJobMetricRow(job_id=job_id, epoch=epoch, metrics=metrics))
            row = _row(s, job_id, self.project)
            row.updated_at = utcnow()
            return row.cancel_requested

    def save_checkpoint(self, job_id: int, epoch: int, state: bytes) -> None:
        """Write the state, then point the job at it: a crash in between leaves the old checkpoint."""
        digest = self.artifacts.put(state)
        with self.db.transaction() as s:
            s.execute(
                update(TrainingJobRow)
                .where(TrainingJobRow.id == job_id)
                .values(checkpoint_digest=digest, checkpoint_epoch=epoch, updated_at=utcnow())
            )

    def checkpoint(self, job: Job) -> bytes | None:
        return self.artifacts.get(job.checkpoint_digest) if job.checkpoint_digest else None

    def succeed(self, job_id: int, version: int) -> bool:
        message = f"succeeded: registered version {version}"
        return self._transition(job_id, RUNNING, SUCCEEDED, message, finished=True, result_version=version)

    # -- internals ----------------------------------------------------------------------------

    def _transition(
        self, job_id: int, expected: str, status: str, message: str, *, finished: bool, **extra: Any
    ) -> bool:
        with self.db.transaction() as s:
            now = utcnow()
            values: dict[str, Any] = {"status": status, "pid": None, "updated_at": now, **extra}
            if finished:
                values["finished_at"] = now
            result = s.execute(
                update(TrainingJobRow)
                .where(TrainingJobRow.id == job_id, TrainingJobRow.status == expected)
                .values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            s.add(TrainingJobLogRow(job_id=job_id, message=message[:_MAX_LOG_CHARS]))
            return True


def _row(s: Session, job_id: int, project: str | None) -> TrainingJobRow:
    row = s.get(TrainingJobRow, job_id)
    if row is None or (project is not None and row.project != project):
        raise NotFound(f"no training job {job_id}", details={"job": job_id})
    return row


def _last_metrics(s: Session, job_id: int) -> tuple[int | None, dict[str, Any] | None]:
    row = s.scalar(
        select(TrainingJobMetricRow)
        .where(TrainingJobMetricRow.job_id == job_id)
        .order_by(TrainingJobMetricRow.epoch.desc())
        .limit(1)
    )
    return (row.epoch, dict(row.metrics)) if row is not None else (None, None)


def _job(
    row: TrainingJobRow, last_epoch: int | None = None, last_metrics: dict[str, Any] | None = None
) -> Job:
    return Job(
        id=row.id,
        project=row.project,
        status=JobStatus(row.status),
        spec=dict(row.spec),
        dataset=row.dataset,
        dataset_version=row.dataset_version,
        register_as=row.register_as,
        workers=row.workers,
        launcher=JobLauncher(row.launcher),
        epochs=row.epochs,
        attempts=row.attempts,
        cancel_requested=row.cancel_requested,
        pid=row.pid,
        error=row.error,
        checkpoint_epoch=row.checkpoint_epoch,
        checkpoint_digest=row.checkpoint_digest,
        result_version=row.result_version,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
        last_epoch=last_epoch,
        last_metrics=last_metrics,
    )
