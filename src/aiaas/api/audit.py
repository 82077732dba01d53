"""Every mutating request, and every authentication failure, appended to the audit log.

:class:`AuditMiddleware` is the control plane's outermost middleware. For a ``POST``, ``PUT``,
``PATCH`` or ``DELETE`` it appends one entry (:meth:`aiaas.security.AuditLog.append`) with the
response's status as the outcome; a request the authentication code marked with
:func:`mark_authentication_failure` gets one entry with the action ``authenticate``, whatever
its method. Reads are not logged and cost no database work.

Ordering: the entry is appended when the app starts its response and before that response
is passed on, so a client that has seen the status of its change knows the entry is
committed. The append runs in a worker thread (the database is synchronous), so the event loop
serves other requests meanwhile. If the append itself fails (the database went away after the
change), the failure and the whole entry are logged at ERROR and the response still goes out:
the change is made, and answering it with an error would make a client repeat it.

The actor is the name of the principal the authentication code stores in
``request.state.principal`` (its key id if it has no name), else ``anonymous``; the project is
``request.state.project``, else the principal's, else the ``X-Aiaas-Project`` header; the
remote address is the ASGI client's (uvicorn's ``--forwarded-allow-ips`` decides whether a
proxy's ``X-Forwarded-For`` is believed).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiaas.security import ACTION_AUTHENTICATE, ANONYMOUS, AuditLog

__all__ = ["MUTATING_METHODS", "AuditMiddleware", "mark_authentication_failure"]

log = logging.getLogger("aiaas.api.audit")

#: The methods whose requests are appended.
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Where :func:`mark_authentication_failure` leaves its mark, in the request's state.
_FAILURE = "audit_authentication_failure"
_PROJECT_HEADER = b"x-aiaas-project"


def mark_authentication_failure(request: Request | Scope, reason: str, *, key_id: str | None = None) -> None:
    """Record that this request failed authentication; the audit middleware appends it.

    For the authentication code (a dependency or a middleware inside the audit middleware):
    call it where a request is refused for a missing, malformed, wrong, revoked or expired
    key, then answer as usual (the 401). The entry is appended before the answer is sent,
    with action ``authenticate``, the answer's status as outcome, the key id as actor if one was
    recognised (else ``anonymous``), and ``reason`` in its details. No database work happens
    here, so it is cheap in a sync or an async context.

    Args:
        request: the request, or its ASGI scope.
        reason: why, for a person (``"no Authorization header"``, ``"revoked key"``); never the key.
        key_id: the key's public id, if the presented key was recognised.
    """
    scope = request.scope if isinstance(request, Request) else request
    scope.setdefault("state", {})[_FAILURE] = {"reason": reason, "key_id": key_id}


class AuditMiddleware:
    """Append an audit entry per mutating request and per authentication failure.

    Args:
        app: the application.
        audit: the audit log of a request; the default reads the running app's
            (``app.state.services.audit``, opened in its lifespan).
    """

    def __init__(self, app: ASGIApp, *, audit: AuditLog | None = None) -> None:
        self.app = app
        self._audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        mutating = scope["method"] in MUTATING_METHODS
        recorded = False

        async def send_after_recording(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                if mutating or _FAILURE in scope.get("state", {}):
                    await self._record(scope, str(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_after_recording)
        except Exception:
            if not recorded and (mutating or _FAILURE in scope.get("state", {})):
                recorded = True
                await self._record(scope, "500")
            raise

    def _log(self, scope: Scope) -> AuditLog | None:
        if self._audit is not None:
            return self._audit
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        audit: AuditLog | None = getattr(services, "audit", None)
        return audit

    async def _record(self, scope: Scope, outcome: str) -> None:
        fields = _entry_fields(scope, outcome)
        audit = self._log(scope)
        try:
            if audit is None:
                raise RuntimeError("the app has no audit log (its lifespan did not run)")
            await anyio.to_thread.run_sync(functools.partial(audit.append, **fields))
        except Exception as exc:
            log.error("audit entry NOT appended (%s: %s): %r", type(exc).__name__, exc, fields)


def _entry_fields(scope: Scope, outcome: str) -> dict[str, Any]:
    """The arguments of :meth:`AuditLog.append` for the request of ``scope``."""
    state: dict[str, Any] = scope.get("state") or {}
    principal = state.get("principal")
    actor = getattr(principal, "name", None) or getattr(principal, "key_id", None) or ANONYMOUS
    method = scope["method"]
    path = scope.get("path", "")
    route = _route_template(scope)
    details: dict[str, Any] = {"method": method}
    failure = state.get(_FAILURE)
    if failure is not None:
        action = ACTION_AUTHENTICATE
        details["reason"] = failure["reason"]
        actor = failure["key_id"] or ANONYMOUS
    else:
        action = f"{method} {route or path}"
    client = scope.get("client")
    return {
        "actor": str(actor),
        "action": action,
        "resource": path,
        "outcome": outcome,
        "remote": client[0] if client else None,
        "project": _project(scope, state, principal),
        "details": details,
    }


def _route_template(scope: Scope) -> str | None:
    """The matched route's path with its parameters as ``{name}``, under every router prefix.

    The route in the scope may belong to an included router and know only its own part of
    the path (``/alerts/rules/{name}``); what precedes that part in the request's path is the
    prefix (``/api/v1``).
    """
    template = getattr(scope.get("route"), "path_format", None)
    if not isinstance(template, str):
        return None
    rendered = template
    for key, value in (scope.get("path_params") or {}).items():
        rendered = rendered.replace("{" + str(key) + "}", str(value))
    path: str = scope.get("path", "")
    if not path.endswith(rendered):
        return None
    return path[: len(path) - len(rendered)] + template


def _project(scope: Scope, state: dict[str, Any], principal: Any) -> str | None:
    project = state.get("project")
    if isinstance(project, str):
        return project
    project = getattr(principal, "project", None)
    if isinstance(project, str):
        return project
    for key, value in scope.get("headers", ()):
        if key.lower() == _PROJECT_HEADER:
            return bytes(value).decode("latin-1")
    return None
