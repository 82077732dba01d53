"""The REST contract: request and response bodies shared by the API and the SDK.

Both sides import these models, so a field renamed here is renamed for both, and the
OpenAPI document at ``/openapi.json`` is generated from exactly what the SDK parses.
"""

from __future__ import annotations

from aiaas.schemas.deployments import (
    Batching,
    Deployment,
    DeploymentCreate,
    DeploymentList,
    DeploymentUpdate,
    Route,
    RouteRef,
    ScalingEvent,
    ScalingEventList,
    TrafficRoute,
)
from aiaas.schemas.registry import (
    Alias,
    AliasList,
    AliasSet,
    Comparison,
    Health,
    Model,
    ModelCreate,
    ModelList,
    ModelUpdate,
    ModelVersion,
    ModelVersionList,
    OutputAgreement,
    VersionMetadata,
)

__all__ = [
    "Alias",
    "AliasList",
    "AliasSet",
    "Batching",
    "Comparison",
    "Deployment",
    "DeploymentCreate",
    "DeploymentList",
    "DeploymentUpdate",
    "Health",
    "Model",
    "ModelCreate",
    "ModelList",
    "ModelUpdate",
    "ModelVersion",
    "ModelVersionList",
    "OutputAgreement",
    "Route",
    "RouteRef",
    "ScalingEvent",
    "ScalingEventList",
    "TrafficRoute",
    "VersionMetadata",
]
