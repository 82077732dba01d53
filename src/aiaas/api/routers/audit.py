"""``/api/v1/audit``: read the hash-chained audit log, a page at a time.

Verifying the chain is ``aiaas audit verify``, which reads the database itself: it must work
when the control plane does not, and a verdict served by the API would be only as trustworthy
as the server giving it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from aiaas import schemas
from aiaas.api.deps import CurrentPrincipal, ServicesDep
from aiaas.api.routers.monitoring import End, Start, Window, time_range

__all__ = ["MAX_AUDIT_PAGE", "router"]

router = APIRouter(prefix="/audit", tags=["audit"])

#: The most entries in one page.
MAX_AUDIT_PAGE = 1000


@router.get(
    "",
    summary="Audit log entries, oldest first, filtered by time, actor and action",
    description="Every mutating request (POST, PUT, PATCH, DELETE) and every authentication "
    "failure, with who, what, which resource, when, from where and the outcome (HTTP status), "
    "each chained to the one before by its SHA-256. Pages: pass `next_after` as `after`. "
    "A key of one project reads its project's entries only.",
)
def list_audit(
    services: ServicesDep,
    principal: CurrentPrincipal,
    start: str | None = Start,
    end: str | None = End,
    window: str | None = Window,
    actor: Annotated[str | None, Query(max_length=256, description="Only this actor's entries.")] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=256, description="Only this action, e.g. `POST /api/v1/deployments` or `authenticate`."
        ),
    ] = None,
    after: Annotated[
        int, Query(ge=0, le=2**62, description="Entries with a sequence number above this (the cursor).")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE, description="The most entries.")] = 100,
) -> schemas.AuditEntryList:
    low, high = time_range(start, end, window)
    # A key of one project sees that project's entries only: the others name other projects'
    # resources (and authentication failures, of no project, are the platform admin's).
    entries = services.audit.search(
        start=low,
        end=high,
        actor=actor,
        action=action,
        project=principal.project,
        after=after,
        limit=limit,
    )
    return schemas.AuditEntryList(
        entries=[schemas.AuditEntry.model_validate(e) for e in entries],
        next_after=entries[-1].seq if len(entries) == limit else None,
    )
