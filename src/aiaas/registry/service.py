"""The model registry: models, immutable numbered versions, movable aliases, compare.

Every state change is one transaction. Moving an alias bumps the serving revision in the
same transaction, which is how the inference server learns that what ``production``
means has changed; moving it back is a rollback.

Version numbers are never reused. A new version takes the number after the highest one
the model's *name* was ever given (``model_version_counters``), not after the highest one
that exists now: numbered ``max + 1``, deleting the newest version freed its number, the
next registration took it, and clients pinned to ``/versions/3`` were answered by another
model. A deleted number stays retired, even when the whole model is deleted and its name
used again, and asking for it says so.

Free-form fields (tags, metrics, params, lineage, descriptions) are checked against the
limits of :mod:`aiaas.store.limits` before anything is written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiaas.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from aiaas.formats import (
    FOLDER_FLAVORS,
    FolderPackage,
    Manifest,
    ModelPackage,
    OnnxModel,
    decode_tensors,
    encode_tensors,
)
from aiaas.registry.entities import Alias, Comparison, Model, ModelVersion, OutputAgreement
from aiaas.registry.names import check_alias_name, check_name
from aiaas.store import (
    MAX_LINEAGE_BYTES,
    AliasRow,
    ArtifactStore,
    Database,
    DeploymentRow,
    ModelRow,
    ModelVersionCounterRow,
    ModelVersionRow,
    check_json,
    check_text,
    model_row,
    readable_json,
    readable_text,
    utcnow,
)

__all__ = ["Registry", "VersionRef"]

#: A version number, an alias name, or ``"latest"``.
VersionRef = int | str

_MAX_REGISTER_RETRIES = 5


class Registry:
    """Models and their versions, backed by the metadata DB and the artifact store.

    Example:
        >>> registry = Registry(db, artifacts)  # doctest: +SKIP
        >>> v = registry.register_version("iris", package_model(clf, X[:3]))  # doctest: +SKIP
        >>> registry.set_alias("iris", "production", v.version)  # doctest: +SKIP
    """

    def __init__(self, db: Database, artifacts: ArtifactStore) -> None:
        self.db = db
        self.artifacts = artifacts

    # -- models --------------------------------------------------------------------------

    def create_model(self, name: str, *, description: str = "", tags: dict[str, Any] | None = None) -> Model:
        check_name(name)
        check_text(description, "description")
        _check_json_dict(tags, "tags")
        exists = AlreadyExists(f"model {name!r} already exists", details={"model": name})
        try:
            with self.db.transaction() as s:
                if s.scalar(select(ModelRow.id).where(ModelRow.name == name)) is not None:
                    raise exists
                row = ModelRow(name=name, description=description, tags=dict(tags or {}))
                s.add(row)
                s.flush()
                return _model(row)
        except IntegrityError:  # created by a concurrent request between the check and the insert
            raise exists from None

    def get_model(self, name: str) -> Model:
        with self.db.transaction() as s:
            return _model(model_row(s, name))

    def list_models(self) -> list[Model]:
        with self.db.transaction() as s:
            rows = s.scalars(select(ModelRow).order_by(ModelRow.name)).all()
            return [_model(r) for r in rows]

    def update_model(
        self, name: str, *, description: str | None = None, tags: dict[str, Any] | None = None
    ) -> Model:
        check_text(description, "description")
        _check_json_dict(tags, "tags")
        with self.db.transaction() as s:
            row = model_row(s, name)
            if description is not None:
                row.description = description
            if tags is not None:
                row.tags = dict(tags)
            row.updated_at = utcnow()
            s.flush()
            return _model(row)

    def delete_model(self, name: str) -> None:
        """Delete a model and all its versions, unless a deployment serves it."""
        with self.db.transaction() as s:
            row = model_row(s, name)
            used = s.scalars(select(DeploymentRow.name).where(DeploymentRow.model_id == row.id)).all()
            if used:
                raise Conflict(
                    f"model {name!r} is served by deployments {sorted(used)}; delete them first",
                    details={"model": name, "deployments": sorted(used)},
                )
            s.delete(row)

    # -- versions ------------------------------------------------------------------------

    def register_version(
        self,
        name: str,
        package: ModelPackage | FolderPackage,
        *,
        metrics: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        description: str = "",
        source: str = "",
        parent_version: int | None = None,
        lineage: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Store the artifact, then record the next version number (creating the model).

        The artifact is written first: should the process die between the two steps, an
        unreferenced blob is left behind (collected by ``aiaas gc``), never a version
        without its artifact. The number is the one after the highest this model name was
        ever given, so it is never a deleted version's number. A model folder
        (:class:`~aiaas.formats.FolderPackage`) is stored as one blob per file and a manifest
        naming them, written last; the manifest's digest is the version's.
        """
        check_name(name)
        _check_json_dict(metrics, "metrics")
        _check_json_dict(params, "params")
        _check_json_dict(lineage, "lineage", max_bytes=MAX_LINEAGE_BYTES)
        check_text(description, "description")
        check_text(source, "source")
        package.check()
        digest, size = self._store_artifact(package)
        example = encode_tensors(package.example)
        for _ in range(_MAX_REGISTER_RETRIES):
            try:
                with self.db.transaction() as s:
                    model = s.scalar(select(ModelRow).where(ModelRow.name == name))
                    if model is None:
                        model = ModelRow(name=name, description="", tags={})
                        s.add(model)
                        s.flush()
                    # Writing the model row first takes its lock (a row lock on PostgreSQL,
                    # the write lock on SQLite), so concurrent registrations of one model
                    # read the highest number one after another instead of racing for it.
                    model.updated_at = utcnow()
                    s.flush()
                    if parent_version is not None:
                        self._version_row(s, model, parent_version)
                    number = _next_number(s, model)
                    row = ModelVersionRow(
                        model_id=model.id,
                        version=number,
                        status="ready",
                        flavor=package.flavor,
                        artifact_digest=digest,
                        artifact_size_bytes=size,
                        signature=package.signature.to_dict(),
                        example={"inputs": example},
                        metrics=dict(metrics or {}),
                        params=dict(params or {}),
                        description=description,
                        source=source,
                        parent_version=parent_version,
                        lineage=lineage,
                    )
                    s.add(row)
                    s.flush()
                    return _version(row, name, ())
            except IntegrityError:
                continue  # another writer took this number (or created the model): retry
        raise Conflict(f"could not allocate a version number for {name!r}; try again")

    def _store_artifact(self, package: ModelPackage | FolderPackage) -> tuple[str, int]:
        """Write the package's blobs; its digest and size in bytes."""
        if isinstance(package, FolderPackage):
            for data in package.files.values():
                self.artifacts.put(data)
            manifest = package.manifest()
            return self.artifacts.put(manifest.to_bytes()), manifest.size_bytes
        return self.artifacts.put(package.onnx), len(package.onnx)

    def load_files(self, version: ModelVersion) -> dict[str, bytes]:
        """The files of a folder version by relative path, each verified against its SHA-256.

        Raises:
            InvalidArgument: the version is a single ONNX artifact (use :meth:`load_artifact`).
        """
        if version.flavor not in FOLDER_FLAVORS:
            raise InvalidArgument(
                f"version {version.version} of {version.model!r} is one {version.flavor} artifact, "
                "not a folder of files; download it with load_artifact",
                details={"field": "version", "flavor": version.flavor},
            )
        manifest = Manifest.from_bytes(self.artifacts.get(version.artifact_digest))
        return {path: self.artifacts.get(digest) for path, (digest, _) in manifest.files.items()}

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.db.transaction() as s:
            model = model_row(s, name)
            aliases = _aliases_by_version(model)
            return [_version(v, name, aliases.get(v.version, ())) for v in model.versions]

    def get_version(self, name: str, ref: VersionRef) -> ModelVersion:
        """A version by number, alias or ``"latest"``."""
        with self.db.transaction() as s:
            model = model_row(s, name)
            row = self._version_row(s, model, self._resolve(model, ref))
            return _version(row, name, _aliases_by_version(model).get(row.version, ()))

    def load_artifact(self, version: ModelVersion) -> bytes:
        """The version's ONNX bytes (a folder version's manifest), verified against their SHA-256."""
        return self.artifacts.get(version.artifact_digest)

    def archive_version(self, name: str, version: int) -> ModelVersion:
        with self.db.transaction() as s:
            model = model_row(s, name)
            row = self._version_row(s, model, version)
            self._refuse_if_deployed(s, model, version, "archive")
            row.status = "archived"
            s.flush()
            return _version(row, name, _aliases_by_version(model).get(version, ()))

    def delete_version(self, name: str, version: int) -> None:
        with self.db.transaction() as s:
            model = model_row(s, name)
            row = self._version_row(s, model, version)
            self._refuse_if_deployed(s, model, version, "delete")
            pointing = [a.name for a in model.aliases if a.version == version]
            if pointing:
                raise Conflict(
                    f"version {version} of {name!r} is the target of aliases {pointing}; move them first",
                    details={"model": name, "version": version, "aliases": pointing},
                )
            s.delete(row)

    # -- aliases -------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> Alias:
        """Point ``alias`` at ``version``; deployments following the alias switch to it."""
        check_alias_name(alias)
        with self.db.transaction() as s:
            model = model_row(s, name)
            target = self._version_row(s, model, version)
            if target.status != "ready":
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
            return [_alias(a, name) for a in model_row(s, name).aliases]

    def delete_alias(self, name: str, alias: str) -> None:
        with self.db.transaction() as s:
            model = model_row(s, name)
            row = next((a for a in model.aliases if a.name == alias), None)
            if row is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}", details={"alias": alias})
            used = sorted(d.name for d in _model_deployments(s, model) if alias in _deployment_refs(d)[1])
            if used:
                raise Conflict(
                    f"alias {alias!r} is followed by deployments {used} (as their target, a traffic "
                    "route or their shadow); change them first",
                    details={"alias": alias, "deployments": used},
                )
            s.delete(row)
            self.db.bump_revision(s)

    # -- compare -------------------------------------------------------------------------

    def compare(self, name: str, a: VersionRef, b: VersionRef) -> Comparison:
        """Metrics, parameters, signature and size of two versions, and how far their
        predictions agree on the stored input example (the first version's, else the second's)."""
        va, vb = self.get_version(name, a), self.get_version(name, b)
        same_signature = va.signature == vb.signature
        agreement: list[OutputAgreement] = []
        rows = 0
        example = va.example.get("inputs") or vb.example.get("inputs")
        if same_signature and example:
            inputs = decode_tensors(example, field="example")
            rows = int(next(iter(inputs.values())).shape[0]) if inputs else 0
            out_a = OnnxModel(self.load_artifact(va)).run(inputs)
            out_b = OnnxModel(self.load_artifact(vb)).run(inputs)
            agreement = [_agreement(k, out_a[k], out_b[k]) for k in out_a]
        return Comparison(
            model=name,
            a=va,
            b=vb,
            metrics=_side_by_side(va.metrics, vb.metrics),
            params=_side_by_side(va.params, vb.params),
            same_signature=same_signature,
            size_ratio=vb.artifact_size_bytes / max(va.artifact_size_bytes, 1),
            agreement=agreement,
            example_rows=rows,
            feature_importance=_side_by_side(_importances(va), _importances(vb)),
        )

    # -- helpers -------------------------------------------------------------------------

    def resolve_version(self, name: str, ref: VersionRef) -> int:
        with self.db.transaction() as s:
            return self._resolve(model_row(s, name), ref)

    @staticmethod
    def _version_row(s: Session, model: ModelRow, version: int) -> ModelVersionRow:
        row = s.scalar(
            select(ModelVersionRow).where(
                ModelVersionRow.model_id == model.id, ModelVersionRow.version == version
            )
        )
        if row is None:
            raise missing_version(s, model, version)
        return row

    @staticmethod
    def servable_row(s: Session, model: ModelRow, version: int) -> ModelVersionRow:
        """The row of a version that may answer requests addressed to it by number.

        What ``/v2/models/{deployment}/versions/{n}`` serves: a ready version. An archived
        one is refused (409, naming the state), a deleted one is reported as deleted (404).

        Raises:
            NotFound: no such version (the message says when it was deleted).
            Conflict: the version is archived.
        """
        row = Registry._version_row(s, model, version)
        if row.status != "ready":
            raise Conflict(
                f"version {version} of model {model.name!r} is {row.status}: {row.status} versions are "
                "not served; call a ready version, or register this one again to serve it",
                details={"model": model.name, "version": version, "status": row.status},
            )
        return row

    @staticmethod
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

    @staticmethod
    def _refuse_if_deployed(s: Session, model: ModelRow, version: int, action: str) -> None:
        """A version is in use while a deployment sends it requests: as its target, as a
        weighted traffic route or as its shadow, named by number or by an alias on it."""
        aliases = {a.name for a in model.aliases if a.version == version}
        used = []
        for d in _model_deployments(s, model):
            versions, names = _deployment_refs(d)
            if version in versions or aliases & names:
                used.append(d.name)
        if used:
            raise Conflict(
                f"cannot {action} version {version} of {model.name!r}: deployments {sorted(used)} serve it "
                "(as their target, a traffic route or their shadow)",
                details={"model": model.name, "version": version, "deployments": sorted(used)},
            )


