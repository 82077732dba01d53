"""One error shape for the whole API: ``{"error": {"code", "message", "details"}}``.

The status always comes from :data:`aiaas.errors.HTTP_STATUS`, so a class of error has
the same status everywhere, and the SDK can rebuild the exception from the code.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aiaas.errors import HTTP_STATUS, AiaasError, InvalidArgument, error_class_for_status

__all__ = ["install_error_handlers"]

log = logging.getLogger("aiaas.api")


def _respond(error: AiaasError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=HTTP_STATUS.get(error.code, 500))


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form")]
    return ".".join(parts) or "body"


async def _on_aiaas_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AiaasError)
    return _respond(exc)


def _located(error: dict[str, Any]) -> tuple[str, str]:
    """An error's field path and message; a model-level rule about one field (a validator's
    error with ``field`` and ``rule``, see ``aiaas.schemas.training``) is put on that field."""
    loc, message = tuple(error["loc"]), str(error["msg"])
    cause = (error.get("ctx") or {}).get("error")
    field, rule = getattr(cause, "field", None), getattr(cause, "rule", None)
    if isinstance(field, str) and isinstance(rule, str):
        loc, message = (*loc, field), rule
    return _field(loc), message


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    located = [_located(e) for e in exc.errors()]
    problems = [f"{field}: {message}" for field, message in located]
    fields = [field for field, _ in located]
    return _respond(
        InvalidArgument(
            "invalid request: " + "; ".join(problems),
            details={"field": fields[0] if fields else "body", "errors": problems},
        )
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    cls = error_class_for_status(exc.status_code)
    message = str(exc.detail)
    if exc.status_code in (404, 405):
        message = f"{message}: {request.method} {request.url.path}; the API is listed at /docs"
    body = cls(message).to_dict()
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(AiaasError(f"internal error: {type(exc).__name__}; see the control plane log"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AiaasError, _on_aiaas_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
