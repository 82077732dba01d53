"""The deployments service: the control plane's writes and reads of the desired state.

A deployment names a model and either pins a version or follows an alias: its *primary*
target. It may also split traffic with weighted canary routes, mirror every request to
a shadow version, and carry its serving settings (dynamic batching, queue bound,
timeout). The control plane writes these rows; the inference server reads them (its
model pool, through :meth:`DeploymentService.desired_state`) and converges. Every change
bumps the serving revision in the same transaction, so the inference server notices it with
one cheap query.

The rows are :class:`~aiaas.store.deployments.DeploymentStore`'s: each change is checked
here against the deployment and its model as the store reads them, in the transaction that
stores it. All validation of the serving configuration lives here, in :class:`DeploymentService`:
the REST schemas only bound single values for the OpenAPI document, while the rules
that need the registry (a route's version exists, is ready, takes the primary's inputs)
or the whole configuration (weights add up, no route twice) can only be checked here,
so every client (API, SDK, CLI, in-process callers) gets the same answer.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Unpack

from aiaas.deployments.entities import WEIGHT_TOTAL, Deployment, Route, RouteTarget, ServedTarget
from aiaas.deployments.routing import check_routing
from aiaas.entities.deployments import ModelTargets, StoredDeployment, TargetVersion
from aiaas.entities.projects import qualified_name
from aiaas.errors import Conflict, InvalidArgument, NotFound
from aiaas.registry import Registry, check_alias_name, check_name
from aiaas.schemas.deployment_settings import (
    SETTINGS,
    SettingValues,
    check_settings,
    resolve_settings,
)
from aiaas.schemas.setting_values import invalid
from aiaas.store.deployments import DeploymentStore

__all__ = ["DeploymentService"]


class DeploymentService:
    """Create, change and list deployments; resolve them to concrete versions.

    Routing, accepted by :meth:`create` and :meth:`update`:

    - ``traffic``: extra weighted routes, e.g. ``[{"version": 3, "weight": 10},
      {"alias": "staging", "weight": 5}]``. Weights are integers 0..100 adding up to at
      most 100; the primary gets the rest (``100 - sum``). Each route names another ready
      version (or alias) of the same model that takes the same inputs as the primary.
    - ``shadow``: ``{"version": N}`` or ``{"alias": A}``, a version that gets a copy of every
      request; its responses are dropped.

    and every serving setting of :class:`~aiaas.schemas.DeploymentSettings` by name (their
    ranges and defaults are defined there): ``batching``, ``max_queue_size``, ``timeout_s``,
    the replica counts and autoscaling, ``prediction_log``, ``drift``. A nested setting's keys
    left out take their defaults; ``max_replicas`` must be at least ``min_replicas``.

    Example:
        >>> deployments = DeploymentService(registry)  # doctest: +SKIP
        >>> deployments.create("iris", model="iris", alias="production")  # doctest: +SKIP
        >>> deployments.update("iris", traffic=[{"version": 3, "weight": 10}])  # doctest: +SKIP
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.db = registry.db
        #: The registry's project: deployments of it, serving its models. ``None`` (every
        #: project, the inference server's) names deployments and models by qualified name.
        self.project = registry.project
        self.store = DeploymentStore(registry.db, project=registry.project)

    def create(
        self,
        name: str,
        *,
        model: str,
        version: int | None = None,
        alias: str | None = None,
        traffic: Sequence[Mapping[str, Any]] | None = None,
        shadow: Mapping[str, Any] | None = None,
        **settings: Unpack[SettingValues],
    ) -> Deployment:
        """Serve ``model`` at a pinned ``version`` or following ``alias`` (default: latest, pinned).

        The serving settings are described on the class; any left as ``None`` take their
        defaults, and an empty ``traffic``/``shadow``/``batching`` means the same as ``None``.
        """
        check_name(name, field="name")
        given = check_routing(traffic, shadow) | check_settings(settings)

        def decide(model: ModelTargets) -> StoredDeployment:
            target = _check_target(model, version, alias)
            now = datetime.now(UTC)  # the store's row keeps its own times
            made = StoredDeployment(name, model.model, *target, created_at=now, updated_at=now)
            return _checked(_changed(made, given), model)

        return _deployment(*self.store.create(name, model, decide))

    def update(
        self,
        name: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        traffic: Sequence[Mapping[str, Any]] | None = None,
        shadow: Mapping[str, Any] | None = None,
        **settings: Unpack[SettingValues],
    ) -> Deployment:
        """Change a deployment; served without a restart.

        A setting left as ``None`` keeps its current value; a setting given replaces it
        whole. ``traffic=[]`` removes every canary route, ``shadow={}`` stops shadowing and
        ``batching={}`` restores the batching defaults. ``version``/``alias`` switch the
        primary target; when neither they nor any setting is given, the deployment is
        pinned to the latest version (what ``update(name)`` has always done).

        Whatever changed, the whole resulting configuration is checked again (a new
        primary must still take the same inputs as the routes kept), and nothing is
        stored unless all of it holds.
        """
        given = check_routing(traffic, shadow) | check_settings(settings)

        def decide(current: StoredDeployment, model: ModelTargets) -> StoredDeployment:
            changed = _changed(current, given)
            if version is not None or alias is not None or not given:
                changed = dataclasses.replace(changed, **_target_fields(_check_target(model, version, alias)))
            return _checked(changed, model)

        return _deployment(*self.store.update(name, decide))

    def get(self, name: str) -> Deployment:
        return _deployment(*self.store.get(name))

    def list(self) -> list[Deployment]:
        return [_deployment(d, m) for d, m in self.store.list()]

    def delete(self, name: str) -> None:
        self.store.delete(name)

    def desired_state(self) -> builtins.list[ServedTarget]:
        """Every deployment resolved to the versions it should serve now, in one read.

        Aliases are resolved here, on every read, so a route following an alias moves
        with it (and rolls back with it) without the deployment being touched.
        """
        out = []
        for d, model in self.store.list():
            routes = tuple(_route_target(_version(model, r.version), r.weight) for r in _routes(d, model))
            shadow = _shadow_version(d, model)
            primary = routes[0]
            out.append(
                ServedTarget(
                    deployment=qualified_name(d.project, d.name),
                    model=qualified_name(d.project, d.model),
                    version=primary.version,
                    artifact_digest=primary.artifact_digest,
                    signature=primary.signature,
                    flavor=primary.flavor,
                    routes=routes,
                    shadow=None if shadow is None else _route_target(shadow, 0),
                    settings=resolve_settings(d.settings),
                )
            )
        return out

    def target(self, deployment: str, version: int) -> ServedTarget:
        """A specific version of a deployment's model (``/v2/models/{d}/versions/{v}``).

        It is served with the deployment's settings, as the only route (no split, no shadow).

        Raises:
            NotFound: no such deployment, or its model has no such version (the message says
                when the version was deleted: numbers are never reused).
            Conflict: the version is archived, so it is not served.
        """
        d, v = self.store.servable(deployment, version)
        return ServedTarget(
            deployment=qualified_name(d.project, d.name),
            model=qualified_name(d.project, d.model),
            version=v.version,
            artifact_digest=v.artifact_digest,
            signature=dict(v.signature),
            flavor=v.flavor,
            settings=resolve_settings(d.settings),
        )


