"""Named leases in the database: which one of several processes does a singleton's work.

The control plane may run as several API workers, each with the same background loops; the
alert evaluator must run in one only, or each transition would be written and sent once per
worker. A lease is a row (name, holder, expiry) taken or renewed with one conditional
``UPDATE ... WHERE holder = me OR expires_at < now`` (atomic on SQLite and PostgreSQL alike),
so of any number of contenders exactly one holds it; a holder that dies loses it when it
expires, one that stops cleanly releases it at once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from aiaas.store.database import Database
from aiaas.store.tables import LeaseRow, utcnow

__all__ = ["LeaseStore"]


class LeaseStore:
    """Take, renew and release named leases."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def acquire(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew lease ``name`` for ``holder`` for ``ttl_s`` seconds; False if another holds it."""
        now = utcnow()
        expires = now + dt.timedelta(seconds=ttl_s)
        with self.db.transaction() as s:
            result = s.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, or_(LeaseRow.holder == holder, LeaseRow.expires_at < now))
                .values(holder=holder, expires_at=expires)
            )
            if int(getattr(result, "rowcount", 0) or 0) == 1:
                return True
        try:
            with self.db.transaction() as s:
                if s.get(LeaseRow, name) is not None:
                    return False
                s.add(LeaseRow(name=name, holder=holder, expires_at=expires))
            return True
        except IntegrityError:  # another process made it first
            return False

    def release(self, name: str, holder: str) -> None:
        """Give the lease up now, if ``holder`` has it."""
        with self.db.transaction() as s:
            s.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))
