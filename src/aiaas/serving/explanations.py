"""The explain endpoints: ``POST /v1/models/{name}:explain`` and ``POST /v2/models/{name}/explain``.

They take the same bodies as ``:predict`` and ``/infer`` (decoded by the same codecs, so a
request means the same thing), plus optional ``parameters``: ``max_evals`` (model evaluations
per row) and ``seed`` (the permutations drawn; the same request gives the same answer). Both
answer one JSON body (KServe leaves an explainer's answer to the explainer)::

    {"model_name", "model_version", "id", "explainer": "permutation",
     "max_evals", "background_rows", "output", "output_columns", "feature_names",
     "explanations": [{"prediction": [..], "base_value": [..], "attributions": [[..], ..],
                       "predicted_class"?}], "compute_ms"}

Per row, ``attributions[k][f]`` is feature ``f``'s share of output column ``k`` (every class of
a classifier, in the order of ``output_columns``; a regressor has one column), and
``sum(attributions[k]) == prediction[k] - base_value[k]``.

The unversioned routes explain the deployment's primary version (not a weighted draw, so
repeated calls explain the same model); ``/versions/{n}`` pins one, refused like inference when
it is archived or deleted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aiaas.errors import InvalidArgument
from aiaas.explain import DEFAULT_MAX_EVALS, MAX_EVALS_LIMIT, MAX_EXPLAIN_ROWS, Attributions, min_evals
from aiaas.serving.explainers import Explainers, ExplainTarget
from aiaas.serving.pool import LoadedVersion, ModelPool
from aiaas.serving.projects import deployment_key, plain_name
from aiaas.serving.protocols import decode_v1, decode_v2
from aiaas.serving.protocols._json import dumps, loads_object
from aiaas.serving.request_ids import REQUEST_ID_HEADER, REQUEST_ID_KEY, REQUEST_ID_PARAMETER

__all__ = ["EXPLAIN_SCHEMAS", "ExplainEndpoints", "explain_paths"]

Endpoint = Callable[[Request], Awaitable[Response]]
_JSON = "application/json"

#: The ``parameters`` an explain request may carry (the OpenAPI document shows them).
_PARAMETERS: dict[str, Any] = {
    "max_evals": {
        "type": "integer",
        "maximum": MAX_EVALS_LIMIT,
        "description": f"Model evaluations per row: at least 2 x features + 1, at most {MAX_EVALS_LIMIT}; "
        f"default {DEFAULT_MAX_EVALS} (or the minimum, if larger).",
    },
    "seed": {"type": "integer", "minimum": 0, "description": "Seeds the permutations (default 0)."},
}
_FLOATS = {"type": "array", "items": {"type": "number"}}
#: The answer of both explain endpoints.
_EXPLANATION: dict[str, Any] = {
    "type": "object",
    "required": ["model_name", "model_version", "explainer", "feature_names", "explanations"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "explainer": {"type": "string", "enum": ["permutation"]},
        "max_evals": {"type": "integer"},
        "background_rows": {"type": "integer"},
        "output": {"type": "string", "description": "The model output explained."},
        "output_columns": {"type": "array", "description": "Class labels, or the output's name."},
        "feature_names": {"type": "array", "items": {"type": "string"}},
        "explanations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["prediction", "base_value", "attributions"],
                "properties": {
                    "prediction": _FLOATS,
                    "base_value": _FLOATS,
                    "attributions": {
                        "type": "array",
                        "items": _FLOATS,
                        "description": "One list per output column, one value per feature.",
                    },
                    "predicted_class": {},
                },
            },
        },
        "compute_ms": {"type": "number"},
        "latency_ms": {"type": "number"},
    },
}


#: The OpenAPI schemas of the explain endpoints: an inference body (V2's or V1's) with
#: ``parameters`` of its own.
EXPLAIN_SCHEMAS: dict[str, Any] = {
    name: {
        "allOf": [
            {"$ref": f"#/components/schemas/{body}"},
            {"properties": {"parameters": {"type": "object", "properties": _PARAMETERS}}},
        ]
    }
    for name, body in (("ExplainRequest", "InferenceRequest"), ("V1ExplainRequest", "V1Request"))
} | {"Explanation": _EXPLANATION}


def explain_paths(name: dict[str, Any], version: dict[str, Any], responses: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI paths of the explain routes (``name`` and ``version``: their path parameters)."""

    def post(operation: str, summary: str, body: str, *parameters: dict[str, Any]) -> dict[str, Any]:
        schema = {"$ref": f"#/components/schemas/{body}"}
        return {
            "post": {
                "operationId": operation,
                "summary": summary,
                "parameters": [*parameters, REQUEST_ID_PARAMETER],
                "requestBody": {"required": True, "content": {_JSON: {"schema": schema}}},
                "responses": responses,
            }
        }

    primary = "Feature attributions for rows (the primary version; same inputs as infer)"
    pinned = "Feature attributions for rows, from one version"
    return {
        "/v2/models/{name}/explain": post("model_explain", primary, "ExplainRequest", name),
        "/v2/models/{name}/versions/{version}/explain": post(
            "model_version_explain", pinned, "ExplainRequest", name, version
        ),
        "/v1/models/{name}:explain": post("v1_explain", primary, "V1ExplainRequest", name),
        "/v1/models/{name}/versions/{version}:explain": post(
            "v1_version_explain", pinned, "V1ExplainRequest", name, version
        ),
    }