def _check_target(
    model: ModelTargets, version: int | None, alias: str | None
) -> tuple[int | None, str | None]:
    """The primary target asked for: a ready version (default: the latest), or an alias."""
    if version is not None and alias is not None:
        raise InvalidArgument(
            "give either version or alias, not both", details={"field": "version", "alias": alias}
        )
    if alias is not None:
        check_alias_name(alias)
        if alias not in model.aliases:
            raise NotFound(
                f"model {model.model!r} has no alias {alias!r}; create it with set_alias first",
                details={"model": model.model, "alias": alias},
            )
        return None, alias
    if version is None:
        if not model.versions:
            raise Conflict(f"model {model.model!r} has no versions to deploy", details={"model": model.model})
        version = max(model.versions)
    target = _version(model, version)
    if target.status != "ready":
        raise Conflict(
            f"version {version} of {model.model!r} is {target.status} and cannot be deployed",
            details={"model": model.model, "version": version},
        )
    return version, None


def _target_fields(target: tuple[int | None, str | None]) -> dict[str, Any]:
    return {"version": target[0], "alias": target[1]}


def _changed(d: StoredDeployment, given: Mapping[str, Any]) -> StoredDeployment:
    """``d`` with the routes and settings ``given`` (a ``None``: none, or the default)."""
    settings = {**d.settings, **{k: v for k, v in given.items() if k in SETTINGS}}
    return dataclasses.replace(
        d,
        traffic=given.get("traffic", d.traffic),
        shadow=given.get("shadow", d.shadow),
        settings={k: v for k, v in settings.items() if v is not None},
    )


def _checked(d: StoredDeployment, model: ModelTargets) -> StoredDeployment:
    """``d`` once the rules that need the whole of it and the registry hold."""
    _check_replica_bounds(d)
    _check_routes(d, model)
    return d


# -- settings ----------------------------------------------------------------------------------


