"""Feedback: the ground truth of answered requests, by request id, kept in the metadata DB.

A label is what the request should have been answered: a class label or a target value for a
one-row request, or a list of them, one per row. Feedback arrives after the fact (a
customer's complaint, a human review, next month's outcome), so it is matched with the
prediction log by request id when performance is asked for (:mod:`.performance`), not when
it is posted; posting checks only that each request is in the log and that its label fits.

Posting feedback for a request again replaces its label (a correction).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from aiaas.errors import InvalidArgument
from aiaas.store import Database
from aiaas.store.tables import FeedbackRow, utcnow

__all__ = ["FeedbackStore", "check_label"]

#: The database is asked about this many request ids at once.
_CHUNK = 500


def check_label(value: Any, field: str) -> Any:
    """A label as stored: a string, a finite number, a bool, or a non-empty list of them.

    Floats that are whole numbers become ints, so ``1.0`` matches the class ``1``.

    Raises:
        InvalidArgument: naming ``field``.
    """
    if isinstance(value, list):
        if not value:
            raise InvalidArgument(f"{field} must not be an empty list", details={"field": field})
        return [_scalar(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return _scalar(value, field)


def _scalar(value: Any, field: str) -> Any:
    if isinstance(value, bool | str):
        if isinstance(value, str) and not 0 < len(value) <= 1024:
            raise InvalidArgument(f"{field} must be 1 to 1024 characters", details={"field": field})
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{field} must be a finite number; got {value!r}", details={"field": field})
        return int(value) if isinstance(value, float) and value.is_integer() else value
    raise InvalidArgument(
        f"{field} must be a class label or a number (or a list of them, one per row); got {value!r}",
        details={"field": field},
    )


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
