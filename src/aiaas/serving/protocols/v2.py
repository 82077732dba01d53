"""KServe V2 / Open Inference Protocol, JSON form.

Request:  ``{"id"?, "parameters"?, "inputs": [{name, datatype, shape, data}], "outputs"?: [{name}]}``
Response: ``{"model_name", "model_version", "id"?, "outputs": [{name, datatype, shape, data}]}``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument
from aiaas.formats import Signature, datatype_of, decode_tensors
from aiaas.serving.protocols._json import dumps, flat_data, loads_object

__all__ = ["V2Request", "decode_v2", "encode_v2"]


@dataclass
class V2Request:
    inputs: dict[str, np.ndarray[Any, Any]]
    outputs: list[str] | None = None
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def decode_v2(body: bytes, signature: Signature) -> V2Request:
    """Parse and check an inference request against the model's signature.

    Raises:
        InvalidArgument: naming the field that is wrong and what was expected.
    """
    req = loads_object(body)
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidArgument(
            "inputs must be a non-empty list of tensors {name, datatype, shape, data}",
            details={"field": "inputs"},
        )
    arrays = decode_tensors(inputs, field="inputs")
    signature.check_inputs(arrays)
    request_id = req.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidArgument("id must be a string", details={"field": "id"})
    parameters = req.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidArgument("parameters must be an object", details={"field": "parameters"})
    return V2Request(
        inputs=arrays,
        outputs=_requested_outputs(req.get("outputs"), signature),
        id=request_id,
        parameters=parameters,
    )


def _requested_outputs(outputs: Any, signature: Signature) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(isinstance(o, Mapping) and "name" in o for o in outputs):
        raise InvalidArgument("outputs must be a list of objects with a name", details={"field": "outputs"})
    known = signature.output_names()
    names = [o["name"] for o in outputs]
    for name in names:
        if name not in known:
            raise InvalidArgument(
                f"unknown output {name!r}; this model returns {known}",
                details={"field": "outputs", "value": name, "expected": known},
            )
    return names or None


def encode_v2(
    model_name: str, model_version: int, results: Mapping[str, np.ndarray[Any, Any]], request_id: str | None
) -> bytes:
    body: dict[str, Any] = {"model_name": model_name, "model_version": str(model_version)}
    if request_id is not None:
        body["id"] = request_id
    body["outputs"] = [
        {"name": name, "datatype": datatype_of(a), "shape": list(a.shape), "data": flat_data(a)}
        for name, a in results.items()
    ]
    return dumps(body)
