"""The deployments service: the control plane's writes and reads of the desired state.

A deployment names a model and either pins a version or follows an alias: its *primary*
target. It may also split traffic with weighted canary routes, mirror every request to
a shadow version, and carry its serving settings (dynamic batching, queue bound,
timeout). The control plane writes these rows; the inference server reads them (its
model pool, through :meth:`DeploymentService.desired_state`) and converges. Every change
bumps the serving revision in the same transaction, so the inference server notices it with
one cheap query.

All validation of the serving configuration lives here, in :class:`DeploymentService`:
the REST schemas only bound single values for the OpenAPI document, while the rules
that need the registry (a route's version exists, is ready, takes the primary's inputs)
or the whole configuration (weights add up, no route twice) can only be checked here,
so every client (API, SDK, CLI, in-process callers) gets the same answer.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiaas.deployments.entities import WEIGHT_TOTAL, Deployment, Route, RouteTarget, ServedTarget
from aiaas.deployments.routing import check_routing
from aiaas.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from aiaas.registry import Registry, check_alias_name, check_name
from aiaas.schemas.deployment_settings import (
    SETTINGS,
    DeploymentSettings,
    SettingValues,
    check_settings,
    resolve_settings,
)
from aiaas.schemas.setting_values import invalid
from aiaas.store.models import servable_version_row
from aiaas.store.queries import model_row
from aiaas.store.tables import DeploymentRow, ModelRow, ModelVersionRow, utcnow

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
        exists = AlreadyExists(f"deployment {name!r} already exists", details={"deployment": name})
        try:
            with self.db.transaction() as s:
                if s.scalar(select(DeploymentRow.id).where(DeploymentRow.name == name)) is not None:
                    raise exists
                served_model = model_row(s, model)
                version, alias = self._check_target(s, served_model, version, alias)
                row = DeploymentRow(name=name, model_id=served_model.id, version=version, alias=alias)
                _apply(row, given)
                _check_replica_bounds(row)
                _check_routes(row, served_model)
                s.add(row)
                self.db.bump_revision(s)
                s.flush()
                return _deployment(row, served_model)
        except IntegrityError:  # created by a concurrent request between the check and the insert
            raise exists from None

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
        with self.db.transaction() as s:
            row = _deployment_row(s, name)
            if version is not None or alias is not None or not given:
                row.version, row.alias = self._check_target(s, row.model, version, alias)
            _apply(row, given)
            _check_replica_bounds(row)
            _check_routes(row, row.model)
            row.updated_at = utcnow()
            self.db.bump_revision(s)
            s.flush()
            return _deployment(row, row.model)

    def get(self, name: str) -> Deployment:
        with self.db.transaction() as s:
            row = _deployment_row(s, name)
            return _deployment(row, row.model)

    def list(self) -> list[Deployment]:
        with self.db.transaction() as s:
            rows = s.scalars(select(DeploymentRow).order_by(DeploymentRow.name)).all()
            return [_deployment(r, r.model) for r in rows]

    def delete(self, name: str) -> None:
        with self.db.transaction() as s:
            s.delete(_deployment_row(s, name))
            self.db.bump_revision(s)

    def desired_state(self) -> builtins.list[ServedTarget]:
        """Every deployment resolved to the versions it should serve now, in one read.

        Aliases are resolved here, on every read, so a route following an alias moves
        with it (and rolls back with it) without the deployment being touched.
        """
        with self.db.transaction() as s:
            out = []
            for row in s.scalars(select(DeploymentRow).order_by(DeploymentRow.name)).all():
                routes = tuple(
                    _route_target(_version_row(row.model, r.version), r.weight)
                    for r in _routes(row, row.model)
                )
                shadow = _shadow_version(row, row.model)
                primary = routes[0]
                out.append(
                    ServedTarget(
                        deployment=row.name,
                        model=row.model.name,
                        version=primary.version,
                        artifact_digest=primary.artifact_digest,
                        signature=primary.signature,
                        flavor=primary.flavor,
                        routes=routes,
                        shadow=None if shadow is None else _route_target(shadow, 0),
                        settings=_settings(row),
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
        with self.db.transaction() as s:
            row = _deployment_row(s, deployment)
            v = servable_version_row(s, row.model, version)
            return ServedTarget(
                deployment=row.name,
                model=row.model.name,
                version=v.version,
                artifact_digest=v.artifact_digest,
                signature=dict(v.signature),
                flavor=v.flavor,
                settings=_settings(row),
            )

    @staticmethod
    def _check_target(
        s: Session, model: ModelRow, version: int | None, alias: str | None
    ) -> tuple[int | None, str | None]:
        if version is not None and alias is not None:
            raise InvalidArgument(
                "give either version or alias, not both", details={"field": "version", "alias": alias}
            )
        if alias is not None:
            check_alias_name(alias)
            if not any(a.name == alias for a in model.aliases):
                raise NotFound(
                    f"model {model.name!r} has no alias {alias!r}; create it with set_alias first",
                    details={"model": model.name, "alias": alias},
                )
            return None, alias
        if version is None:
            if not model.versions:
                raise Conflict(
                    f"model {model.name!r} has no versions to deploy", details={"model": model.name}
                )
            version = model.versions[-1].version
        row = _version_row(model, version)
        if row.status != "ready":
            raise Conflict(
                f"version {version} of {model.name!r} is {row.status} and cannot be deployed",
                details={"model": model.name, "version": version},
            )
        return version, None


# -- settings ----------------------------------------------------------------------------------


def _check_replica_bounds(row: DeploymentRow) -> None:
    """``min_replicas <= max_replicas`` once the change is applied (an update may give one of them)."""
    settings = _settings(row)
    low, high = settings.min_replicas, settings.max_replicas
    if low > high:
        raise invalid(
            "max_replicas",
            f"must be at least min_replicas ({low}); raise max_replicas or lower min_replicas",
            high,
            min_replicas=low,
        )


def _apply(row: DeploymentRow, given: Mapping[str, Any]) -> None:
    """Store what was given: a setting with a column of its own there, any other in the
    ``settings`` JSON column (a ``None`` removes it, so it takes its default)."""
    others = dict(row.settings or {})
    for name, value in given.items():
        if name in _COLUMNS:
            setattr(row, name, value)
        elif value is None:
            others.pop(name, None)
        else:
            others[name] = value
    row.settings = others or None


#: The columns of deployments' routing and of the settings that have one (migrations 0002-0007).
_COLUMNS = frozenset(
    {
        "traffic",
        "shadow",
        "batching",
        "max_queue_size",
        "timeout_s",
        "min_replicas",
        "max_replicas",
        "target_in_flight",
        "scale_down_delay_s",
        "prediction_log",
    }
)


def _settings(row: DeploymentRow) -> DeploymentSettings:
    """The settings in force: what is stored (a column, or the ``settings`` column), defaults
    for the rest."""
    stored = {name: getattr(row, name) for name in _COLUMNS if name in SETTINGS}
    return resolve_settings({**(row.settings or {}), **stored})


# -- routes: the checks against the registry ------------------------------------------------


def _check_routes(row: DeploymentRow, model: ModelRow) -> None:
    """Every traffic and shadow route names another ready version taking the primary's inputs."""
    primary_ref = {"version": row.version} if row.version is not None else {"alias": row.alias}
    primary = _version_row(model, _target_version(row, model))
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
                f"{where}: version {version.version} of {model.name!r} is {version.status} and cannot "
                "take requests; give a ready version",
                details={"field": where, "value": target, "status": version.status},
            )
        if _inputs(version) != _inputs(primary):
            raise Conflict(
                f"{where}: version {version.version} of {model.name!r} takes inputs "
                f"{_inputs(version)}, but the primary (version {primary.version}) takes "
                f"{_inputs(primary)}; every route must accept the same requests",
                details={"field": where, "value": target, "primary_version": primary.version},
            )


