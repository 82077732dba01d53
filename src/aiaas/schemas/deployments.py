"""Deployments on the wire.

The settings' fields come from :class:`~aiaas.schemas.deployment_settings.DeploymentSettings`,
their one definition: a response carries them with defaults filled in, a request optionally.
Field bounds document the contract in the OpenAPI schema and refuse a value out of
range before it reaches the service; the rules that need the registry or the whole body
(a route's version exists and takes the primary's inputs, weights add up to at most
100, no route twice) are checked by the deployment service, whatever the client.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from aiaas.schemas._base import MAX_ID, Wire, WireIn
from aiaas.schemas.deployment_settings import (
    Batching,
    DeploymentSettings,
    PredictionLogSetting,
    SettingsPatch,
)

__all__ = [
    "Batching",
    "Deployment",
    "DeploymentCreate",
    "DeploymentList",
    "DeploymentUpdate",
    "PredictionLogSetting",
    "Route",
    "RouteRef",
    "ScalingEvent",
    "ScalingEventList",
    "ServedState",
    "TrafficRoute",
]


class RouteRef(WireIn):
    """A version of the deployment's model, by number or by alias (an alias is followed as it moves).

    In an update, ``{}`` (neither) means "no shadow".
    """

    version: int | None = Field(default=None, ge=1, le=MAX_ID, description="A version number.")
    alias: str | None = Field(default=None, description="An alias, followed as it moves.")


class TrafficRoute(RouteRef):
    """A canary route: ``weight`` percent of requests go to this version instead of the primary."""

    weight: int = Field(ge=0, le=100, description="Percent of requests, 0-100.")


class Route(Wire):
    """Where a share of requests goes now: the version an alias or number resolves to, and its percent."""

    version: int
    weight: int


class ServedState(Wire):
    """What the inference server reported it really serves for a deployment, and why not
    what was asked when it could not load it."""

    version: int | None = Field(description="The version it serves now (null: none).")
    desired_version: int | None = Field(description="The primary version it last tried to serve.")
    error: str | None = Field(
        default=None, description="Why desired_version could not be loaded (null: it is served)."
    )
    observed_at: datetime
    up_to_date: bool = Field(
        description="Whether the server had applied the deployments' latest change when it reported "
        "(false: a change made since is still being picked up)."
    )


class _DeploymentTarget(Wire):
    name: str
    model: str
    version: int | None
    alias: str | None
    serving_version: int
    created_at: datetime
    updated_at: datetime
    traffic: list[TrafficRoute] = Field(default_factory=list, description="Canary routes as configured.")
    shadow: RouteRef | None = Field(default=None, description="Gets a copy of every request.")


class Deployment(DeploymentSettings, _DeploymentTarget):
    """What a deployment asks for (``version`` or ``alias``, canaries, shadow, the settings of
    :class:`DeploymentSettings`, defaults filled in) and what that resolves to now
    (``serving_version``, ``routes``, ``shadow_version``)."""

    routes: list[Route] = Field(
        default_factory=list, description="Every route resolved now, primary first; weights add up to 100."
    )
    shadow_version: int | None = Field(default=None, description="The version the shadow resolves to now.")
    served: ServedState | None = Field(
        default=None,
        description="What the inference server reports it serves (null: no report yet, e.g. it is not "
        "running); compare served.version with serving_version, and read served.error when they differ.",
    )


class ScalingEvent(Wire):
    """One autoscaling decision of the inference server."""

    deployment: str
    version: int = Field(description="The model version whose replicas changed.")
    at: datetime
    from_replicas: int
    to_replicas: int
    reason: str = Field(description="Why, in words: the load seen and the target.")


class ScalingEventList(Wire):
    events: list[ScalingEvent]


class DeploymentList(Wire):
    deployments: list[Deployment]


class _CreateTarget(WireIn):
    name: str = Field(description="The name clients call: /v2/models/{name}/infer.")
    model: str
    version: int | None = Field(default=None, ge=1, le=MAX_ID, description="Pin this version.")
    alias: str | None = Field(default=None, description="Follow this alias as it moves.")
    traffic: list[TrafficRoute] | None = Field(
        default=None,
        description="Canary routes; the primary gets 100 minus the sum of their weights.",
    )
    shadow: RouteRef | None = Field(
        default=None, description="A version that gets a copy of every request; its responses are dropped."
    )
    reference_dataset: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A dataset (name or name:version) the deployed version's drift reference is built "
        "from, replacing the one it has: its feature columns and the model's answers on them.",
    )


class DeploymentCreate(SettingsPatch, _CreateTarget):
    """A new deployment: its target, and any setting of :class:`DeploymentSettings` (left out:
    the default)."""


class _UpdateTarget(WireIn):
    version: int | None = Field(default=None, ge=1, le=MAX_ID)
    alias: str | None = None
    traffic: list[TrafficRoute] | None = Field(
        default=None, description="Replaces the canary routes; [] removes them."
    )
    shadow: RouteRef | None = Field(default=None, description="Replaces the shadow; {} removes it.")


class DeploymentUpdate(SettingsPatch, _UpdateTarget):
    """A change: fields left out (or null) keep their value; ``traffic: []`` removes the
    canaries, ``shadow: {}`` stops shadowing, ``batching: {}`` (or any nested setting given
    as ``{}``) restores its defaults. A body with no field at all pins the latest version (as
    it always has)."""
