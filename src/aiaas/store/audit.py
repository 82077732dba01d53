"""The audit log's rows: appending under one lock, reading in order, searching.

The chain is only a chain if each entry is appended after the one it names as its
predecessor, so appenders must never read the same last entry. Every append therefore starts
with ``UPDATE audit_head SET seq = seq + 1``: on PostgreSQL the row lock holds any other
appender at that statement until this transaction ends (and it then reads the new head); on
SQLite the update takes the database's write lock first, so no appender works from a snapshot
another has since moved past (reading first and writing second would fail with
``SQLITE_BUSY_SNAPSHOT`` under WAL). One statement, the same on both back ends, no advisory
locks; and the sequence has no gaps, because a rolled-back append rolls back its head update.

The hashes themselves are the security domain's business (:mod:`aiaas.security.audit`): the
repository takes a ``seal`` function that hashes the entry it is about to insert.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from aiaas.entities.audit import AuditEntry
from aiaas.errors import Conflict, Unavailable
from aiaas.store.database import Database
from aiaas.store.tables import AuditHeadRow, AuditRow, utcnow

__all__ = ["AuditStore"]

_HEAD_ID = 1


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        resource=row.resource,
        outcome=row.outcome,
        remote=row.remote,
        project=row.project,
        # Anything but an object here was put there by hand: kept (so it fails its hash), not raised.
        details=row.details if isinstance(row.details, dict) else {"(not an object)": row.details},
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditStore:
    """Append audit entries in one chain and read them back.

    Args:
        db: the metadata database (migrated to 0014 or later).
        clock: the time an entry is stamped with (tests pass their own).
    """

    def __init__(self, db: Database, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def append(self, draft: AuditEntry, seal: Callable[[AuditEntry], str]) -> AuditEntry:
        """Append ``draft`` after the current last entry, in one transaction.

        Args:
            draft: the entry's facts; its ``seq``, ``at``, ``prev_hash`` and ``hash`` are set here.
            seal: the hash of an entry whose other fields are all set.

        Returns:
            The entry as stored.

        Raises:
            Unavailable: the head row is gone (the log was tampered with; ``aiaas audit verify``).
            Conflict: the head is behind the entries (likewise).
        """
        try:
            with self.db.transaction() as s:
                moved = s.execute(
                    update(AuditHeadRow).where(AuditHeadRow.id == _HEAD_ID).values(seq=AuditHeadRow.seq + 1)
                )
                if int(getattr(moved, "rowcount", 0) or 0) != 1:
                    raise Unavailable(
                        "the audit log's head row is missing, so no entry can be appended: the "
                        "table audit_head was altered; run 'aiaas audit verify'",
                        details={"table": "audit_head"},
                    )
                seq, prev = s.execute(
                    select(AuditHeadRow.seq, AuditHeadRow.hash).where(AuditHeadRow.id == _HEAD_ID)
                ).one()
                entry = dataclasses.replace(draft, seq=int(seq), at=self.clock(), prev_hash=prev, hash="")
                entry = dataclasses.replace(entry, hash=seal(entry))
                s.add(
                    AuditRow(
                        seq=entry.seq,
                        at=entry.at,
                        actor=entry.actor,
                        action=entry.action,
                        resource=entry.resource,
                        outcome=entry.outcome,
                        remote=entry.remote,
                        project=entry.project,
                        details=entry.details,
                        prev_hash=entry.prev_hash,
                        hash=entry.hash,
                    )
                )
                s.flush()
                s.execute(update(AuditHeadRow).where(AuditHeadRow.id == _HEAD_ID).values(hash=entry.hash))
        except IntegrityError:
            raise Conflict(
                "the audit log's head is behind its entries (an entry with the next sequence number "
                "exists already): the table audit_head was altered; run 'aiaas audit verify'",
                details={"table": "audit_head"},
            ) from None
        return entry

    def head(self) -> tuple[int, str] | None:
        """The last sequence number and hash appended, per the head row; ``None`` if it is gone."""
        with self.db.transaction() as s:
            row = s.execute(
                select(AuditHeadRow.seq, AuditHeadRow.hash).where(AuditHeadRow.id == _HEAD_ID)
            ).one_or_none()
        return None if row is None else (int(row[0]), str(row[1]))

    def entries(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Entries with a sequence number above ``after``, in order, at most ``limit``."""
        with self.db.transaction() as s:
            rows = s.scalars(select(AuditRow).where(AuditRow.seq > after).order_by(AuditRow.seq).limit(limit))
            return [_entry(r) for r in rows]

    def seq_of_hash(self, digest: str) -> int | None:
        """The sequence number of the entry whose ``hash`` is ``digest``, if one is."""
        with self.db.transaction() as s:
            found = s.scalar(select(AuditRow.seq).where(AuditRow.hash == digest).limit(1))
        return None if found is None else int(found)

    def search(
        self,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        project: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries after sequence number ``after``, oldest first, that match every filter given.

        Args:
            start, end: ``at`` in ``[start, end)``.
            actor, action, project: equal to these.
            after: the page's cursor (the last ``seq`` of the page before).
            limit: the most entries.
        """
        query = select(AuditRow).where(AuditRow.seq > after)
        if start is not None:
            query = query.where(AuditRow.at >= start)
        if end is not None:
            query = query.where(AuditRow.at < end)
        if actor is not None:
            query = query.where(AuditRow.actor == actor)
        if action is not None:
            query = query.where(AuditRow.action == action)
        if project is not None:
            query = query.where(AuditRow.project == project)
        with self.db.transaction() as s:
            return [_entry(r) for r in s.scalars(query.order_by(AuditRow.seq).limit(limit))]
