"""The control plane's OpenAPI document, saying the statuses the server really sends.

FastAPI documents a 422 for every validation error, but this API answers bad input with
400 and the one error shape; and it knows nothing of the statuses that come from the
platform's errors (404, 409, 413, ...). :func:`install_openapi` generates the document as
FastAPI does, then puts the real error responses on every operation:

* 400 wherever the operation takes a parameter or a body, 401 (and bearer authentication)
  on every ``/api/v1`` route but health when the server has an API key, 404 where the path
  or the body names something, 408 and 413 where there is a body (see
  :mod:`aiaas.api.guards`), 409 on every change (an existing name, a deployed version, an
  ended job), and 503 where the metadata database is read (it may be unreachable). A
  method a path does not take is a 405 whose ``Allow`` lists those it does.

It also adds OpenAPI *links* from each create operation to the operations on what it
created (``POST /models`` → ``GET /models/{name}``, ``POST /jobs`` → ``GET /jobs/{job_id}``,
...), so clients and stateful fuzzers can follow them.

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
    "401": "Missing, malformed, unknown, revoked or expired API key (send 'Authorization: Bearer <key>').",
    "403": "The key's role may not do this (viewer: read only; keys: admin only; inference keys: none).",
    "404": "No such model, version, alias, dataset, deployment or job.",
    "408": "The request body stopped arriving (AIAAS_BODY_READ_TIMEOUT_S).",
    "409": "The current state forbids it (the name exists, the version is deployed, the job ended).",
    "413": "The body is over its limit (AIAAS_MAX_API_BODY_BYTES, or the upload limits).",
    "429": "A quota of the project is full: the message and details name the quota, its value and "
    "the usage (docs/security.md, Quotas and rate limits).",
    "503": "The metadata database cannot be reached; retry.",
}
_CHANGES = ("post", "put", "patch", "delete")
#: The operations that create what a project quota counts (aiaas.store.quotas).
_QUOTA_CHECKED = frozenset(
    {
        ("post", "/api/v1/jobs"),
        ("post", "/api/v1/models/{name}/versions/{ref}/optimize"),
        ("post", "/api/v1/deployments"),
        ("patch", "/api/v1/deployments/{name}"),
        ("post", "/api/v1/models"),
        ("post", "/api/v1/models/{name}/versions"),
        ("post", "/api/v1/datasets/{name}/versions"),
    }
)


def install_openapi(app: FastAPI, *, api_key: bool) -> None:
    """Make ``app.openapi()`` return the document with the real error responses.

    Args:
        api_key: the server requires an API key (``AIAAS_AUTH``, on by default): the document
            then declares bearer authentication on every ``/api/v1`` route but health, and /metrics.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = with_real_errors(document, api_key=api_key)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_real_errors(document: dict[str, Any], *, api_key: bool) -> dict[str, Any]:
    """``document`` with 422 replaced by the error responses each operation can give."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    if api_key:
        document["components"]["securitySchemes"] = {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An aiaas API key (aiaas_<id>_<secret>): the first start's admin key in "
                "<AIAAS_HOME>/admin.key, or one from POST /api/v1/keys.",
            }
        }
    for schema in ("HTTPValidationError", "ValidationError"):
        components.pop(schema, None)
    for path, operations in document.get("paths", {}).items():
        methods = [m for m in operations if m in ("get", "put", "post", "patch", "delete")]
        for method in methods:
            operation = operations[method]
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if api_key and _secured(path):
                operation["security"] = [{"apiKey": []}]
            for status in _statuses(path, method, operation, api_key=api_key):
                responses.setdefault(status, _error_response(_ERRORS[status]))
    _add_links(document["paths"])
    return document


def _secured(path: str) -> bool:
    return (path.startswith("/api/v1/") and path != "/api/v1/health") or path == "/metrics"


def _statuses(path: str, method: str, operation: dict[str, Any], *, api_key: bool) -> list[str]:
    secured = _secured(path)
    has_body = "requestBody" in operation
    statuses = []
    if operation.get("parameters") or has_body or secured:
        statuses.append("400")
    if secured and api_key:
        statuses += ["401", "403"]
    if "{" in path or (method in _CHANGES and has_body and secured):
        statuses.append("404")  # the path names something, or the body does (a model, a dataset)
    if method in _CHANGES:
        statuses += ["408", "413"]  # a body may come with any change, and is read under the guard
    if method in _CHANGES and secured:
        statuses.append("409")
    if (method, path) in _QUOTA_CHECKED:
        statuses.append("429")
    if secured:
        statuses.append("503")
    return sorted(statuses)


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


# Which field of a created object fills each path parameter of the operations on it.
_CREATED_FIELDS = {"name": "name", "version": "version", "ref": "version", "job_id": "id"}


def _add_links(paths: dict[str, Any]) -> None:
    """Link every create (a POST answering 201) to the operations under the path it created.

    ``POST /api/v1/models/{name}/versions`` links to ``GET /api/v1/models/{name}/versions/{version}``
    with ``name`` from the request and ``version`` from the response body, and so on.
    """
    for path, operations in paths.items():
        created = operations.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        links = created.setdefault("links", {})
        for target_path, target_operations in paths.items():
            rest = target_path[len(path) :]
            if not target_path.startswith(path + "/{") or rest.count("{") != 1:
                continue
            new_param = rest[2 : rest.index("}")]
            field = _CREATED_FIELDS.get(new_param)
            if field is None:
                continue
            for method, operation in target_operations.items():
                if "operationId" not in operation:
                    continue
                parameters = {new_param: f"$response.body#/{field}"}
                for param in operation.get("parameters", []):
                    if param.get("in") == "path" and param["name"] != new_param:
                        parameters[param["name"]] = f"$request.path.{param['name']}"
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                    "description": f"{method.upper()} {target_path} on what this created.",
                }
