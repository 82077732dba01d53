"""Deployments: the control plane's side of what the inference server serves.

The desired state (which model versions each deployment routes to, with which settings), its
validation and the service that writes and reads it. The inference server (:mod:`aiaas.serving`,
the data plane) reads it through :meth:`DeploymentService.desired_state` and
:meth:`DeploymentService.target`, as :class:`ServedTarget`; the control plane never imports the
data plane.
"""

from __future__ import annotations

from aiaas.deployments.entities import (
    DEFAULT_MAX_QUEUE_SIZE,
    DEFAULT_TIMEOUT_S,
    Deployment,
    Route,
    RouteTarget,
    ServedTarget,
    default_batching,
)
from aiaas.deployments.service import DeploymentService

__all__ = [
    "DEFAULT_MAX_QUEUE_SIZE",
    "DEFAULT_TIMEOUT_S",
    "Deployment",
    "DeploymentService",
    "Route",
    "RouteTarget",
    "ServedTarget",
    "default_batching",
]
