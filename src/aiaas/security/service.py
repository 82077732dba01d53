"""Making, listing and revoking API keys: what ``/api/v1/keys`` and ``aiaas keys`` do."""

from __future__ import annotations

import datetime as dt
import math

from aiaas.entities.projects import DEFAULT_PROJECT
from aiaas.entities.security import ApiKey, Principal, Role
from aiaas.errors import InvalidArgument, NotFound, PermissionDenied
from aiaas.security.keys import generate_key
from aiaas.store import check_name
from aiaas.store.keys import KeyStore

__all__ = ["KeyService"]


class KeyService:
    """API keys, with the rules of who may make which."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store

    def create(
        self,
        caller: Principal,
        *,
        name: str,
        role: Role,
        project: str | None = None,
        deployments: list[str] | None = None,
        expires_at: dt.datetime | None = None,
        all_projects: bool = False,
        rate_limit: float | None = None,
        rate_burst: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret (the only time the secret is seen).

        An admin key of a project makes keys of that project; the platform admin key makes
        keys of any project (``default`` when none is named), and with ``all_projects`` a
        viewer key of every project.

        Raises:
            InvalidArgument: a bad name, an inference key without deployments, deployments on
                another role, an expiry in the past, a negative rate or burst, or a key of
                every project not a viewer.
            NotFound: a project admin naming another project (as if it did not exist).
            PermissionDenied: a key of every project asked by another key than the platform
                admin key.
        """
        check_name(name, field="name")
        _check_rate(rate_limit, rate_burst)
        rate = (rate_limit, rate_burst)
        if all_projects:
            return self._all_projects_viewer(
                caller, name=name, role=role, project=project, expires_at=expires_at, rate=rate
            )
        if caller.project is not None and project not in (None, caller.project):
            raise NotFound(f"project {project!r} not found", details={"field": "project"})
        project = project or caller.project or DEFAULT_PROJECT
        check_name(project, field="project")
        return self._add(name, role, project, self._scope(role, deployments), _future(expires_at), rate)

    def _all_projects_viewer(
        self,
        caller: Principal,
        *,
        name: str,
        role: Role,
        project: str | None,
        expires_at: dt.datetime | None,
        rate: tuple[float | None, int | None],
    ) -> tuple[ApiKey, str]:
        """A read-only key of every project: what a monitoring system needs for ``/metrics``
        (which names every project's deployments) without the platform admin key's power."""
        if caller.project is not None or caller.role is not Role.admin:
            raise PermissionDenied(
                "only the platform admin key makes keys of every project",
                details={"field": "all_projects", "role": caller.role.value},
            )
        if role is not Role.viewer:
            raise InvalidArgument(
                f"a key of every project is a viewer key; got role {role.value!r}",
                details={"field": "role", "value": role.value},
            )
        if project is not None:
            raise InvalidArgument(
                "a key of every project names no project", details={"field": "project", "value": project}
            )
        return self._add(name, role, None, None, _future(expires_at), rate)

    @staticmethod
    def _scope(role: Role, deployments: list[str] | None) -> frozenset[str] | None:
        scope: frozenset[str] | None = None
        if role is Role.inference:
            if not deployments:
                raise InvalidArgument(
                    "an inference key needs the deployments it may call: deployments=[NAME, ...]",
                    details={"field": "deployments"},
                )
            for deployment in deployments:
                check_name(deployment, field="deployments")
            scope = frozenset(deployments)
        elif deployments:
            raise InvalidArgument(
                f"deployments are for role 'inference' only; a {role.value} key reaches every deployment "
                "of its project",
                details={"field": "deployments"},
            )
        return scope

    def _add(
        self,
        name: str,
        role: Role,
        project: str | None,
        scope: frozenset[str] | None,
        expires_at: dt.datetime | None,
        rate: tuple[float | None, int | None],
    ) -> tuple[ApiKey, str]:
        rate_limit, rate_burst = rate
        new = generate_key()
        key = self.store.add(
            key_id=new.key_id,
            secret_hash=new.secret_hash,
            last4=new.last4,
            name=name,
            role=role,
            project=project,
            deployments=scope,
            expires_at=expires_at,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
        )
        return key, new.key

    def list(self, caller: Principal, *, include_revoked: bool = False) -> list[ApiKey]:
        """The keys the caller may see: its project's, or every one for the platform admin key."""
        keys = self.store.all(include_revoked=include_revoked)
        return [k for k in keys if caller.project is None or k.project == caller.project]

    def revoke(self, caller: Principal, key_id: str) -> ApiKey:
        """Revoke a key of the caller's project (any, for the platform admin key).

        Raises:
            NotFound: no such key, or one of another project (not named, so no leak).
        """
        key = self.store.get(key_id)
        if caller.project is not None and key.project != caller.project:
            raise NotFound(f"no API key {key_id!r}", details={"field": "key_id", "value": key_id})
        return self.store.revoke(key_id)


def _future(expires_at: dt.datetime | None) -> dt.datetime | None:
    """The expiry, in UTC when it has no zone; one not in the future is refused."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=dt.UTC)
    if expires_at <= dt.datetime.now(dt.UTC):
        raise InvalidArgument(
            f"expires_at {expires_at.isoformat()} is not in the future",
            details={"field": "expires_at", "value": expires_at.isoformat()},
        )
    return expires_at


def _check_rate(rate_limit: float | None, rate_burst: int | None) -> None:
    """A key's own rate: requests/s >= 0 (0: unlimited), a burst >= 1."""
    if rate_limit is not None and not (rate_limit >= 0 and math.isfinite(rate_limit)):
        raise InvalidArgument(
            f"rate_limit must be a number of requests per second >= 0 (0: unlimited); got {rate_limit!r}",
            details={"field": "rate_limit", "value": repr(rate_limit)},
        )
    if rate_burst is not None and rate_burst < 1:
        raise InvalidArgument(
            f"rate_burst must be at least 1 request; got {rate_burst!r}",
            details={"field": "rate_burst", "value": rate_burst},
        )
