"""The deployments' repository: their rows and SQL, handed out as plain entities.

A change is decided by the deployments domain and stored here in one transaction: the
repository reads the deployment and its model's versions and aliases, hands them to the
domain's ``decide`` (which checks the change against them and returns the new deployment, or
raises), writes the result and bumps the serving revision. The rules stay in the domain, the
rows here, and nothing can change the registry between the check and the write.

Settings with a column of their own (migrations 0002-0007) are stored there; any other in
the ``settings`` JSON column (migration 0010), by name. ``None`` (SQL NULL) means the default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiaas.entities.deployments import ModelTargets, StoredDeployment, TargetVersion
from aiaas.entities.projects import DEFAULT_PROJECT
from aiaas.errors import AlreadyExists, NotFound
from aiaas.store.database import Database
from aiaas.store.models import servable_version_row
from aiaas.store.queries import model_row, scoped
from aiaas.store.quotas import DEFAULT_MAX_REPLICAS, check_quota
from aiaas.store.tables import DeploymentRow, ModelRow, ModelVersionRow, utcnow

__all__ = ["DeploymentStore"]

#: The settings that have a column of their own; any other lives in ``settings`` (JSON).
_SETTING_COLUMNS = (
    "batching",
    "max_queue_size",
    "timeout_s",
    "min_replicas",
    "max_replicas",
    "target_in_flight",
    "scale_down_delay_s",
    "prediction_log",
)

Read = tuple[StoredDeployment, ModelTargets]


class DeploymentStore:
    """One project's deployments' rows: create, change, read and delete them, each in one transaction.

    Another project's deployment is not found, exactly as if it did not exist, and a
    deployment serves a model of its own project only. With ``project=None`` it reads every
    project's, by qualified name (the inference server's desired state).
    """

    def __init__(self, db: Database, *, project: str | None = DEFAULT_PROJECT) -> None:
        self.db = db
        self.project = project

    def create(self, name: str, model: str, decide: Callable[[ModelTargets], StoredDeployment]) -> Read:
        """Store the deployment ``decide`` makes from ``model``'s versions and aliases.

        Raises:
            AlreadyExists: a deployment has that name.
            NotFound: no such model.
        """
        exists = AlreadyExists(f"deployment {name!r} already exists", details={"deployment": name})
        try:
            with self.db.transaction() as s:
                project, plain = scoped(self.project, name)
                if s.scalar(select(DeploymentRow.id).where(*_named(project, plain))) is not None:
                    raise exists
                served = model_row(s, model, project)
                targets = _targets(served)
                row = DeploymentRow(project=project, name=plain, model_id=served.id)
                _write(row, decide(targets))
                s.add(row)
                self.db.bump_revision(s)
                s.flush()
                check_quota(s, project, {"max_replicas": _replicas(row)})
                return _stored(row, served), targets
        except IntegrityError:  # created by a concurrent request between the check and the insert
            raise exists from None

    def update(self, name: str, decide: Callable[[StoredDeployment, ModelTargets], StoredDeployment]) -> Read:
        """Replace deployment ``name`` by what ``decide`` makes of it.

        Raises:
            NotFound: no such deployment.
        """
        with self.db.transaction() as s:
            row = _row(s, name, self.project)
            targets = _targets(row.model)
            replicas = _replicas(row)
            _write(row, decide(_stored(row, row.model), targets))
            row.updated_at = utcnow()
            self.db.bump_revision(s)
            s.flush()
            check_quota(s, row.project, {"max_replicas": _replicas(row) - replicas})
            return _stored(row, row.model), targets

    def get(self, name: str) -> Read:
        with self.db.transaction() as s:
            row = _row(s, name, self.project)
            return _stored(row, row.model), _targets(row.model)

    def list(self) -> list[Read]:
        """Every deployment, by name, each with its model's versions and aliases (one read)."""
        with self.db.transaction() as s:
            query = select(DeploymentRow).order_by(DeploymentRow.project, DeploymentRow.name)
            if self.project is not None:
                query = query.where(DeploymentRow.project == self.project)
            rows = s.scalars(query).all()
            return [(_stored(r, r.model), _targets(r.model)) for r in rows]

    def delete(self, name: str) -> None:
        with self.db.transaction() as s:
            s.delete(_row(s, name, self.project))
            self.db.bump_revision(s)

    def servable(self, name: str, version: int) -> tuple[StoredDeployment, TargetVersion]:
        """Deployment ``name`` and one ready version of its model, by number.

        Raises:
            NotFound: no such deployment, or its model has no such version (the message says
                when the version was deleted: numbers are never reused).
            Conflict: the version is archived.
        """
        with self.db.transaction() as s:
            row = _row(s, name, self.project)
            return _stored(row, row.model), _version(servable_version_row(s, row.model, version))


def _named(project: str, name: str) -> tuple[Any, ...]:
    return (DeploymentRow.project == project, DeploymentRow.name == name)


def _row(s: Session, name: str, project: str | None) -> DeploymentRow:
    project, plain = scoped(project, name)
    row = s.scalar(select(DeploymentRow).where(*_named(project, plain)))
    if row is None:
        raise NotFound(f"deployment {plain!r} not found", details={"deployment": plain})
    return row


def _version(row: ModelVersionRow) -> TargetVersion:
    return TargetVersion(
        version=row.version,
        status=str(row.status),
        flavor=row.flavor,
        artifact_digest=row.artifact_digest,
        signature=dict(row.signature or {}),
    )


def _targets(model: ModelRow) -> ModelTargets:
    versions = sorted(model.versions, key=lambda v: v.version)
    return ModelTargets(
        model=model.name,
        versions={v.version: _version(v) for v in versions},
        aliases={a.name: a.version for a in model.aliases},
    )


def _stored(row: DeploymentRow, model: ModelRow) -> StoredDeployment:
    settings: dict[str, Any] = dict(row.settings or {})
    for name in _SETTING_COLUMNS:
        value = getattr(row, name)
        if value is not None:
            settings[name] = value
    return StoredDeployment(
        project=row.project,
        name=row.name,
        model=model.name,
        version=row.version,
        alias=row.alias,
        created_at=row.created_at,
        updated_at=row.updated_at,
        traffic=[dict(r) for r in row.traffic] if row.traffic else None,
        shadow=dict(row.shadow) if row.shadow else None,
        settings=settings,
    )


def _write(row: DeploymentRow, deployment: StoredDeployment) -> None:
    row.version, row.alias = deployment.version, deployment.alias
    row.traffic = deployment.traffic or None
    row.shadow = deployment.shadow or None
    others = {k: v for k, v in deployment.settings.items() if v is not None}
    for name in _SETTING_COLUMNS:
        setattr(row, name, others.pop(name, None))
    row.settings = others or None


def _replicas(row: DeploymentRow) -> int:
    """What a deployment counts against its project's ``max_replicas`` quota."""
    return row.max_replicas if row.max_replicas is not None else DEFAULT_MAX_REPLICAS