def _ref_version(model: ModelRow, kind: str, target: Any, field: str) -> ModelVersionRow:
    if kind == "alias":
        alias = next((a for a in model.aliases if a.name == target), None)
        if alias is None:
            raise invalid(field, f"must be an alias of model {model.name!r} (create it first)", target)
        target = alias.version
    version = next((v for v in model.versions if v.version == target), None)
    if version is None:
        raise invalid(field, f"must be a version of model {model.name!r}", target)
    return version


def _inputs(version: ModelVersionRow) -> list[Any]:
    return list((version.signature or {}).get("inputs") or [])


# -- reading rows -------------------------------------------------------------------------------


def _deployment_row(s: Session, name: str) -> DeploymentRow:
    row = s.scalar(select(DeploymentRow).where(DeploymentRow.name == name))
    if row is None:
        raise NotFound(f"deployment {name!r} not found", details={"deployment": name})
    return row


def _version_row(model: ModelRow, version: int) -> ModelVersionRow:
    for v in model.versions:
        if v.version == version:
            return v
    raise NotFound(
        f"model {model.name!r} has no version {version}", details={"model": model.name, "version": version}
    )


def _alias_version(model: ModelRow, alias: str | None) -> int:
    for a in model.aliases:
        if a.name == alias:
            return a.version
    raise NotFound(f"alias {alias!r} of model {model.name!r} is gone", details={"alias": alias})


def _target_version(row: DeploymentRow, model: ModelRow) -> int:
    if row.version is not None:
        return row.version
    return _alias_version(model, row.alias)


def _ref_target(model: ModelRow, ref: Mapping[str, Any]) -> int:
    """The version a stored ``{"version": N}`` / ``{"alias": A}`` points at now."""
    if ref.get("version") is not None:
        return int(ref["version"])
    return _alias_version(model, ref.get("alias"))


def _routes(row: DeploymentRow, model: ModelRow) -> list[Route]:
    """Primary first, with what the canary routes leave it; then the canaries as configured."""
    canaries = [Route(_ref_target(model, r), int(r["weight"])) for r in row.traffic or []]
    primary = Route(_target_version(row, model), WEIGHT_TOTAL - sum(r.weight for r in canaries))
    return [primary, *canaries]


def _shadow_version(row: DeploymentRow, model: ModelRow) -> ModelVersionRow | None:
    return None if not row.shadow else _version_row(model, _ref_target(model, row.shadow))


def _route_target(version: ModelVersionRow, weight: int) -> RouteTarget:
    return RouteTarget(
        version=version.version,
        artifact_digest=version.artifact_digest,
        signature=dict(version.signature),
        weight=weight,
        flavor=version.flavor,
    )


def _deployment(row: DeploymentRow, model: ModelRow) -> Deployment:
    routes = _routes(row, model)
    shadow = _shadow_version(row, model)
    return Deployment(
        name=row.name,
        model=model.name,
        version=row.version,
        alias=row.alias,
        serving_version=routes[0].version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        traffic=[dict(r) for r in row.traffic or []],
        shadow=None if not row.shadow else dict(row.shadow),
        routes=routes,
        shadow_version=None if shadow is None else shadow.version,
        settings=_settings(row),
    )
