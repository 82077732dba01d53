"""The control plane's OpenAPI document, saying the statuses the server really sends.

FastAPI documents a 422 for every validation error, but this API answers bad input with
400 and the one error shape; and it knows nothing of the statuses that come from the
platform's errors (404, 409, 413, ...). :func:`install_openapi` generates the document as
FastAPI does, then puts the real error responses on every operation:

* 400 wherever the operation takes a parameter or a body, 401 on every ``/api/v1`` route
  but health (when an API key is set), 404 where the path names something, 405 where a
  path serves several methods, 408 and 413 where there is a body (see :mod:`aiaas.api.guards`),
  409 on every change (an existing name, a deployed version, an ended job), and 503 where
  the metadata database is read (it may be unreachable).

The schemathesis run in the test suite holds the server to this document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["ERROR_SCHEMA", "install_openapi"]

#: JSON schema of every error body.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "INVALID_ARGUMENT, NOT_FOUND, CONFLICT, ..."},
                "message": {"type": "string", "description": "What went wrong and how to fix it."},
                "details": {"type": "object", "description": "The field, the limit, the value received."},
            },
        }
    },
}

_ERRORS = {
    "400": "Invalid input: the message names the field, the rule and the value received.",
    "401": "Missing or wrong API key (only when the server has AIAAS_API_KEY set).",
    "404": "No such model, version, alias, dataset, deployment or job.",
    "405": "The path exists but not with this method; `Allow` lists the methods it takes.",
    "408": "The request body stopped arriving (AIAAS_BODY_READ_TIMEOUT_S).",
    "409": "The current state forbids it (the name exists, the version is deployed, the job ended).",
    "413": "The body is over its limit (AIAAS_MAX_API_BODY_BYTES, or the upload limits).",
    "503": "The metadata database cannot be reached; retry.",
}
_CHANGES = ("post", "put", "patch", "delete")


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with the real error responses."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = with_real_errors(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_real_errors(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with 422 replaced by the error responses each operation can give."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for schema in ("HTTPValidationError", "ValidationError"):
        components.pop(schema, None)
    for path, operations in document.get("paths", {}).items():
        methods = [m for m in operations if m in ("get", "put", "post", "patch", "delete")]
        for method in methods:
            operation = operations[method]
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in _statuses(path, method, operation, several_methods=len(methods) > 1):
                responses.setdefault(status, _error_response(_ERRORS[status]))
    return document


def _statuses(path: str, method: str, operation: dict[str, Any], *, several_methods: bool) -> list[str]:
    secured = path.startswith("/api/v1/") and path != "/api/v1/health"
    has_body = "requestBody" in operation
    statuses = []
    if operation.get("parameters") or has_body or secured:
        statuses.append("400")
    if secured:
        statuses.append("401")
    if "{" in path:
        statuses.append("404")
    if several_methods:
        statuses.append("405")
    if method in _CHANGES:
        statuses += ["408", "413"]  # a body may come with any change, and is read under the guard
    if method in _CHANGES and secured:
        statuses.append("409")
    if secured:
        statuses.append("503")
    return sorted(statuses)


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
