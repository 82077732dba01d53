"""``/api/v1/deployments``: what the inference server should serve."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from aiaas import schemas
from aiaas.api.deps import ServicesDep

__all__ = ["router"]

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.get("", summary="List deployments")
def list_deployments(services: ServicesDep) -> schemas.DeploymentList:
    items = services.deployments.list()
    return schemas.DeploymentList(deployments=[schemas.Deployment.model_validate(d) for d in items])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Deploy a model",
    description="Serve a model at a pinned `version` or following an `alias` (neither: the latest "
    "version, pinned). The inference server picks it up without a restart.",
)
def create_deployment(body: schemas.DeploymentCreate, services: ServicesDep) -> schemas.Deployment:
    deployment = services.deployments.create(
        body.name, model=body.model, version=body.version, alias=body.alias
    )
    return schemas.Deployment.model_validate(deployment)


@router.get("/{name}", summary="Show a deployment")
def get_deployment(name: str, services: ServicesDep) -> schemas.Deployment:
    return schemas.Deployment.model_validate(services.deployments.get(name))


@router.patch("/{name}", summary="Switch a deployment to another version or alias")
def update_deployment(name: str, body: schemas.DeploymentUpdate, services: ServicesDep) -> schemas.Deployment:
    deployment = services.deployments.update(name, version=body.version, alias=body.alias)
    return schemas.Deployment.model_validate(deployment)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a deployment")
def delete_deployment(name: str, services: ServicesDep) -> Response:
    services.deployments.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
