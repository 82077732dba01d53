"""Metadata database and artifact storage: the platform's only durable state."""

from __future__ import annotations

from aiaas.store.artifacts import ArtifactStore, FileArtifactStore, open_artifact_store
from aiaas.store.database import Database
from aiaas.store.names import check_name
from aiaas.store.queries import model_row
from aiaas.store.tables import (
    AliasRow,
    Base,
    DatasetRow,
    DatasetVersionRow,
    DeploymentRow,
    ModelRow,
    ModelVersionRow,
    StateRevisionRow,
    TrainingJobLogRow,
    TrainingJobMetricRow,
    TrainingJobRow,
    utcnow,
)

__all__ = [
    "AliasRow",
    "ArtifactStore",
    "Base",
    "Database",
    "DatasetRow",
    "DatasetVersionRow",
    "DeploymentRow",
    "FileArtifactStore",
    "ModelRow",
    "ModelVersionRow",
    "StateRevisionRow",
    "TrainingJobLogRow",
    "TrainingJobMetricRow",
    "TrainingJobRow",
    "check_name",
    "model_row",
    "open_artifact_store",
    "utcnow",
]