class ExplainEndpoints:
    """The explain endpoints of one inference server.

    Args:
        models: the model pool the versions come from.
        read_body: reads a request body, refusing it past ``max_bytes``.
        max_bytes: the server's request size limit.
        version_number: parses a ``{version}`` path segment (400 when it is not a number).
        version_header: the response header naming the version that answered.
    """

    def __init__(
        self,
        models: ModelPool,
        read_body: Callable[[Request, int], Awaitable[bytes]],
        max_bytes: int,
        version_number: Callable[[str], int],
        version_header: str,
    ) -> None:
        self.models = models
        #: The explanation workers (stopped by :meth:`close`).
        self.explainers = Explainers(models.deployments.registry)
        self._read_body = read_body
        self.max_bytes = max_bytes
        self.version_number = version_number
        self.version_header = version_header

    def close(self) -> None:
        """Stop the explanation workers."""
        self.explainers.close()

    def routes(self, guard: Callable[[Endpoint], Endpoint]) -> list[Route]:
        """The routes, V1's to be placed before V1's ``/v1/models/{target}`` (which would take
        ``{name}:explain`` as a target)."""
        return [
            Route("/v2/models/{name}/explain", guard(self.v2), methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}/explain", guard(self.v2), methods=["POST"]),
            Route("/v1/models/{name}:explain", guard(self.v1), methods=["POST"]),
            Route("/v1/models/{name}/versions/{version}:explain", guard(self.v1), methods=["POST"]),
        ]

    async def _loaded(self, name: str, version: str | None) -> LoadedVersion:
        if version is None:
            return self.models.route(name).primary
        return await asyncio.to_thread(self.models.get_version, name, self.version_number(version))

    async def v2(self, request: Request) -> Response:
        """``POST /v2/models/{name}[/versions/{v}]/explain``: a V2 inference body."""
        loaded = await self._loaded(
            deployment_key(request, request.path_params["name"]), request.path_params.get("version")
        )
        body = await self._read_body(request, self.max_bytes)
        decoded = await asyncio.to_thread(decode_v2, body, loaded.signature)
        return await self._explain(request, loaded, decoded.inputs, decoded.parameters, decoded.id)

    async def v1(self, request: Request) -> Response:
        """``POST /v1/models/{name}[/versions/{v}]:explain``: a V1 body, ``parameters`` beside
        ``instances`` or ``inputs``."""
        loaded = await self._loaded(
            deployment_key(request, request.path_params["name"]), request.path_params.get("version")
        )
        body = await self._read_body(request, self.max_bytes)
        decoded = await asyncio.to_thread(decode_v1, body, loaded.signature)
        parameters = loads_object(body).get("parameters") or {}
        if not isinstance(parameters, dict):
            raise InvalidArgument("parameters must be an object", details={"field": "parameters"})
        return await self._explain(request, loaded, decoded.inputs, parameters, None)

    async def _explain(
        self,
        request: Request,
        loaded: LoadedVersion,
        inputs: dict[str, np.ndarray[Any, Any]],
        parameters: dict[str, Any],
        client_id: str | None,
    ) -> Response:
        started = time.perf_counter()
        request_id: str = request.scope[REQUEST_ID_KEY]
        target = await asyncio.to_thread(
            self.explainers.target, loaded.model, loaded.version, loaded.artifact_digest, loaded.signature
        )
        rows = inputs[target.input_name]
        if rows.shape[0] < 1:
            raise InvalidArgument("inputs: no rows to explain", details={"field": "inputs"})
        if rows.shape[0] > MAX_EXPLAIN_ROWS:
            raise InvalidArgument(
                f"inputs: {rows.shape[0]} rows exceed the limit of {MAX_EXPLAIN_ROWS} rows per explanation "
                "(MAX_EXPLAIN_ROWS); send fewer rows per request",
                details={"field": "inputs", "limit": MAX_EXPLAIN_ROWS, "value": int(rows.shape[0])},
            )
        fewest = min_evals(len(target.feature_names))
        max_evals = _int_parameter(
            parameters, "max_evals", max(DEFAULT_MAX_EVALS, fewest), fewest, MAX_EVALS_LIMIT
        )
        seed = _int_parameter(parameters, "seed", 0, 0, 2**32 - 1)
        result = await self.explainers.explain(target.task(rows, max_evals, seed))
        body = _answer(loaded, target, result, max_evals, client_id or request_id)
        body["compute_ms"] = round(result.compute_s * 1000, 3)
        body["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        headers = {self.version_header: str(loaded.version), REQUEST_ID_HEADER: request_id}
        return Response(dumps(body), media_type=_JSON, headers=headers)


def _int_parameter(parameters: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = parameters.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(
            f"parameters.{name} must be an integer from {low} to {high}; got {orjson.dumps(value).decode()}",
            details={"field": f"parameters.{name}", "expected": [low, high]},
        )
    return value


def _answer(
    loaded: LoadedVersion, target: ExplainTarget, result: Attributions, max_evals: int, request_id: str
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for r in range(result.values.shape[0]):
        row: dict[str, Any] = {
            "prediction": result.predictions[r].tolist(),
            "base_value": result.base_values[r].tolist(),
            "attributions": result.values[r].T.tolist(),
        }
        if target.classes:
            row["predicted_class"] = target.output_columns[int(np.argmax(result.predictions[r]))]
        rows.append(row)
    return {
        "model_name": plain_name(loaded.deployment),
        "model_version": str(loaded.version),
        "id": request_id,
        "explainer": "permutation",
        "max_evals": max_evals,
        "background_rows": int(target.background.shape[0]),
        "output": target.output_name,
        "output_columns": list(target.output_columns),
        "feature_names": list(target.feature_names),
        "explanations": rows,
    }
