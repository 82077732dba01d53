"""Request dependencies: the services of the running app, and who makes the request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aiaas.entities.security import Principal
from aiaas.platform import Platform

__all__ = ["CurrentPrincipal", "Services", "ServicesDep"]


#: What every router needs, built once at start-up: the platform of the composition root.
Services = Platform


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]


def _principal(request: Request) -> Principal:
    principal: Principal = getattr(request.state, "principal", None) or Principal.anonymous()
    return principal


#: Who makes the request: put in ``request.state.principal`` by :class:`aiaas.api.auth.Authenticator`.
CurrentPrincipal = Annotated[Principal, Depends(_principal)]
