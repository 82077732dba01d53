"""Check one setting's value against its pydantic field, with an error naming the field.

Why not let pydantic validate: the deployment service is called in-process too (the CLI's
tests, the inference server's own tools), and its answers name the field the way a user
wrote it (``batching.max_batch_size must be an integer from 1 to 4096; got 0``), with the
value in ``details``, the same for every client. These checks read the type, the bounds and
the keys from the field itself, so a setting's range is written once, in its definition
(:mod:`aiaas.schemas.deployment_settings`), and the wire schema and this check agree.
"""

from __future__ import annotations

import json
import math
import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from aiaas.errors import InvalidArgument

__all__ = ["bounds", "check_object", "check_value", "invalid", "jsonable", "optional"]


def invalid(field: str, rule: str, value: Any, **details: Any) -> InvalidArgument:
    """``{field} {rule}; got {value!r}``, with the field and the value in the details."""
    return InvalidArgument(
        f"{field} {rule}; got {value!r}", details={"field": field, "value": jsonable(value), **details}
    )


def jsonable(value: Any) -> Any:
    """``value`` if the error's JSON can carry it, else its repr (details go over the wire)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return repr(value)


def bounds(info: FieldInfo) -> dict[str, Any]:
    """The field's numeric bounds as keywords: ``{"ge": 1, "le": 64}``."""
    out: dict[str, Any] = {}
    for item in info.metadata:
        for key in ("ge", "gt", "le", "lt"):
            if isinstance(item, getattr(annotated_types, key.capitalize())):
                out[key] = getattr(item, key)
    return out


def check_value(field: str, value: Any, info: FieldInfo) -> Any:
    """``value`` checked against ``info`` (a bool, an int or float within bounds, one of a
    ``Literal``'s choices, or an object of a nested model), in its stored form.

    Raises:
        InvalidArgument: naming ``field``, what it must be and the value given.
    """
    kind = info.annotation
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return check_object(field, value, kind)
    if kind is bool:
        if not isinstance(value, bool):
            raise invalid(field, "must be true or false", value)
        return value
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        if value not in choices or isinstance(value, bool):
            raise invalid(field, f"must be one of {', '.join(map(str, choices))}", value)
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or not _within(value, info):
            raise invalid(field, f"must be an integer {_range(info)}", value)
        return value
    if kind is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or not _within(value, info):
            raise invalid(field, f"must be a number {_range(info)}", value)
        return float(value)
    raise TypeError(f"{field}: no check for a setting of type {kind!r}")  # a definition error


def check_object(field: str, value: Any, model: type[BaseModel]) -> dict[str, Any] | None:
    """A nested setting (e.g. ``batching``) as given: its keys checked, those left out (or
    null) dropped so they take their defaults; ``None`` when nothing is left."""
    if not isinstance(value, Mapping):
        example = json.dumps(model().model_dump())
        raise invalid(field, f"must be an object such as {example}", value)
    known = model.model_fields
    out: dict[str, Any] = {}
    for key, item in value.items():
        at = f"{field}.{key}"
        if key not in known:
            raise invalid(at, f"is not a known key (known: {', '.join(known)})", item)
        if item is not None:
            out[str(key)] = check_value(at, item, known[key])
    return out or None


def optional(annotation: Any) -> Any:
    """``annotation | None`` (for a request field that may be left out)."""
    if get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation):
        return annotation
    return annotation | None


def _within(value: float, info: FieldInfo) -> bool:
    b = bounds(info)
    return (
        ("ge" not in b or value >= b["ge"])
        and ("gt" not in b or value > b["gt"])
        and ("le" not in b or value <= b["le"])
        and ("lt" not in b or value < b["lt"])
    )


def _range(info: FieldInfo) -> str:
    """``from 1 to 64``, ``above 0 and at most 1``, ``at least 1``: the bounds in words."""
    b = bounds(info)
    if "ge" in b and "le" in b:
        return f"from {_num(b['ge'])} to {_num(b['le'])}"
    low = f"at least {_num(b['ge'])}" if "ge" in b else f"above {_num(b['gt'])}" if "gt" in b else ""
    high = f"at most {_num(b['le'])}" if "le" in b else f"below {_num(b['lt'])}" if "lt" in b else ""
    return " and ".join(p for p in (low, high) if p) or "(any)"


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"
