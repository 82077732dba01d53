"""The binary tensor data extension of KServe V2, as Triton and tritonclient speak it.

Request: the body is a V2 JSON object of ``Inference-Header-Content-Length`` bytes followed
by raw tensor data. An input with ``"parameters": {"binary_data_size": N}`` takes the next
N bytes, in the order the inputs are listed; inputs without it keep their JSON ``data``.

Raw data is little-endian and row-major, without padding. A BOOL element is one byte (0 or
1); a BYTES element is a 4-byte little-endian length followed by that many bytes.

Response: outputs asked for with ``"parameters": {"binary_data": true}`` (or every output
when the request sets ``"parameters": {"binary_data_output": true}``) carry
``"parameters": {"binary_data_size": N}`` instead of ``data``, and their bytes follow the
JSON object in the order of ``outputs``.

The JSON object of a request goes through the same checks as a JSON-only request
(:func:`~aiaas.serving.protocols.v2.checked_request` and
:func:`~aiaas.formats.decode_tensors`): raw bytes are turned into flat arrays first and
then take the JSON path's place as ``data``.
"""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument
from aiaas.formats import Signature, datatype_of, decode_tensors, numpy_dtype
from aiaas.serving.protocols._json import dumps, flat_data, loads_object
from aiaas.serving.protocols.v2 import V2Request, checked_request, response_head, tensor_list

__all__ = [
    "BINARY_HEADER",
    "BINARY_MEDIA_TYPE",
    "decode_binary_v2",
    "encode_binary_v2",
    "parse_header_length",
    "tensor_bytes",
]

#: Request and response header giving the size in bytes of the JSON object that starts the body.
BINARY_HEADER = "Inference-Header-Content-Length"
#: Content type of a response that carries binary outputs (Triton sends the same).
BINARY_MEDIA_TYPE = "application/octet-stream"

_LENGTH = struct.Struct("<I")
_LITTLE_ENDIAN = sys.byteorder == "little"


def parse_header_length(value: str) -> int:
    """The JSON header size from the ``Inference-Header-Content-Length`` header value.

    Raises:
        InvalidArgument: the value is not a non-negative decimal integer.
    """
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise InvalidArgument(
            f"{BINARY_HEADER} must be a non-negative integer, the size in bytes of the JSON "
            f"object that starts the body; got {value!r}",
            details={"field": BINARY_HEADER, "value": value},
        )
    return int(text)


def decode_binary_v2(body: bytes, json_length: int, signature: Signature) -> V2Request:
    """Parse and check a request body of the binary tensor data extension.

    Args:
        body: the whole request body.
        json_length: the value of the ``Inference-Header-Content-Length`` header.
        signature: what the model takes and returns.

    Raises:
        InvalidArgument: naming the tensor or field that is wrong and what was expected.

    Example:
        >>> head = b'{"inputs": [{"name": "x", "datatype": "INT64", "shape": [1],'
        >>> head += b' "parameters": {"binary_data_size": 8}}]}'
        >>> body = head + (7).to_bytes(8, "little")
        >>> decode_binary_v2(body, len(head), signature).inputs["x"]  # doctest: +SKIP
        array([7])
    """
    if json_length > len(body):
        raise InvalidArgument(
            f"{BINARY_HEADER} is {json_length} but the body has only {len(body)} bytes; it must "
            "give the size of the JSON object that starts the body",
            details={"field": BINARY_HEADER, "value": json_length, "expected": len(body)},
        )
    req = loads_object(body[:json_length])
    tensors = tensor_list(req)
    view = memoryview(body)
    offset = json_length
    decoded: list[Any] = []
    for i, tensor in enumerate(tensors):
        size = _binary_size(tensor, i)
        if size is None:
            decoded.append(tensor)
            continue
        remaining = len(body) - offset
        if size > remaining:
            raise InvalidArgument(
                f"input {_label(tensor, i)} declares binary_data_size {size} but only {remaining} "
                "bytes of tensor data are left in the body",
                details={"field": f"inputs[{i}].parameters.binary_data_size", "value": size},
            )
        decoded.append({**tensor, "data": _from_bytes(tensor, i, view[offset : offset + size])})
        offset += size
    if offset != len(body):
        declared = offset - json_length
        raise InvalidArgument(
            f"{len(body) - offset} bytes follow the tensor data: the inputs' binary_data_size add "
            f"up to {declared} bytes, but the body holds {len(body) - json_length} bytes after the "
            f"{json_length}-byte JSON object",
            details={"field": "body", "expected": declared, "value": len(body) - json_length},
        )
    arrays = decode_tensors(decoded, field="inputs")
    return checked_request(req, arrays, signature)


