"""Security: the hash-chained audit log (and, beside it, keys, roles and projects).

Only the package root is imported by other packages; see :mod:`aiaas.security.audit`.
"""

from __future__ import annotations

from aiaas.entities.audit import GENESIS_HASH, AuditBreak, AuditEntry, BreakReason
from aiaas.security.audit import (
    ACTION_AUTHENTICATE,
    ANONYMOUS,
    FIELD_LIMITS,
    AuditLog,
    canonical_json,
    entry_hash,
)

__all__ = [
    "ACTION_AUTHENTICATE",
    "ANONYMOUS",
    "FIELD_LIMITS",
    "GENESIS_HASH",
    "AuditBreak",
    "AuditEntry",
    "AuditLog",
    "BreakReason",
    "canonical_json",
    "entry_hash",
]
