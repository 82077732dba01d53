"""The SDK's part for retraining policies: set, show, delete, and the runs' history.

A mixin of :class:`aiaas.Client`, like :mod:`.rollouts`. The policy goes to the server as
given, so its answer (a 400 naming ``trigger.threshold`` or ``data.dataset``) is what the
caller sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from aiaas.schemas import retraining as wire
from aiaas.sdk._http import request

__all__ = ["RetrainingMethods"]


class RetrainingMethods:
    """Methods of :class:`aiaas.Client` over ``/api/v1/deployments/{name}/retraining``."""

    _api: httpx.Client  # set by Client

    def _get(self, path: str, **kwargs: Any) -> httpx.Response:  # provided by Client
        raise NotImplementedError

    def set_retraining(self, deployment: str, policy: Mapping[str, Any]) -> wire.RetrainingPolicy:
        """Set ``deployment``'s retraining policy, e.g. ``{"trigger": {"metric": "drift_share",
        "threshold": 0.5, "window": "5m"}, "data": {"dataset": "iris"}, "training": {"epochs": 5},
        "evaluation": {"tolerance": 0.01}, "rollout": {"steps": [...], "guards": [...]},
        "cooldown": "1h"}``.

        Raises:
            InvalidArgument: naming the field of a policy that cannot work.
        """
        response = request(self._api, "PUT", f"/deployments/{deployment}/retraining", json=dict(policy))
        return wire.RetrainingPolicy.model_validate_json(response.content)

    def get_retraining(self, deployment: str) -> wire.RetrainingPolicy:
        """The deployment's policy (NotFound when it has none)."""
        response = self._get(f"/deployments/{deployment}/retraining")
        return wire.RetrainingPolicy.model_validate_json(response.content)

    def delete_retraining(self, deployment: str) -> None:
        """Remove the deployment's policy; a run under way finishes."""
        request(self._api, "DELETE", f"/deployments/{deployment}/retraining")

    def list_retraining_runs(self, deployment: str, *, limit: int = 20) -> list[wire.RetrainingRun]:
        """The deployment's retraining runs, newest first, each with its events (oldest first)."""
        response = self._get(f"/deployments/{deployment}/retraining/runs", params={"limit": str(limit)})
        return wire.RetrainingRunList.model_validate_json(response.content).runs
