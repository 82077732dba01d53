"""Deployments on the wire.

Field bounds here document the contract in the OpenAPI schema and refuse a value out of
range before it reaches the service; the rules that need the registry or the whole body
(a route's version exists and takes the primary's inputs, weights add up to at most
100, no route twice) are checked by the deployment service, whatever the client.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from aiaas.schemas._base import MAX_ID, Wire, WireIn

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


class PredictionLogSetting(WireIn):
    """What the prediction log keeps of a deployment's requests (inputs, outputs, version,
    request id, latency, time). Given in a request, it replaces the whole setting: keys left
    out take the defaults shown."""

    sample_rate: float = Field(
        default=1.0, ge=0, le=1, description="Share of requests logged (0 turns the log off)."
    )
    max_rows_per_s: float = Field(
        default=100.0, ge=0.001, le=100_000, description="Most requests logged a second (a cap)."
    )


class Batching(WireIn):
    """Dynamic batching: requests arriving together are run as one batch.

    Given in a request, it replaces the whole batching setting: keys left out take the
    defaults shown (``{}`` restores them all).
    """

    enabled: bool = Field(default=False, description="Batch requests (default: off).")
    max_batch_size: int = Field(
        default=32,
        ge=1,
        le=4096,
        description="Most rows in one batch of several requests; a request of this many rows or "
        "more runs at once, alone and whole.",
    )
    max_queue_delay_ms: float = Field(
        default=2.0, ge=0, le=1000, description="How long a batch waits to fill up, in milliseconds."
    )


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


class Deployment(Wire):
    """What a deployment asks for (``version`` or ``alias``, canaries, shadow, settings) and
    what that resolves to now (``serving_version``, ``routes``, ``shadow_version``)."""

    name: str
    model: str
    version: int | None
    alias: str | None
    serving_version: int
    created_at: datetime
    updated_at: datetime
    traffic: list[TrafficRoute] = Field(default_factory=list, description="Canary routes as configured.")
    shadow: RouteRef | None = Field(default=None, description="Gets a copy of every request.")
    batching: Batching = Field(default_factory=Batching)
    max_queue_size: int = Field(default=1024, description="Requests waiting before 429.")
    timeout_s: float = Field(default=30.0, description="Seconds before a request gets 504.")
    min_replicas: int = Field(
        default=1, description="Replica processes kept even when idle (0: scale to zero)."
    )
    max_replicas: int = Field(default=1, description="The most replica processes the autoscaler may run.")
    target_in_flight: int = Field(
        default=4, description="Requests in flight per replica the autoscaler aims for."
    )
    scale_down_delay_s: float = Field(
        default=30.0, description="Seconds of low load before a replica is removed."
    )
    prediction_log: PredictionLogSetting = Field(default_factory=PredictionLogSetting)
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


class DeploymentCreate(WireIn):
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
    batching: Batching | None = Field(default=None, description="Dynamic batching (default: off).")
    max_queue_size: int | None = Field(
        default=None, ge=1, le=100_000, description="Requests waiting before 429 (default 1024)."
    )
    timeout_s: float | None = Field(
        default=None, ge=0.001, le=3600, description="Seconds before a request gets 504 (default 30)."
    )
    min_replicas: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Replica processes kept even when idle (default 1; 0: scale to zero).",
    )
    max_replicas: int | None = Field(
        default=None, ge=1, le=64, description="The most replica processes (default 1; >= min_replicas)."
    )
    target_in_flight: int | None = Field(
        default=None, ge=1, le=10_000, description="Requests in flight per replica to aim for (default 4)."
    )
    scale_down_delay_s: float | None = Field(
        default=None, ge=0, le=86_400, description="Seconds of low load before scaling down (default 30)."
    )
    prediction_log: PredictionLogSetting | None = Field(
        default=None, description="What the prediction log keeps (default: every request, up to 100/s)."
    )
    reference_dataset: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A dataset (name or name:version) the deployed version's drift reference is built "
        "from, replacing the one it has: its feature columns and the model's answers on them.",
    )


class DeploymentUpdate(WireIn):
    """A change: fields left out (or null) keep their value; ``traffic: []`` removes the
    canaries, ``shadow: {}`` stops shadowing, ``batching: {}`` restores its defaults. A body
    with no field at all pins the latest version (as it always has)."""

    version: int | None = Field(default=None, ge=1, le=MAX_ID)
    alias: str | None = None
    traffic: list[TrafficRoute] | None = Field(
        default=None, description="Replaces the canary routes; [] removes them."
    )
    shadow: RouteRef | None = Field(default=None, description="Replaces the shadow; {} removes it.")
    batching: Batching | None = Field(default=None, description="Replaces the batching setting.")
    max_queue_size: int | None = Field(default=None, ge=1, le=100_000)
    timeout_s: float | None = Field(default=None, ge=0.001, le=3600)
    min_replicas: int | None = Field(default=None, ge=0, le=64)
    max_replicas: int | None = Field(default=None, ge=1, le=64)
    target_in_flight: int | None = Field(default=None, ge=1, le=10_000)
    scale_down_delay_s: float | None = Field(default=None, ge=0, le=86_400)
    prediction_log: PredictionLogSetting | None = Field(
        default=None, description="Replaces the prediction log setting; {} restores its defaults."
    )
