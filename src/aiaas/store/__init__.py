"""Metadata database and artifact storage: the platform's only durable state."""

from __future__ import annotations

from aiaas.store.artifacts import ArtifactStore, Blob, FileArtifactStore, open_artifact_store
from aiaas.store.database import Database
from aiaas.store.gc import DEFAULT_GC_GRACE_S, GarbageReport, collect_garbage, referenced_digests
from aiaas.store.limits import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    MAX_LINEAGE_BYTES,
    MAX_TEXT_CHARS,
    check_json,
    check_text,
    readable_json,
    readable_text,
)
from aiaas.store.names import check_name
from aiaas.store.queries import model_row
from aiaas.store.tables import (
    AliasRow,
    Base,
    DatasetRow,
    DatasetVersionRow,
    DeploymentRow,
    DeploymentStatusRow,
    DriftCountRow,
    DriftReferenceRow,
    FeedbackRow,
    ModelRow,
    ModelVersionCounterRow,
    ModelVersionRow,
    ScalingEventRow,
    StateRevisionRow,
    TrainingJobLogRow,
    TrainingJobMetricRow,
    TrainingJobRow,
    utcnow,
)

__all__ = [
    "DEFAULT_GC_GRACE_S",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_LINEAGE_BYTES",
    "MAX_TEXT_CHARS",
    "AliasRow",
    "ArtifactStore",
    "Base",
    "Blob",
    "Database",
    "DatasetRow",
    "DatasetVersionRow",
    "DeploymentRow",
    "DeploymentStatusRow",
    "DriftCountRow",
    "DriftReferenceRow",
    "FeedbackRow",
    "FileArtifactStore",
    "GarbageReport",
    "ModelRow",
    "ModelVersionCounterRow",
    "ModelVersionRow",
    "ScalingEventRow",
    "StateRevisionRow",
    "TrainingJobLogRow",
    "TrainingJobMetricRow",
    "TrainingJobRow",
    "check_json",
    "check_name",
    "check_text",
    "collect_garbage",
    "model_row",
    "open_artifact_store",
    "readable_json",
    "readable_text",
    "referenced_digests",
    "utcnow",
]
