"""The inference server's OpenAPI document, served at ``GET /openapi.json``.

Written by hand (the app is plain Starlette, for speed) and held to the server by the
schemathesis run in the test suite: every route, with the statuses it really sends. Errors
are the Open Inference Protocol's ``{"error": "<message>"}``.

Two behaviours a client must know are written into it:

* **Inputs out of range**: a JSON value that does not fit the input's datatype (``1e300``
  for FP32, ``300`` for UINT8, ``1.5`` for INT64) is a 400 naming the input, never a
  silently rounded, wrapped or infinite value.
* **Non-finite outputs**: NaN and infinities, which JSON cannot hold, travel as the strings
  ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` inside ``data`` (the Protocol Buffers JSON
  mapping of floats, which the Open Inference Protocol's gRPC form shares). ``numpy``,
  ``float()`` and tritonclient's ``as_numpy`` read them back; binary outputs carry them as
  IEEE floats.
"""

from __future__ import annotations

from typing import Any

from aiaas.serving.auth import OPEN_PATHS
from aiaas.serving.explanations import EXPLAIN_SCHEMAS, explain_paths
from aiaas.serving.openapi_schemas import SCHEMAS
from aiaas.serving.request_ids import REQUEST_ID_PARAMETER, with_request_id

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}

_DESCRIPTIONS = {
    "400": "Invalid request: the message names the input or field and what was expected.",
    "404": "No such deployment, version or endpoint.",
    "405": "The path exists but not with this method; `Allow` lists the methods it takes.",
    "413": "The body is over AIAAS_MAX_REQUEST_BYTES.",
    "429": "The deployment's queue is full (max_queue_size), or the key is over its request rate; "
    "retry after `Retry-After` seconds.",
    "409": "The version is archived, or it cannot be explained (no background sample, or not one "
    "numeric (rows, features) input); the message says how to get explanations.",
    "503": "Not loaded yet, or the version cannot be loaded now; retry after `Retry-After` seconds.",
    "504": "The request did not finish within the deployment's timeout_s.",
}


def _errors(
    *statuses: str, schema: dict[str, Any] = _ERROR, descriptions: dict[str, str] = _DESCRIPTIONS
) -> dict[str, Any]:
    """The error responses of ``statuses``, in the Open Inference Protocol's shape by default."""
    return {
        status: {"description": descriptions[status], "content": {"application/json": {"schema": schema}}}
        for status in statuses
    }


