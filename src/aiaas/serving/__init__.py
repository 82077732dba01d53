"""The inference server: deployments' desired state, protocols, model pool and the HTTP app."""

from __future__ import annotations

from aiaas.serving.app import MODEL_VERSION_HEADER, create_app, create_pool
from aiaas.serving.deployments import Deployment, DeploymentService, ServedTarget
from aiaas.serving.pool import LoadedVersion, ModelPool
from aiaas.store.serving_states import ServingState, ServingStates

__all__ = [
    "MODEL_VERSION_HEADER",
    "Deployment",
    "DeploymentService",
    "LoadedVersion",
    "ModelPool",
    "ServedTarget",
    "ServingState",
    "ServingStates",
    "create_app",
    "create_pool",
]
