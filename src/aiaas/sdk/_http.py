"""HTTP plumbing of the SDK: one place that turns error responses back into exceptions."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from aiaas.errors import Unavailable, error_class, error_class_for_status

__all__ = ["raise_for_error", "request"]


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


def request(http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send a request; an unreachable server becomes :class:`Unavailable` naming the URL.

    ``url`` is a path with names put in as they are, and its query goes in ``params``: a
    ``?``, ``#`` or ``%`` in it can only come from a name, so it is escaped, and the server
    answers with its naming rule rather than routing a truncated path (a 405).
    """
    url = url.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    try:
        response = http.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        base = f"{http.base_url}".rstrip("/")
        raise Unavailable(
            f"cannot reach {base}: {exc or type(exc).__name__}; is the server running (aiaas up)?",
            details={"url": base},
        ) from None
    raise_for_error(response)
    return response
