"""Plain registry entities handed out by :class:`~aiaas.registry.Registry`.

They are frozen: a version, once created, never changes (only its status moves from
``ready`` to ``archived``), and callers cannot alter what they were given by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["Alias", "Comparison", "Model", "ModelVersion", "OutputAgreement", "VersionRef", "VersionStatus"]

#: A version number, an alias name, or ``"latest"``.
VersionRef = int | str


class VersionStatus(StrEnum):
    """A version's state: ``ready`` versions are served and take aliases, ``archived`` ones not."""

    READY = "ready"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class Alias:
    """A movable name (``production``, ``staging``) for one version of a model."""

    model: str
    name: str
    version: int
    previous_version: int | None
    updated_at: datetime


@dataclass(frozen=True)
class Model:
    name: str
    description: str
    tags: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    latest_version: int | None = None
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version: an ONNX artifact plus everything needed to trust it."""

    model: str
    version: int
    status: VersionStatus
    flavor: str
    artifact_digest: str
    artifact_size_bytes: int
    signature: dict[str, Any]
    example: dict[str, Any]
    metrics: dict[str, Any]
    params: dict[str, Any]
    description: str
    source: str
    parent_version: int | None
    created_at: datetime
    aliases: tuple[str, ...] = ()
    #: For trained versions: the dataset version, job, spec and reference statistics.
    lineage: dict[str, Any] | None = None


@dataclass(frozen=True)
class OutputAgreement:
    """How closely two versions agree on one output for the same input example."""

    output: str
    equal_fraction: float
    max_abs_diff: float | None


@dataclass(frozen=True)
class Comparison:
    """Two versions side by side; ``agreement`` is empty when their signatures differ or
    neither has a stored input example (``example_rows`` is then 0)."""

    model: str
    a: ModelVersion
    b: ModelVersion
    metrics: dict[str, dict[str, Any]]
    params: dict[str, dict[str, Any]]
    same_signature: bool
    size_ratio: float
    agreement: list[OutputAgreement]
    example_rows: int
    #: Feature → permutation importance in each version (``{"a", "b", "delta"}``), for trained
    #: versions that store it in their lineage; empty when neither does.
    feature_importance: dict[str, dict[str, Any]] = field(default_factory=dict)
