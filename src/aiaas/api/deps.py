"""Request dependencies: the services of the running app, and the API key check."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from aiaas.config import Settings
from aiaas.datasets import DatasetService
from aiaas.errors import Unauthenticated
from aiaas.optimize import OptimizationService
from aiaas.registry import Registry
from aiaas.serving import DeploymentService
from aiaas.training import JobStore, TrainingService

__all__ = ["Services", "ServicesDep", "check_api_key"]


@dataclass(frozen=True)
class Services:
    """What every router needs, built once at start-up."""

    settings: Settings
    registry: Registry
    deployments: DeploymentService
    datasets: DatasetService
    jobs: JobStore
    training: TrainingService
    optimization: OptimizationService


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
        raise Unauthenticated(
            "missing or wrong API key: send 'Authorization: Bearer <key>'", details={"field": "authorization"}
        )
