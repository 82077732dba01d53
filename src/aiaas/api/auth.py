"""Authentication and role checks of every control-plane request, before routing.

:class:`Authenticator` is an ASGI middleware, so that it answers before FastAPI reads a body,
validates parameters or matches a route: a request without a valid key learns nothing about
the API (an unknown path, a bad body and a real endpoint all answer 401), and whatever a
client puts in its ``Authorization`` header is a 401 in the project's error shape, never a
500. The key is checked against the app's :class:`~aiaas.security.KeyCache` (no database
read per request); the principal it names is put in ``request.state.principal`` for the
endpoints (:func:`aiaas.api.deps.current_principal`), and its role is checked against the
method and path (:func:`aiaas.security.control_plane_refusal`).

Open without a key: the health check (load balancers and ``aiaas up`` poll it), the API
docs and the OpenAPI document (they describe the API and hold no data; the document is
what a client needs to learn how to authenticate), and ``/metrics`` when
``AIAAS_METRICS_PUBLIC`` is on. With ``AIAAS_AUTH`` off every request runs as
:meth:`Principal.anonymous`.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from aiaas.api.audit import mark_authentication_failure
from aiaas.api.errors import error_response
from aiaas.config import Settings
from aiaas.entities.security import Principal
from aiaas.errors import AiaasError, Unavailable
from aiaas.security import KeyCache, control_plane_refusal

__all__ = ["OPEN_PATHS", "Authenticator"]

#: Paths answered without a key (see the module docstring for why).
OPEN_PATHS = frozenset({"/", "/api/v1/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


class Authenticator:
    """The checks described in this module.

    Args:
        app: the application to guard.
        settings: ``auth`` and ``metrics_public``.
        cache: the app's key cache, once its lifespan has started it (None before).
    """

    def __init__(self, app: ASGIApp, *, settings: Settings, cache: Callable[[], KeyCache | None]) -> None:
        self.app = app
        self.enabled = settings.auth
        self.open_paths = OPEN_PATHS | ({"/metrics"} if settings.metrics_public else frozenset())
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        if not self.enabled:
            principal = Principal.anonymous()
        elif path in self.open_paths:
            await self.app(scope, receive, send)
            return
        else:
            try:
                principal = self._authenticate(scope)
            except AiaasError as exc:
                # The audit middleware around this one appends it, with the answer's status.
                mark_authentication_failure(scope, exc.message)
                await error_response(exc, {"www-authenticate": "Bearer"})(scope, receive, send)
                return
            refusal = control_plane_refusal(principal, method, path)
            if refusal is not None:
                # A refused change is appended by the audit middleware like any other (403).
                scope.setdefault("state", {})["principal"] = principal
                await error_response(refusal)(scope, receive, send)
                return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _authenticate(self, scope: Scope) -> Principal:
        cache = self.cache()
        if cache is None:
            raise Unavailable("the control plane is starting; retry shortly")
        header = None
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                header = bytes(value)
                break
        return cache.authenticate(header)
