"""Base model of the wire schemas."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["INT64_MAX", "Wire", "WireIn"]

#: The largest id or version number: the databases store them as signed 64-bit integers, so a
#: larger value can never name anything (and would overflow the query); refused with a 400.
INT64_MAX = 2**63 - 1


class Wire(BaseModel):
    """A response body: read from the domain's frozen entities by attribute."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


class WireIn(BaseModel):
    """A request body: unknown fields are refused, so a typo never passes silently.

    Numbers must be finite anywhere in the body, free-form fields (tags, metrics, params)
    included: Python's JSON parser reads ``NaN``, ``Infinity`` and ``1e999`` (as infinity),
    none of which is JSON, and a stored one would make every later answer about the object
    unencodable.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _finite_numbers(cls, data: Any) -> Any:
        where = _non_finite(data, ())
        if where is not None:
            path = ".".join(map(str, where)) or "body"
            raise ValueError(f"{path}: numbers must be finite (NaN and infinity are not JSON)")
        return data


def _non_finite(value: Any, path: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The path of the first NaN or infinite float in a decoded JSON value, else ``None``."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _non_finite(item, (*path, i))
            if found is not None:
                return found
    return None
