"""HTTP plumbing of the SDK: one place that turns failures back into exceptions.

Two kinds: an error response becomes the platform exception it stands for (the server
wrote its code into the body), and a request that never got a response (nothing listens
on the port, the host is unknown, no answer in time) becomes
:class:`~aiaas.errors.Unavailable` at once, naming the server, its URL and the reason, so a
wrong port reads as a wrong port and not as a slow server.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from aiaas.errors import Unavailable, error_class, error_class_for_status
from aiaas.tls import CA_SETTING, verification_failure
from aiaas.translate import invalid_argument

__all__ = [
    "CONTROL_PLANE",
    "INFERENCE_SERVER",
    "Server",
    "raise_for_error",
    "request",
    "request_body",
    "send",
]

_Body = TypeVar("_Body", bound=BaseModel)


@dataclass(frozen=True)
class Server:
    """Which server a client talks to, for messages: its name and how to point at another one.

    ``prefix`` is the path its API lives under, left out of the URL a message shows (the
    user gave the server's URL, not its API's).
    """

    name: str
    hint: str
    prefix: str = ""


CONTROL_PLANE = Server(
    "the control plane",
    "start it with `aiaas up`, or give its URL (url=, --url or AIAAS_CONTROL_PLANE_URL)",
    prefix="/api/v1",
)
INFERENCE_SERVER = Server(
    "the inference server",
    "`aiaas up` starts it; if it listens elsewhere, give its URL "
    "(inference_url=, --inference-url or AIAAS_INFERENCE_URL)",
)


def raise_for_error(response: httpx.Response) -> None:
    """Raise the platform exception an error response stands for; return on success."""
    if response.is_success:
        return
    try:
        body: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "code" in error:
        cls = error_class(str(error["code"]))
        raise cls(str(error.get("message", "")), details=error.get("details") or {})
    message = error if isinstance(error, str) else response.text[:500] or response.reason_phrase
    cls = error_class_for_status(response.status_code)
    raise cls(f"{message} (HTTP {response.status_code} from {response.request.url})")


def send(http: httpx.Client, method: str, url: str, *, server: Server, **kwargs: Any) -> httpx.Response:
    """Send a request and return whatever response comes back, error statuses included.

    ``url`` is a path with names put in as they are, and its query goes in ``params``: a
    ``?``, ``#`` or ``%`` in it can only come from a name, so it is escaped, and the server
    answers with its naming rule rather than routing a truncated path (a 405).

    Raises:
        Unavailable: no response at all; the message names ``server``, its URL and why
            (``connection refused`` when nothing listens there), and ``details`` has
            ``url`` and ``reason``.
    """
    url = url.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    try:
        return http.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        base = f"{http.base_url}".rstrip("/").removesuffix(server.prefix)
        reason = _reason(exc)
        unverified = verification_failure(exc)
        if unverified is not None:
            message = (
                f"cannot verify the TLS certificate of {server.name} at {base}: "
                f"{unverified.verify_message or unverified.reason}; if a CA of your own signed it (or it "
                f"is self-signed), give that CA's certificate file: {CA_SETTING}"
            )
        elif base.startswith("https://") and _tls_refused(exc):
            message = (
                f"no TLS handshake with {server.name} at {base}: {reason}; if it serves plain HTTP "
                "(no AIAAS_TLS_CERT_FILE), use an http:// URL"
            )
        elif isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            message = f"cannot connect to {server.name} at {base}: {reason}; is it running? {server.hint}"
        elif base.startswith("http://") and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            message = (
                f"no answer from {server.name} at {base}: {reason.rstrip('.')}; if it serves HTTPS "
                "(AIAAS_TLS_CERT_FILE), use an https:// URL, else retry or check its log"
            )
        else:
            message = f"no answer from {server.name} at {base}: {reason}; retry, or check its log"
        raise Unavailable(message, details={"url": base, "reason": reason}) from None


def request(
    http: httpx.Client, method: str, url: str, *, server: Server = CONTROL_PLANE, **kwargs: Any
) -> httpx.Response:
    """:func:`send`, then :func:`raise_for_error`: a successful response, or an exception."""
    response = send(http, method, url, server=server, **kwargs)
    raise_for_error(response)
    return response


def _tls_refused(exc: BaseException) -> bool:
    """Whether the TLS handshake itself failed (a plain HTTP server answers one so)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _reason(exc: httpx.TransportError) -> str:
    """What went wrong, in words: the OS error under httpx's, when there is one."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return f"unknown host ({cause.strerror or cause})"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return str(exc) or type(exc).__name__


def request_body(schema: type[_Body], /, **fields: Any) -> _Body:
    """A request body built from plain values or schema objects; a value the schema refuses
    becomes :class:`InvalidArgument` naming the field, as the server would answer it."""
    values = {
        k: v.model_dump(exclude_unset=True) if isinstance(v, BaseModel) else v for k, v in fields.items()
    }
    if isinstance(values.get("traffic"), Sequence):
        values["traffic"] = [
            r.model_dump(exclude_unset=True) if isinstance(r, BaseModel) else r for r in values["traffic"]
        ]
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        raise invalid_argument(exc, what="request") from None