def _path_parameter(name: str, description: str, **schema: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", **schema},
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_NAME = _path_parameter("name", "The deployment's name (the name clients call).")
_VERSION = _path_parameter(
    "version", "A version number of the deployment's model (ASCII digits, from 1).", pattern="^[0-9]+$"
)
_TARGET = _path_parameter("target", "`{name}` (GET: is it ready) or `{name}:predict` (POST: predict).")
_VERSION_TARGET = _path_parameter(
    "target", "`{version}` (GET: can it be served) or `{version}:predict` (POST: predict)."
)


def openapi_document(version: str) -> dict[str, Any]:
    """The whole document, for a server of this ``version``."""
    infer_request = {
        "required": True,
        "content": {
            "application/json": {"schema": _ref("InferenceRequest")},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "Binary tensor data extension: the JSON request, of "
                "Inference-Header-Content-Length bytes, then the raw tensors.",
            },
        },
    }
    infer_responses = {
        "200": {
            "description": "The outputs; application/octet-stream when some travel as binary data "
            "(Inference-Header-Content-Length gives the JSON part's size).",
            "content": {
                "application/json": {"schema": _ref("InferenceResponse")},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **_errors("400", "404", "413", "429", "503", "504"),
    }
    metadata = {**_ok(_ref("ModelMetadata")), **_errors("404", "503")}
    ready = {**_ok(_ref("Ready")), **_errors("404", "503")}
    versioned = {"200": metadata["200"], **_errors("400", "404", "503")}
    versioned_ready = {"200": ready["200"], **_errors("400", "404", "503")}
    explain_responses = with_request_id(
        {**_ok(_ref("Explanation")), **_errors("400", "404", "409", "413", "429", "503", "504")}
    )
    paths: dict[str, Any] = {
        "/v2": {
            "get": {
                "operationId": "server_metadata",
                "summary": "Server metadata: name, version, extensions",
                "responses": _ok(
                    {
                        "type": "object",
                        "required": ["name", "version", "extensions"],
                        "properties": {
                            "name": {"type": "string"},
                            "version": {"type": "string"},
                            "extensions": {"type": "array", "items": {"type": "string"}},
                        },
                    }
                ),
            }
        },
        "/v2/health/live": {
            "get": {
                "operationId": "server_live",
                "summary": "Liveness",
                "responses": _ok({"type": "object", "properties": {"live": {"type": "boolean"}}}),
            }
        },
        "/v2/health/ready": {
            "get": {
                "operationId": "server_ready",
                "summary": "Readiness: the deployments have been loaded once",
                "responses": {
                    **_ok({"type": "object", "properties": {"ready": {"type": "boolean"}}}),
                    **_errors("503"),
                },
            }
        },
        "/v2/models/stats": {
            "get": {
                "operationId": "all_model_stats",
                "summary": "Request statistics of every deployment (Triton's statistics extension)",
                "responses": _ok(_ref("Stats")),
            }
        },
        "/v2/models/{name}": {
            "get": {
                "operationId": "model_metadata",
                "summary": "A deployment's metadata: signature, served versions, serving settings",
                "parameters": [_NAME],
                "responses": metadata,
            }
        },
        "/v2/models/{name}/ready": {
            "get": {
                "operationId": "model_ready",
                "summary": "Is the deployment's primary version loaded",
                "parameters": [_NAME],
                "responses": ready,
            }
        },
        "/v2/models/{name}/stats": {
            "get": {
                "operationId": "model_stats",
                "summary": "Request statistics of one deployment",
                "parameters": [_NAME],
                "responses": {**_ok(_ref("Stats")), **_errors("404", "503")},
            }
        },
        "/v2/models/{name}/infer": {
            "post": {
                "operationId": "model_infer",
                "summary": "Inference on the version(s) the deployment routes to (KServe V2)",
                "parameters": [_NAME, REQUEST_ID_PARAMETER],
                "requestBody": infer_request,
                "responses": with_request_id(infer_responses),
            }
        },
        **explain_paths(_NAME, _VERSION, explain_responses),
        "/v2/models/{name}/versions/{version}": {
            "get": {
                "operationId": "model_version_metadata",
                "summary": "Metadata of one version of the deployment's model",
                "parameters": [_NAME, _VERSION],
                "responses": versioned,
            }
        },
        "/v2/models/{name}/versions/{version}/ready": {
            "get": {
                "operationId": "model_version_ready",
                "summary": "Can this version be served (loaded on demand)",
                "parameters": [_NAME, _VERSION],
                "responses": versioned_ready,
            }
        },
        "/v2/models/{name}/versions/{version}/stats": {
            "get": {
                "operationId": "model_version_stats",
                "summary": "Request statistics of one version",
                "parameters": [_NAME, _VERSION],
                "responses": {**_ok(_ref("Stats")), **_errors("400", "404", "503")},
            }
        },
        "/v2/models/{name}/versions/{version}/infer": {
            "post": {
                "operationId": "model_version_infer",
                "summary": "Inference on one version of the deployment's model",
                "parameters": [_NAME, _VERSION, REQUEST_ID_PARAMETER],
                "requestBody": infer_request,
                "responses": with_request_id(
                    {**infer_responses, **_errors("400", "404", "413", "429", "503", "504")}
                ),
            }
        },
        "/v1/models": {
            "get": {
                "operationId": "v1_list_models",
                "summary": "Deployments served (KServe V1)",
                "responses": _ok(
                    {
                        "type": "object",
                        "properties": {"models": {"type": "array", "items": {"type": "string"}}},
                    }
                ),
            }
        },
        "/v1/models/{target}": {
            "get": {
                "operationId": "v1_model_ready",
                "summary": "Is the deployment ready (KServe V1)",
                "parameters": [_TARGET],
                "responses": {**ready, **_errors("405")},
            },
            "post": {
                "operationId": "v1_predict",
                "summary": "Predict (KServe V1): POST /v1/models/{name}:predict",
                "parameters": [_TARGET, REQUEST_ID_PARAMETER],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("V1Request")}},
                },
                "responses": with_request_id(
                    {**_ok(_ref("V1Response")), **_errors("400", "404", "413", "429", "503", "504")}
                ),
            },
        },
        "/v1/models/{name}/versions/{target}": {
            "get": {
                "operationId": "v1_model_version_ready",
                "summary": "Can this version be served (TensorFlow Serving's versioned V1 path)",
                "parameters": [_NAME, _VERSION_TARGET],
                "responses": {**versioned_ready, **_errors("405")},
            },
            "post": {
                "operationId": "v1_version_predict",
                "summary": "Predict with one version: POST /v1/models/{name}/versions/{n}:predict",
                "parameters": [_NAME, _VERSION_TARGET, REQUEST_ID_PARAMETER],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("V1Request")}},
                },
                "responses": with_request_id(
                    {**_ok(_ref("V1Response")), **_errors("400", "404", "413", "429", "503", "504")}
                ),
            },
        },
        **_openai_paths(),
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {"description": "Prometheus text format", "content": {"text/plain": {}}}
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": _ok({"type": "object"}),
            }
        },
    }
    _secure(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aiaas inference server",
            "version": version,
            "description": __doc__,
        },
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **_OPENAI_SCHEMAS, **EXPLAIN_SCHEMAS},
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An aiaas API key (aiaas_<id>_<secret>), unless AIAAS_AUTH is off.",
                }
            },
        },
    }


