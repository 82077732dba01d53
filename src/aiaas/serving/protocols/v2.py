"""KServe V2 / Open Inference Protocol, JSON form.

Request:  ``{"id"?, "parameters"?, "inputs": [{name, datatype, shape, data}], "outputs"?: [{name}]}``
Response: ``{"model_name", "model_version", "id"?, "outputs": [{name, datatype, shape, data}]}``

A classifier's score output also carries ``"parameters": {"classes": [...]}``: the class
label of each of its columns, as the version's signature records them.

The checks of a request's JSON object (:func:`tensor_list`, :func:`checked_request`) are
shared with the binary tensor data extension in :mod:`~aiaas.serving.protocols.binary`,
so a request means the same thing whichever way its tensors travel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument
from aiaas.formats import Signature, datatype_of, decode_tensors
from aiaas.serving.protocols._json import dumps, flat_data, loads_object

__all__ = ["V2Request", "checked_request", "decode_v2", "encode_v2", "response_head", "tensor_list"]


@dataclass
class V2Request:
    """A checked V2 request.

    ``binary_outputs`` names the outputs the client asked to get back as binary data
    (the binary tensor data extension); it is empty for a plain JSON answer.
    """

    inputs: dict[str, np.ndarray[Any, Any]]
    outputs: list[str] | None = None
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    binary_outputs: frozenset[str] = frozenset()


def decode_v2(body: bytes, signature: Signature) -> V2Request:
    """Parse and check an inference request against the model's signature.

    Raises:
        InvalidArgument: naming the field that is wrong and what was expected.
    """
    req = loads_object(body)
    arrays = decode_tensors(tensor_list(req), field="inputs")
    return checked_request(req, arrays, signature)


def tensor_list(req: Mapping[str, Any]) -> list[Any]:
    """The request's ``inputs``, which must be a non-empty list."""
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidArgument(
            "inputs must be a non-empty list of tensors {name, datatype, shape, data}",
            details={"field": "inputs"},
        )
    return inputs


def checked_request(
    req: Mapping[str, Any], arrays: dict[str, np.ndarray[Any, Any]], signature: Signature
) -> V2Request:
    """Check decoded inputs and the rest of the request object (id, parameters, outputs).

    Raises:
        InvalidArgument: naming the field that is wrong and what was expected.
    """
    signature.check_inputs(arrays)
    request_id = req.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidArgument("id must be a string", details={"field": "id"})
    parameters = req.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidArgument("parameters must be an object", details={"field": "parameters"})
    requested = req.get("outputs")
    outputs = _requested_outputs(requested, signature)
    return V2Request(
        inputs=arrays,
        outputs=outputs,
        id=request_id,
        parameters=parameters,
        binary_outputs=_binary_outputs(parameters, requested, outputs, signature),
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


_NO_BINARY: frozenset[str] = frozenset()


def _binary_outputs(
    parameters: Mapping[str, Any], requested: Any, names: list[str] | None, signature: Signature
) -> frozenset[str]:
    """Outputs to send as binary data: ``binary_data`` per output, else ``binary_data_output``.

    ``requested`` has passed :func:`_requested_outputs`. Written for the common JSON request
    with no parameters at all, which costs a lookup or two here.
    """
    default = parameters.get("binary_data_output", False) if parameters else False
    if default is not False and default is not True:
        raise InvalidArgument(
            f"parameters.binary_data_output must be true or false; got {default!r}",
            details={"field": "parameters.binary_data_output", "value": default},
        )
    if names is None:
        return frozenset(signature.output_names()) if default else _NO_BINARY
    binary = []
    for i, output in enumerate(requested):
        options = output.get("parameters")
        if options is None:
            as_binary = default
        elif not isinstance(options, dict):
            raise InvalidArgument(
                f"outputs[{i}].parameters must be an object", details={"field": f"outputs[{i}].parameters"}
            )
        else:
            as_binary = options.get("binary_data", default)
            if as_binary is not False and as_binary is not True:
                where = f"outputs[{i}].parameters.binary_data"
                raise InvalidArgument(
                    f"{where} must be true or false; got {as_binary!r}",
                    details={"field": where, "value": as_binary},
                )
        if as_binary:
            binary.append(output["name"])
    return frozenset(binary) if binary else _NO_BINARY


def response_head(model_name: str, model_version: int, request_id: str | None) -> dict[str, Any]:
    """The fields of a response that come before its ``outputs``."""
    body: dict[str, Any] = {"model_name": model_name, "model_version": str(model_version)}
    if request_id is not None:
        body["id"] = request_id
    return body


def encode_v2(
    model_name: str,
    model_version: int,
    results: Mapping[str, np.ndarray[Any, Any]],
    request_id: str | None,
    classes: Mapping[str, Sequence[Any]] | None = None,
) -> bytes:
    """The JSON response; ``classes`` (output name → labels of its columns) become each such
    output's ``parameters.classes``."""
    body = response_head(model_name, model_version, request_id)
    outputs = []
    for name, a in results.items():
        tensor: dict[str, Any] = {"name": name, "datatype": datatype_of(a), "shape": list(a.shape)}
        if classes and name in classes:
            tensor["parameters"] = {"classes": classes[name]}
        tensor["data"] = flat_data(a)
        outputs.append(tensor)
    body["outputs"] = outputs
    return dumps(body)
