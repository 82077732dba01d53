"""The inference server's ASGI plumbing: the fast path for ``/infer``, error answers, body limits.

What :mod:`.app`'s endpoints share and do not decide themselves: :class:`_InferenceApp`
(Starlette, with ``POST /v2/models/{name}/infer`` answered before Starlette's own
middleware stack and routing), :func:`_guard` (the one place an endpoint's exception
becomes the Open Inference Protocol's error answer), :func:`_read_body` (the body, refused
once it passes ``AIAAS_MAX_REQUEST_BYTES``) and the answers to unknown paths and methods.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from aiaas.errors import HTTP_STATUS, AiaasError, InvalidArgument, PayloadTooLarge
from aiaas.httpserver import allowed_methods
from aiaas.serving.auth import InferenceAuth, retry_after
from aiaas.serving.request_ids import REQUEST_ID_HEADER, REQUEST_ID_KEY, request_id_of

logger = logging.getLogger("aiaas.serving.app")

_JSON = "application/json"
Endpoint = Callable[[Request], Awaitable[Response]]


class _InferenceApp(Starlette):
    """Starlette, with ``POST /v2/models/{name}/infer`` answered before its routing.

    That one route is the hot path. Going through Starlette's middleware stack and route
    table (fifteen routes, matched in turn) costs more per request than a small model's
    run, so it is recognised here by its path and handed straight to its guarded
    endpoint, which already turns every error into the protocol's error response.
    Everything else, including that route with a version and any malformed path, goes
    through Starlette as before.
    """

    def __init__(self, infer: Endpoint, auth: InferenceAuth, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._infer = infer
        self._auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._auth.enabled:
            refusal = self._auth.refusal(scope)  # every route, the fast path's included
            if refusal is not None:
                await self._auth.answer(refusal, scope["path"])(scope, receive, send)
                return
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            if path.startswith(_INFER_PREFIX) and path.endswith(_INFER_SUFFIX):
                name = path[len(_INFER_PREFIX) : -len(_INFER_SUFFIX)]
                if name and "/" not in name:
                    scope["app"] = self
                    scope["path_params"] = {"name": name}
                    response = await self._infer(Request(scope, receive))
                    await response(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


_INFER_PREFIX = "/v2/models/"
_INFER_SUFFIX = "/infer"


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing it as soon as it is known to exceed ``max_bytes``.

    Content-Length is checked first so an honest large upload is refused before it is
    read; the running count catches chunked bodies and lying headers.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidArgument(
                f"Content-Length must be an integer; got {declared!r}",
                details={"field": "content-length"},
            ) from None
        if size > max_bytes:
            raise _too_large(size, max_bytes)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(received, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body of {size} bytes or more exceeds the limit of {max_bytes} bytes "
        "(AIAAS_MAX_REQUEST_BYTES); send fewer rows per request",
        details={"field": "body", "limit": max_bytes},
    )


def _error(status: int, message: str, request_id: str | None = None, *, retry: str = "1") -> Response:
    """The Open Inference Protocol's error answer; a 429 or 503 says to retry after ``retry`` s."""
    headers = {"retry-after": retry} if status in (429, 503) else {}
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    return Response(orjson.dumps({"error": message}), status_code=status, media_type=_JSON, headers=headers)


def _guard(endpoint: Endpoint, *, request_ids: bool = False) -> Endpoint:
    """Turn platform errors into OIP error responses, and anything else into a logged 500.

    With ``request_ids`` (the inference endpoints) the request id is decided first and put in
    the scope for the endpoint, and an error answer carries it in its header too.
    """

    async def guarded(request: Request) -> Response:
        request_id = None
        if request_ids:
            request_id = request.scope[REQUEST_ID_KEY] = request_id_of(request.scope)
        try:
            return await endpoint(request)
        except AiaasError as exc:
            status = HTTP_STATUS.get(exc.code, 500)
            if status >= 500 and status != 503:
                logger.error("%s %s failed: %s", request.method, request.url.path, exc.message)
            return _error(status, exc.message, request_id, retry=retry_after(exc))
        except HTTPException:
            raise
        except ClientDisconnect:
            # The client went away mid-body: nobody is left to read an answer or to blame.
            return Response(status_code=400)
        except Exception as exc:
            logger.exception("%s %s failed unexpectedly", request.method, request.url.path)
            return _error(
                500, f"internal error ({type(exc).__name__}); the server log has the details", request_id
            )

    guarded.__name__ = endpoint.__name__
    return guarded


async def _http_exception(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        return _error(404, f"no endpoint {request.url.path}; the API is described at /openapi.json")
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        response = _error(
            405,
            f"method {request.method} is not allowed on {request.url.path}; it takes {', '.join(allowed)}",
        )
        response.headers["allow"] = ", ".join(allowed)
        return response
    return _error(exc.status_code, str(exc.detail))


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes on the request's path. ``GET /v1/models/{name}:predict``
    is refused by its endpoint, not by routing: that form takes POST only."""
    path = request.url.path
    if path.startswith("/v1/models/") and ":" in path.rsplit("/", 1)[-1]:
        return ["POST"]
    return allowed_methods(request.app.router.routes, request.scope)
