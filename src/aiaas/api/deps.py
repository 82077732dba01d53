"""Request dependencies: the services of the running app, and the API key check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from aiaas.api.audit import mark_authentication_failure
from aiaas.errors import Unauthenticated
from aiaas.platform import Platform

__all__ = ["Services", "ServicesDep", "check_api_key"]


#: What every router needs, built once at start-up: the platform of the composition root.
Services = Platform


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


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
