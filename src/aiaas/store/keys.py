"""API keys in the database: added with the hash of their secret, listed, revoked.

The store never sees a key's secret, only its SHA-256 (:mod:`aiaas.security.keys` says why
that hash is enough); :meth:`KeyStore.usable` hands the servers' key caches every key not
revoked, with its hash, in one read.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from aiaas.entities.security import ApiKey, Role
from aiaas.errors import AlreadyExists, NotFound
from aiaas.store.database import Database
from aiaas.store.tables import ApiKeyRow, utcnow

__all__ = ["KeyStore"]


class KeyStore:
    """Add, list, find and revoke API keys."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        *,
        key_id: str,
        secret_hash: str,
        last4: str,
        name: str,
        role: Role,
        project: str | None,
        deployments: frozenset[str] | None = None,
        expires_at: dt.datetime | None = None,
        rate_limit: float | None = None,
        rate_burst: int | None = None,
    ) -> ApiKey:
        """Store a new key by its public id and the hash of the whole key."""
        try:
            return self._add(
                ApiKeyRow(
                    key_id=key_id,
                    secret_hash=secret_hash,
                    last4=last4,
                    name=name,
                    role=role.value,
                    project=project,
                    deployments=sorted(deployments) if deployments is not None else None,
                    created_at=utcnow(),
                    expires_at=expires_at,
                    rate_limit=rate_limit,
                    rate_burst=rate_burst,
                )
            )
        except IntegrityError:
            raise AlreadyExists(
                f"an API key with id {key_id!r} exists", details={"field": "key_id", "value": key_id}
            ) from None

    def _add(self, row: ApiKeyRow) -> ApiKey:
        with self.db.transaction() as s:
            s.add(row)
            s.flush()
            return _entity(row)

    def all(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """Every key, oldest first; revoked ones only with ``include_revoked``."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.key_id)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        with self.db.transaction() as s:
            return [_entity(row) for row in s.scalars(query)]

    def get(self, key_id: str) -> ApiKey:
        """One key by its public id.

        Raises:
            NotFound: no key has that id.
        """
        with self.db.transaction() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"no API key {key_id!r}", details={"field": "key_id", "value": key_id})
            return _entity(row)

    def usable(self) -> list[tuple[ApiKey, str]]:
        """Every key not revoked, with the hex SHA-256 of the whole key (expiry is checked by the caller)."""
        with self.db.transaction() as s:
            rows = s.scalars(select(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None)))
            return [(_entity(row), row.secret_hash) for row in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key for good (idempotent: a revoked key stays revoked at its first time).

        Raises:
            NotFound: no key has that id.
        """
        with self.db.transaction() as s:
            s.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return self.get(key_id)


def _entity(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        name=row.name,
        role=Role(row.role),
        project=row.project,
        deployments=frozenset(row.deployments) if row.deployments is not None else None,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last4=row.last4,
        rate_limit=row.rate_limit,
        rate_burst=row.rate_burst,
    )
