"""What the inference server really serves, per deployment: its repository in the metadata DB.

The control plane knows what each deployment *should* serve; only the inference server
knows whether it could. A version whose artifact is corrupted or missing is refused by the
server, which keeps serving the version it had (or nothing), while the control plane went
on reporting the new version as served and clients waited out their timeouts. So after
each reconcile the server publishes, per deployment, the serving revision it applied, the
primary version it tried, the one it serves, and why the tried one could not be loaded;
``GET /api/v1/deployments/{name}`` shows it, and the SDK's ``wait_until_served`` fails
at once with the server's error instead of waiting.

Publishing is best-effort, from the reconciler's thread, and only when something changed:
serving never waits for, or fails with, the DB. Publishing does not bump the serving
revision (it is an observation, not desired state). With several inference servers on one
DB, the last one to change its view wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, select

from aiaas.store.database import Database
from aiaas.store.tables import DeploymentStatusRow, utcnow

__all__ = ["Observation", "ServingState", "ServingStates"]


class Observation(NamedTuple):
    """One deployment as the server sees it: tried, serving (None: nothing), load error."""

    desired_version: int | None
    serving_version: int | None
    error: str | None


@dataclass(frozen=True)
class ServingState:
    """A deployment's published observation, as the control plane reads it back."""

    deployment: str
    revision: int
    desired_version: int | None
    serving_version: int | None
    error: str | None
    observed_at: datetime


class ServingStates:
    """Publish and read the inference server's observed state.

    Example:
        >>> states = ServingStates(db)  # doctest: +SKIP
        >>> states.publish(12, {"iris": Observation(3, 2, "cannot load version 3: ...")})  # doctest: +SKIP
        >>> states.get("iris").serving_version  # doctest: +SKIP
        2
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def publish(self, revision: int, observed: Mapping[str, Observation]) -> None:
        """Replace the published state with ``observed`` (deployments not in it are dropped)."""
        with self.db.transaction() as s:
            rows = {r.deployment: r for r in s.scalars(select(DeploymentStatusRow))}
            gone = rows.keys() - observed.keys()
            if gone:
                s.execute(delete(DeploymentStatusRow).where(DeploymentStatusRow.deployment.in_(gone)))
            now = utcnow()
            for name, seen in observed.items():
                row = rows.get(name)
                if row is None:
                    row = DeploymentStatusRow(deployment=name)
                    s.add(row)
                elif row.revision == revision and (
                    row.desired_version,
                    row.serving_version,
                    row.error,
                ) == tuple(seen):
                    continue
                row.revision = revision
                row.desired_version = seen.desired_version
                row.serving_version = seen.serving_version
                row.error = seen.error
                row.observed_at = now

    def get(self, deployment: str) -> ServingState | None:
        """The published state of ``deployment``; ``None`` before a server observed it."""
        with self.db.transaction() as s:
            row = s.get(DeploymentStatusRow, deployment)
            return None if row is None else _state(row)

    def all(self) -> dict[str, ServingState]:
        with self.db.transaction() as s:
            return {r.deployment: _state(r) for r in s.scalars(select(DeploymentStatusRow))}


def _state(row: DeploymentStatusRow) -> ServingState:
    return ServingState(
        deployment=row.deployment,
        revision=row.revision,
        desired_version=row.desired_version,
        serving_version=row.serving_version,
        error=row.error,
        observed_at=row.observed_at,
    )
