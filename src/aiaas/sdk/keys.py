"""The SDK's part for API keys: make, list and revoke them (an admin key is needed).

A mixin of :class:`aiaas.Client`, like :mod:`.alerts`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx

from aiaas import schemas
from aiaas.sdk._http import request, request_body

__all__ = ["KeyMethods", "local_api_key"]


def local_api_key(path: Path) -> str | None:
    """The key in the admin key file the control plane's first start wrote (``<AIAAS_HOME>/admin.key``),
    or None when there is none or it cannot be read."""
    try:
        return path.read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


class KeyMethods:
    """Methods of :class:`aiaas.Client` over ``/api/v1/keys``."""

    _api: httpx.Client  # set by Client

    def _get(self, path: str, **kwargs: Any) -> httpx.Response:  # provided by Client
        raise NotImplementedError

    def create_key(
        self,
        name: str,
        *,
        role: str,
        project: str | None = None,
        deployments: list[str] | None = None,
        expires_at: dt.datetime | None = None,
        all_projects: bool = False,
        rate_limit: float | None = None,
        rate_burst: int | None = None,
    ) -> schemas.ApiKeyCreated:
        """Make an API key; its ``key`` (the secret) is in this answer only.

        Args:
            role: ``viewer``, ``developer``, ``admin`` or ``inference``.
            deployments: for an ``inference`` key, the deployments it may call.
            expires_at: when it stops working (default: never).
            all_projects: a viewer key of every project (for monitoring: ``/metrics``); the
                platform admin key only makes one.
            rate_limit: its request rate on the inference server, requests/s (0: unlimited;
                default: the server's ``AIAAS_KEY_RATE_LIMIT``); over it, 429 with Retry-After.
            rate_burst: requests admitted at once on top of it (default: ``AIAAS_KEY_RATE_BURST``).

        Raises:
            PermissionDenied: the client's key is not an admin key.
            InvalidArgument: an inference key without deployments, an expiry in the past...
        """
        body = request_body(
            schemas.ApiKeyCreate,
            name=name,
            role=role,
            project=project,
            deployments=deployments,
            expires_at=expires_at,
            all_projects=all_projects,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
        )
        response = request(
            self._api,
            "POST",
            "/keys",
            content=body.model_dump_json(exclude_none=True),
            headers={"content-type": "application/json"},
        )
        return schemas.ApiKeyCreated.model_validate_json(response.content)

    def list_keys(self, *, include_revoked: bool = False) -> list[schemas.ApiKey]:
        """The keys (never their secrets), revoked ones too with ``include_revoked``."""
        params = {"include_revoked": "true"} if include_revoked else {}
        return schemas.ApiKeyList.model_validate_json(self._get("/keys", params=params).content).keys

    def revoke_key(self, key_id: str) -> schemas.ApiKey:
        """Revoke a key by its public id; both servers refuse it within seconds."""
        return schemas.ApiKey.model_validate_json(request(self._api, "DELETE", f"/keys/{key_id}").content)
