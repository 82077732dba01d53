"""Authentication and authorization: API keys, their cache, the first admin key, role rules.

Authentication is on by default (``AIAAS_AUTH``). Keys (:mod:`.keys`) are random, shown once
and stored hashed (:mod:`aiaas.store.keys`); each server checks them against an in-memory
:class:`KeyCache` refreshed from the database, so the inference server never calls the
control plane or the database per request. :mod:`.bootstrap` makes the first admin key;
:mod:`.access` holds the role rules; :class:`KeyService` makes, lists and revokes keys;
:mod:`.audit` keeps the hash-chained audit log of every change and authentication failure.
"""

from __future__ import annotations

from aiaas.entities.audit import GENESIS_HASH, AuditBreak, AuditEntry, BreakReason
from aiaas.entities.security import ANONYMOUS, ApiKey, Principal, Role
from aiaas.security.access import READ_METHODS, control_plane_refusal, inference_refusal
from aiaas.security.audit import (
    ACTION_AUTHENTICATE,
    FIELD_LIMITS,
    AuditLog,
    canonical_json,
    entry_hash,
)
from aiaas.security.bootstrap import ADMIN_KEY_NAME, ensure_admin_key, read_key_file, write_key_file
from aiaas.security.cache import KeyCache
from aiaas.security.failures import FailureRecorder
from aiaas.security.keys import KEY_PREFIX, NewKey, bearer_token, generate_key, hash_key, key_id_of
from aiaas.security.service import KeyService

__all__ = [
    "ACTION_AUTHENTICATE",
    "ADMIN_KEY_NAME",
    "ANONYMOUS",
    "FIELD_LIMITS",
    "GENESIS_HASH",
    "KEY_PREFIX",
    "READ_METHODS",
    "ApiKey",
    "AuditBreak",
    "AuditEntry",
    "AuditLog",
    "BreakReason",
    "FailureRecorder",
    "KeyCache",
    "KeyService",
    "NewKey",
    "Principal",
    "Role",
    "bearer_token",
    "canonical_json",
    "control_plane_refusal",
    "ensure_admin_key",
    "entry_hash",
    "generate_key",
    "hash_key",
    "inference_refusal",
    "key_id_of",
    "read_key_file",
    "write_key_file",
]
