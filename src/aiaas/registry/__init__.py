"""The model registry: models, immutable versions, aliases (rollback), lineage, compare."""

from __future__ import annotations

from aiaas.entities.registry import Alias, Comparison, Model, ModelVersion, OutputAgreement
from aiaas.registry.names import check_alias_name, check_name
from aiaas.registry.references import (
    Layout,
    ReferenceStore,
    StoredReference,
    build_reference,
    check_reference_dataset,
    dataset_reference,
    record_reference,
    sample_rows,
    store_training_reference,
)
from aiaas.registry.service import Registry, VersionRef

__all__ = [
    "Alias",
    "Comparison",
    "Layout",
    "Model",
    "ModelVersion",
    "OutputAgreement",
    "ReferenceStore",
    "Registry",
    "StoredReference",
    "VersionRef",
    "build_reference",
    "check_alias_name",
    "check_name",
    "check_reference_dataset",
    "dataset_reference",
    "record_reference",
    "sample_rows",
    "store_training_reference",
]
