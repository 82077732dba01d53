"""The SDK's part for guarded rollouts: start, list, show, abort.

A mixin of :class:`aiaas.Client`, like :mod:`.alerts`. The plan goes to the server as given,
so its answer (a 400 naming ``steps[1].weight`` or ``guards[0].metric``) is what the caller sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from aiaas.errors import NotFound
from aiaas.schemas import rollouts as wire
from aiaas.sdk._http import request

__all__ = ["RolloutMethods"]


class RolloutMethods:
    """Methods of :class:`aiaas.Client` over ``/api/v1/deployments/{name}/rollouts``."""

    _api: httpx.Client  # set by Client

    def _get(self, path: str, **kwargs: Any) -> httpx.Response:  # provided by Client
        raise NotImplementedError

    def start_rollout(
        self,
        deployment: str,
        version: int,
        *,
        steps: Sequence[Mapping[str, Any] | tuple[int, float | str]],
        guards: Sequence[Mapping[str, Any]] = (),
    ) -> wire.Rollout:
        """Roll ``version`` out on ``deployment`` in ``steps``, rolled back when a guard fires.

        Args:
            steps: ``{"weight": 10, "bake": "30s"}`` or ``(10, "30s")`` each; weights increase
                to 100, where the version is promoted (its bake is the promotion's guard window).
            guards: alert rules on the new version, e.g. ``{"metric": "error_rate", "op": ">",
                "threshold": 0.01, "window": "30s"}`` (optional ``name``, ``for``, ``feature``).

        Raises:
            InvalidArgument: naming the field of a plan that cannot run.
            Conflict: another rollout of the deployment is in progress.
        """
        body = {
            "version": version,
            "steps": [dict(s) if isinstance(s, Mapping) else {"weight": s[0], "bake": s[1]} for s in steps],
            "guards": [dict(g) for g in guards],
        }
        response = request(self._api, "POST", f"/deployments/{deployment}/rollouts", json=body)
        return wire.Rollout.model_validate_json(response.content)

    def list_rollouts(self, deployment: str, *, limit: int = 20) -> list[wire.Rollout]:
        """The deployment's rollouts, newest first."""
        response = self._get(f"/deployments/{deployment}/rollouts", params={"limit": str(limit)})
        return wire.RolloutList.model_validate_json(response.content).rollouts

    def get_rollout(self, deployment: str, rollout_id: int | None = None) -> wire.Rollout:
        """A rollout with its events (each step and its reason); without an id, the newest."""
        if rollout_id is None:
            found = self.list_rollouts(deployment, limit=1)
            if not found:
                raise NotFound(
                    f"deployment {deployment!r} has no rollout", details={"deployment": deployment}
                )
            rollout_id = found[0].id
        response = self._get(f"/deployments/{deployment}/rollouts/{rollout_id}")
        return wire.Rollout.model_validate_json(response.content)

    def abort_rollout(self, deployment: str, rollout_id: int | None = None) -> wire.Rollout:
        """Abort a rollout (default: the newest); the traffic goes back at the driver's next pass."""
        if rollout_id is None:
            rollout_id = self.get_rollout(deployment).id
        response = request(self._api, "POST", f"/deployments/{deployment}/rollouts/{rollout_id}/abort")
        return wire.Rollout.model_validate_json(response.content)