def _model_deployments(s: Session, model: ModelRow) -> list[DeploymentRow]:
    return list(s.scalars(select(DeploymentRow).where(DeploymentRow.model_id == model.id)).all())


def _route_refs(row: DeploymentRow) -> list[dict[str, Any]]:
    """A deployment's routes, primary first: each ``{"version": n}`` or ``{"alias": name}``."""
    refs: list[Any] = [{"version": row.version, "alias": row.alias}, *(row.traffic or [])]
    if row.shadow:
        refs.append(row.shadow)
    return [r for r in refs if isinstance(r, dict)]


def _check_routes_after_move(s: Session, model: ModelRow, alias: str, version: int) -> None:
    """Refuse an alias move that would leave a deployment with routes taking different inputs.

    A deployment checks at creation that its canary and shadow routes accept the primary's
    requests; a route that follows an alias must keep doing so when the alias moves.
    """
    pointing = {a.name: a.version for a in model.aliases} | {alias: version}
    for deployment in _model_deployments(s, model):
        refs = _route_refs(deployment)
        if not any(r.get("alias") == alias for r in refs):
            continue
        numbers = [
            r["version"] if r.get("version") is not None else pointing.get(r.get("alias", "")) for r in refs
        ]
        if any(n is None for n in numbers):
            continue  # a route whose alias is gone is reported by the inference server
        rows = [Registry._version_row(s, model, n) for n in numbers if n is not None]
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


