"""Input examples: stored with each version as JSON in the V2 tensor form.

The V2 form (name, datatype, shape, flat data) is chosen because it round-trips every
dtype exactly (a float32 example stays float32) and is what a client would send anyway.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument
from aiaas.formats.signature import datatype_name, datatype_of, numpy_dtype

__all__ = ["decode_tensors", "encode_tensors", "to_array"]


def encode_tensors(arrays: Mapping[str, np.ndarray[Any, Any]]) -> list[dict[str, Any]]:
    """Arrays → a list of V2 tensors with flat, JSON-ready ``data``."""
    out = []
    for name, array in arrays.items():
        datatype = datatype_of(array)
        flat = array.reshape(-1)
        if datatype == "BYTES":
            data: list[Any] = [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
        else:
            data = flat.tolist()
        out.append({"name": name, "datatype": datatype, "shape": list(array.shape), "data": data})
    return out


def decode_tensors(
    tensors: Sequence[Mapping[str, Any]], *, field: str = "inputs"
) -> dict[str, np.ndarray[Any, Any]]:
    """V2 tensors (flat or nested ``data``) → arrays, checking that data and shape agree.

    Raises:
        InvalidArgument: naming the tensor and what is wrong with it.
    """
    if not isinstance(tensors, list):
        raise InvalidArgument(
            f"{field} must be a list of tensors; got {type(tensors).__name__}",
            details={"field": field},
        )
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for i, t in enumerate(tensors):
        where = f"{field}[{i}]"
        if not isinstance(t, Mapping):
            raise InvalidArgument(f"{where} must be an object", details={"field": where})
        for key in ("name", "datatype", "shape", "data"):
            if key not in t:
                raise InvalidArgument(f"{where}.{key} is required", details={"field": f"{where}.{key}"})
        name = t["name"]
        if not isinstance(name, str):
            raise InvalidArgument(f"{where}.name must be a string", details={"field": f"{where}.name"})
        if name in arrays:
            raise InvalidArgument(f"input {name!r} is given twice", details={"field": where})
        shape = t["shape"]
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise InvalidArgument(
                f"{where}.shape must be a list of non-negative integers; got {shape!r}",
                details={"field": f"{where}.shape", "value": shape},
            )
        dtype = numpy_dtype(t["datatype"], field=f"{where}.datatype")
        arrays[name] = to_array(t["data"], dtype, shape, name=name)
    return arrays


def to_array(data: Any, dtype: np.dtype[Any], shape: list[int] | None, *, name: str) -> np.ndarray[Any, Any]:
    """Turn JSON data (flat or nested lists) into an array of ``dtype`` and ``shape``.

    numpy parses the nested lists in C, which is what keeps this cheap on the hot path.
    With ``shape=None`` the nesting of ``data`` gives the shape (the V1 protocol).

    Raises:
        InvalidArgument: naming the input and why its data does not fit.
    """
    datatype = datatype_name(dtype)
    try:
        try:
            raw = np.asarray(data, dtype=object if dtype.kind == "O" else None)
        except ValueError as exc:
            if "inhomogeneous" not in str(exc):
                raise
            # numpy's own words ("setting an array element with a sequence...") say nothing
            # to a client: nested rows of different lengths.
            raise ValueError("nested rows must all have the same length") from None
        if dtype.kind == "O":
            if not all(isinstance(v, str) for v in raw.reshape(-1)):
                raise ValueError("BYTES data must be strings")
            flat = raw
        elif dtype.kind == "b":
            if raw.size and raw.dtype != np.bool_:
                raise ValueError("BOOL data must be true or false")
            flat = raw.astype(np.bool_, copy=False)
        else:
            if raw.size and (raw.dtype.kind not in "iuf"):
                raise ValueError("data must be numbers")
            # An empty list parses as float64: no value is a non-integer, so it still fits.
            if dtype.kind in "iu" and raw.size and raw.dtype.kind == "f":
                # Integers past int64 (UINT64's upper half) beside small ones parse as
                # floats too: read them again as exact Python ints before refusing.
                exact = np.asarray(data, dtype=object)
                if not all(isinstance(v, int) for v in exact.reshape(-1)):
                    raise ValueError("data must be integers")
                raw = exact
            if dtype.kind in "iu" and raw.size:
                # Casting wraps silently (300 as UINT8 would become 44): refuse instead.
                info = np.iinfo(dtype)
                if raw.min() < info.min or raw.max() > info.max:
                    raise ValueError(f"values must lie in [{info.min}, {info.max}]")
            with np.errstate(over="ignore"):  # an overflow is refused just below, not warned about
                flat = raw.astype(dtype, copy=False)
            if dtype.kind == "f" and not isinstance(data, np.ndarray) and not np.isfinite(flat).all():
                # JSON holds no NaN or infinity, so a non-finite value here is one too large
                # for the datatype (1e300 as FP32), which would run as infinity.
                largest = float(np.finfo(dtype).max)
                raise ValueError(f"values must lie within +-{largest:.8g}, the range of {datatype}")
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidArgument(
            f"input {name!r}: data does not fit datatype {datatype}: {exc}",
            details={"field": name, "expected": datatype},
        ) from None
    if shape is None:
        if flat.dtype.kind == "O" and flat.ndim and any(isinstance(v, list) for v in flat.reshape(-1)):
            raise InvalidArgument(
                f"input {name!r}: rows must all have the same length", details={"field": name}
            )
        return flat
    expected = math.prod(shape)  # exact for any size; np.prod costs microseconds on a list
    if flat.size != expected:
        raise InvalidArgument(
            f"input {name!r}: shape {shape} needs {expected} values, data has {flat.size}",
            details={"field": name, "expected": expected, "value": int(flat.size)},
        )
    return flat.reshape(shape)
