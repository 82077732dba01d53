"""Feedback's repository: the ground truth of answered requests, by deployment and request id.

What a label may be is checked before it gets here (:func:`aiaas.monitoring.feedback.check_label`);
this keeps them, one row per request, a label posted again replacing the old one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from aiaas.store.database import Database
from aiaas.store.tables import FeedbackRow, utcnow

__all__ = ["FeedbackStore"]

#: The database is asked about this many request ids at once.
_CHUNK = 500


class FeedbackStore:
    """Labels by deployment and request id.

    Example:
        >>> store = FeedbackStore(db)  # doctest: +SKIP
        >>> store.record("iris", {"4b1f...": "setosa"})  # doctest: +SKIP
        >>> store.labels("iris")  # doctest: +SKIP
        {'4b1f...': 'setosa'}
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, deployment: str, labels: Mapping[str, Any]) -> None:
        """Store ``labels`` (request id → checked label) in one transaction, replacing any
        label a request already had."""
        ids = list(labels)
        with self.db.transaction() as s:
            existing: dict[str, FeedbackRow] = {}
            for i in range(0, len(ids), _CHUNK):
                query = select(FeedbackRow).where(
                    FeedbackRow.deployment == deployment, FeedbackRow.request_id.in_(ids[i : i + _CHUNK])
                )
                existing.update((row.request_id, row) for row in s.scalars(query))
            now = utcnow()
            for request_id, label in labels.items():
                row = existing.get(request_id)
                if row is None:
                    s.add(
                        FeedbackRow(
                            deployment=deployment, request_id=request_id, label=label, received_at=now
                        )
                    )
                else:
                    row.label, row.received_at = label, now

    def labels(self, deployment: str, request_ids: Iterable[str] | None = None) -> dict[str, Any]:
        """Request id → label, of every labelled request of ``deployment`` (or of those given)."""
        with self.db.transaction() as s:
            query = select(FeedbackRow.request_id, FeedbackRow.label).where(
                FeedbackRow.deployment == deployment
            )
            if request_ids is None:
                return {request_id: label for request_id, label in s.execute(query)}
            ids = list(request_ids)
            out: dict[str, Any] = {}
            for i in range(0, len(ids), _CHUNK):
                chunk = query.where(FeedbackRow.request_id.in_(ids[i : i + _CHUNK]))
                out.update((request_id, label) for request_id, label in s.execute(chunk))
            return out
