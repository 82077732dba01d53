"""Projects on the wire: ``/api/v1/projects``."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from aiaas.schemas._base import Wire, WireIn

__all__ = [
    "PROJECT_PATTERN",
    "Project",
    "ProjectCreate",
    "ProjectList",
    "ProjectQuotaUpdate",
    "ProjectQuotas",
    "ProjectUsage",
]

#: The rule of :func:`aiaas.entities.projects.is_project_name`, for the docs; the store checks
#: it and says what is wrong.
PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class ProjectCreate(WireIn):
    name: str = Field(
        description="1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit.",
        json_schema_extra={"pattern": PROJECT_PATTERN},
    )
    description: str = ""


_QUOTA_HELP = {
    "max_jobs": "Training jobs queued or running at once.",
    "max_slots": "CPU slots (data-parallel workers) of the training jobs queued or running, together.",
    "max_replicas": "The sum of the deployments' max_replicas (a deployment that sets none counts 1).",
    "max_bytes": "Bytes of the model versions' artifacts and the dataset versions' files.",
}


class ProjectQuotas(Wire):
    """A project's quotas; null is unlimited. Over one, a change is refused with 429 naming it."""

    max_jobs: int | None = Field(default=None, description=_QUOTA_HELP["max_jobs"])
    max_slots: int | None = Field(default=None, description=_QUOTA_HELP["max_slots"])
    max_replicas: int | None = Field(default=None, description=_QUOTA_HELP["max_replicas"])
    max_bytes: int | None = Field(default=None, description=_QUOTA_HELP["max_bytes"])


class ProjectQuotaUpdate(WireIn):
    """The quotas to set: a value sets it, null makes it unlimited, a quota left out is kept."""

    max_jobs: int | None = Field(default=None, ge=0, le=1_000_000, description=_QUOTA_HELP["max_jobs"])
    max_slots: int | None = Field(default=None, ge=0, le=1_000_000, description=_QUOTA_HELP["max_slots"])
    max_replicas: int | None = Field(
        default=None, ge=0, le=1_000_000, description=_QUOTA_HELP["max_replicas"]
    )
    max_bytes: int | None = Field(default=None, ge=0, le=2**62, description=_QUOTA_HELP["max_bytes"])


class ProjectUsage(Wire):
    """What a project uses of each quota now, counted as the quota says."""

    jobs: int
    slots: int
    replicas: int
    bytes: int


class Project(Wire):
    name: str
    description: str
    created_at: dt.datetime
    quotas: ProjectQuotas = Field(default_factory=ProjectQuotas)
    usage: ProjectUsage | None = Field(
        default=None, description="What it uses of each quota (in GET /projects/{name} and PATCH answers)."
    )


class ProjectList(Wire):
    projects: list[Project]
