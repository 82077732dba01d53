"""What a rollout does to a deployment's routes: a canary weight, the promotion, the way back.

Each move is one :meth:`~aiaas.deployments.DeploymentService.update` (plus, through an alias,
one :meth:`~aiaas.registry.Registry.set_alias`), and each is idempotent: the driver may apply
a step again after a restart that came between applying it and recording it.

The canary is the route ``{"version": N, "weight": w}``; the deployment's other canary routes
are kept as they were. A rollback restores the routing recorded when the rollout started: a
single update while the new version is still a canary (the primary never stopped serving), an
alias moved back first when the promotion had moved it.
"""

from __future__ import annotations

from typing import Any

from aiaas.deployments import Deployment, DeploymentService
from aiaas.entities.rollouts import Rollout
from aiaas.registry import Registry

__all__ = ["apply_step", "others", "previous_of", "restore"]


def previous_of(d: Deployment, registry: Registry) -> dict[str, Any]:
    """The routing a rollback returns to: the primary target (and where its alias points)."""
    alias_version = None
    if d.alias is not None:
        alias_version = registry.get_version(d.model, d.alias).version
    return {
        "version": d.version,
        "alias": d.alias,
        "alias_version": alias_version,
        "serving_version": d.serving_version,
        "traffic": [dict(r) for r in d.traffic],
    }


def others(rollout: Rollout) -> list[dict[str, Any]]:
    """The deployment's canary routes before the rollout, less any to the new version."""
    return [dict(r) for r in rollout.previous.get("traffic", []) if r.get("version") != rollout.version]


def apply_step(rollout: Rollout, step: int, deployments: DeploymentService, registry: Registry) -> None:
    """Route the step's weight to the new version; at 100, make it the primary."""
    weight = rollout.steps[step].weight
    kept = others(rollout)
    if weight < 100:
        deployments.update(
            rollout.deployment, traffic=[*kept, {"version": rollout.version, "weight": weight}]
        )
        return
    alias = rollout.previous.get("alias")
    if rollout.via == "alias" and alias is not None:
        registry.set_alias(rollout.model, alias, rollout.version)
        deployments.update(rollout.deployment, traffic=kept)
    else:
        deployments.update(rollout.deployment, version=rollout.version, traffic=kept)


def restore(rollout: Rollout, deployments: DeploymentService, registry: Registry) -> None:
    """Put the routing back as it was before the rollout, less any route to the new version."""
    previous = rollout.previous
    traffic = others(rollout)
    alias = previous.get("alias")
    if alias is not None:
        if rollout.via == "alias" and previous.get("alias_version") is not None:
            current = registry.get_version(rollout.model, alias).version
            if current != previous["alias_version"]:
                registry.set_alias(rollout.model, alias, int(previous["alias_version"]))
        deployments.update(rollout.deployment, alias=alias, traffic=traffic)
    else:
        deployments.update(rollout.deployment, version=int(previous["version"]), traffic=traffic)
