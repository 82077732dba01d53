"""Deployments as the control plane keeps them, and as the inference server reads them.

:class:`Deployment` is what a client asked for, with what it resolves to now.
:class:`ServedTarget` is the narrow interface of the data plane: everything one deployment
needs to be loaded and served (its routes' versions and artifacts, its settings), read in
one query by :meth:`~aiaas.deployments.DeploymentService.desired_state`. Both carry the
serving settings as :class:`~aiaas.schemas.DeploymentSettings`, their one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel

from aiaas.schemas.deployment_settings import SETTINGS, DeploymentSettings, default_settings

__all__ = [
    "DEFAULT_MAX_QUEUE_SIZE",
    "DEFAULT_TIMEOUT_S",
    "WEIGHT_TOTAL",
    "Deployment",
    "Route",
    "RouteTarget",
    "ServedTarget",
    "default_batching",
]

#: Requests a deployment holds waiting before it answers 429 (from the settings' definition).
DEFAULT_MAX_QUEUE_SIZE: int = default_settings().max_queue_size
#: Seconds a request may take before it is answered 504 (from the settings' definition).
DEFAULT_TIMEOUT_S: float = default_settings().timeout_s

#: What a deployment's route weights add up to: percent.
WEIGHT_TOTAL = 100


def default_batching() -> dict[str, Any]:
    """The batching settings of a deployment that gave none: off, with sensible bounds."""
    return default_settings().batching.model_dump()


class _SettingsByName:
    """Each setting readable by name as a plain value (``d.max_queue_size``, ``d.batching`` as a
    dict): what the wire schema reads with ``from_attributes``. Typed code reads ``settings``."""

    settings: DeploymentSettings

    def __getattr__(self, name: str) -> Any:
        if name in SETTINGS:
            value = getattr(self.settings, name)
            return value.model_dump() if isinstance(value, BaseModel) else value
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class Route(NamedTuple):
    """One route of a deployment resolved now: the version and its share of requests (%)."""

    version: int
    weight: int


@dataclass(frozen=True)
class Deployment(_SettingsByName):
    """A deployment as configured, with what it resolves to now.

    ``version``/``alias`` is the primary target. ``traffic`` and ``shadow`` are kept as
    configured (``{"version": N}`` or ``{"alias": A}``, plus ``"weight"`` for traffic) so an
    alias route keeps following its alias; ``routes`` and ``shadow_version`` are what they
    resolve to at this moment. ``settings`` are the serving settings in force, defaults
    filled in (each also readable by name).
    """

    name: str
    model: str
    version: int | None
    alias: str | None
    serving_version: int
    created_at: datetime
    updated_at: datetime
    traffic: list[dict[str, Any]] = field(default_factory=list)
    shadow: dict[str, Any] | None = None
    settings: DeploymentSettings = field(default_factory=default_settings)
    routes: list[Route] = field(default_factory=list)
    shadow_version: int | None = None


@dataclass(frozen=True)
class RouteTarget:
    """One version a deployment sends requests to, with everything needed to load it.

    ``weight`` is its percentage of requests (0 for a shadow, which gets copies).
    """

    version: int
    artifact_digest: str
    signature: dict[str, Any]
    weight: int
    #: The version's flavor: ``hf-*`` versions are model folders served by a PyTorch runtime.
    flavor: str = "onnx"


@dataclass(frozen=True, init=False)
class ServedTarget(_SettingsByName):
    """What one deployment resolves to right now: everything needed to load and serve it.

    ``version``, ``artifact_digest`` and ``signature`` describe the primary route, as they
    always have, so a reader that knows nothing of traffic splitting serves the primary.
    ``routes`` lists every weighted route, primary first (weights add up to 100); when not
    given it is the primary alone at 100%, which is what a deployment without canaries
    and the per-version targets of :meth:`DeploymentService.target` are. ``settings`` are
    the deployment's serving settings (or give them by name: ``max_queue_size=3``).
    """

    deployment: str
    model: str
    version: int
    artifact_digest: str
    signature: dict[str, Any]
    routes: tuple[RouteTarget, ...]
    shadow: RouteTarget | None
    settings: DeploymentSettings
    flavor: str

    def __init__(
        self,
        deployment: str,
        model: str,
        version: int,
        artifact_digest: str,
        signature: dict[str, Any],
        routes: tuple[RouteTarget, ...] = (),
        shadow: RouteTarget | None = None,
        settings: DeploymentSettings | None = None,
        flavor: str = "onnx",
        **by_name: Any,
    ) -> None:
        unknown = sorted(set(by_name) - set(SETTINGS))
        if unknown or (settings is not None and by_name):
            raise TypeError(f"ServedTarget: give settings or settings by name, not both; unknown: {unknown}")
        if settings is None:
            settings = DeploymentSettings.model_validate(by_name)
        if not routes:
            routes = (RouteTarget(version, artifact_digest, signature, WEIGHT_TOTAL, flavor),)
        values = {
            "deployment": deployment,
            "model": model,
            "version": version,
            "artifact_digest": artifact_digest,
            "signature": signature,
            "routes": routes,
            "shadow": shadow,
            "settings": settings,
            "flavor": flavor,
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)
