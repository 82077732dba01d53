"""The registry's repository: models, versions and aliases in the metadata database.

Every method is one transaction and returns plain entities (:mod:`aiaas.entities.registry`);
the rows never leave this module. The rules that need the transaction to hold (a version
number is never given twice, nothing a deployment serves is deleted or archived, an alias
move keeps a deployment's routes taking the same inputs) are checked here, inside it; the
rules on the values themselves (names, limits, packages) are the registry's, checked before.

Version numbers are never reused. A new version takes the number after the highest one
the model's *name* was ever given (``model_version_counters``), not after the highest one
that exists now: numbered ``max + 1``, deleting the newest version freed its number, the
next registration took it, and clients pinned to ``/versions/3`` were answered by another
model. A deleted number stays retired, even when the whole model is deleted and its name
used again, and asking for it says so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiaas.entities.projects import DEFAULT_PROJECT
from aiaas.entities.registry import Alias, Model, ModelVersion, VersionRef, VersionStatus
from aiaas.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from aiaas.store.database import Database
from aiaas.store.limits import readable_json, readable_text
from aiaas.store.queries import model_row, scoped
from aiaas.store.quotas import check_quota
from aiaas.store.routes import model_deployments
from aiaas.store.tables import AliasRow, ModelRow, ModelVersionCounterRow, ModelVersionRow, utcnow

__all__ = ["ModelStore", "missing_version", "servable_version_row", "version_row"]

#: Transactions one registration tries before answering 409: each retry follows a
#: concurrent writer taking the number (or creating the model) first.
MAX_REGISTER_RETRIES = 5


class ModelStore:
    """Models, their versions and aliases of one project, read and written through one :class:`Database`.

    Args:
        db: the metadata database.
        project: the project whose models this store sees; another project's are not found.
            ``None``: every project's, read by qualified name (the inference server's).
    """

    def __init__(self, db: Database, *, project: str | None = DEFAULT_PROJECT) -> None:
        self.db = db
        self.project = project

    # -- models --------------------------------------------------------------------------

    def create_model(self, name: str, *, description: str, tags: dict[str, Any]) -> Model:
        """Raises: AlreadyExists: a model has that name."""
        exists = AlreadyExists(f"model {name!r} already exists", details={"model": name})
        try:
            with self.db.transaction() as s:
                if s.scalar(select(ModelRow.id).where(*self._named(name))) is not None:
                    raise exists
                row = ModelRow(project=self._own(), name=name, description=description, tags=dict(tags))
                s.add(row)
                s.flush()
                return _model(row)
        except IntegrityError:  # created by a concurrent request between the check and the insert
            raise exists from None

    def get_model(self, name: str) -> Model:
        with self.db.transaction() as s:
            return _model(model_row(s, name, self.project))

    def list_models(self) -> list[Model]:
        with self.db.transaction() as s:
            rows = s.scalars(
                select(ModelRow).where(ModelRow.project == self._own()).order_by(ModelRow.name)
            ).all()
            return [_model(r) for r in rows]

    def update_model(self, name: str, *, description: str | None, tags: dict[str, Any] | None) -> Model:
        with self.db.transaction() as s:
            row = model_row(s, name, self.project)
            if description is not None:
                row.description = description
            if tags is not None:
                row.tags = dict(tags)
            row.updated_at = utcnow()
            s.flush()
            return _model(row)

    def delete_model(self, name: str) -> None:
        """Raises: Conflict: a deployment serves the model."""
        with self.db.transaction() as s:
            row = model_row(s, name, self.project)
            used = sorted(d.name for d in model_deployments(s, row.id))
            if used:
                raise Conflict(
                    f"model {name!r} is served by deployments {used}; delete them first",
                    details={"model": name, "deployments": used},
                )
            s.delete(row)

    # -- versions ------------------------------------------------------------------------

    def add_version(
        self,
        name: str,
        *,
        flavor: str,
        artifact_digest: str,
        artifact_size_bytes: int,
        signature: dict[str, Any],
        example: dict[str, Any],
        metrics: dict[str, Any],
        params: dict[str, Any],
        description: str,
        source: str,
        parent_version: int | None,
        lineage: dict[str, Any] | None,
    ) -> ModelVersion:
        """Record the next version number of ``name`` (creating the model) for a stored artifact.

        Raises:
            NotFound: ``parent_version`` is not a version of the model.
            Conflict: no number could be allocated in :data:`MAX_REGISTER_RETRIES` tries.
        """
        for _ in range(MAX_REGISTER_RETRIES):
            try:
                with self.db.transaction() as s:
                    model = s.scalar(select(ModelRow).where(*self._named(name)))
                    if model is None:
                        model = ModelRow(project=self._own(), name=name, description="", tags={})
                        s.add(model)
                        s.flush()
                    # Writing the model row first takes its lock (a row lock on PostgreSQL,
                    # the write lock on SQLite), so concurrent registrations of one model
                    # read the highest number one after another instead of racing for it.
                    model.updated_at = utcnow()
                    s.flush()
                    if parent_version is not None:
                        version_row(s, model, parent_version)
                    row = ModelVersionRow(
                        model_id=model.id,
                        version=_next_number(s, model),
                        status=VersionStatus.READY,
                        flavor=flavor,
                        artifact_digest=artifact_digest,
                        artifact_size_bytes=artifact_size_bytes,
                        signature=signature,
                        example=example,
                        metrics=metrics,
                        params=params,
                        description=description,
                        source=source,
                        parent_version=parent_version,
                        lineage=lineage,
                    )
                    s.add(row)
                    s.flush()
                    check_quota(s, model.project, {"max_bytes": artifact_size_bytes})
                    return _version(row, name, ())
            except IntegrityError:
                continue  # another writer took this number (or created the model): retry
        raise Conflict(f"could not allocate a version number for {name!r}; try again")

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.db.transaction() as s:
            model = model_row(s, name, self.project)
            aliases = _aliases_by_version(model)
            return [_version(v, name, aliases.get(v.version, ())) for v in model.versions]

    def get_version(self, name: str, ref: VersionRef) -> ModelVersion:
        """A version by number, alias or ``"latest"``."""
        with self.db.transaction() as s:
            model = model_row(s, name, self.project)
            row = version_row(s, model, _resolve(model, ref))
            return _version(row, name, _aliases_by_version(model).get(row.version, ()))

    def resolve_version(self, name: str, ref: VersionRef) -> int:
        with self.db.transaction() as s:
            return _resolve(model_row(s, name, self.project), ref)

    def archive_version(self, name: str, version: int) -> ModelVersion:
        """Raises: Conflict: a deployment serves the version."""
        with self.db.transaction() as s:
            model = model_row(s, name, self.project)
            row = version_row(s, model, version)
            _refuse_if_deployed(s, model, version, "archive")
            row.status = VersionStatus.ARCHIVED
            s.flush()
            return _version(row, name, _aliases_by_version(model).get(version, ()))

    def delete_version(self, name: str, version: int) -> None:
        """Raises: Conflict: a deployment serves the version, or an alias points at it."""
        with self.db.transaction() as s:
            model = model_row(s, name, self.project)
            row = version_row(s, model, version)
            _refuse_if_deployed(s, model, version, "delete")
            pointing = [a.name for a in model.aliases if a.version == version]
            if pointing:
                raise Conflict(
                    f"version {version} of {name!r} is the target of aliases {pointing}; move them first",
                    details={"model": name, "version": version, "aliases": pointing},
                )
            s.delete(row)

    # -- aliases -------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> Alias:
        """Point ``alias`` at ``version`` and bump the serving revision.

        Raises:
            Conflict: the version is not ready, or the move would leave a deployment with
                routes that take different inputs.
        """
        with self.db.transaction() as s:
            model = model_row(s, name, self.project)
            target = version_row(s, model, version)
            if target.status != VersionStatus.READY:
                raise Conflict(
                    f"version {version} of {name!r} is {target.status}; "
                    "only ready versions can take an alias",
                    details={"model": name, "version": version, "status": target.status},
                )
            _check_routes_after_move(s, model, alias, version)
            row = next((a for a in model.aliases if a.name == alias), None)
            if row is None:
                row = AliasRow(model_id=model.id, name=alias, version=version, previous_version=None)
                s.add(row)
            elif row.version != version:
                row.previous_version, row.version = row.version, version
            row.updated_at = utcnow()
            self.db.bump_revision(s)
            s.flush()
            return _alias(row, name)

    def list_aliases(self, name: str) -> list[Alias]:
        with self.db.transaction() as s:
            return [_alias(a, name) for a in model_row(s, name, self.project).aliases]

    def delete_alias(self, name: str, alias: str) -> None:
        """Raises: NotFound: no such alias. Conflict: a deployment follows it."""
        with self.db.transaction() as s:
            model = model_row(s, name, self.project)
            row = next((a for a in model.aliases if a.name == alias), None)
            if row is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}", details={"alias": alias})
            used = sorted(d.name for d in model_deployments(s, model.id) if alias in d.aliases)
            if used:
                raise Conflict(
                    f"alias {alias!r} is followed by deployments {used} (as their target, a traffic "
                    "route or their shadow); change them first",
                    details={"alias": alias, "deployments": used},
                )
            s.delete(row)
            self.db.bump_revision(s)

    def _named(self, name: str) -> tuple[Any, ...]:
        project, plain = scoped(self.project, name)
        return (ModelRow.project == project, ModelRow.name == plain)

    def _own(self) -> str:
        """The store's project; a store of every project (``None``) has none to write or list in."""
        if self.project is None:
            raise InvalidArgument(
                "models are created and listed in one project: this store reads every project's by name"
            )
        return self.project


