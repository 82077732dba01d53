"""The autoscaler's decisions, kept in the metadata DB so the control plane can show them.

The inference server decides (see :mod:`.autoscaler`) and :meth:`ScalingEvents.record`s
each decision it applies, from a worker thread: a slow or unavailable DB delays the record,
never the scaling. The control plane reads them back with :meth:`ScalingEvents.list`
(``GET /api/v1/deployments/{name}/scaling-events``). Recording does not bump the serving
revision: a decision is history, not desired state.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from aiaas.errors import InvalidArgument
from aiaas.store import Database, ScalingEventRow, utcnow

if TYPE_CHECKING:
    from aiaas.serving.autoscaler import ScalingDecision
    from aiaas.serving.replica_set import ReplicaSet

__all__ = ["KEEP_EVENTS", "ScalingEvent", "ScalingEvents", "ScalingRecorder"]

logger = logging.getLogger("aiaas.serving.scaling")

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


class ScalingRecorder:
    """The replica manager's ``on_scaling`` hook: records each decision from one worker thread."""

    def __init__(self, events: ScalingEvents) -> None:
        self.events = events
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiaas-scaling-events")

    def __call__(self, replica_set: ReplicaSet, decision: ScalingDecision) -> None:
        self._worker.submit(
            self._record,
            replica_set.deployment,
            replica_set.version,
            decision.current,
            decision.desired,
            decision.reason,
        )

    def _record(self, deployment: str, version: int, current: int, desired: int, reason: str) -> None:
        try:
            self.events.record(deployment, version, current, desired, reason)
        except Exception as exc:  # the decision was applied and logged; only its record is lost
            logger.warning("cannot record a scaling decision of %r: %s", deployment, exc)

    def close(self) -> None:
        self._worker.shutdown(wait=True)
