"""Wire models of the audit log (``GET /api/v1/audit``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from aiaas.schemas._base import Wire

__all__ = ["AuditEntry", "AuditEntryList"]


class AuditEntry(Wire):
    """One entry of the hash-chained audit log."""

    seq: int = Field(description="Its place in the chain: 1, 2, 3... with no gaps.")
    at: dt.datetime = Field(description="When it was appended (UTC).")
    actor: str = Field(description="The key's name or id, or `anonymous`.")
    action: str = Field(
        description="`METHOD /route/{template}`, or `authenticate` for a failed authentication."
    )
    resource: str = Field(description="The request's path.")
    outcome: str = Field(description="The HTTP status of the answer.")
    remote: str | None = Field(description="The client's address.")
    project: str | None = Field(description="The project, if any.")
    details: dict[str, Any] = Field(
        description="More facts (the method; the reason of an authentication failure)."
    )
    prev_hash: str = Field(description="The hash of the entry before (64 zeros for the first).")
    hash: str = Field(description="SHA-256 of this entry's fields and `prev_hash`, over canonical JSON.")


class AuditEntryList(Wire):
    entries: list[AuditEntry]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when this page is the last."
    )
