"""Entries of the hash-chained audit log, and what :meth:`AuditLog.verify` reports.

An entry is what happened (who, what, to which resource, the outcome, from where, in which
project, when) plus the two hashes that chain it to the entry before it. They live here, below
the store and the security domain, so the store's repository builds the very objects the
domain hands out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["GENESIS_HASH", "AuditBreak", "AuditEntry", "BreakReason"]

#: The ``prev_hash`` of the first entry: there is no entry before it.
GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """One appended entry.

    Attributes:
        seq: its place in the chain, 1, 2, 3... with no gaps.
        at: when it was appended (UTC, microseconds).
        actor: the principal's name, or ``anonymous``.
        action: what was done, e.g. ``POST /api/v1/models/{name}/versions`` or ``authenticate``.
        resource: what it was done to, e.g. ``/api/v1/models/iris/versions``.
        outcome: the HTTP status (``201``, ``404``) or a word (``ok``, ``denied``).
        remote: the client's address, if known.
        project: the project the action was in, if any.
        details: more facts, as JSON.
        prev_hash: the ``hash`` of entry ``seq - 1`` (:data:`GENESIS_HASH` for the first).
        hash: SHA-256 of every field above, hex.
    """

    seq: int
    at: dt.datetime
    actor: str
    action: str
    resource: str
    outcome: str
    remote: str | None
    project: str | None
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    hash: str = ""


class BreakReason(StrEnum):
    """Why the chain breaks at an entry."""

    #: Its fields no longer give its hash (or it was re-hashed and the next entry says so).
    EDITED = "edited"
    #: Entries before it (or after the last one) are gone.
    MISSING = "missing"
    #: It is chained to an entry that is now elsewhere in the log.
    REORDERED = "reordered"


@dataclass(frozen=True)
class AuditBreak:
    """The first entry at which the chain does not hold.

    Attributes:
        seq: the sequence number of that entry (for missing entries at the end of the log,
            the first missing number).
        reason: edited, missing or reordered.
        message: what was found, for a person.
    """

    seq: int
    reason: BreakReason
    message: str
