"""Plain deployment entities handed out by :class:`aiaas.store.deployments.DeploymentStore`.

:class:`StoredDeployment` is a deployment as stored: its primary target, its routes as
configured and the settings it was given (a setting it was not given is absent, and takes
its default). :class:`ModelTargets` is what its routes may name: the model's versions and
aliases, read in the same transaction, so the deployments' rules check a change against the
registry as it is when the change is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ModelTargets", "StoredDeployment", "TargetVersion"]


@dataclass(frozen=True)
class TargetVersion:
    """One version of a deployed model, with what routing and loading it need."""

    version: int
    status: str
    flavor: str
    artifact_digest: str
    signature: dict[str, Any]


@dataclass(frozen=True)
class ModelTargets:
    """A model's versions (by number, ascending) and aliases (name → version)."""

    model: str
    versions: dict[int, TargetVersion]
    aliases: dict[str, int]


@dataclass(frozen=True)
class StoredDeployment:
    """A deployment as stored. ``traffic``/``shadow`` are as configured (``{"version": N}`` or
    ``{"alias": A}``, plus ``"weight"``); ``settings`` holds the settings given, by name, each
    as given (a nested one: the keys given)."""

    name: str
    model: str
    version: int | None
    alias: str | None
    created_at: datetime
    updated_at: datetime
    traffic: list[dict[str, Any]] | None = None
    shadow: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    project: str = "default"
