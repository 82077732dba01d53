"""The inference server's wire schemas (tensors, V2 and V1 bodies) for its OpenAPI document
(:mod:`aiaas.serving.openapi`): the data, kept apart from the paths that use it."""

from __future__ import annotations

from typing import Any

from aiaas.formats import DATATYPES

__all__ = ["SCHEMAS"]

_NUMBER_OR_TEXT = {
    "description": "A number, bool or string; NaN and infinities of outputs as the strings "
    '"NaN", "Infinity", "-Infinity".',
}


def _tensor(data: dict[str, Any]) -> dict[str, Any]:
    """A V2 tensor (a request's input or an answer's output), its ``data`` as given."""
    return {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string", "enum": [*DATATYPES]},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "data": data,
            "parameters": {
                "type": "object",
                "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
            },
        },
    }


_TENSOR_IN = _tensor(
    {
        "description": "The values, flat or nested, row-major; absent when the tensor travels as "
        "binary data (parameters.binary_data_size). Each must fit the datatype, or it is a 400.",
    }
)
_TENSOR_OUT = _tensor({"type": "array", "items": _NUMBER_OR_TEXT})

_TENSOR_META = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}},
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "What went wrong and how to fix it."}},
    },
    "InferenceRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {
                "type": "object",
                "properties": {"binary_data_output": {"type": "boolean"}},
            },
            "inputs": {"type": "array", "minItems": 1, "items": _TENSOR_IN},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "parameters": {
                            "type": "object",
                            "properties": {"binary_data": {"type": "boolean"}},
                        },
                    },
                },
            },
        },
    },
    "InferenceResponse": {
        "type": "object",
        "required": ["model_name", "model_version", "id", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {
                "type": "string",
                "description": "The request's id field when it sent one, else the request id "
                "(the x-request-id header of the answer).",
            },
            "outputs": {"type": "array", "items": _TENSOR_OUT},
        },
    },
    "ModelMetadata": {
        "type": "object",
        "required": ["name", "versions", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The versions the deployment serves now: the primary first, then its "
                "canaries and its shadow (for a versioned path, that version).",
            },
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _TENSOR_META},
            "outputs": {"type": "array", "items": _TENSOR_META},
            "parameters": {
                "type": "object",
                "description": "How the deployment is served now: routes, shadow, batching, limits "
                "and replicas.",
            },
        },
    },
    "Ready": {
        "type": "object",
        "required": ["ready"],
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    },
    "Stats": {
        "type": "object",
        "required": ["model_stats"],
        "properties": {"model_stats": {"type": "array", "items": {"type": "object"}}},
    },
    "V1Request": {
        "type": "object",
        "description": 'Exactly one of "instances" (rows) or "inputs" (columns).',
        "properties": {
            "instances": {"type": "array", "minItems": 1},
            "inputs": {"description": "A tensor, or {input_name: tensor}."},
        },
    },
    "V1Response": {
        "type": "object",
        "description": '"predictions" for rows, "outputs" for columns.',
        "properties": {"predictions": {"type": "array"}, "outputs": {}},
    },
}
