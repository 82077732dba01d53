"""The one place that turns the libraries' exceptions into the error tree of :mod:`aiaas.errors`.

pydantic's :class:`~pydantic.ValidationError` (a wire schema, a job spec, the settings, an SDK
argument), ONNX Runtime's and onnx's own exception types (a model that cannot load, an input it
refuses): each was read in its own place, and the copies answered the same mistake in different
words (one said which value it got, another did not; one put a validator's rule on its field,
another on the model). Here each library's exception is read once; callers say only what was
being validated.

SQLAlchemy's are translated where every transaction runs, :meth:`aiaas.store.Database.transaction`:
an outage is :class:`~aiaas.errors.Unavailable` there, a constraint is left to the repository that
knows what it means (a name taken, a number to allocate again).

Example:
    >>> from pydantic import BaseModel, ValidationError
    >>> class Spec(BaseModel):
    ...     epochs: int
    >>> try:
    ...     Spec.model_validate({"epochs": -1.5})
    ... except ValidationError as exc:
    ...     print(invalid_argument(exc, what="job spec").message)
    invalid job spec: epochs: Input should be a valid integer, got a number with a fractional part; got -1.5
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from aiaas.errors import InvalidArgument

if TYPE_CHECKING:
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

__all__ = [
    "MAX_INPUT_CHARS",
    "Problem",
    "invalid_argument",
    "invalid_model",
    "problems",
    "rejected_input",
    "unloadable_model",
]

#: The longest echo of a received value in an error message; a huge body is not repeated back.
MAX_INPUT_CHARS = 80
#: Where FastAPI says a request error was found; not part of the field's name.
_REQUEST_PARTS = frozenset({"body", "query", "path", "form", "header", "cookie"})
#: Error types whose message already says what is wrong with the value (no "; got ...").
_SELF_EXPLAINED = frozenset({"missing", "extra_forbidden", "value_error"})


class Problem(NamedTuple):
    """One bad field: its dotted path and what is wrong with it."""

    field: str
    message: str


def problems(errors: Iterable[Mapping[str, Any]], *, request: bool = False) -> list[Problem]:
    """The bad fields of pydantic's error list (``exc.errors()``), each with what was expected.

    A validator's rule that concerns one field (an error raised with ``field`` and ``rule``
    attributes, see :mod:`aiaas.schemas.training`) is put on that field. With ``request``, the
    part of the HTTP request FastAPI names first (``body``, ``query``...) is left out.
    """
    out = []
    for error in errors:
        loc = [str(p) for p in error["loc"]]
        if request:
            loc = [p for p in loc if p not in _REQUEST_PARTS]
        cause = (error.get("ctx") or {}).get("error")
        field, rule = getattr(cause, "field", None), getattr(cause, "rule", None)
        if isinstance(field, str) and isinstance(rule, str):
            loc, message = [*loc, field], rule
        elif error["type"] == "extra_forbidden":
            message = "is not a known field (check its spelling)"
        elif error["type"] == "missing":
            message = "is required"
        else:
            message = str(error["msg"])
            if "input" in error and error["type"] not in _SELF_EXPLAINED:
                message += f"; got {_short(error['input'])}"
        out.append(Problem(".".join(loc), message))
    return out


def invalid_argument(
    exc: ValidationError | RequestValidationError,
    *,
    what: str,
    prefix: str = "",
    default_field: str = "body",
    request: bool = False,
) -> InvalidArgument:
    """One :class:`InvalidArgument` naming every bad field of ``what`` was validated.

    The message reads ``invalid <what>: <field>: <problem>; ...``; ``details`` holds the first
    field and every problem as ``{"field", "message"}``.

    Args:
        exc: pydantic's error, or FastAPI's for a request.
        what: what was validated, for the message ("job spec", "request", "metadata").
        prefix: put before each field's path (``metadata`` for a form field holding JSON).
        default_field: the field named when the whole value is wrong (an empty path).
        request: the errors are FastAPI's, located in the request (see :func:`problems`).
    """
    found = [
        Problem(".".join(p for p in (prefix, field) if p) or default_field, message)
        for field, message in problems(exc.errors(), request=request)
    ]
    text = "; ".join(f"{p.field}: {p.message}" for p in found)
    return InvalidArgument(
        f"invalid {what}: {text}",
        details={
            "field": found[0].field if found else default_field,
            "errors": [p._asdict() for p in found],
        },
    )


def invalid_model(exc: Exception) -> InvalidArgument:
    """A model file that onnx or ONNX Runtime cannot read or check (their own exception types)."""
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    return InvalidArgument(f"file is not a valid ONNX model: {reason}", details={"field": "file"})


def unloadable_model(exc: Exception) -> InvalidArgument:
    """A model that passed onnx's checks but that ONNX Runtime cannot make a session of."""
    return InvalidArgument(f"ONNX Runtime cannot load this model: {exc}", details={"field": "file"})


def rejected_input(exc: Exception) -> InvalidArgument:
    """Inputs ONNX Runtime refused to run (its ``Fail``/``InvalidArgument`` types, or others)."""
    return InvalidArgument(f"the model rejected the input: {str(exc).strip()}", details={"field": "inputs"})


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_INPUT_CHARS else text[: MAX_INPUT_CHARS - 3] + "..."
