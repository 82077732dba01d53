"""Request dependencies: who makes the request, the project it works in, and the services of
the running app in that project."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aiaas.entities.projects import DEFAULT_PROJECT, PROJECT_HEADER, project_of_request
from aiaas.entities.security import Principal
from aiaas.platform import Platform

__all__ = ["CurrentPrincipal", "ProjectDep", "Services", "ServicesDep", "current_project"]


#: What every router needs, built once at start-up: the platform of the composition root,
#: seen through the request's project (:meth:`Platform.for_project`).
Services = Platform


def _principal(request: Request) -> Principal:
    principal: Principal = getattr(request.state, "principal", None) or Principal.anonymous()
    return principal


#: Who makes the request: put in ``request.state.principal`` by :class:`aiaas.api.auth.Authenticator`.
CurrentPrincipal = Annotated[Principal, Depends(_principal)]


def current_project(request: Request, principal: CurrentPrincipal) -> str:
    """The project a control-plane request works in: its key's (see
    :func:`~aiaas.entities.projects.project_of_request`).

    Every resource a request reads or writes is looked up in this project only; one of
    another project is a 404, exactly as if it did not exist.
    """
    project = project_of_request(request.headers.get(PROJECT_HEADER), principal.project)
    request.state.project = project  # the audit log records it
    return project


ProjectDep = Annotated[str, Depends(current_project)]


def _services(request: Request, project: ProjectDep) -> Services:
    """The app's platform in the request's project; a project that does not exist is a 404."""
    root: Services = request.app.state.services
    if project != DEFAULT_PROJECT:
        root.projects.get(project)  # NotFound: 404 naming the project the caller named itself
    return root.for_project(project)


ServicesDep = Annotated[Services, Depends(_services)]
