"""``/api/v1/keys``: make, list and revoke API keys (admin keys only; see :mod:`aiaas.api.auth`).

A new key's secret is in the answer that makes it and nowhere else: the database keeps its
SHA-256 only. The key cache of this process is reloaded after each change, so a revoked key
is refused here at once, and by the inference server and other workers within
``AIAAS_AUTH_REFRESH_S``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from aiaas import schemas
from aiaas.api.deps import CurrentPrincipal, ServicesDep
from aiaas.entities.security import ApiKey
from aiaas.security import KeyCache, KeyService
from aiaas.store.keys import KeyStore

__all__ = ["router"]

router = APIRouter(prefix="/keys", tags=["keys"])

KeyId = Annotated[str, Path(max_length=32, description="The key's public id (aiaas_<key_id>_<secret>).")]


def _service(services: ServicesDep) -> KeyService:
    return KeyService(KeyStore(services.db))


def _refresh(request: Request) -> None:
    cache: KeyCache | None = getattr(request.app.state, "key_cache", None)
    if cache is not None:
        cache.refresh()


def _wire(key: ApiKey) -> dict[str, object]:
    deployments = sorted(key.deployments) if key.deployments is not None else None
    return {
        "key_id": key.key_id,
        "name": key.name,
        "role": key.role,
        "project": key.project,
        "deployments": deployments,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last4": key.last4,
        "rate_limit": key.rate_limit,
        "rate_burst": key.rate_burst,
    }


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Make an API key (its secret is shown in this answer only)",
    description="Role viewer, developer, admin, or inference with the deployments it may call; an "
    "optional expiry and an optional request rate on the inference server (`rate_limit`, "
    "`rate_burst`). An admin key of a project makes keys of that project only (another project "
    "is a 404, as if it did not exist); the platform admin key names any existing project.",
)
def create_key(
    body: schemas.ApiKeyCreate, services: ServicesDep, principal: CurrentPrincipal, request: Request
) -> schemas.ApiKeyCreated:
    if principal.project is None and body.project is not None:
        services.projects.get(body.project)  # a key of a project that does not exist: 404
    key, secret = _service(services).create(
        principal,
        name=body.name,
        role=body.role,
        project=body.project,
        deployments=body.deployments,
        expires_at=body.expires_at,
        all_projects=body.all_projects,
        rate_limit=body.rate_limit,
        rate_burst=body.rate_burst,
    )
    _refresh(request)
    return schemas.ApiKeyCreated(**_wire(key), key=secret)


@router.get("", summary="List API keys (never their secrets)")
def list_keys(
    services: ServicesDep,
    principal: CurrentPrincipal,
    include_revoked: Annotated[bool, Query(description="List revoked keys too.")] = False,
) -> schemas.ApiKeyList:
    keys = _service(services).list(principal, include_revoked=include_revoked)
    return schemas.ApiKeyList(keys=[schemas.ApiKey(**_wire(k)) for k in keys])


@router.delete("/{key_id}", summary="Revoke an API key: refused by both servers within seconds")
def revoke_key(
    key_id: KeyId, services: ServicesDep, principal: CurrentPrincipal, request: Request
) -> schemas.ApiKey:
    key = _service(services).revoke(principal, key_id)
    _refresh(request)
    return schemas.ApiKey(**_wire(key))
