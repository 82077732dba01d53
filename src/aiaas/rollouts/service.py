"""Rollouts as users start, read and abort them: checked, then stored with their guards' rules.

A rollout is refused with a 4xx naming the field when it could not run as asked: a version
the deployment's model does not have or that it already serves (``version``), steps whose
weights do not increase to 100 (``steps[i].weight``), a guard on an unknown metric, an empty
window, or on another deployment or version (``guards[i].*``). A second rollout of a
deployment while one is in progress is a 409. Nothing moves here: the control plane's driver
(:mod:`.driver`) applies the first step at its next pass.
"""

from __future__ import annotations

import builtins
import datetime as dt
from typing import Any

from aiaas.alerts import AlertService
from aiaas.deployments import DeploymentService
from aiaas.entities.alerts import RuleSpec
from aiaas.entities.rollouts import FINISHED, Guard, Rollout, RolloutEvent
from aiaas.errors import Conflict, InvalidArgument, NotFound
from aiaas.registry import Registry
from aiaas.rollouts.plan import check_guards, check_steps
from aiaas.rollouts.routing import others, previous_of
from aiaas.schemas.setting_values import invalid
from aiaas.store.rollouts import RolloutStore

__all__ = ["RolloutService", "guard_rule"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def guard_rule(rollout_id: int, deployment: str, version: int, guard: Guard) -> RuleSpec:
    """The alert rule that evaluates ``guard``: scoped to the new version, labelled with the rollout."""
    return RuleSpec(
        name=f"rollout-{rollout_id}-{guard.name}",
        metric=guard.metric,
        op=guard.op,
        threshold=guard.threshold,
        window_s=guard.window_s,
        for_s=guard.for_s,
        deployment=deployment,
        version=version,
        feature=guard.feature,
        labels={"rollout": str(rollout_id), "guard": guard.name},
        description=f"guard {guard.name} of rollout {rollout_id} (version {version} of {deployment}): "
        "when it fires, the rollout is rolled back",
    )


class RolloutService:
    """Start, list, show and abort rollouts."""

    def __init__(
        self, store: RolloutStore, deployments: DeploymentService, registry: Registry, alerts: AlertService
    ) -> None:
        self.store = store
        self.deployments = deployments
        self.registry = registry
        self.alerts = alerts

    def start(self, deployment: str, *, version: Any, steps: Any, guards: Any = None) -> Rollout:
        """Check the plan and store it as a running rollout (the driver applies its first step)."""
        d = self.deployments.get(deployment)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise invalid("version", "must be a version number of the deployment's model", version)
        try:
            target = self.registry.get_version(d.model, version)
        except NotFound:
            raise invalid(
                "version",
                f"must be a version of model {d.model!r}, which deployment {deployment!r} serves",
                version,
            ) from None
        if target.status != "ready":
            raise Conflict(
                f"version {version} of {d.model!r} is {target.status} and cannot take requests",
                details={"field": "version", "value": version, "status": target.status},
            )
        if version == d.serving_version:
            raise invalid(
                "version", f"must differ from the version deployment {deployment!r} serves now", version
            )
        plan = check_steps(steps)
        checked = check_guards(guards, deployment, version)
        for i, guard in enumerate(checked):
            try:
                self.alerts.check(guard_rule(0, deployment, version, guard))
            except InvalidArgument as exc:
                field = str(exc.details.get("field", "metric"))
                raise InvalidArgument(
                    f"guards[{i}]: {exc.message}", details={**exc.details, "field": f"guards[{i}].{field}"}
                ) from None
        previous = previous_of(d, self.registry)
        sketch = Rollout(
            id=0,
            deployment=deployment,
            model=d.model,
            version=version,
            via="alias" if d.alias is not None else "version",
            previous=previous,
            steps=tuple(plan),
            guards=tuple(checked),
            state="running",
            step=-1,
            step_started_at=None,
            created_at=_now(),
            updated_at=_now(),
        )
        kept = sum(int(r["weight"]) for r in others(sketch))
        canary = max((st.weight for st in plan if st.weight < 100), default=0)
        if kept + canary > 100:
            raise invalid(
                "steps",
                f"leave room for the deployment's other canary routes ({kept}%): the largest step "
                f"below 100 may be at most {100 - kept}",
                canary,
            )
        ladder = " → ".join(f"{st.weight}% ({st.bake_s:g}s)" for st in plan)
        watched = ", ".join(
            f"{g.name}: {g.metric} {g.op} {g.threshold:g} over {g.window_s:g}s" for g in checked
        )
        message = (
            f"version {version} on {deployment} (serving version {d.serving_version}): {ladder}; "
            f"guards: {watched or 'none'}"
        )
        return self.store.create(
            deployment=deployment,
            model=d.model,
            version=version,
            via=sketch.via,
            previous=previous,
            steps=plan,
            guards=checked,
            rule_of=lambda rid, g: guard_rule(rid, deployment, version, g),
            event=("started", None, 0, message, None, None, {}),
        )

    def list(self, deployment: str, *, limit: int = 100) -> builtins.list[Rollout]:
        self.deployments.get(deployment)  # an unknown deployment is a 404, not an empty list
        return self.store.list(deployment=deployment, limit=limit)

    def get(self, deployment: str, rollout_id: int) -> tuple[Rollout, builtins.list[RolloutEvent]]:
        """A rollout of ``deployment`` and its events, oldest first."""
        self.deployments.get(deployment)  # a deployment of another project is a 404
        rollout = self.store.get(rollout_id, deployment=deployment)
        return rollout, self.store.events(rollout.id)

    def current(self, deployment: str) -> Rollout:
        """The newest rollout of ``deployment`` (what ``aiaas rollouts show NAME`` shows)."""
        found = self.list(deployment, limit=1)
        if not found:
            raise NotFound(f"deployment {deployment!r} has no rollout", details={"deployment": deployment})
        return found[0]

    def abort(self, deployment: str, rollout_id: int) -> Rollout:
        """Ask the driver to move the traffic back (at its next pass) and stop the rollout."""
        self.deployments.get(deployment)  # a deployment of another project is a 404
        rollout = self.store.get(rollout_id, deployment=deployment)
        if rollout.state == "aborting":
            return rollout
        if rollout.state in FINISHED:
            raise Conflict(
                f"rollout {rollout_id} of {deployment!r} is {rollout.state}: there is nothing to abort",
                details={"rollout": rollout_id, "state": rollout.state},
            )
        moved = self.store.move(
            rollout,
            at=_now(),
            state="aborting",
            events=[
                ("abort", rollout.step, rollout.weight, "abort asked; traffic goes back", None, None, {})
            ],
        )
        if moved is None:  # the driver moved it meanwhile: ask again on what it stands on now
            return self.abort(deployment, rollout_id)
        return moved
