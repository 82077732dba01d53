"""Deployments: the desired state of what the inference server serves.

A deployment names a model and either pins a version or follows an alias. The control
plane writes these rows; the inference server reads them (see :mod:`.reconciler`) and
converges. Every change bumps the serving revision in the same transaction, so the
inference server notices it with one cheap query.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiaas.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from aiaas.registry import Registry, check_alias_name, check_name
from aiaas.store import DeploymentRow, ModelRow, ModelVersionRow, utcnow

__all__ = ["Deployment", "DeploymentService", "ServedTarget"]


@dataclass(frozen=True)
class Deployment:
    name: str
    model: str
    version: int | None
    alias: str | None
    serving_version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ServedTarget:
    """What one deployment resolves to right now: everything needed to load it."""

    deployment: str
    model: str
    version: int
    artifact_digest: str
    signature: dict[str, Any]


class DeploymentService:
    """Create, change and list deployments; resolve them to concrete versions.

    Example:
        >>> deployments = DeploymentService(registry)  # doctest: +SKIP
        >>> deployments.create("iris", model="iris", alias="production")  # doctest: +SKIP
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.db = registry.db

    def create(
        self, name: str, *, model: str, version: int | None = None, alias: str | None = None
    ) -> Deployment:
        """Serve ``model`` at a pinned ``version`` or following ``alias`` (default: latest, pinned)."""
        check_name(name, field="name")
        exists = AlreadyExists(f"deployment {name!r} already exists", details={"deployment": name})
        try:
            with self.db.transaction() as s:
                if s.scalar(select(DeploymentRow.id).where(DeploymentRow.name == name)) is not None:
                    raise exists
                model_row = _model_row(s, model)
                version, alias = self._check_target(s, model_row, version, alias)
                row = DeploymentRow(name=name, model_id=model_row.id, version=version, alias=alias)
                s.add(row)
                self.db.bump_revision(s)
                s.flush()
                return _deployment(row, model_row)
        except IntegrityError:  # created by a concurrent request between the check and the insert
            raise exists from None

    def update(self, name: str, *, version: int | None = None, alias: str | None = None) -> Deployment:
        """Switch a deployment to another version or alias; served without a restart."""
        with self.db.transaction() as s:
            row = _deployment_row(s, name)
            row.version, row.alias = self._check_target(s, row.model, version, alias)
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
        """Every deployment resolved to the version it should serve, in one read."""
        with self.db.transaction() as s:
            out = []
            for row in s.scalars(select(DeploymentRow).order_by(DeploymentRow.name)).all():
                version = _target_version(row, row.model)
                v = next(x for x in row.model.versions if x.version == version)
                out.append(
                    ServedTarget(
                        deployment=row.name,
                        model=row.model.name,
                        version=v.version,
                        artifact_digest=v.artifact_digest,
                        signature=dict(v.signature),
                    )
                )
            return out

    def target(self, deployment: str, version: int) -> ServedTarget:
        """A specific version of a deployment's model (``/v2/models/{d}/versions/{v}``)."""
        with self.db.transaction() as s:
            row = _deployment_row(s, deployment)
            v = _version_row(row.model, version)
            return ServedTarget(
                deployment=row.name,
                model=row.model.name,
                version=v.version,
                artifact_digest=v.artifact_digest,
                signature=dict(v.signature),
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


def _model_row(s: Session, name: str) -> ModelRow:
    row = s.scalar(select(ModelRow).where(ModelRow.name == name))
    if row is None:
        raise NotFound(f"model {name!r} not found", details={"model": name})
    return row


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


def _target_version(row: DeploymentRow, model: ModelRow) -> int:
    if row.version is not None:
        return row.version
    for a in model.aliases:
        if a.name == row.alias:
            return a.version
    raise NotFound(f"alias {row.alias!r} of model {model.name!r} is gone", details={"alias": row.alias})


def _deployment(row: DeploymentRow, model: ModelRow) -> Deployment:
    return Deployment(
        name=row.name,
        model=model.name,
        version=row.version,
        alias=row.alias,
        serving_version=_target_version(row, model),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
