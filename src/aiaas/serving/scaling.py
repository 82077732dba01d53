"""Recording the autoscaler's decisions, so the control plane can show them.

The inference server decides (see :mod:`.autoscaler`) and records each decision it applies
in :class:`aiaas.store.scaling.ScalingEvents`, from a worker thread: a slow or unavailable DB
delays the record, never the scaling.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from aiaas.store.scaling import ScalingEvents

if TYPE_CHECKING:
    from aiaas.serving.autoscaler import ScalingDecision
    from aiaas.serving.replica_set import ReplicaSet

__all__ = ["ScalingRecorder"]

logger = logging.getLogger("aiaas.serving.scaling")


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
