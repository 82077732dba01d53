"""``POST /api/v1/jobs/optimize``: queue an optimization of a registered version as a job."""

from __future__ import annotations

from fastapi import APIRouter, status

from aiaas import schemas
from aiaas.api.deps import ServicesDep

__all__ = ["router"]

router = APIRouter(prefix="/jobs", tags=["optimization"])


@router.post(
    "/optimize",
    status_code=status.HTTP_201_CREATED,
    summary="Optimize a model version (quantize, prune, distil, or search within a budget)",
    description="Validates the request against the registry and the datasets it names (the method "
    "applies to the model's family, the evaluation and calibration datasets' columns are the model's "
    "features) and queues an optimization job in the training scheduler's slots. Follow it with "
    "`GET /jobs/{id}`, `/logs` and `/metrics`, cancel it with `POST /jobs/{id}/cancel`. On success "
    "the result is a new version (parent: the source) whose lineage holds `optimization`: the method, "
    "its settings and the report (size, single-row and batch-32 latency measured beside the parent "
    "in the same run, the task metric on the validation split, agreement with the parent). With "
    "`method: auto` every candidate is measured and the fastest within `max_metric_drop` is kept; "
    "the last entry of the job's metrics lists them all. A refused request queues and registers "
    "nothing.",
)
def optimize(spec: schemas.OptimizeSpec, services: ServicesDep) -> schemas.Job:
    return schemas.Job.model_validate(services.optimization.submit(spec))
