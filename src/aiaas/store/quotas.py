"""Per-project quotas, checked in the transaction that creates what they count.

A project may cap its training jobs (queued or running), their CPU slots, its deployments'
replicas and its stored bytes (``projects.max_*``, migration 0018; NULL is unlimited). Each
repository that creates one of those (a job, a deployment or a change of its replicas, a
model or dataset version) calls :func:`check_quota` inside its own transaction, after the
new row is flushed, so the usage counted includes it.

Why in the same transaction, after taking the project row: two requests that each fit alone
but not together must not both pass. :func:`check_quota` first writes the project's row
(a no-op update), which takes its row lock on PostgreSQL and the database's write lock on
SQLite; the second request's check then waits for the first one's commit and counts its row.
A project with no quota set costs one primary-key read and takes no lock.

A change that does not raise the usage (a deployment update that keeps its replicas) passes
even if the project is over a quota lowered since: a quota stops growth, it never deletes.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from aiaas.entities.jobs import QUEUED, RUNNING
from aiaas.entities.projects import ProjectQuotas, ProjectUsage
from aiaas.errors import ResourceExhausted
from aiaas.store.tables import (
    DatasetRow,
    DatasetVersionRow,
    DeploymentRow,
    ModelRow,
    ModelVersionRow,
    ProjectRow,
    TrainingJobRow,
)

__all__ = ["DEFAULT_MAX_REPLICAS", "check_quota", "project_usage", "quotas_of"]

#: A deployment's ``max_replicas`` when it sets none: the default of
#: :class:`aiaas.schemas.DeploymentSettings` (a test keeps the two equal).
DEFAULT_MAX_REPLICAS = 1

_USAGE = {"max_jobs": "jobs", "max_slots": "slots", "max_replicas": "replicas", "max_bytes": "bytes"}
_WHAT = {
    "max_jobs": "training jobs queued or running",
    "max_slots": "CPU slots of training jobs queued or running",
    "max_replicas": "replicas (the sum of its deployments' max_replicas)",
    "max_bytes": "bytes stored (model and dataset versions)",
}


def quotas_of(row: ProjectRow) -> ProjectQuotas:
    """The quotas a project row holds."""
    return ProjectQuotas(
        max_jobs=row.max_jobs, max_slots=row.max_slots, max_replicas=row.max_replicas, max_bytes=row.max_bytes
    )


def project_usage(s: Session, project: str, *, only: str | None = None) -> ProjectUsage:
    """What ``project`` uses of each quota now (in ``s``, so rows it flushed count).

    Args:
        only: one quota name, to count that one only (the others are 0).
    """
    jobs = slots = replicas = stored = 0
    if only in (None, "max_jobs", "max_slots"):
        jobs, slots = s.execute(
            select(func.count(TrainingJobRow.id), func.coalesce(func.sum(TrainingJobRow.workers), 0)).where(
                TrainingJobRow.project == project, TrainingJobRow.status.in_((QUEUED, RUNNING))
            )
        ).one()
    if only in (None, "max_replicas"):
        each = func.coalesce(DeploymentRow.max_replicas, DEFAULT_MAX_REPLICAS)
        total = s.scalar(select(func.coalesce(func.sum(each), 0)).where(DeploymentRow.project == project))
        replicas = int(total or 0)
    if only in (None, "max_bytes"):
        models = s.scalar(
            select(func.coalesce(func.sum(ModelVersionRow.artifact_size_bytes), 0))
            .join(ModelRow, ModelVersionRow.model_id == ModelRow.id)
            .where(ModelRow.project == project)
        )
        datasets = s.scalar(
            select(func.coalesce(func.sum(DatasetVersionRow.size_bytes), 0))
            .join(DatasetRow, DatasetVersionRow.dataset_id == DatasetRow.id)
            .where(DatasetRow.project == project)
        )
        stored = int(models or 0) + int(datasets or 0)
    return ProjectUsage(jobs=int(jobs), slots=int(slots), replicas=replicas, bytes=stored)


def check_quota(s: Session, project: str, quotas: dict[str, int]) -> None:
    """Refuse the change flushed in ``s`` if it takes ``project`` over one of its quotas.

    Call it inside the creating transaction, after the new row is flushed.

    Args:
        quotas: the quotas the change adds to, each with how much it adds (e.g.
            ``{"max_jobs": 1, "max_slots": 4}``); a change adding 0 or less passes.

    Raises:
        ResourceExhausted: (HTTP 429) the usage with the change exceeds a quota; the message
            and ``details`` name the quota, its value, the usage and what was asked for.
    """
    row = s.get(ProjectRow, project)
    if row is None:
        return
    if all(getattr(row, name) is None or added <= 0 for name, added in quotas.items()):
        return
    # Take the project's lock, then count: concurrent checks of one project run one by one.
    s.execute(update(ProjectRow).where(ProjectRow.name == project).values(description=ProjectRow.description))
    s.expire(row)
    for name, requested in quotas.items():
        limit = getattr(row, name)
        if limit is None or requested <= 0:
            continue
        used = getattr(project_usage(s, project, only=name), _USAGE[name])
        if used <= limit:
            continue
        raise ResourceExhausted(
            f"project {project!r} is over its quota {name} = {limit} ({_WHAT[name]}): "
            f"{used - requested} in use, and this asks for {requested} more; ask the platform admin "
            f"to raise it (aiaas projects quota {project} --{name.replace('_', '-')} N) or free some",
            details={
                "field": name,
                "quota": name,
                "limit": limit,
                "usage": used - requested,
                "requested": requested,
                "project": project,
            },
        )
