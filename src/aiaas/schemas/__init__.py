"""The REST contract: request and response bodies shared by the API and the SDK.

Both sides import these models, so a field renamed here is renamed for both, and the
OpenAPI document at ``/openapi.json`` is generated from exactly what the SDK parses.
"""

from __future__ import annotations

from aiaas.schemas.deployments import Deployment, DeploymentCreate, DeploymentList, DeploymentUpdate
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
    "VersionMetadata",
]
