"""Metric samples' repository: per deployment, version and interval, added into by inference servers.

The same reasons as drift counts (:mod:`.drift`) put them in the database: they outlive a
restart of the server, several servers add into the same rows, and the control plane reads
them with the servers down. Each server writes each row at most once per
``AIAAS_METRICS_FLUSH_INTERVAL_S``, a few small updates a second whatever the traffic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from aiaas.entities.metrics import MetricSample, SampleKey
from aiaas.store.database import Database
from aiaas.store.tables import MetricSampleRow

__all__ = ["SampleStore"]

_RETRIES = 3


class SampleStore:
    """Add and read metric sample rows.

    Example:
        >>> store = SampleStore(db)  # doctest: +SKIP
        >>> sample = MetricSample(requests=3)
        >>> store.add({SampleKey("iris", 1, start): sample}, interval_s=60)  # doctest: +SKIP
        >>> store.intervals("iris", start=now - dt.timedelta(hours=1))  # doctest: +SKIP
        [(datetime(...), 60.0, 1, MetricSample(requests=3, ...))]
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, samples: Mapping[SampleKey, MetricSample], *, interval_s: float) -> None:
        """Merge each sample into its interval's row (made when missing), in one transaction."""
        for attempt in range(_RETRIES):
            try:
                with self.db.transaction() as s:
                    for key, sample in samples.items():
                        row = s.scalar(
                            select(MetricSampleRow)
                            .where(
                                MetricSampleRow.deployment == key.deployment,
                                MetricSampleRow.version == key.version,
                                MetricSampleRow.started_at == key.started_at,
                            )
                            .with_for_update()
                        )
                        if row is None:
                            row = MetricSampleRow(
                                deployment=key.deployment,
                                version=key.version,
                                started_at=key.started_at,
                                interval_s=interval_s,
                            )
                            _write(row, sample)
                            s.add(row)
                        else:
                            _write(row, _sample(row).merge(sample))
                return
            except IntegrityError:  # another server made the same row first: merge into it
                if attempt == _RETRIES - 1:
                    raise

    def intervals(
        self,
        deployment: str,
        *,
        version: int | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> list[tuple[dt.datetime, float, int, MetricSample]]:
        """``(start, interval_s, version, sample)`` of the intervals that start in ``[start, end)``,
        oldest first."""
        query = select(MetricSampleRow).where(MetricSampleRow.deployment == deployment)
        if version is not None:
            query = query.where(MetricSampleRow.version == version)
        if start is not None:
            query = query.where(MetricSampleRow.started_at >= start)
        if end is not None:
            query = query.where(MetricSampleRow.started_at < end)
        with self.db.transaction() as s:
            return [
                (row.started_at, row.interval_s, row.version, _sample(row))
                for row in s.scalars(query.order_by(MetricSampleRow.started_at, MetricSampleRow.version))
            ]

    def prune(self, before: dt.datetime) -> int:
        """Delete the rows of intervals that started before ``before``; return how many."""
        with self.db.transaction() as s:
            result = s.execute(delete(MetricSampleRow).where(MetricSampleRow.started_at < before))
            return int(getattr(result, "rowcount", 0) or 0)


def _sample(row: MetricSampleRow) -> MetricSample:
    return MetricSample(
        requests=row.requests,
        errors=row.errors,
        rows=row.rows,
        latency_sum_s=row.latency_sum_s,
        latency_buckets={str(k): int(v) for k, v in row.latency_buckets.items()},
        restarts=row.restarts,
        cpu_seconds=row.cpu_seconds,
        memory_bytes=row.memory_bytes,
        queue_depth=row.queue_depth,
        in_flight=row.in_flight,
    )


def _write(row: MetricSampleRow, sample: MetricSample) -> None:
    row.requests, row.errors, row.rows = sample.requests, sample.errors, sample.rows
    row.latency_sum_s = sample.latency_sum_s
    row.latency_buckets = dict(sample.latency_buckets)
    row.restarts, row.cpu_seconds = sample.restarts, sample.cpu_seconds
    row.memory_bytes, row.queue_depth, row.in_flight = (
        sample.memory_bytes,
        sample.queue_depth,
        sample.in_flight,
    )
