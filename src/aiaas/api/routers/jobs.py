"""``/api/v1/jobs``: submit training jobs, follow their metrics and logs, cancel them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from aiaas import schemas
from aiaas.api.deps import ServicesDep
from aiaas.api.params import JobId
from aiaas.schemas import MAX_ID

__all__ = ["router"]

router = APIRouter(prefix="/jobs", tags=["training"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Submit a training job",
    description="Validates the spec against the dataset version it names (target column, task, "
    "numeric features, warm-start version, CPU slots) and queues the job. The scheduler starts it "
    "as soon as `workers` CPU slots are free; on success the model is registered as a new version "
    "of `register_as`, with its lineage.",
)
def submit_job(spec: schemas.JobSpec, services: ServicesDep) -> schemas.Job:
    return schemas.Job.model_validate(services.training.submit(spec))


@router.get("", summary="List training jobs, newest first")
def list_jobs(
    services: ServicesDep,
    status: Annotated[str | None, Query(description="Only jobs in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> schemas.JobList:
    jobs = services.jobs.list_jobs(status=status, limit=limit)
    return schemas.JobList(jobs=[schemas.Job.model_validate(j) for j in jobs])


@router.get("/{job_id}", summary="Show a training job, with its latest epoch's metrics")
def get_job(job_id: JobId, services: ServicesDep) -> schemas.Job:
    return schemas.Job.model_validate(services.jobs.get(job_id))


@router.get("/{job_id}/metrics", summary="Per-epoch metrics of a job (loss, validation metrics, samples/s)")
def job_metrics(job_id: JobId, services: ServicesDep) -> schemas.JobMetricsList:
    rows = services.jobs.metrics(job_id)
    return schemas.JobMetricsList(metrics=[schemas.JobMetrics.model_validate(m) for m in rows])


@router.get(
    "/{job_id}/logs",
    summary="Log lines of a job",
    description="Lines after `after` (a `seq`), oldest first. To follow a job, ask again with the "
    "returned `next_after` until the job has finished and no line comes back.",
)
def job_logs(
    job_id: JobId,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Return lines with a larger seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> schemas.JobLogs:
    lines = services.jobs.logs(job_id, after=after, limit=limit)
    return schemas.JobLogs(
        lines=[schemas.JobLogLine.model_validate(line) for line in lines],
        next_after=lines[-1].seq if lines else after,
    )


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a job",
    description="A queued job is cancelled at once; a running one is stopped by the scheduler "
    "(`cancel_requested` is true until it has). A job that already ended gives 409.",
)
def cancel_job(job_id: JobId, services: ServicesDep) -> schemas.Job:
    return schemas.Job.model_validate(services.jobs.cancel(job_id))
