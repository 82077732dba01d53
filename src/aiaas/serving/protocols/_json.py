"""JSON parsing and writing shared by the protocol codecs, with errors a client can act on.

JSON has no NaN or infinity. A model output holding one is written as the string
``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` in its place (the Protocol Buffers JSON
mapping of floats, which the Open Inference Protocol's gRPC form shares), never as
``null`` (a missing value) and never as a bare ``NaN`` (not JSON at all). ``float()``,
``numpy`` and tritonclient's ``as_numpy`` read those strings back as the values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from aiaas.errors import InvalidArgument

__all__ = ["dumps", "flat_data", "loads_object"]


def loads_object(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"request body is not valid JSON: {exc}", details={"field": "body"}) from None
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"request body must be a JSON object; got {type(value).__name__}", details={"field": "body"}
        )
    return value


def flat_data(array: np.ndarray[Any, Any]) -> Any:
    """A flat, JSON-ready view of ``array`` (orjson serialises numpy arrays natively)."""
    if array.dtype.kind in "OSU":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return _non_finite_as_text(array.reshape(-1))
    return np.ascontiguousarray(array).reshape(-1)


def rows(array: np.ndarray[Any, Any]) -> Any:
    """Row-shaped JSON data for the V1 protocol."""
    if array.dtype.kind in "OSU":
        return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])(
            array
        ).tolist()
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return _non_finite_as_text(array)
    return np.ascontiguousarray(array)


def _non_finite_as_text(array: np.ndarray[Any, Any]) -> Any:
    """Nested lists of the values, with NaN and infinities as their JSON-mapping strings.

    Finite values go through ``str`` of their numpy scalar, the shortest text that reads
    back as the same float32 (``0.1``, not ``0.10000000149011612``), as the numeric path
    prints them. A slow loop, but only for outputs that hold a non-finite value.
    """
    values = [_SPECIAL.get(str(v)) or float(str(v)) for v in array.reshape(-1)]
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(array.shape).tolist()


_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
