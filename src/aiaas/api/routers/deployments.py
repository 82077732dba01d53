"""``/api/v1/deployments``: what the inference server should serve."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response, status

from aiaas import schemas
from aiaas.api.deps import ServicesDep
from aiaas.api.params import Name
from aiaas.deployments import Deployment
from aiaas.errors import AiaasError
from aiaas.registry import check_reference_dataset, dataset_reference
from aiaas.schemas.deployment_settings import given_settings
from aiaas.store.scaling import KEEP_EVENTS, ScalingEvents
from aiaas.store.serving_states import ServingState, ServingStates

__all__ = ["router"]

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.get("", summary="List deployments")
def list_deployments(services: ServicesDep) -> schemas.DeploymentList:
    items = services.deployments.list()
    states = ServingStates(services.db).all()
    revision = services.db.revision()
    return schemas.DeploymentList(
        deployments=[_with_state(d, states.get(services.deployment_key(d.name)), revision) for d in items]
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Deploy a model",
    description="Serve a model at a pinned `version` or following an `alias` (neither: the latest "
    "version, pinned), optionally with weighted canary routes (`traffic`), a `shadow` version and "
    "its serving settings. The inference server picks it up without a restart. `reference_dataset` "
    "builds the deployed version's drift reference from a dataset (an uploaded model's, when it was "
    "not named at registration).",
)
def create_deployment(body: schemas.DeploymentCreate, services: ServicesDep) -> schemas.Deployment:
    if body.reference_dataset is not None:  # an unknown dataset is refused before deploying
        check_reference_dataset(services.datasets, body.reference_dataset)
    deployment = services.deployments.create(
        body.name, model=body.model, version=body.version, alias=body.alias, **_routing(body)
    )
    if body.reference_dataset is not None:
        try:
            dataset_reference(
                services.registry,
                services.datasets,
                deployment.model,
                deployment.serving_version,
                body.reference_dataset,
            )
        except AiaasError:  # a dataset that does not fit refuses the whole deployment
            services.deployments.delete(deployment.name)
            raise
    return schemas.Deployment.model_validate(deployment)


@router.get(
    "/{name}",
    summary="Show a deployment, and what the inference server really serves for it",
    description="`serving_version` is what the deployment asks for now; `served` is what the "
    "inference server reported it serves, with the error that kept it from loading the version "
    "asked for (a corrupted or missing artifact, a model that does not load).",
)
def get_deployment(name: Name, services: ServicesDep) -> schemas.Deployment:
    deployment = services.deployments.get(name)
    db = services.db
    return _with_state(deployment, ServingStates(db).get(services.deployment_key(name)), db.revision())


@router.get(
    "/{name}/scaling-events",
    summary="The autoscaler's decisions for a deployment, newest first",
    description="Each time the inference server changes how many replica processes serve a version "
    "of this deployment (load above `target_in_flight` per replica, low load for "
    "`scale_down_delay_s`, scale to zero, a cold start), it records the change and why.",
)
def scaling_events(
    name: Name,
    services: ServicesDep,
    limit: int = Query(default=50, ge=1, le=KEEP_EVENTS, description="How many, newest first."),
) -> schemas.ScalingEventList:
    services.deployments.get(name)  # an unknown deployment is a 404, not an empty history
    events = ScalingEvents(services.db).list(services.deployment_key(name), limit=limit)
    return schemas.ScalingEventList(events=[schemas.ScalingEvent.model_validate(e) for e in events])


@router.patch(
    "/{name}",
    summary="Change a deployment: its version or alias, canaries, shadow or settings",
    description="Fields left out keep their value; `traffic: []` removes the canary routes, "
    "`shadow: {}` stops shadowing and `batching: {}` restores the batching defaults. An empty body "
    "pins the latest version.",
)
def update_deployment(
    name: Name, body: schemas.DeploymentUpdate, services: ServicesDep
) -> schemas.Deployment:
    deployment = services.deployments.update(name, version=body.version, alias=body.alias, **_routing(body))
    return schemas.Deployment.model_validate(deployment)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a deployment")
def delete_deployment(name: Name, services: ServicesDep) -> Response:
    services.deployments.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _with_state(deployment: Deployment, state: ServingState | None, revision: int) -> schemas.Deployment:
    wire = schemas.Deployment.model_validate(deployment)
    if state is None:
        return wire
    served = schemas.ServedState(
        version=state.serving_version,
        desired_version=state.desired_version,
        error=state.error,
        observed_at=state.observed_at,
        up_to_date=state.revision >= revision,
    )
    return wire.model_copy(update={"served": served})


def _routing(body: schemas.DeploymentCreate | schemas.DeploymentUpdate) -> dict[str, Any]:
    """The routes and settings of a request body as the service takes them: plain JSON values,
    None where not given, so the service alone decides what is valid."""
    return {
        "traffic": None if body.traffic is None else [r.model_dump(exclude_none=True) for r in body.traffic],
        "shadow": None if body.shadow is None else body.shadow.model_dump(exclude_none=True),
        **given_settings(body),
    }
