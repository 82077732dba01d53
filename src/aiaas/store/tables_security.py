"""The security tables: API keys and the hash-chained audit log (kept apart from
:mod:`aiaas.store.tables` to keep each module short; re-exported there).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from aiaas.store.tables import Base, UTCDateTime, utcnow

__all__ = ["ApiKeyRow", "AuditHeadRow", "AuditRow"]


class AuditRow(Base):
    """One entry of the hash-chained audit log (migration 0014); see :mod:`aiaas.security.audit`."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(256), index=True)
    action: Mapped[str] = mapped_column(String(256), index=True)
    resource: Mapped[str] = mapped_column(String(1024))
    outcome: Mapped[str] = mapped_column(String(64))
    remote: Mapped[str | None] = mapped_column(String(128), nullable=True)
    project: Mapped[str | None] = mapped_column(String(128), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHeadRow(Base):
    """The audit log's last sequence number and hash, one row (migration 0014).

    Every append updates it first: the update is what serialises appenders (a row lock on
    PostgreSQL, the write lock on SQLite), and ``verify`` compares it with the last entry to
    see entries deleted from the end.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ApiKeyRow(Base):
    """An API key (migration 0012): its public id and the SHA-256 of the whole key, never the key."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(64))
    last4: Mapped[str] = mapped_column(String(4))
    role: Mapped[str] = mapped_column(String(16))
    project: Mapped[str | None] = mapped_column(String(128), nullable=True)
    deployments: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The key's own request rate on the inference server (migration 0018); NULL: the default.
    rate_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    rate_burst: Mapped[int | None] = mapped_column(Integer, nullable=True)
