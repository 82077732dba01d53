"""Request ids: the key that ties an inference answer to its prediction-log row and feedback.

Every inference answer carries one in its ``x-request-id`` header (and V2 in its body's
``id``). A client's own ``x-request-id`` is echoed when it is a sane token, 1 to 128 printable
ASCII characters without spaces (safe in a header, a log line and a Parquet column as it is);
anything else is replaced by a fresh id rather than refused, as nginx and Envoy do.

This runs on every inference request, so it works on the raw ASGI header list: scanning it and
drawing 16 random bytes cost well under a microsecond each, much less than building
Starlette's ``Headers`` or a ``uuid.UUID`` (the hex form has a uuid4's ``.hex`` length).
"""

from __future__ import annotations

import os
import re
from typing import Any

from starlette.types import Scope

__all__ = [
    "REQUEST_ID_HEADER",
    "REQUEST_ID_KEY",
    "REQUEST_ID_PARAMETER",
    "request_id_of",
    "with_request_id",
]

#: Request and response header carrying the request id.
REQUEST_ID_HEADER = "x-request-id"
#: Where an inference endpoint finds its request id in the ASGI scope (set by its guard).
REQUEST_ID_KEY = "aiaas.request_id"

_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_SANE_ID = re.compile(rb"[\x21-\x7e]{1,128}")


def request_id_of(scope: Scope) -> str:
    """The client's ``x-request-id`` when it is a sane token, else a fresh random one (32 hex
    digits)."""
    for key, value in scope["headers"]:
        if key == _HEADER_BYTES:
            if _SANE_ID.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return os.urandom(16).hex()


# -- its part of the OpenAPI document (serving/openapi.py) ---------------------------------

#: The ``x-request-id`` request header of the inference operations. Any string is taken (a
#: value that is not a sane token is replaced, not refused), so the schema states no more.
REQUEST_ID_PARAMETER: dict[str, Any] = {
    "name": "x-request-id",
    "in": "header",
    "required": False,
    "description": "Your id for this request: echoed in the answer's x-request-id header when it "
    "is 1 to 128 printable ASCII characters without spaces; otherwise the server makes one "
    "(32 hex digits). The key of the prediction log and of feedback.",
    "schema": {"type": "string"},
}
_REQUEST_ID_HEADER = {
    "description": "The request id: yours when sane, else one the server made. Send it with "
    "feedback (POST /api/v1/deployments/{name}/feedback on the control plane).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
}


def with_request_id(responses: dict[str, Any]) -> dict[str, Any]:
    """``responses`` with the x-request-id header on each: required on a 200 (every answer
    carries one), optional on errors (one refused before its endpoint runs carries none)."""
    return {
        status: {**r, "headers": {"x-request-id": {**_REQUEST_ID_HEADER, "required": status == "200"}}}
        for status, r in responses.items()
    }
