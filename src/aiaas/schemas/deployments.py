"""Deployments on the wire."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from aiaas.schemas._base import Wire, WireIn

__all__ = ["Deployment", "DeploymentCreate", "DeploymentList", "DeploymentUpdate"]


class Deployment(Wire):
    """What a deployment asks for (``version`` or ``alias``) and what that resolves to now."""

    name: str
    model: str
    version: int | None
    alias: str | None
    serving_version: int
    created_at: datetime
    updated_at: datetime


class DeploymentList(Wire):
    deployments: list[Deployment]


class DeploymentCreate(WireIn):
    name: str = Field(description="The name clients call: /v2/models/{name}/infer.")
    model: str
    version: int | None = Field(default=None, ge=1, description="Pin this version.")
    alias: str | None = Field(default=None, description="Follow this alias as it moves.")


class DeploymentUpdate(WireIn):
    version: int | None = Field(default=None, ge=1)
    alias: str | None = None