# -- row look-ups shared with the deployments' rows -------------------------------------


def version_row(s: Session, model: ModelRow, version: int) -> ModelVersionRow:
    """The row of one version of ``model``.

    Raises:
        NotFound: no such version (the message says when it was deleted).
    """
    row = s.scalar(
        select(ModelVersionRow).where(
            ModelVersionRow.model_id == model.id, ModelVersionRow.version == version
        )
    )
    if row is None:
        raise missing_version(s, model, version)
    return row


def servable_version_row(s: Session, model: ModelRow, version: int) -> ModelVersionRow:
    """The row of a version that may answer requests addressed to it by number.

    What ``/v2/models/{deployment}/versions/{n}`` serves: a ready version. An archived
    one is refused (409, naming the state), a deleted one is reported as deleted (404).

    Raises:
        NotFound: no such version (the message says when it was deleted).
        Conflict: the version is archived.
    """
    row = version_row(s, model, version)
    if row.status != VersionStatus.READY:
        raise Conflict(
            f"version {version} of model {model.name!r} is {row.status}: {row.status} versions are "
            "not served; call a ready version, or register this one again to serve it",
            details={"model": model.name, "version": version, "status": row.status},
        )
    return row


def missing_version(s: Session, model: ModelRow, version: int) -> NotFound:
    """The error for a version number the model does not have: deleted, or never given."""
    counter = s.get(ModelVersionCounterRow, (model.project, model.name))
    if counter is not None and isinstance(version, int) and 1 <= version <= counter.last_version:
        return NotFound(
            f"version {version} of model {model.name!r} was deleted; version numbers are never "
            f"reused (the highest given is {counter.last_version})",
            details={"model": model.name, "version": version, "status": "deleted"},
        )
    return NotFound(
        f"model {model.name!r} has no version {version}",
        details={"model": model.name, "version": version},
    )


