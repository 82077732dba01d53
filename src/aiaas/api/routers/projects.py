"""``/api/v1/projects``: the namespaces models, datasets, jobs, deployments and alerts live in.

A request works in one project (:func:`aiaas.api.deps.current_project`). Creating a project
and setting its quotas take the platform admin key (:mod:`aiaas.security.access`); a
project's keys may read it, its quotas and its usage.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from aiaas import schemas
from aiaas.api.deps import CurrentPrincipal
from aiaas.entities.projects import Project
from aiaas.errors import NotFound
from aiaas.platform import Platform

__all__ = ["router"]

router = APIRouter(prefix="/projects", tags=["projects"])

ProjectName = Annotated[
    str,
    Path(
        description="1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit.",
        json_schema_extra={"pattern": schemas.PROJECT_PATTERN},
    ),
]


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.services
    return platform


@router.get("", summary="List projects")
def list_projects(request: Request, principal: CurrentPrincipal) -> schemas.ProjectList:
    projects = [p for p in _platform(request).projects.list() if principal.project in (None, p.name)]
    return schemas.ProjectList(projects=[schemas.Project.model_validate(p) for p in projects])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a project",
    description="A new, empty namespace: names of models, datasets, deployments and alert rules are "
    "unique within a project. Keys belong to one project; the platform admin key names one with "
    "the `X-Aiaas-Project` header. Only the platform admin key makes projects.",
)
def create_project(body: schemas.ProjectCreate, request: Request) -> schemas.Project:
    project = _platform(request).projects.create(body.name, description=body.description)
    return schemas.Project.model_validate(project)


@router.get("/{name}", summary="Show a project, its quotas and what it uses of them")
def get_project(name: ProjectName, request: Request, principal: CurrentPrincipal) -> schemas.Project:
    if principal.project not in (None, name):  # another project's key: as if it did not exist
        raise NotFound(f"project {name!r} not found", details={"field": "name"})
    return _with_usage(_platform(request).projects.get(name), request)


@router.patch(
    "/{name}",
    summary="Set a project's quotas",
    description="Each quota given is set (null: unlimited); those left out are kept. Only the "
    "platform admin key sets quotas. A change that would take the project over a quota is then "
    "refused with 429 naming the quota, its value and the usage; lowering a quota below the usage "
    "deletes nothing.",
)
def set_project_quotas(
    name: ProjectName, body: schemas.ProjectQuotaUpdate, request: Request
) -> schemas.Project:
    project = _platform(request).projects.set_quotas(name, body.model_dump(exclude_unset=True))
    return _with_usage(project, request)


def _with_usage(project: Project, request: Request) -> schemas.Project:
    usage = _platform(request).projects.usage(project.name)
    wire = schemas.Project.model_validate(project)
    return wire.model_copy(update={"usage": schemas.ProjectUsage.model_validate(usage)})
