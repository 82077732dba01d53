"""Request dependencies: the request's project, the services of the running app in it, and
the API key check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from aiaas.api.audit import mark_authentication_failure
from aiaas.entities.projects import DEFAULT_PROJECT, PROJECT_HEADER, is_project_name
from aiaas.errors import InvalidArgument, Unauthenticated
from aiaas.platform import Platform

__all__ = ["ProjectDep", "Services", "ServicesDep", "check_api_key", "current_project"]


#: What every router needs, built once at start-up: the platform of the composition root,
#: seen through the request's project (:meth:`Platform.for_project`).
Services = Platform


def current_project(request: Request) -> str:
    """The project a control-plane request works in: its ``X-Aiaas-Project`` header, or ``default``.

    Every resource a request reads or writes is looked up in this project only; one of
    another project is a 404, exactly as if it did not exist. (With keys, the project will be
    the key's, and only the platform admin key may name one with the header.)

    Raises:
        InvalidArgument: the header is not a project name (400, naming the header).
    """
    given = request.headers.get(PROJECT_HEADER)
    if given is None:
        return DEFAULT_PROJECT
    if not is_project_name(given):
        raise InvalidArgument(
            f"header {PROJECT_HEADER} must be a project name: 1-63 lowercase letters, digits, '_' or "
            f"'-', starting with a letter or digit; got {given!r}",
            details={"field": PROJECT_HEADER, "value": given},
        )
    return given


ProjectDep = Annotated[str, Depends(current_project)]


def _services(request: Request, project: ProjectDep) -> Services:
    """The app's platform in the request's project; a project that does not exist is a 404."""
    root: Services = request.app.state.services
    if project != DEFAULT_PROJECT:
        root.projects.get(project)  # NotFound: 404 naming the project the caller named itself
    return root.for_project(project)


ServicesDep = Annotated[Services, Depends(_services)]


def check_api_key(request: Request) -> None:
    """When ``AIAAS_API_KEY`` is set on the server, every API call must carry it as a bearer token."""
    expected = request.app.state.services.settings.api_key
    if not expected:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    # Bytes, not str: compare_digest refuses str with non-ASCII characters (a TypeError, which
    # was a 500 before authentication). Headers arrive as latin-1 text of the raw bytes.
    given = token.strip().encode("latin-1")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given, expected.encode()):
        mark_authentication_failure(request, "missing or wrong API key")
        raise Unauthenticated(
            "missing or wrong API key: send 'Authorization: Bearer <key>'", details={"field": "authorization"}
        )