def _resolve(model: ModelRow, ref: VersionRef) -> int:
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref
    if isinstance(ref, str) and ref.isdigit():
        return int(ref)
    if ref == "latest":
        if not model.versions:
            raise NotFound(f"model {model.name!r} has no versions yet", details={"model": model.name})
        return model.versions[-1].version
    for alias in model.aliases:
        if alias.name == ref:
            return alias.version
    raise NotFound(
        f"model {model.name!r} has no version or alias {ref!r}",
        details={"model": model.name, "version": ref},
    )


def _refuse_if_deployed(s: Session, model: ModelRow, version: int, action: str) -> None:
    """A version is in use while a deployment sends it requests: as its target, as a
    weighted traffic route or as its shadow, named by number or by an alias on it."""
    aliases = {a.name for a in model.aliases if a.version == version}
    used = sorted(
        d.name for d in model_deployments(s, model.id) if version in d.versions or aliases & d.aliases
    )
    if used:
        raise Conflict(
            f"cannot {action} version {version} of {model.name!r}: deployments {used} serve it "
            "(as their target, a traffic route or their shadow)",
            details={"model": model.name, "version": version, "deployments": used},
        )


def _check_routes_after_move(s: Session, model: ModelRow, alias: str, version: int) -> None:
    """Refuse an alias move that would leave a deployment with routes taking different inputs.

    A deployment checks at creation that its canary and shadow routes accept the primary's
    requests; a route that follows an alias must keep doing so when the alias moves.
    """
    pointing = {a.name: a.version for a in model.aliases} | {alias: version}
    for deployment in model_deployments(s, model.id):
        refs = deployment.refs
        if not any(r.get("alias") == alias for r in refs):
            continue
        numbers = [
            r["version"] if r.get("version") is not None else pointing.get(r.get("alias", "")) for r in refs
        ]
        if any(n is None for n in numbers):
            continue  # a route whose alias is gone is reported by the inference server
        rows = [version_row(s, model, n) for n in numbers if n is not None]
        primary = rows[0]
        for route in rows[1:]:
            if _inputs(route) != _inputs(primary):
                raise Conflict(
                    f"moving alias {alias!r} of {model.name!r} to version {version} would leave deployment "
                    f"{deployment.name!r} with routes that take different inputs: version {route.version} "
                    f"takes {_inputs(route)}, its primary (version {primary.version}) takes "
                    f"{_inputs(primary)}; change the deployment's routes first",
                    details={"model": model.name, "alias": alias, "deployment": deployment.name},
                )


