"""The hash-chained audit log: who did what, to what, when, from where, and how it ended.

Each entry carries the SHA-256 of its own fields and of the entry before it (``prev_hash``), so
an entry edited, deleted or moved in the database breaks the chain where it happened, and
:meth:`AuditLog.verify` names that entry. The head row (the last sequence number and hash) also
shows entries deleted from the end. What the chain cannot show is a rewrite of every entry from
some point on, hashes recomputed, by someone with write access to the database: keep an
exported copy (``aiaas audit export``) or the head hash elsewhere to catch that.

Why a canonical encoding: the hash is recomputed at verification from the values read back
from the database, long after they were written, on SQLite or PostgreSQL. The bytes hashed must
depend only on the values, never on how a JSON column hands back its keys, how a driver orders
a dict or whether the encoder escaped non-ASCII text. So the fields are hashed as one JSON
object with sorted keys, no whitespace, UTF-8 text unescaped, the time as ISO 8601 in UTC with
microseconds; and ``details`` is stored in the form it was hashed in (NaN and infinities as
null, keys as strings), so what is read back hashes to the same bytes.

Appending is serialised in the store (:class:`aiaas.store.audit.AuditStore`): two processes
appending at once each chain to the other's entry, never both to the same one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterator
from typing import IO, Any

from aiaas.entities.audit import GENESIS_HASH, AuditBreak, AuditEntry, BreakReason
from aiaas.entities.security import ANONYMOUS
from aiaas.store.audit import AuditStore

__all__ = ["ACTION_AUTHENTICATE", "ANONYMOUS", "FIELD_LIMITS", "AuditLog", "canonical_json", "entry_hash"]

#: The action of an authentication failure.
ACTION_AUTHENTICATE = "authenticate"
#: The most characters of each text field (the columns' sizes); longer values are cut to this,
#: before hashing, so an over-long path never loses its entry.
FIELD_LIMITS = {"actor": 256, "action": 256, "resource": 1024, "outcome": 64, "remote": 128, "project": 128}
#: The time of a draft entry, before the store stamps it.
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: Entries read per query by :meth:`AuditLog.verify` and :meth:`AuditLog.export`.
_PAGE = 1000


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no whitespace, non-ASCII kept, NaN as null."""
    return json.dumps(
        _finite(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def entry_hash(entry: AuditEntry) -> str:
    """The SHA-256 (hex) of every field of ``entry`` but its own hash, previous hash included."""
    fields = {
        "seq": entry.seq,
        "at": entry.at.isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "action": entry.action,
        "resource": entry.resource,
        "outcome": entry.outcome,
        "remote": entry.remote,
        "project": entry.project,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
    }
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _text(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    # PostgreSQL's text holds no NUL character; a path may decode to one.
    return str(value).replace("\x00", "\ufffd")[: FIELD_LIMITS[field]]


class AuditLog:
    """Append to, verify and export the audit log.

    Args:
        store: the repository of the entries.

    Example:
        >>> log = AuditLog(AuditStore(db))  # doctest: +SKIP
        >>> log.append("ci-key", "DELETE /api/v1/models/{name}", "/api/v1/models/iris", "204",
        ...            "10.0.0.7", "default")  # doctest: +SKIP
        >>> log.verify() is None  # doctest: +SKIP
        True
    """

    def __init__(self, store: AuditStore) -> None:
        self.store = store

    def append(
        self,
        actor: str,
        action: str,
        resource: str,
        outcome: str,
        remote: str | None,
        project: str | None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry at the end of the chain and return it (committed when this returns).

        Args:
            actor: the principal's name or key id, or ``"anonymous"``.
            action: what was done (``"POST /api/v1/deployments"``, ``"authenticate"``).
            resource: what it was done to (the request's path).
            outcome: the HTTP status as text, or a word.
            remote: the client's address, if known.
            project: the project, if any.
            details: more facts; JSON values (stored as hashed: NaN as null, keys as text).
        """
        draft = AuditEntry(
            seq=0,
            at=_EPOCH,
            actor=_text(actor, "actor") or ANONYMOUS,
            action=_text(action, "action") or "",
            resource=_text(resource, "resource") or "",
            outcome=_text(str(outcome), "outcome") or "",
            remote=_text(remote, "remote"),
            project=_text(project, "project"),
            details=json.loads(canonical_json(details or {})),
        )
        return self.store.append(draft, entry_hash)

    def authentication_failed(
        self,
        resource: str,
        remote: str | None,
        reason: str,
        *,
        method: str,
        key_id: str | None = None,
        outcome: str = "401",
        project: str | None = None,
    ) -> AuditEntry:
        """Append a failed authentication, in the shape the control plane's middleware gives it.

        For a server without that middleware (the inference server): the same action
        (``authenticate``), actor (the key id if the key was recognised, else ``anonymous``) and
        details (``method``, ``reason``). It writes to the database: a server that may be sent
        many bad keys should limit how often it calls this.
        """
        return self.append(
            key_id or ANONYMOUS,
            ACTION_AUTHENTICATE,
            resource,
            outcome,
            remote,
            project,
            {"method": method, "reason": reason},
        )

    def head(self) -> tuple[int, str] | None:
        """The number and hash of the last entry appended (``None`` if the head row is gone)."""
        return self.store.head()

    def entries(self, *, after: int = 0) -> Iterator[AuditEntry]:
        """Every entry after sequence number ``after``, in order, read a page at a time."""
        while True:
            page = self.store.entries(after=after, limit=_PAGE)
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1].seq

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
        """Entries after sequence number ``after``, oldest first, with ``at`` in ``[start, end)``
        and the ``actor``, ``action`` and ``project`` given; at most ``limit``."""
        # Filters are cut and cleaned like the values appended, so they match them (and a NUL,
        # which PostgreSQL's text cannot hold, never reaches a query).
        return self.store.search(
            start=start,
            end=end,
            actor=_text(actor, "actor"),
            action=_text(action, "action"),
            project=_text(project, "project"),
            after=after,
            limit=limit,
        )

    def verify(self) -> AuditBreak | None:
        """Check the whole chain; the first entry where it breaks, or ``None`` if it holds.

        In order, for each entry: a sequence number that skips is *missing* entries (it names
        the first entry after the gap); a ``prev_hash`` that is not the previous entry's hash is
        *reordered* when it is the hash of another entry, *edited* when this entry's own hash
        still holds (the previous entry was re-hashed) or holds with the right ``prev_hash`` (that
        field was changed), else *missing*; a hash its fields do not give is
        *edited*. Past the last entry, a head row further on is entries *missing* from the end.
        """
        previous_seq, previous_hash = 0, GENESIS_HASH
        for entry in self.entries():
            found = self._check(entry, previous_seq, previous_hash)
            if found is not None:
                return found
            previous_seq, previous_hash = entry.seq, entry.hash
        head = self.store.head()
        if head is None:
            return AuditBreak(
                previous_seq + 1, BreakReason.MISSING, "the head row (table audit_head) is missing"
            )
        head_seq, head_hash = head
        if head_seq > previous_seq:
            return AuditBreak(
                previous_seq + 1,
                BreakReason.MISSING,
                f"entries {previous_seq + 1} to {head_seq} are missing: the log ends at {previous_seq} "
                f"but {head_seq} entries were appended",
            )
        if head_seq < previous_seq or head_hash != previous_hash:
            return AuditBreak(
                previous_seq,
                BreakReason.EDITED,
                f"the last entry, {previous_seq}, is not the one last appended (the head row says "
                f"entry {head_seq} with hash {head_hash[:12]}...)",
            )
        return None

    def _check(self, entry: AuditEntry, previous_seq: int, previous_hash: str) -> AuditBreak | None:
        seq = entry.seq
        if seq != previous_seq + 1:
            gap = (
                f"entry {previous_seq + 1}"
                if seq == previous_seq + 2
                else f"entries {previous_seq + 1} to {seq - 1}"
            )
            return AuditBreak(seq, BreakReason.MISSING, f"{gap} before entry {seq} are missing")
        sealed = entry_hash(entry) == entry.hash
        if entry.prev_hash != previous_hash:
            elsewhere = self.store.seq_of_hash(entry.prev_hash)
            if elsewhere is not None and elsewhere != seq:
                return AuditBreak(
                    seq,
                    BreakReason.REORDERED,
                    f"entry {seq} was appended after the entry now numbered {elsewhere}, not after entry "
                    f"{previous_seq}",
                )
            if sealed and previous_seq > 0:
                return AuditBreak(
                    previous_seq,
                    BreakReason.EDITED,
                    f"entry {previous_seq} was changed and re-hashed: entry {seq} was appended after an "
                    f"entry {previous_seq} with another hash",
                )
            if entry_hash(dataclasses.replace(entry, prev_hash=previous_hash)) == entry.hash:
                return AuditBreak(
                    seq, BreakReason.EDITED, f"entry {seq} was edited: its prev_hash was changed"
                )
            return AuditBreak(
                seq,
                BreakReason.MISSING,
                f"entry {seq} was appended after an entry that is no longer in the log (deleted, or "
                f"entry {seq} renumbered or edited)",
            )
        if not sealed:
            return AuditBreak(
                seq, BreakReason.EDITED, f"entry {seq} was edited: its fields no longer give its hash"
            )
        return None

    def export(self, stream: IO[str]) -> int:
        """Write every entry to ``stream`` as JSON lines, oldest first; returns how many.

        Each line holds every field (the time as ISO 8601), so the chain can be verified from
        the export alone with :func:`entry_hash`.
        """
        count = 0
        for entry in self.entries():
            stream.write(canonical_json(_jsonable(entry)) + "\n")
            count += 1
        return count


def _jsonable(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "action": entry.action,
        "resource": entry.resource,
        "outcome": entry.outcome,
        "remote": entry.remote,
        "project": entry.project,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
