"""The autoscaler's decisions: their repository in the metadata DB.

The inference server records each decision it applies (:class:`aiaas.serving.scaling.ScalingRecorder`);
the control plane reads them back (``GET /api/v1/deployments/{name}/scaling-events``).
Recording does not bump the serving revision: a decision is history, not desired state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from aiaas.errors import InvalidArgument
from aiaas.store.database import Database
from aiaas.store.tables import ScalingEventRow, utcnow

__all__ = ["KEEP_EVENTS", "ScalingEvent", "ScalingEvents"]

#: Decisions kept per deployment; older ones are dropped as new ones are recorded.
KEEP_EVENTS = 200


@dataclass(frozen=True)
class ScalingEvent:
    """One decision: ``version`` of ``deployment`` went from ``from_replicas`` to ``to_replicas``."""

    deployment: str
    version: int
    at: datetime
    from_replicas: int
    to_replicas: int
    reason: str


class ScalingEvents:
    """Record and list autoscaling decisions.

    Example:
        >>> events = ScalingEvents(db)  # doctest: +SKIP
        >>> events.list("iris", limit=10)  # doctest: +SKIP
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self, deployment: str, version: int, from_replicas: int, to_replicas: int, reason: str
    ) -> None:
        with self.db.transaction() as s:
            s.add(
                ScalingEventRow(
                    deployment=deployment,
                    version=version,
                    at=utcnow(),
                    from_replicas=from_replicas,
                    to_replicas=to_replicas,
                    reason=reason,
                )
            )
            s.flush()
            stale = (
                select(ScalingEventRow.id)
                .where(ScalingEventRow.deployment == deployment)
                .order_by(ScalingEventRow.id.desc())
                .offset(KEEP_EVENTS)
            )
            old = list(s.scalars(stale))
            if old:
                s.execute(delete(ScalingEventRow).where(ScalingEventRow.id.in_(old)))

    def list(self, deployment: str, *, limit: int = 50) -> list[ScalingEvent]:
        """The newest ``limit`` decisions for ``deployment``, newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= KEEP_EVENTS:
            raise InvalidArgument(
                f"limit must be an integer from 1 to {KEEP_EVENTS}; got {limit!r}",
                details={"field": "limit", "value": repr(limit)},
            )
        with self.db.transaction() as s:
            rows = s.scalars(
                select(ScalingEventRow)
                .where(ScalingEventRow.deployment == deployment)
                .order_by(ScalingEventRow.id.desc())
                .limit(limit)
            ).all()
            return [
                ScalingEvent(r.deployment, r.version, r.at, r.from_replicas, r.to_replicas, r.reason)
                for r in rows
            ]