_AUTH_DESCRIPTIONS = {
    "401": "Missing, malformed, unknown, revoked or expired API key: send 'authorization: Bearer <key>'.",
    "403": "The key's role may not do this (a viewer key predicting, an inference key reading /metrics).",
}


def _secure(paths: dict[str, Any]) -> None:
    """Declare the bearer key, and its 401 and 403, on every operation that needs one."""
    for path, operations in paths.items():
        if path in OPEN_PATHS:  # the key check's own list (serving/auth.py)
            continue
        schema = _ref("OpenAIError") if path.startswith("/openai/") else _ERROR
        for operation in operations.values():
            operation["security"] = [{"apiKey": []}]
            operation["responses"].update(
                _errors("401", "403", schema=schema, descriptions=_AUTH_DESCRIPTIONS)
            )


# -- the OpenAI-compatible API (serving/openai_api.py) -----------------------------------------
#
# Its errors are OpenAI's shape, not the Open Inference Protocol's. The bodies are described as
# loosely as the server reads them: fields it does not know are ignored, as OpenAI does, and the
# rules no schema states (a deployment of that name, a prompt within the context) are 400s and
# 404s that name the field.

_OPENAI_DESCRIPTIONS = {
    "400": "Invalid request: `error.param` names the field, `error.message` what was expected.",
    "404": "No deployment of that name (`error.code` is `model_not_found`).",
    "405": "The path exists but not with this method; `Allow` lists the methods it takes.",
    "413": "The body is over AIAAS_MAX_REQUEST_BYTES.",
    "429": "The model's queue is full, or the key is over its request rate; retry after `Retry-After` "
    "seconds.",
    "503": "Not loaded yet, or no room to load the model now; retry after `Retry-After` seconds.",
    "504": "The request did not finish within the deployment's timeout_s.",
}
_MODEL_FIELD = {"type": "string", "minLength": 1, "description": "A deployment's name."}
_OPENAI_SCHEMAS: dict[str, Any] = {
    "OpenAIError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    },
    "OpenAIModel": {
        "type": "object",
        "required": ["id", "object", "owned_by"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "model"},
            "owned_by": {"type": "string"},
        },
    },
    "CompletionRequest": {
        "type": "object",
        "required": ["model", "prompt"],
        "properties": {
            "model": _MODEL_FIELD,
            "prompt": {
                "description": "A string, a list of strings, a list of token ids or a list of such lists."
            },
            "stream": {"type": "boolean"},
        },
    },
    "ChatCompletionRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": _MODEL_FIELD,
            "messages": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            "stream": {"type": "boolean"},
        },
    },
    "EmbeddingRequest": {
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": _MODEL_FIELD,
            "input": {"description": "A non-empty string or list of strings."},
            "encoding_format": {"enum": ["float", "base64"]},
        },
    },
}


def _openai_errors(*statuses: str) -> dict[str, Any]:
    return _errors(*statuses, schema=_ref("OpenAIError"), descriptions=_OPENAI_DESCRIPTIONS)


def _openai_post(operation: str, summary: str, request: str, *, streams: bool) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if streams:
        content["text/event-stream"] = {
            "schema": {"type": "string"},
            "description": 'With `"stream": true`: server-sent events, one chunk each, '
            "ending in `data: [DONE]`.",
        }
    return {
        "post": {
            "operationId": operation,
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
            "responses": {
                "200": {"description": "OK", "content": content},
                **_openai_errors("400", "404", "413", "429", "503", "504"),
            },
        }
    }


def _openai_paths() -> dict[str, Any]:
    """The OpenAI-compatible routes; any other path under ``/openai`` is an OpenAI-shaped 404."""
    return {
        "/openai/v1/models": {
            "get": {
                "operationId": "openai_list_models",
                "summary": "Language and embedding models served (deployments of model folders)",
                "responses": {
                    **_ok(
                        {
                            "type": "object",
                            "required": ["object", "data"],
                            "properties": {
                                "object": {"const": "list"},
                                "data": {"type": "array", "items": _ref("OpenAIModel")},
                            },
                        }
                    ),
                    **_openai_errors("405", "503"),
                },
            }
        },
        "/openai/v1/models/{model}": {
            "get": {
                "operationId": "openai_get_model",
                "summary": "One language or embedding model",
                "parameters": [_path_parameter("model", "A language or embedding model's deployment.")],
                "responses": {**_ok(_ref("OpenAIModel")), **_openai_errors("404", "405")},
            }
        },
        "/openai/v1/embeddings": _openai_post(
            "openai_embeddings", "Embeddings of texts", "EmbeddingRequest", streams=False
        ),
        "/openai/v1/completions": _openai_post(
            "openai_completions", "Text completion", "CompletionRequest", streams=True
        ),
        "/openai/v1/chat/completions": _openai_post(
            "openai_chat_completions", "Chat completion", "ChatCompletionRequest", streams=True
        ),
    }
