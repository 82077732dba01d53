"""The inference server, the data plane: protocols, routing, batching, runtimes, replicas and
the autoscaler. It reads the desired state from :mod:`aiaas.deployments`; the control plane
never imports it."""

from __future__ import annotations

from aiaas.serving.app import MODEL_VERSION_HEADER, create_app, create_pool
from aiaas.serving.pool import LoadedVersion, ModelPool
from aiaas.store.serving_states import ServingState, ServingStates

__all__ = [
    "MODEL_VERSION_HEADER",
    "LoadedVersion",
    "ModelPool",
    "ServingState",
    "ServingStates",
    "create_app",
    "create_pool",
]
