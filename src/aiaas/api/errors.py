"""One error shape for the whole API: ``{"error": {"code", "message", "details"}}``.

The status always comes from :data:`aiaas.errors.HTTP_STATUS`, so a class of error has
the same status everywhere, and the SDK can rebuild the exception from the code.

An unexpected exception is answered by :class:`ErrorBoundary`, an ASGI middleware, rather
than by an ``Exception`` handler: Starlette re-raises after calling such a handler, and
uvicorn then closes the connection under the response it has just sent, so the next
request a client sends on that pooled keep-alive connection failed. Here a 500 is an
ordinary JSON response on a connection that stays usable.
"""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiaas.errors import (
    HTTP_STATUS,
    AiaasError,
    MethodNotAllowed,
    NotFound,
    error_class_for_status,
)
from aiaas.httpserver import allowed_methods
from aiaas.translate import invalid_argument

__all__ = ["ErrorBoundary", "RejectedRequest", "error_response", "install_error_handlers"]

log = logging.getLogger("aiaas.api")


class RejectedRequest(StarletteHTTPException):
    """A request refused while its body is read (too large, too slow), carrying our error.

    It is a Starlette ``HTTPException`` because FastAPI passes those through when reading a
    body fails, where any other exception would become a vague 400. The connection is closed
    after the answer, since the rest of the body was never read.
    """

    def __init__(self, error: AiaasError) -> None:
        super().__init__(HTTP_STATUS.get(error.code, 500), error.message, headers={"connection": "close"})
        self.error = error


def error_response(error: AiaasError, headers: dict[str, str] | None = None) -> Response:
    """The JSON error response; never fails to render (NaN and odd objects in ``details``
    become ``null`` and text, where the standard encoder would raise and give a 500)."""
    body = orjson.dumps(error.to_dict(), default=str, option=orjson.OPT_NON_STR_KEYS)
    return Response(
        body, status_code=HTTP_STATUS.get(error.code, 500), media_type="application/json", headers=headers
    )


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form")]
    return ".".join(parts) or "body"


async def _on_aiaas_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AiaasError)
    return error_response(exc)


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(invalid_argument(exc, what="request", request=True))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if isinstance(exc, RejectedRequest):
        return error_response(exc.error, headers)
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 405:
        allowed = allowed_methods(request.app.router.routes, request.scope)
        headers["allow"] = ", ".join(allowed)
        error: AiaasError = MethodNotAllowed(
            f"method {request.method} is not allowed on {request.url.path}; it takes {', '.join(allowed)} "
            "(the API is listed at /docs)",
            details={"method": request.method, "allowed": allowed},
        )
        headers.pop("Allow", None)
        return error_response(error, headers)
    if exc.status_code == 404:
        return error_response(NotFound(f"no endpoint {where}; the API is listed at /docs"), headers)
    cls = error_class_for_status(exc.status_code)
    body = orjson.dumps(cls(str(exc.detail)).to_dict())
    return Response(body, status_code=exc.status_code, media_type="application/json", headers=headers)


class ErrorBoundary:
    """Turn any exception that escapes the app into a logged JSON 500, without re-raising.

    Added as the app's outermost middleware but one, inside Starlette's own
    ``ServerErrorMiddleware``, which would otherwise re-raise into uvicorn and cost the
    client its connection. When the response had already started, there is nothing left
    to answer with, and the exception goes on so that the connection is dropped.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            if isinstance(exc, RejectedRequest):  # raised while reading a body, outside any handler
                response = error_response(exc.error, dict(exc.headers or {}))
            else:
                log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
                response = error_response(
                    AiaasError(f"internal error: {type(exc).__name__}; see the control plane log")
                )
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AiaasError, _on_aiaas_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_middleware(ErrorBoundary)
