"""Base model of the wire schemas."""

from __future__ import annotations

import math
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

__all__ = ["MAX_ID", "Wire", "WireIn"]

#: The largest id, version number or log sequence number: the databases store them as 32-bit
#: integers (PostgreSQL's INTEGER), so a larger value can never name anything, and sent to the
#: database it overflows the query. Refused with a 400 before it gets there.
MAX_ID = 2**31 - 1


class Wire(BaseModel):
    """A response body: read from the domain's frozen entities by attribute."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


class WireIn(BaseModel):
    """A request body: unknown fields are refused, so a typo never passes silently.

    Numbers must be finite anywhere in the body, free-form fields (tags, metrics, params)
    included: Python's JSON parser reads ``NaN``, ``Infinity`` and ``1e999`` (as infinity),
    none of which is JSON, and a stored one would make every later answer about the object
    unencodable. A ``true``/``false`` is refused where a number or text is expected (pydantic
    would read ``false`` as ``0``).
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

    @field_validator("*", mode="before")
    @classmethod
    def _bools_where_bools(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or value is None:
            return value
        kinds = _kinds(field.annotation)
        if isinstance(value, bool) and not kinds & {bool, Any}:
            raise ValueError(f"expected a number or text, not {str(value).lower()}")
        if kinds == {bool} and not isinstance(value, bool):
            raise ValueError(f"expected true or false; got {value!r}")
        return value


def _kinds(annotation: Any) -> set[Any]:
    """The plain types an annotation admits (``int | None`` gives ``{int}``), ``None`` left out."""
    args = get_args(annotation)
    if not args:
        return set() if annotation is type(None) else {annotation}
    return set().union(*(_kinds(arg) for arg in args))


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