def _deployment_refs(row: DeploymentRow) -> tuple[set[int], set[str]]:
    """The version numbers and alias names a deployment sends requests to.

    Traffic routes and the shadow live in JSON columns, which SQLite and PostgreSQL query
    differently; a model has few deployments, so they are read and looked at here instead.
    """
    refs = _route_refs(row)
    versions = {r["version"] for r in refs if r.get("version") is not None}
    names = {r["alias"] for r in refs if r.get("alias") is not None}
    return versions, names


def missing_version(s: Session, model: ModelRow, version: int) -> NotFound:
    """The error for a version number the model does not have: deleted, or never given."""
    counter = s.get(ModelVersionCounterRow, model.name)
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


def _next_number(s: Session, model: ModelRow) -> int:
    """The next version number of ``model``, recorded as given; call with the model row locked."""
    counter = s.get(ModelVersionCounterRow, model.name)
    existing = s.scalar(select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == model.id))
    number = max(counter.last_version if counter is not None else 0, existing or 0) + 1
    if counter is None:
        s.add(ModelVersionCounterRow(model=model.name, last_version=number))
    else:
        counter.last_version = number
    return number


def _check_json_dict(value: Any, field: str, *, max_bytes: int | None = None) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"{field} must be an object of name → value; got {type(value).__name__}",
            details={"field": field},
        )
    if max_bytes is None:
        check_json(value, field)
    else:
        check_json(value, field, max_bytes=max_bytes)


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
        status=row.status,
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


def _importances(version: ModelVersion) -> dict[str, Any]:
    """The permutation importance a training job stored with ``version`` (feature → score drop)."""
    stored = (version.lineage or {}).get("feature_importance") or {}
    importances = stored.get("importances") if isinstance(stored, dict) else None
    return dict(importances) if isinstance(importances, dict) else {}


def _side_by_side(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        entry: dict[str, Any] = {"a": va, "b": vb}
        if isinstance(va, int | float) and isinstance(vb, int | float) and not isinstance(va, bool):
            entry["delta"] = vb - va
        out[key] = entry
    return out


def _agreement(name: str, a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> OutputAgreement:
    if a.shape != b.shape:
        return OutputAgreement(output=name, equal_fraction=0.0, max_abs_diff=None)
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        close = np.isclose(a, b, rtol=1e-5, atol=1e-6)
        rows = close.reshape(close.shape[0], -1).all(axis=1) if close.ndim else close
        return OutputAgreement(name, float(np.mean(rows)), float(diff.max()) if diff.size else 0.0)
    equal = a == b
    rows = equal.reshape(equal.shape[0], -1).all(axis=1) if equal.ndim else equal
    return OutputAgreement(name, float(np.mean(rows)), None)
