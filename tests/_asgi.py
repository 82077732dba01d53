"""Talk HTTP to an app inside the test process: ``httpx.ASGITransport`` with the app's lifespan.

``httpx.ASGITransport`` is asynchronous and does not run the app's lifespan (where the control
plane opens its database and services). :class:`AppTransport` runs both on an event loop in a
thread of its own, so that the synchronous ``httpx.Client`` and the SDK's ``Client`` use the
real app, middleware and error handlers with no socket and no server process: the in-process
tier's way to test request handling. What needs a socket (slow bodies, keep-alive, the
process's own metrics) stays with the real server in the process tier.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

__all__ = ["AppTransport"]


class AppTransport(httpx.BaseTransport):
    """A synchronous transport to ``app``; its lifespan starts here and ends at :meth:`shutdown`.

    Several clients may share it (a test's ``httpx.Client`` and SDK clients): closing a client
    closes its transport, so :meth:`close` leaves the app running and its owner calls
    :meth:`shutdown`.

    Example:
        >>> transport = AppTransport(create_app(settings))  # doctest: +SKIP
        >>> httpx.Client(transport=transport, base_url="http://app").get("/api/v1/health")  # doctest: +SKIP
    """

    def __init__(self, app: Any) -> None:
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        try:
            self._lifespan = self._portal.wrap_async_context_manager(app.router.lifespan_context(app))
            self._lifespan.__enter__()
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise
        self._asgi = httpx.ASGITransport(app=app)
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> httpx.Response:
            forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._asgi.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=content, request=request
            )

        return self._portal.call(send)

    def close(self) -> None:
        """A client using this transport was closed; the app goes on (see :meth:`shutdown`)."""

    def shutdown(self) -> None:
        """End the app's lifespan and the event loop's thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._lifespan.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)
