"""Limits on the free-form JSON and text users store: one definition for every domain.

Tags, metrics, params, lineage and descriptions are stored as given. Unbounded, one record
could be stored and then break every read that includes it: a value nested 256 deep was
accepted and committed, and from then on ``GET /api/v1/models`` answered 500 for everyone,
because the JSON encoder of the response gives up at that depth. So each value is checked
here *before* anything is written (a 400 naming the field, the limit and what was sent),
and what is read back is passed through :func:`readable_json`, so that a record stored
before these limits existed cannot break a read either. Lone UTF-16 surrogates
(``"\\ud800"``) are refused for the same reason: JSON parsers accept them, no response
encoder can write them back.

The limits are far above what real metadata needs (MLflow allows 5,000-8,000 characters per
tag or param value; nobody nests tags 32 deep) and far below what breaks a reader.
"""

from __future__ import annotations

from typing import Any

from aiaas.errors import InvalidArgument, PayloadTooLarge

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_LINEAGE_BYTES",
    "MAX_TEXT_CHARS",
    "check_json",
    "check_text",
    "readable_json",
    "readable_text",
]

#: Deepest nesting of objects and arrays in one stored JSON value (``{"a": 1}`` is depth 1).
MAX_JSON_DEPTH = 32
#: Largest stored JSON value a user gives (tags, metrics, params, metadata), as UTF-8 JSON.
MAX_JSON_BYTES = 256 * 1024
#: Largest lineage of a version: it carries the training data's reference statistics, one
#: entry per feature, so it is allowed more room than hand-written metadata.
MAX_LINEAGE_BYTES = 16 * 1024 * 1024
#: Longest stored free text (descriptions, sources), in characters.
MAX_TEXT_CHARS = 64 * 1024

#: What stands in for a part of a stored value nested deeper than :data:`MAX_JSON_DEPTH`.
TOO_DEEP = f"<removed: nested deeper than {MAX_JSON_DEPTH} levels>"


def check_json(value: Any, field: str, *, max_bytes: int = MAX_JSON_BYTES) -> None:
    """Refuse a JSON value that is not plain JSON, nests too deep or is too large.

    Walks the value without recursion, so even a value nested a million deep is refused
    with a message instead of a ``RecursionError``.

    Args:
        value: the value about to be stored (``None`` passes: "not given").
        field: its name in the request, for the message (``tags``, ``metrics``).
        max_bytes: the size limit, counted as the compact JSON text would be.

    Raises:
        InvalidArgument: nested deeper than :data:`MAX_JSON_DEPTH`, or holding something
            JSON cannot carry (a non-string key, an object of another type).
        PayloadTooLarge: larger than ``max_bytes``.
    """
    if value is None:
        return
    size = 0
    stack: list[tuple[Any, int, str]] = [(value, 0, field)]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth + 1 > MAX_JSON_DEPTH:
                raise InvalidArgument(
                    f"{field} is nested deeper than {MAX_JSON_DEPTH} levels of objects and arrays "
                    f"(at {where}); flatten it, e.g. use keys such as 'a.b.c'",
                    details={"field": field, "limit": MAX_JSON_DEPTH, "at": where},
                )
            size += 2
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise InvalidArgument(
                            f"{field} must have string keys; got key {key!r} at {where}",
                            details={"field": field, "at": where},
                        )
                    size += _utf8_size(key, field, where) + 4
                    stack.append((child, depth + 1, f"{where}.{key}"))
            else:
                for i, child in enumerate(item):
                    size += 1
                    stack.append((child, depth + 1, f"{where}[{i}]"))
        elif isinstance(item, str):
            size += _utf8_size(item, field, where) + 2
        elif item is None or isinstance(item, bool):
            size += 5
        elif isinstance(item, int):
            size += len(str(item)) if abs(item) < 10**100 else 101
        elif isinstance(item, float):
            size += 24
        else:
            raise InvalidArgument(
                f"{field} must hold only JSON values (objects, arrays, strings, numbers, booleans, "
                f"null); got {type(item).__name__} at {where}",
                details={"field": field, "at": where},
            )
        if size > max_bytes:
            raise PayloadTooLarge(
                f"{field} is larger than the limit of {max_bytes} bytes of JSON; store large data "
                "as an artifact (a dataset or a model file) and keep a reference to it here",
                details={"field": field, "limit": max_bytes},
            )


def check_text(value: Any, field: str, *, max_chars: int = MAX_TEXT_CHARS) -> None:
    """Refuse free text that is not a string or is longer than ``max_chars`` characters.

    Raises:
        InvalidArgument: not a string. PayloadTooLarge: too long.
    """
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidArgument(
            f"{field} must be a string; got {type(value).__name__}", details={"field": field}
        )
    if len(value) > max_chars:
        raise PayloadTooLarge(
            f"{field} is {len(value)} characters long, over the limit of {max_chars}; shorten it",
            details={"field": field, "limit": max_chars},
        )
    _utf8_size(value, field, field)


def _utf8_size(text: str, field: str, where: str) -> int:
    """The UTF-8 size of ``text``, refusing lone surrogates (``"\\ud800"`` in JSON): they
    parse, but no response could ever encode them again."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidArgument(
            f"{field} holds a lone UTF-16 surrogate ({text[exc.start]!r}) at {where}, which is not "
            "text; send valid Unicode (escape pairs such as \\ud83d\\ude00 must come in pairs)",
            details={"field": field, "at": where},
        ) from None


def readable_json(value: Any) -> Any:
    """``value`` as stored, with any part nested deeper than :data:`MAX_JSON_DEPTH` replaced,
    and lone surrogates in its strings replaced by U+FFFD.

    New values never hold either (:func:`check_json`); this is for records stored before
    the limits existed, so that one of them cannot break a read of everything around it.
    The common case (nothing wrong) returns ``value`` itself after one walk.
    """
    if _readable(value, MAX_JSON_DEPTH):
        return value
    return _repair(value, MAX_JSON_DEPTH)


def readable_text(value: str) -> str:
    """Stored text with lone surrogates replaced by U+FFFD (see :func:`readable_json`)."""
    return value if _encodable(value) else _fix_text(value)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fix_text(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _readable(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return False
        elif isinstance(item, dict | list):
            if depth + 1 > limit:
                return False
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
    return True


def _repair(value: Any, levels: int) -> Any:
    # Recursion is bounded by MAX_JSON_DEPTH: below that, containers are replaced.
    if isinstance(value, str):
        return readable_text(value)
    if not isinstance(value, dict | list):
        return value
    if levels == 0:
        return TOO_DEEP
    if isinstance(value, dict):
        return {readable_text(k): _repair(v, levels - 1) for k, v in value.items()}
    return [_repair(v, levels - 1) for v in value]
