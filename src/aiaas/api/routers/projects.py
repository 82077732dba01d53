"""``/api/v1/projects``: the namespaces models, datasets, jobs, deployments and alerts live in.

A request works in one project (:func:`aiaas.api.deps.current_project`). Creating a project
will be for admins once keys have roles; for now anyone who may call the API may.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from aiaas import schemas
from aiaas.api.deps import CurrentPrincipal
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


@router.get("/{name}", summary="Show a project")
def get_project(name: ProjectName, request: Request, principal: CurrentPrincipal) -> schemas.Project:
    if principal.project not in (None, name):  # another project's key: as if it did not exist
        raise NotFound(f"project {name!r} not found", details={"field": "name"})
    return schemas.Project.model_validate(_platform(request).projects.get(name))
