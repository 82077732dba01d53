"""The model registry: models, immutable numbered versions, movable aliases, compare.

Every state change is one transaction. Moving an alias bumps the serving revision in the
same transaction, which is how the inference server learns that what ``production``
means has changed; moving it back is a rollback.

Version numbers are never reused, even after a delete (see :mod:`aiaas.store.models`, the
repository that allocates them and holds every rule that needs the transaction).

Free-form fields (tags, metrics, params, lineage, descriptions) are checked against the
limits of :mod:`aiaas.store.limits` before anything is written.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aiaas.entities.projects import DEFAULT_PROJECT
from aiaas.entities.registry import Alias, Comparison, Model, ModelVersion, OutputAgreement, VersionRef
from aiaas.errors import InvalidArgument
from aiaas.formats import (
    FOLDER_FLAVORS,
    FolderPackage,
    Manifest,
    ModelPackage,
    OnnxModel,
    decode_tensors,
    encode_tensors,
)
from aiaas.registry.names import check_alias_name, check_name
from aiaas.store import MAX_LINEAGE_BYTES, ArtifactStore, Database, check_json, check_text
from aiaas.store.models import ModelStore

__all__ = ["Registry", "VersionRef"]


class Registry:
    """Models and their versions, backed by the metadata DB and the artifact store.

    The database side is the store's :class:`~aiaas.store.models.ModelStore`; what is
    checked here is what needs no transaction: names, the limits of free-form fields, the
    package itself, and the artifact, written before its version is recorded.

    Example:
        >>> registry = Registry(db, artifacts)  # doctest: +SKIP
        >>> v = registry.register_version("iris", package_model(clf, X[:3]))  # doctest: +SKIP
        >>> registry.set_alias("iris", "production", v.version)  # doctest: +SKIP

    A registry sees the models of one ``project``; another project's are not found. With
    ``project=None`` it reads every project's models by qualified name (the inference server's).
    """

    def __init__(
        self, db: Database, artifacts: ArtifactStore, *, project: str | None = DEFAULT_PROJECT
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.project = project
        self.store = ModelStore(db, project=project)

    # -- models --------------------------------------------------------------------------

    def create_model(self, name: str, *, description: str = "", tags: dict[str, Any] | None = None) -> Model:
        check_name(name)
        check_text(description, "description")
        _check_json_dict(tags, "tags")
        return self.store.create_model(name, description=description, tags=dict(tags or {}))

    def get_model(self, name: str) -> Model:
        return self.store.get_model(name)

    def list_models(self) -> list[Model]:
        return self.store.list_models()

    def update_model(
        self, name: str, *, description: str | None = None, tags: dict[str, Any] | None = None
    ) -> Model:
        check_text(description, "description")
        _check_json_dict(tags, "tags")
        return self.store.update_model(name, description=description, tags=tags)

    def delete_model(self, name: str) -> None:
        """Delete a model and all its versions, unless a deployment serves it."""
        self.store.delete_model(name)

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
        return self.store.add_version(
            name,
            flavor=package.flavor,
            artifact_digest=digest,
            artifact_size_bytes=size,
            signature=package.signature.to_dict(),
            example={"inputs": encode_tensors(package.example)},
            metrics=dict(metrics or {}),
            params=dict(params or {}),
            description=description,
            source=source,
            parent_version=parent_version,
            lineage=lineage,
        )

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
        return self.store.list_versions(name)

    def get_version(self, name: str, ref: VersionRef) -> ModelVersion:
        """A version by number, alias or ``"latest"``."""
        return self.store.get_version(name, ref)

    def load_artifact(self, version: ModelVersion) -> bytes:
        """The version's ONNX bytes (a folder version's manifest), verified against their SHA-256."""
        return self.artifacts.get(version.artifact_digest)

    def archive_version(self, name: str, version: int) -> ModelVersion:
        return self.store.archive_version(name, version)

    def delete_version(self, name: str, version: int) -> None:
        self.store.delete_version(name, version)

    # -- aliases -------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> Alias:
        """Point ``alias`` at ``version``; deployments following the alias switch to it."""
        check_alias_name(alias)
        return self.store.set_alias(name, alias, version)

    def list_aliases(self, name: str) -> list[Alias]:
        return self.store.list_aliases(name)

    def delete_alias(self, name: str, alias: str) -> None:
        self.store.delete_alias(name, alias)

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

    def resolve_version(self, name: str, ref: VersionRef) -> int:
        return self.store.resolve_version(name, ref)


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
