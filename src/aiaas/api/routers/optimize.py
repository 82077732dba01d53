"""``POST /api/v1/models/{name}/versions/{ref}/optimize``: queue an optimization of a registered
version as a job (followed, like a training job, under ``/api/v1/jobs/{id}``).

It lives under the version it optimizes rather than under ``/jobs``, where a fixed segment
(``/jobs/optimize``) would also match ``/jobs/{job_id}`` and make the methods of one path read as
those of the other.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from aiaas import schemas
from aiaas.api.deps import ServicesDep
from aiaas.api.params import Name, version_ref

__all__ = ["router"]

router = APIRouter(prefix="/models", tags=["optimization"])


@router.post(
    "/{name}/versions/{ref}/optimize",
    status_code=status.HTTP_201_CREATED,
    summary="Optimize a version (quantize, prune, distil, or search within a budget) as a job",
    description="`ref` is a version number, an alias or `latest` (pinned to its number). Validates the "
    "request against the registry and the datasets it names (the method applies to the model's "
    "family, the evaluation and calibration datasets' columns are the model's features) and queues "
    "an optimization job in the training scheduler's slots. Follow it with `GET /jobs/{id}`, `/logs` "
    "and `/metrics`, cancel it with `POST /jobs/{id}/cancel`. On success the result is a new version "
    "(parent: the source) whose lineage holds `optimization`: the method, its settings and the report "
    "(size, single-row and batch-32 latency measured beside the parent in the same run, the task "
    "metric on the validation split, agreement with the parent). With `method: auto` every candidate "
    "is measured and the fastest within `max_metric_drop` is kept; the last entry of the job's "
    "metrics lists them all. A refused request queues and registers nothing.",
)
def optimize(name: Name, ref: str, request: schemas.OptimizeRequest, services: ServicesDep) -> schemas.Job:
    version = version_ref(ref)
    services.registry.get_model(name)  # the path names it: unknown here (or another project's) is a 404
    spec = schemas.OptimizeSpec.parse(
        {
            **request.model_dump(exclude_unset=True),
            "model": name,
            "version": int(version) if version.isdigit() else version,
        }
    )
    return schemas.Job.model_validate(services.optimization.submit(spec))