def encode_binary_v2(
    model_name: str,
    model_version: int,
    results: Mapping[str, np.ndarray[Any, Any]],
    request_id: str | None,
    binary_outputs: frozenset[str],
    classes: Mapping[str, Sequence[Any]] | None = None,
) -> tuple[bytes, int]:
    """Encode a response whose ``binary_outputs`` travel as raw bytes after the JSON object;
    ``classes`` as in :func:`~aiaas.serving.protocols.v2.encode_v2`.

    Returns:
        The body, and the size of its JSON object (the ``Inference-Header-Content-Length``).
    """
    head = response_head(model_name, model_version, request_id)
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, array in results.items():
        tensor: dict[str, Any] = {"name": name, "datatype": datatype_of(array), "shape": list(array.shape)}
        parameters: dict[str, Any] = {"classes": classes[name]} if classes and name in classes else {}
        if parameters:
            tensor["parameters"] = parameters
        if name in binary_outputs:
            raw = tensor_bytes(array)
            tensor["parameters"] = {**parameters, "binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = flat_data(array)
        outputs.append(tensor)
    head["outputs"] = outputs
    json = dumps(head)
    return b"".join([json, *chunks]), len(json)


def tensor_bytes(array: np.ndarray[Any, Any]) -> bytes:
    """The raw form of a tensor: little-endian and row-major; BYTES as length-prefixed strings."""
    if array.dtype.kind in "OSU":
        parts: list[bytes] = []
        for value in array.reshape(-1):
            data = value if isinstance(value, bytes) else str(value).encode()
            parts.append(_LENGTH.pack(len(data)))
            parts.append(data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _binary_size(tensor: Any, i: int) -> int | None:
    """``binary_data_size`` of an input, or ``None`` for an input sent as JSON ``data``."""
    if not isinstance(tensor, Mapping):
        return None  # decode_tensors names the problem
    parameters = tensor.get("parameters")
    size = parameters.get("binary_data_size") if isinstance(parameters, Mapping) else None
    if size is None:
        if "data" not in tensor:
            raise InvalidArgument(
                f"inputs[{i}] has neither data nor parameters.binary_data_size; give its values "
                "as JSON data or its size in bytes as binary_data_size",
                details={"field": f"inputs[{i}]"},
            )
        return None
    where = f"inputs[{i}].parameters.binary_data_size"
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArgument(
            f"{where} must be a non-negative integer (bytes); got {size!r}",
            details={"field": where, "value": size},
        )
    if "data" in tensor:
        raise InvalidArgument(
            f"inputs[{i}] has both data and parameters.binary_data_size; send its values one way",
            details={"field": f"inputs[{i}]"},
        )
    return size


def _from_bytes(tensor: Mapping[str, Any], i: int, raw: memoryview) -> np.ndarray[Any, Any]:
    """The flat array that ``raw`` holds; the shape is checked by ``decode_tensors`` after."""
    for key in ("name", "datatype", "shape"):
        if key not in tensor:
            raise InvalidArgument(f"inputs[{i}].{key} is required", details={"field": f"inputs[{i}].{key}"})
    label = _label(tensor, i)
    datatype = tensor["datatype"]
    dtype = numpy_dtype(datatype, field=f"inputs[{i}].datatype")
    if dtype.kind == "O":
        return _strings(raw, label, f"inputs[{i}]")
    count = _element_count(tensor["shape"])
    if count is not None and len(raw) != count * dtype.itemsize:
        raise InvalidArgument(
            f"input {label}: shape {tensor['shape']} of {datatype} needs {count * dtype.itemsize} "
            f"bytes ({count} values of {dtype.itemsize} bytes); binary_data_size is {len(raw)}",
            details={"field": f"inputs[{i}].parameters.binary_data_size", "value": len(raw)},
        )
    if len(raw) % dtype.itemsize:
        raise InvalidArgument(
            f"input {label}: binary_data_size {len(raw)} is not a multiple of the {dtype.itemsize}-byte "
            f"size of {datatype}",
            details={"field": f"inputs[{i}].parameters.binary_data_size", "value": len(raw)},
        )
    if dtype.kind == "b":
        octets = np.frombuffer(raw, dtype=np.uint8)
        if octets.size and octets.max() > 1:
            raise InvalidArgument(
                f"input {label}: BOOL bytes must be 0 (false) or 1 (true); got {int(octets.max())}",
                details={"field": f"inputs[{i}]", "expected": "0 or 1"},
            )
        return octets.view(np.bool_)
    array: np.ndarray[Any, Any] = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    if not _LITTLE_ENDIAN:
        array = array.astype(dtype)
    # The data starts wherever the JSON object ends; ONNX Runtime wants aligned buffers.
    return array if array.flags.aligned else array.copy()


def _strings(raw: memoryview, label: str, where: str) -> np.ndarray[Any, Any]:
    """BYTES elements (4-byte length, then the bytes) as text, which is what models receive."""
    values: list[str] = []
    offset = 0
    end = len(raw)
    while offset < end:
        if offset + _LENGTH.size > end:
            raise InvalidArgument(
                f"input {label}: BYTES data ends inside the 4-byte length of element {len(values)}",
                details={"field": where},
            )
        (size,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if size > end - offset:
            raise InvalidArgument(
                f"input {label}: BYTES element {len(values)} declares {size} bytes but only "
                f"{end - offset} are left in its binary_data_size",
                details={"field": where},
            )
        try:
            values.append(str(raw[offset : offset + size], "utf-8"))
        except UnicodeDecodeError:
            raise InvalidArgument(
                f"input {label}: BYTES element {len(values)} is not valid UTF-8; models here "
                "take strings as text",
                details={"field": where},
            ) from None
        offset += size
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _element_count(shape: Any) -> int | None:
    """Values a valid shape holds; ``None`` for an invalid one, which decode_tensors refuses."""
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        return None
    return math.prod(shape)


def _label(tensor: Mapping[str, Any], i: int) -> str:
    name = tensor.get("name")
    return repr(name) if isinstance(name, str) else f"inputs[{i}]"
