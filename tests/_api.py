"""One way to check a control-plane error response, for every test that expects one."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["api_error"]


def api_error(
    response: httpx.Response, status: int, code: str, *, field: str | None = None
) -> dict[str, Any]:
    """The error of a response that must be ``status`` in the one error shape
    (``{"error": {"code", "message", "details"}}``) with ``code``; with ``field``, the error
    must also name that field, in ``details["field"]`` and in its message (a user reads the
    message, a program the details). Returns the error for further checks.
    """
    assert response.status_code == status, (
        f"expected {status} {code}, got {response.status_code}: {response.text[:2000]}"
    )
    assert response.headers["content-type"] == "application/json", response.headers
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    if field is not None:
        assert error["details"].get("field") == field, f"details do not name {field!r}: {error}"
        assert field in error["message"], f"the message does not name {field!r}: {error}"
    return error
