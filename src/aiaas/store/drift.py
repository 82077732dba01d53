"""Drift in the metadata database: each version's reference, and live counts per interval.

References (table ``drift_references``, one row per model version): the profile and layout as
JSON, kept as plain dicts here; :mod:`aiaas.registry.references` turns them into a
:class:`aiaas.monitoring.ReferenceProfile` and a layout.

Live counts: one row per deployment, version, reference and interval.

Why the database rather than asking the inference server: the counts must outlive a restart of
the server (a day's window is worth keeping through a deploy), several inference servers must
add up, and the control plane must read them with the server down. A row is some 10 kB for a
100-feature profile and the server writes each row once per flush at most
(``AIAAS_DRIFT_FLUSH_INTERVAL_S``), so the write load is a few small updates a second whatever
the traffic. Counts add: a server adds each block it counted into the row of its interval (a
row lock makes concurrent servers add one after the other), and a window is the sum of the
rows it covers. Intervals are whole ``AIAAS_DRIFT_INTERVAL_S`` steps from the epoch, so the
rows of every server line up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from aiaas.entities.drift import BinCounts
from aiaas.entities.projects import DEFAULT_PROJECT
from aiaas.store.database import Database
from aiaas.store.queries import scoped
from aiaas.store.tables import DriftCountRow, DriftReferenceRow, ModelRow, ModelVersionRow, utcnow

__all__ = ["CountKey", "CountStore", "ReferenceRecord", "ReferenceRows"]

_RETRIES = 3


class CountKey(NamedTuple):
    """Where a block of counts goes: a deployment's version, its reference, an interval's start."""

    deployment: str
    version: int
    profile: str
    started_at: dt.datetime


class CountStore:
    """Add and read the drift count rows.

    Example:
        >>> store = CountStore(db)  # doctest: +SKIP
        >>> store.add({CountKey("iris", 1, digest, start): counts}, interval_s=60)  # doctest: +SKIP
        >>> store.window("iris", start=now - dt.timedelta(hours=1))  # doctest: +SKIP
        {(1, digest): BinCounts(...)}
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, blocks: Mapping[CountKey, BinCounts], *, interval_s: float) -> None:
        """Add each block into its interval's row (made when missing), in one transaction."""
        for attempt in range(_RETRIES):
            try:
                with self.db.transaction() as s:
                    for key, counts in blocks.items():
                        row = s.scalar(
                            select(DriftCountRow)
                            .where(
                                DriftCountRow.deployment == key.deployment,
                                DriftCountRow.version == key.version,
                                DriftCountRow.profile == key.profile,
                                DriftCountRow.started_at == key.started_at,
                            )
                            .with_for_update()
                        )
                        if row is None:
                            s.add(
                                DriftCountRow(
                                    deployment=key.deployment,
                                    version=key.version,
                                    profile=key.profile,
                                    started_at=key.started_at,
                                    interval_s=interval_s,
                                    rows=counts.rows,
                                    counts=counts.counts.tolist(),
                                )
                            )
                        else:
                            total = np.asarray(row.counts, dtype=np.int64) + counts.counts
                            row.counts = total.tolist()
                            row.rows = row.rows + counts.rows
                return
            except IntegrityError:  # another server made the same row first: add into it
                if attempt == _RETRIES - 1:
                    raise

    def window(
        self, deployment: str, *, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> dict[tuple[int, str], BinCounts]:
        """The counts of the intervals that overlap ``[start, end)``, per (version, reference).

        An interval that only partly overlaps counts whole: a window is read in whole intervals.
        """
        query = select(DriftCountRow).where(DriftCountRow.deployment == deployment)
        if end is not None:
            query = query.where(DriftCountRow.started_at < end)
        if start is not None:  # an interval is at most a day (AIAAS_DRIFT_INTERVAL_S)
            query = query.where(DriftCountRow.started_at > start - dt.timedelta(days=1))
        out: dict[tuple[int, str], BinCounts] = {}
        with self.db.transaction() as s:
            for row in s.scalars(query):
                if start is not None and row.started_at + dt.timedelta(seconds=row.interval_s) <= start:
                    continue
                counts = BinCounts(row.profile, np.asarray(row.counts, dtype=np.int64), row.rows)
                key = (row.version, row.profile)
                out[key] = out[key] + counts if key in out else counts
        return out

    def prune(self, before: dt.datetime) -> int:
        """Delete the rows of intervals that started before ``before``; return how many."""
        with self.db.transaction() as s:
            result = s.execute(delete(DriftCountRow).where(DriftCountRow.started_at < before))
            return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class ReferenceRecord:
    """A version's stored reference: its profile's digest, the profile and layout as JSON, its
    source, and a sample of its feature rows (None: none kept)."""

    digest: str
    profile: dict[str, Any]
    layout: dict[str, Any]
    source: dict[str, Any]
    created_at: dt.datetime
    sample: list[list[float]] | None = None


class ReferenceRows:
    """Read and write the ``drift_references`` rows of one project's model versions."""

    def __init__(self, db: Database, *, project: str | None = DEFAULT_PROJECT) -> None:
        self.db = db
        self.project = project

    def put(
        self,
        model: str,
        version: int,
        record: ReferenceRecord,
        *,
        replace: bool = True,
    ) -> bool:
        """Store a version's reference; with ``replace=False`` keep one already there.

        Returns whether it was stored (an unknown version stores nothing).
        """
        with self.db.transaction() as s:
            version_id = s.scalar(
                select(ModelVersionRow.id)
                .join(ModelRow, ModelVersionRow.model_id == ModelRow.id)
                .where(*_named(self.project, model), ModelVersionRow.version == version)
            )
            if version_id is None:
                return False
            row = s.get(DriftReferenceRow, version_id)
            if row is not None and not replace:
                return False
            if row is None:
                row = DriftReferenceRow(model_version_id=version_id)
                s.add(row)
            row.digest = record.digest
            row.source = dict(record.source)
            row.layout = dict(record.layout)
            row.profile = dict(record.profile)
            row.sample = record.sample
            row.created_at = record.created_at
            return True

    def get(self, model: str, version: int) -> ReferenceRecord | None:
        """The version's reference; None when it has none (or is gone)."""
        with self.db.transaction() as s:
            row = s.scalar(
                select(DriftReferenceRow)
                .join(ModelVersionRow, DriftReferenceRow.model_version_id == ModelVersionRow.id)
                .join(ModelRow, ModelVersionRow.model_id == ModelRow.id)
                .where(*_named(self.project, model), ModelVersionRow.version == version)
            )
            if row is None:
                return None
            return ReferenceRecord(
                digest=row.digest,
                profile=dict(row.profile),
                layout=dict(row.layout),
                source=dict(row.source),
                created_at=row.created_at,
                sample=row.sample,
            )


def _named(project: str | None, model: str) -> tuple[Any, ...]:
    project, plain = scoped(project, model)
    return (ModelRow.project == project, ModelRow.name == plain)


def now() -> dt.datetime:
    """The time a reference is stored at (the store's clock, as every row's)."""
    return utcnow()
