"""Who is calling: the roles a key may hold and the principal a request runs as.

Both servers and the store share these names (the store builds :class:`ApiKey` records, the
servers turn one into a :class:`Principal`), so they sit with the other plain entities,
below the store and the domains.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ANONYMOUS", "ApiKey", "Principal", "Role"]

#: The name of the principal of a request on a server with authentication off.
ANONYMOUS = "anonymous"


class Role(StrEnum):
    """What a key may do.

    ``viewer`` reads (GET) in its project; ``developer`` also writes models, datasets, jobs,
    deployments and alerts; ``admin`` also manages the keys of its project; ``inference``
    may only call the inference endpoints of its deployments.
    """

    viewer = "viewer"
    developer = "developer"
    admin = "admin"
    inference = "inference"


@dataclass(frozen=True)
class Principal:
    """The caller of one request, as its key says.

    Attributes:
        key_id: the key's public id (the part of the key before its secret); "" when anonymous.
        name: the key's name, for logs and the audit trail.
        project: the key's project; ``None`` for the platform admin key (every project).
        role: what it may do.
        deployments: for an inference key, the deployments it may call; ``None`` otherwise.
        rate_limit: the key's own request rate on the inference server (requests/s; 0:
            unlimited); ``None``: the server's default (``AIAAS_KEY_RATE_LIMIT``).
        rate_burst: the requests admitted at once on top of it; ``None``: the default.
    """

    key_id: str
    name: str
    project: str | None
    role: Role
    deployments: frozenset[str] | None = None
    rate_limit: float | None = None
    rate_burst: int | None = None

    @classmethod
    def anonymous(cls) -> Principal:
        """The principal of every request when authentication is off (``aiaas up --dev``)."""
        return cls(key_id="", name=ANONYMOUS, project=None, role=Role.admin)

    @property
    def actor(self) -> str:
        """Who to name in logs and the audit trail: the key's name and id."""
        return f"{self.name} ({self.key_id})" if self.key_id else self.name

    def may_call(self, deployment: str) -> bool:
        """Whether this principal may call the inference endpoints of ``deployment``."""
        if self.role is Role.inference:
            return self.deployments is not None and deployment in self.deployments
        return True


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret (only its hash is ever stored).

    Attributes:
        key_id: public id, unique; the key itself is ``aiaas_<key_id>_<secret>``.
        name: what it is for, unique.
        role: what it may do.
        project: ``None`` for a platform key (every project).
        deployments: for an inference key, the deployments it may call.
        created_at: when it was made.
        expires_at: when it stops working; ``None``: never.
        revoked_at: when it was revoked; ``None``: it was not.
        last4: the last four characters of the secret, to tell keys apart in a list.
        rate_limit: requests/s on the inference server (0: unlimited); ``None``: the default.
        rate_burst: requests admitted at once; ``None``: the default.
    """

    key_id: str
    name: str
    role: Role
    project: str | None
    deployments: frozenset[str] | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last4: str
    rate_limit: float | None = None
    rate_burst: int | None = None

    def principal(self) -> Principal:
        """The principal a request made with this key runs as."""
        return Principal(
            self.key_id,
            self.name,
            self.project,
            self.role,
            self.deployments,
            rate_limit=self.rate_limit,
            rate_burst=self.rate_burst,
        )

    def usable(self, now: dt.datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
