"""What a model's deployments send requests to, read from the deployments' columns.

A deployment's routes live in its row: the primary target in ``version``/``alias``, the
weighted canaries in the ``traffic`` JSON column and the mirror in ``shadow``. The registry
needs them to refuse deleting or moving what a deployment serves; reading them here keeps
the parsing of those columns in the store, beside the table, rather than in the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiaas.store.tables import DeploymentRow

__all__ = ["DeploymentRoutes", "model_deployments"]


@dataclass(frozen=True)
class DeploymentRoutes:
    """One deployment's routes as configured, primary first.

    ``refs`` are ``{"version": n}`` or ``{"alias": name}`` dicts (with ``"weight"`` on
    traffic routes); ``versions`` and ``aliases`` are the numbers and names among them.
    """

    name: str
    refs: tuple[dict[str, Any], ...]

    @property
    def versions(self) -> set[int]:
        return {r["version"] for r in self.refs if r.get("version") is not None}

    @property
    def aliases(self) -> set[str]:
        return {r["alias"] for r in self.refs if r.get("alias") is not None}


def model_deployments(s: Session, model_id: int) -> list[DeploymentRoutes]:
    """The deployments serving the model with row id ``model_id``, by name.

    Traffic routes and the shadow live in JSON columns, which SQLite and PostgreSQL query
    differently; a model has few deployments, so they are read and looked at here instead.
    """
    rows = s.scalars(
        select(DeploymentRow).where(DeploymentRow.model_id == model_id).order_by(DeploymentRow.name)
    ).all()
    return [DeploymentRoutes(row.name, tuple(_route_refs(row))) for row in rows]


def _route_refs(row: DeploymentRow) -> list[dict[str, Any]]:
    refs: list[Any] = [{"version": row.version, "alias": row.alias}, *(row.traffic or [])]
    if row.shadow:
        refs.append(row.shadow)
    return [r for r in refs if isinstance(r, dict)]
