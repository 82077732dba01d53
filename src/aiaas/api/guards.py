"""What every control-plane request must satisfy before a router sees it.

:class:`RequestGuard` is an ASGI middleware that enforces, on every endpoint:

* a **body size limit**: ``AIAAS_MAX_API_BODY_BYTES`` for JSON and any other body, and the
  upload limits (``AIAAS_MAX_UPLOAD_BYTES``, ``AIAAS_MAX_DATASET_BYTES``, plus
  :data:`FORM_OVERHEAD_BYTES` for the other form fields) for the two multipart upload
  endpoints. A declared ``Content-Length`` over the limit is refused before a byte is read;
  a chunked or lying body is cut off once it passes the limit. 413 either way.
* a **body read timeout**: the next chunk of a body must arrive within
  ``AIAAS_BODY_READ_TIMEOUT_S``, and the whole body within that time plus one second per
  MiB (:data:`MIN_BODY_RATE_BYTES_S`), so a stalled or trickling client cannot hold a
  connection and its buffers forever. 408, and the connection is closed.
* **no encoded slash in a path**: ``%2F`` decodes to ``/`` before routing, which would make
  ``models/a%2Fb`` a different route (or a 405). No name, alias or version holds a ``/``, so
  such a path is a 400 that names the rule.

Limits are checked as the body is read (the receive channel is wrapped), so endpoints
read their bodies as usual and never see more than the limit.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiaas.api.errors import RejectedRequest, error_response
from aiaas.config import Settings
from aiaas.errors import AiaasError, InvalidArgument, PayloadTooLarge, RequestTimeout

__all__ = ["FORM_OVERHEAD_BYTES", "MIN_BODY_RATE_BYTES_S", "RequestGuard", "body_limit"]

#: Room for the form fields that come beside an uploaded file (metadata, target, ...).
FORM_OVERHEAD_BYTES = 1024 * 1024
#: Slowest average rate a body may arrive at, past the first ``body_read_timeout_s``.
MIN_BODY_RATE_BYTES_S = 1024 * 1024

_MODEL_UPLOAD = re.compile(r"^/api/v1/models/[^/]+/versions/?$")
_DATASET_UPLOAD = re.compile(r"^/api/v1/datasets/[^/]+/versions/?$")
_ENCODED_SLASH = re.compile(rb"%2f", re.IGNORECASE)


def body_limit(settings: Settings, scope: Scope) -> tuple[int, str]:
    """The largest body this request may have, and the setting that says so."""
    if scope.get("method") == "POST" and _content_type(scope) == "multipart/form-data":
        path = scope.get("path", "")
        if _MODEL_UPLOAD.match(path):
            return settings.max_upload_bytes + FORM_OVERHEAD_BYTES, "AIAAS_MAX_UPLOAD_BYTES"
        if _DATASET_UPLOAD.match(path):
            return settings.max_dataset_bytes + FORM_OVERHEAD_BYTES, "AIAAS_MAX_DATASET_BYTES"
    return settings.max_api_body_bytes, "AIAAS_MAX_API_BODY_BYTES"


class RequestGuard:
    """The body limits, body read timeout and path check described in this module.

    Args:
        app: the application to guard.
        settings: where the limits and the timeout come from.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self, app: ASGIApp, *, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.settings = settings
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _encoded_slash(scope)
        if problem is not None:
            await error_response(problem)(scope, receive, send)
            return
        limit, setting = body_limit(self.settings, scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await error_response(_too_large(declared, limit, setting), {"connection": "close"})(
                scope, receive, send
            )
            return
        await self.app(scope, self._guarded(receive, limit, setting, declared), send)

    def _guarded(self, receive: Receive, limit: int, setting: str, declared: int | None) -> Receive:
        timeout_s = self.settings.body_read_timeout_s
        expected = declared if declared is not None else limit
        received = 0
        done = False
        deadline: float | None = None

        async def guarded() -> Message:
            nonlocal received, done, deadline
            if done:  # the body is in; later calls wait for a disconnect, which may take long
                return await receive()
            now = self.clock()
            if deadline is None:
                deadline = now + timeout_s + expected / MIN_BODY_RATE_BYTES_S
            wait_s = min(timeout_s, deadline - now)
            try:
                if wait_s <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), wait_s)
            except TimeoutError:
                raise RejectedRequest(_too_slow(received, timeout_s)) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RejectedRequest(_too_large(received, limit, setting))
                done = not message.get("more_body", False)
            else:
                done = True
            return message

        return guarded


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def _content_type(scope: Scope) -> str:
    value = _header(scope, b"content-type") or b""
    return value.split(b";")[0].strip().lower().decode("latin-1")


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    if value is None or not value.strip().isdigit():
        return None  # uvicorn has refused a malformed one already
    return int(value)


def _encoded_slash(scope: Scope) -> AiaasError | None:
    raw = scope.get("raw_path") or b""
    path = raw.split(b"?", 1)[0]
    if not _ENCODED_SLASH.search(path):
        return None
    segments = [unquote(s.decode("latin-1")) for s in path.split(b"/")]
    bad = next(s for s in segments if "/" in s)
    return InvalidArgument(
        f"path segment {bad!r} contains '/': names of models, datasets, deployments and aliases are "
        "letters, digits, '-', '_' and '.', starting with a letter or digit",
        details={"field": "path", "value": bad},
    )


def _too_large(size: int, limit: int, setting: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body of {size} bytes or more exceeds the limit of {limit} bytes ({setting})",
        details={"field": "body", "limit": limit, "setting": setting},
    )


def _too_slow(received: int, timeout_s: float) -> RequestTimeout:
    return RequestTimeout(
        f"the request body stopped arriving after {received} bytes: each part must come within "
        f"{timeout_s:g} s and the whole body within that plus 1 s per MiB (AIAAS_BODY_READ_TIMEOUT_S)",
        details={"field": "body", "received_bytes": received, "timeout_s": timeout_s},
    )
