"""The inference server: deployments' desired state, protocols, model pool and the HTTP app."""

from __future__ import annotations

from aiaas.serving.deployments import Deployment, DeploymentService, ServedTarget

__all__ = ["Deployment", "DeploymentService", "ServedTarget"]
