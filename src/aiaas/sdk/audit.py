"""The SDK's part for the audit log: read its entries a page at a time.

A mixin of :class:`aiaas.Client`, like :mod:`.monitoring`. Verifying the chain is local
(``aiaas audit verify`` reads the database), not an API call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx

from aiaas import schemas

__all__ = ["AuditMethods"]


class AuditMethods:
    """Methods of :class:`aiaas.Client` over ``/api/v1/audit``."""

    _api: httpx.Client  # set by Client

    def _get(self, path: str, **kwargs: Any) -> httpx.Response:  # provided by Client
        raise NotImplementedError

    def list_audit_entries(
        self,
        *,
        start: dt.datetime | str | None = None,
        end: dt.datetime | str | None = None,
        actor: str | None = None,
        action: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> schemas.AuditEntryList:
        """One page of audit entries, oldest first; pass its ``next_after`` as ``after`` for the next.

        Args:
            start, end: entries appended in ``[start, end)`` (datetimes, or ISO 8601 text).
            actor: only this actor's (a key's name, or ``anonymous``).
            action: only this action (``"POST /api/v1/deployments"``, ``"authenticate"``).
            after: the cursor: entries with a sequence number above it.
            limit: the most entries (1 to 1000).
        """
        params: dict[str, Any] = {"after": after, "limit": limit}
        for key, value in (("start", start), ("end", end)):
            if value is not None:
                params[key] = value.isoformat() if isinstance(value, dt.datetime) else value
        if actor is not None:
            params["actor"] = actor
        if action is not None:
            params["action"] = action
        return schemas.AuditEntryList.model_validate_json(self._get("/audit", params=params).content)

    def iter_audit_entries(self, **filters: Any) -> Iterator[schemas.AuditEntry]:
        """Every audit entry matching ``filters`` (those of :meth:`list_audit_entries`), page after page."""
        after = int(filters.pop("after", 0))
        while True:
            page = self.list_audit_entries(after=after, **filters)
            yield from page.entries
            if page.next_after is None:
                return
            after = page.next_after
