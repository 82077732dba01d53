"""``/api/v1/deployments/{name}/rollouts``: guarded rollouts of a new version.

Starting one stores it; the control plane's driver (in the alert evaluator's pass) applies
its steps. Aborting asks the driver to move the traffic back at its next pass.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, status

from aiaas.api.deps import ServicesDep
from aiaas.api.params import Name
from aiaas.entities.rollouts import Rollout, RolloutEvent
from aiaas.schemas import MAX_ID
from aiaas.schemas import rollouts as wire

__all__ = ["router"]

router = APIRouter(prefix="/deployments/{name}/rollouts", tags=["rollouts"])

RolloutId = Path(ge=1, le=MAX_ID, description="The rollout's id.")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Start a guarded rollout of a version",
    description="Raises the new version's share of requests step by step (each step bakes while its "
    "guards are evaluated), promotes it at 100, and moves all traffic back when a guard fires. A bad "
    "plan (weights not increasing to 100, a guard on an unknown metric, an empty window, a guard on "
    "another deployment or version) is a 400 naming the field; a rollout while another is in "
    "progress is a 409.",
)
def start_rollout(name: Name, body: wire.RolloutCreate, services: ServicesDep) -> wire.Rollout:
    plain = body.plain()
    rollout = services.rollouts.start(
        name, version=plain["version"], steps=plain["steps"], guards=plain["guards"]
    )
    return to_wire(rollout, [])


@router.get("", summary="A deployment's rollouts, newest first")
def list_rollouts(
    name: Name, services: ServicesDep, limit: int = Query(default=20, ge=1, le=100)
) -> wire.RolloutList:
    return wire.RolloutList(rollouts=[to_wire(r, []) for r in services.rollouts.list(name, limit=limit)])


@router.get("/{rollout_id}", summary="A rollout with each step and its reason")
def get_rollout(name: Name, services: ServicesDep, rollout_id: int = RolloutId) -> wire.Rollout:
    return to_wire(*services.rollouts.get(name, rollout_id))


@router.post(
    "/{rollout_id}/abort",
    summary="Abort a rollout: the traffic goes back to the previous version",
    description="The rollout becomes `aborting`; the driver restores the routing from before it at "
    "its next pass and marks it `aborted`. A finished rollout is a 409.",
)
def abort_rollout(name: Name, services: ServicesDep, rollout_id: int = RolloutId) -> wire.Rollout:
    return to_wire(services.rollouts.abort(name, rollout_id), [])


def to_wire(r: Rollout, events: list[RolloutEvent]) -> wire.Rollout:
    return wire.Rollout(
        id=r.id,
        deployment=r.deployment,
        model=r.model,
        version=r.version,
        via=r.via,
        previous_version=r.previous.get("serving_version"),
        steps=[wire.RolloutStep(weight=s.weight, bake_s=s.bake_s) for s in r.steps],
        guards=[wire.RolloutGuard.model_validate(g) for g in r.guards],
        state=r.state,
        step=r.step,
        weight=r.weight,
        step_started_at=r.step_started_at,
        created_at=r.created_at,
        updated_at=r.updated_at,
        finished_at=r.finished_at,
        reason=r.reason,
        events=[wire.RolloutEvent.model_validate(e) for e in events],
    )