def _check_replica_bounds(d: StoredDeployment) -> None:
    """``min_replicas <= max_replicas`` once the change is applied (an update may give one of them)."""
    settings = resolve_settings(d.settings)
    low, high = settings.min_replicas, settings.max_replicas
    if low > high:
        raise invalid(
            "max_replicas",
            f"must be at least min_replicas ({low}); raise max_replicas or lower min_replicas",
            high,
            min_replicas=low,
        )


# -- routes: the checks against the registry ------------------------------------------------


def _check_routes(row: StoredDeployment, model: ModelTargets) -> None:
    """Every traffic and shadow route names another ready version taking the primary's inputs."""
    primary_ref = {"version": row.version} if row.version is not None else {"alias": row.alias}
    primary = _version(model, _target_version(row, model))
    refs = [
        (f"traffic[{i}]", {k: v for k, v in r.items() if k != "weight"})
        for i, r in enumerate(row.traffic or [])
    ]
    if row.shadow:
        refs.append(("shadow", dict(row.shadow)))
    for at, ref in refs:
        ((kind, target),) = ref.items()
        where = f"{at}.{kind}"
        if ref == primary_ref:
            raise invalid(
                where,
                f"must differ from the primary target, which is already {kind} {target!r} "
                "(remove the route, or name another version)",
                target,
            )
        version = _ref_version(model, kind, target, where)
        if version.status != "ready":
            raise Conflict(
                f"{where}: version {version.version} of {model.model!r} is {version.status} and cannot "
                "take requests; give a ready version",
                details={"field": where, "value": target, "status": version.status},
            )
        if _inputs(version) != _inputs(primary):
            raise Conflict(
                f"{where}: version {version.version} of {model.model!r} takes inputs "
                f"{_inputs(version)}, but the primary (version {primary.version}) takes "
                f"{_inputs(primary)}; every route must accept the same requests",
                details={"field": where, "value": target, "primary_version": primary.version},
            )


def _ref_version(model: ModelTargets, kind: str, target: Any, field: str) -> TargetVersion:
    if kind == "alias":
        if target not in model.aliases:
            raise invalid(field, f"must be an alias of model {model.model!r} (create it first)", target)
        target = model.aliases[target]
    version = model.versions.get(target)
    if version is None:
        raise invalid(field, f"must be a version of model {model.model!r}", target)
    return version


def _inputs(version: TargetVersion) -> list[Any]:
    return list((version.signature or {}).get("inputs") or [])


# -- resolving routes ---------------------------------------------------------------------------


def _version(model: ModelTargets, version: int) -> TargetVersion:
    found = model.versions.get(version)
    if found is None:
        raise NotFound(
            f"model {model.model!r} has no version {version}",
            details={"model": model.model, "version": version},
        )
    return found


def _alias_version(model: ModelTargets, alias: str | None) -> int:
    if alias in model.aliases:
        return model.aliases[alias]
    raise NotFound(f"alias {alias!r} of model {model.model!r} is gone", details={"alias": alias})


def _target_version(row: StoredDeployment, model: ModelTargets) -> int:
    if row.version is not None:
        return row.version
    return _alias_version(model, row.alias)


def _ref_target(model: ModelTargets, ref: Mapping[str, Any]) -> int:
    """The version a stored ``{"version": N}`` / ``{"alias": A}`` points at now."""
    if ref.get("version") is not None:
        return int(ref["version"])
    return _alias_version(model, ref.get("alias"))


def _routes(row: StoredDeployment, model: ModelTargets) -> list[Route]:
    """Primary first, with what the canary routes leave it; then the canaries as configured."""
    canaries = [Route(_ref_target(model, r), int(r["weight"])) for r in row.traffic or []]
    primary = Route(_target_version(row, model), WEIGHT_TOTAL - sum(r.weight for r in canaries))
    return [primary, *canaries]


def _shadow_version(row: StoredDeployment, model: ModelTargets) -> TargetVersion | None:
    return None if not row.shadow else _version(model, _ref_target(model, row.shadow))


def _route_target(version: TargetVersion, weight: int) -> RouteTarget:
    return RouteTarget(
        version=version.version,
        artifact_digest=version.artifact_digest,
        signature=dict(version.signature),
        weight=weight,
        flavor=version.flavor,
    )


def _deployment(row: StoredDeployment, model: ModelTargets) -> Deployment:
    routes = _routes(row, model)
    shadow = _shadow_version(row, model)
    return Deployment(
        name=row.name,
        model=row.model,
        version=row.version,
        alias=row.alias,
        serving_version=routes[0].version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        traffic=[dict(r) for r in row.traffic or []],
        shadow=None if not row.shadow else dict(row.shadow),
        routes=routes,
        shadow_version=None if shadow is None else shadow.version,
        settings=resolve_settings(row.settings),
    )
