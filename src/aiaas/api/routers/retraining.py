"""``/api/v1/deployments/{name}/retraining``: a deployment's retraining policy and its runs.

Setting a policy stores it; the control plane's driver (in the alert evaluator's pass) watches
its trigger and runs the loop: job → version → held-out evaluation → guarded canary.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status

from aiaas.api.deps import ServicesDep
from aiaas.api.params import Name
from aiaas.entities.retraining import Policy, Run, RunEvent
from aiaas.schemas import retraining as wire

__all__ = ["router"]

router = APIRouter(prefix="/deployments/{name}/retraining", tags=["retraining"])


@router.put(
    "",
    summary="Set the deployment's retraining policy",
    description="When the trigger holds (drift or live accuracy past its threshold over its window), a "
    "training job is submitted (warm start from the served version) on the newest version of the "
    "dataset, or on the prediction log joined with its feedback; its version is evaluated against the "
    "served one on held-out data, and deployed as a guarded canary when it is not worse by more than "
    "the tolerance, else discarded. A bad policy (an unknown dataset, a threshold out of range, an "
    "accuracy trigger on a deployment that logs no predictions) is a 400 naming the field.",
)
def set_policy(name: Name, body: wire.RetrainingPolicyIn, services: ServicesDep) -> wire.RetrainingPolicy:
    return policy_wire(services.retraining.set(name, body.plain()))


@router.get("", summary="The deployment's retraining policy")
def get_policy(name: Name, services: ServicesDep) -> wire.RetrainingPolicy:
    return policy_wire(services.retraining.get(name))


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove the deployment's retraining policy (a run under way finishes)",
)
def delete_policy(name: Name, services: ServicesDep) -> Response:
    services.retraining.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/runs", summary="The deployment's retraining runs, newest first, each with its history")
def list_runs(
    name: Name, services: ServicesDep, limit: int = Query(default=20, ge=1, le=100)
) -> wire.RetrainingRunList:
    return wire.RetrainingRunList(
        runs=[run_wire(r, e) for r, e in services.retraining.runs(name, limit=limit)]
    )


def policy_wire(p: Policy) -> wire.RetrainingPolicy:
    return wire.RetrainingPolicy(
        deployment=p.deployment,
        trigger=p.spec["trigger"],
        data=p.spec["data"],
        training=p.spec.get("training") or {},
        evaluation=p.spec.get("evaluation") or {},
        rollout=p.spec.get("rollout") or {},
        cooldown_s=float(p.spec.get("cooldown_s", 0)),
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def run_wire(r: Run, events: list[RunEvent]) -> wire.RetrainingRun:
    return wire.RetrainingRun(
        id=r.id,
        deployment=r.deployment,
        model=r.model,
        state=r.state,
        served_version=r.served_version,
        trigger=r.trigger,
        job_id=r.job_id,
        version=r.version,
        evaluation=r.evaluation,
        rollout_id=r.rollout_id,
        reason=r.reason,
        created_at=r.created_at,
        updated_at=r.updated_at,
        finished_at=r.finished_at,
        events=[wire.RetrainingEvent.model_validate(e) for e in events],
    )
