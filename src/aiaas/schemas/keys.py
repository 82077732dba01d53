"""API keys on the wire: what making one takes, and what is shown of one (never its secret,
except once, in the answer that makes it)."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from aiaas.entities.security import Role
from aiaas.schemas._base import Wire, WireIn

__all__ = ["ApiKey", "ApiKeyCreate", "ApiKeyCreated", "ApiKeyList"]


class ApiKeyCreate(WireIn):
    """A new key: its name and role, and for an inference key the deployments it may call."""

    name: str = Field(description="What the key is for (letters, digits, '.', '_', '-').")
    role: Role = Field(
        description="viewer (read), developer (read and write), admin (also manage keys) or inference "
        "(predict on the named deployments only)."
    )
    project: str | None = Field(
        default=None, description="The key's project; default: the caller's (`default` for the platform key)."
    )
    deployments: list[str] | None = Field(
        default=None, max_length=1000, description="For role inference: the deployments the key may call."
    )
    expires_at: dt.datetime | None = Field(
        default=None, description="When the key stops working (ISO 8601; UTC when no zone); default: never."
    )
    all_projects: bool = Field(
        default=False,
        description="A viewer key of every project (made by the platform admin key only): reads any "
        "project named with X-Aiaas-Project and /metrics on both servers, e.g. for Prometheus.",
    )
    rate_limit: float | None = Field(
        default=None,
        ge=0,
        description="The key's request rate on the inference server, in requests per second (0: "
        "unlimited); over it, 429 with Retry-After. Default: the server's AIAAS_KEY_RATE_LIMIT.",
    )
    rate_burst: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Requests admitted at once on top of the rate. Default: AIAAS_KEY_RATE_BURST.",
    )


class ApiKey(Wire):
    """A key as listed: its public id and settings, never its secret."""

    key_id: str = Field(description="The key's public id: the key is aiaas_<key_id>_<secret>.")
    name: str
    role: Role
    project: str | None = Field(description="null for the platform admin key (every project).")
    deployments: list[str] | None = Field(description="An inference key's deployments; null otherwise.")
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last4: str = Field(description="The key's last four characters, to tell keys apart.")
    rate_limit: float | None = Field(
        default=None, description="Requests/s on the inference server (0: unlimited); null: the default."
    )
    rate_burst: int | None = Field(default=None, description="Requests at once; null: the default.")


class ApiKeyCreated(ApiKey):
    """A key just made, with the key itself: shown this once, stored only hashed."""

    key: str = Field(description="The whole key, to send as 'Authorization: Bearer <key>'. Shown once.")


class ApiKeyList(Wire):
    keys: list[ApiKey]
