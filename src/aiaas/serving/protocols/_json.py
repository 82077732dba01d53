"""JSON parsing shared by the protocol codecs, with errors a client can act on."""

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
        return array.astype(np.float32).reshape(-1)
    return np.ascontiguousarray(array).reshape(-1)


def rows(array: np.ndarray[Any, Any]) -> Any:
    """Row-shaped JSON data for the V1 protocol."""
    if array.dtype.kind in "OSU":
        return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])(
            array
        ).tolist()
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return np.ascontiguousarray(array)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