def _inputs(row: ModelVersionRow) -> list[Any]:
    return list((row.signature or {}).get("inputs") or [])


def _next_number(s: Session, model: ModelRow) -> int:
    """The next version number of ``model``, recorded as given; call with the model row locked."""
    counter = s.get(ModelVersionCounterRow, (model.project, model.name))
    existing = s.scalar(select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == model.id))
    number = max(counter.last_version if counter is not None else 0, existing or 0) + 1
    if counter is None:
        s.add(ModelVersionCounterRow(project=model.project, model=model.name, last_version=number))
    else:
        counter.last_version = number
    return number


def _aliases_by_version(model: ModelRow) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = {}
    for a in model.aliases:
        out.setdefault(a.version, []).append(a.name)
    return {k: tuple(v) for k, v in out.items()}


def _model(row: ModelRow) -> Model:
    return Model(
        name=row.name,
        description=readable_text(row.description),
        tags=readable_json(dict(row.tags or {})),
        created_at=row.created_at,
        updated_at=row.updated_at,
        latest_version=row.versions[-1].version if row.versions else None,
        aliases={a.name: a.version for a in row.aliases},
    )


def _version(row: ModelVersionRow, model: str, aliases: tuple[str, ...]) -> ModelVersion:
    return ModelVersion(
        model=model,
        version=row.version,
        status=VersionStatus(row.status),
        flavor=row.flavor,
        artifact_digest=row.artifact_digest,
        artifact_size_bytes=row.artifact_size_bytes,
        signature=dict(row.signature),
        example=dict(row.example),
        metrics=readable_json(dict(row.metrics or {})),
        params=readable_json(dict(row.params or {})),
        description=readable_text(row.description),
        source=readable_text(row.source),
        parent_version=row.parent_version,
        created_at=row.created_at,
        aliases=aliases,
        lineage=readable_json(dict(row.lineage)) if row.lineage is not None else None,
    )


def _alias(row: AliasRow, model: str) -> Alias:
    return Alias(
        model=model,
        name=row.name,
        version=row.version,
        previous_version=row.previous_version,
        updated_at=row.updated_at,
    )
