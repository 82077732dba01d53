"""Metadata database and artifact storage: the platform's only durable state.

The rows (:mod:`aiaas.store.tables`) and the SQL stay in this package: each domain reads and
writes through its repository (:mod:`.models`, :mod:`.datasets`, :mod:`.jobs`), which hands
back the plain entities of :mod:`aiaas.entities`. An import-linter contract keeps the
domains off the rows and off SQLAlchemy.
"""

from __future__ import annotations

from aiaas.store.artifacts import ArtifactStore, Blob, FileArtifactStore, open_artifact_store
from aiaas.store.database import Database
from aiaas.store.encryption import EncryptionKey, Keyring, keyring_from_settings
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

__all__ = [
    "DEFAULT_GC_GRACE_S",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_LINEAGE_BYTES",
    "MAX_TEXT_CHARS",
    "ArtifactStore",
    "Blob",
    "Database",
    "EncryptionKey",
    "FileArtifactStore",
    "GarbageReport",
    "Keyring",
    "check_json",
    "check_name",
    "check_text",
    "collect_garbage",
    "keyring_from_settings",
    "open_artifact_store",
    "readable_json",
    "readable_text",
    "referenced_digests",
]
