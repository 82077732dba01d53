"""The model registry: models, immutable versions, aliases (rollback), lineage, compare."""

from __future__ import annotations

from aiaas.entities.registry import Alias, Comparison, Model, ModelVersion, OutputAgreement
from aiaas.registry.names import check_alias_name, check_name
from aiaas.registry.service import Registry, VersionRef

__all__ = [
    "Alias",
    "Comparison",
    "Model",
    "ModelVersion",
    "OutputAgreement",
    "Registry",
    "VersionRef",
    "check_alias_name",
    "check_name",
]
