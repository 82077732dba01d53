"""The control plane's rollout driver: steps, bakes, promotes, and rolls back when a guard fires.

It runs inside the alert evaluator's pass (:attr:`aiaas.alerts.Evaluator.passes`), so under
the same ``alerts-evaluator`` lease: of several control-plane processes only one drives, and
it drives right after the guards' alert rules were evaluated, so a guard that fired in this
pass moves the traffic back in this pass, before its notification is even sent. Per rollout
in progress, each pass:

- ``aborting`` (asked by a user): restore the routing from before the rollout, finish aborted;
- a guard's rule is firing: restore, finish ``rolled_back`` with the guard and its value;
- no step yet: apply the first;
- the step has baked its time and no guard is pending or firing: apply the next step (the one
  at 100 promotes), or, after the last, finish ``completed``.

Everything it knows is in the rollout's row, and every move is a compare-and-set on it: a
restarted control plane carries on from the stored step and the time it was entered.

It drives every project's rollouts (a store of every project), each through the services of
its own project (``services(rollout.project)``: its deployments, registry and alert rules),
so a rollout of ``iris`` in one project never touches another project's ``iris``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Protocol

from aiaas.alerts import AlertService
from aiaas.deployments import DeploymentService
from aiaas.entities.alerts import Rule
from aiaas.entities.rollouts import Guard, Rollout, RolloutState
from aiaas.errors import AiaasError, NotFound, Unavailable
from aiaas.registry import Registry
from aiaas.rollouts.routing import apply_step, restore
from aiaas.store.alerts import AlertStore
from aiaas.store.rollouts import EventSpec, RolloutStore

__all__ = ["RolloutDriver", "RolloutServices"]

log = logging.getLogger("aiaas.rollouts")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RolloutServices(Protocol):
    """What the driver uses of a rollout's project (a :class:`aiaas.platform.Platform` of it)."""

    @property
    def deployments(self) -> DeploymentService: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def alerts(self) -> AlertService: ...


class RolloutDriver:
    """Moves every rollout in progress one pass forward (call :meth:`tick` under the lease).

    Args:
        store: the rollouts it drives: a store of every project (``project=None``), or of one.
        services: the services of a project, by name.
        clock: now.
    """

    def __init__(
        self,
        store: RolloutStore,
        services: Callable[[str], RolloutServices],
        *,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self.store, self.services = store, services
        self.clock = clock

    def _deployments(self, r: Rollout) -> DeploymentService:
        return self.services(r.project).deployments

    def _registry(self, r: Rollout) -> Registry:
        return self.services(r.project).registry

    def _alerts(self, r: Rollout) -> AlertStore:
        return self.services(r.project).alerts.store

    def tick(self) -> None:
        for rollout in self.store.in_progress():
            try:
                self.drive(rollout)
            except Unavailable:
                raise
            except Exception:  # one rollout's failure must not hold the others back
                log.exception(
                    "rollout %s of %s (project %s) could not be driven",
                    rollout.id,
                    rollout.deployment,
                    rollout.project,
                )

    def drive(self, r: Rollout) -> Rollout | None:
        """One move of ``r``, if it is due; returns it as stored after, or None if nothing moved."""
        now = self.clock()
        if r.state == "aborting":
            return self._back(
                r, now, "aborted", [("aborted", r.step, 0, self._back_message(r, "aborted"), None, None, {})]
            )
        try:
            self._deployments(r).get(r.deployment)
        except NotFound:
            return self.store.move(
                r,
                at=now,
                state="failed",
                reason="the deployment was deleted",
                events=[("failed", r.step, None, "the deployment was deleted", None, None, {})],
            )
        rules = self._rules(r)
        if r.step >= 0:
            fired = [(g, rule) for g, rule in rules if rule.state == "firing"]
            if fired:
                guard, rule = fired[0]
                why = _fired(guard, rule)
                event: EventSpec = (
                    "rolled_back",
                    r.step,
                    0,
                    f"rolled back because {why}; {self._back_message(r, 'rolled back')}",
                    guard.name,
                    rule.value,
                    {"rule": rule.name, "metric": guard.metric, "op": guard.op, "threshold": guard.threshold},
                )
                return self._back(r, now, "rolled_back", [event], reason=why)
        if r.step < 0:
            return self._enter(r, 0, now, [])
        started = r.step_started_at or now
        step = r.steps[r.step]
        if (now - started).total_seconds() < step.bake_s:
            return None
        waiting = [g.name for g, rule in rules if rule.state != "inactive"]
        if waiting:
            return None  # a guard is pending: the bake lasts until it fires or clears
        held = ", ".join(g.name for g, _ in rules) or "no guards"
        baked: EventSpec = (
            "baked",
            r.step,
            step.weight,
            f"baked {step.bake_s:g}s at {step.weight}%; held: {held}",
            None,
            None,
            {},
        )
        if r.step + 1 < len(r.steps):
            return self._enter(r, r.step + 1, now, [baked])
        done: EventSpec = (
            "completed",
            r.step,
            100,
            f"version {r.version} serves {r.deployment}",
            None,
            None,
            {},
        )
        moved = self.store.move(r, at=now, state="completed", reason="promoted", events=[baked, done])
        if moved is not None:
            self._drop_rules(r)
            log.info("rollout %s of %s completed: version %s promoted", r.id, r.deployment, r.version)
        return moved

    def _enter(self, r: Rollout, index: int, now: dt.datetime, events: list[EventSpec]) -> Rollout | None:
        step = r.steps[index]
        try:
            apply_step(r, index, self._deployments(r), self._registry(r))
        except (Unavailable, NotFound):
            raise
        except AiaasError as exc:  # e.g. the version was archived, or the routes changed by hand
            why = f"step {index} ({step.weight}%) could not be applied: {exc}"
            failed: EventSpec = ("failed", index, step.weight, f"{why}; traffic back", None, None, {})
            return self._back(r, now, "failed", [*events, failed], reason=why)
        if step.weight == 100:
            how = f"alias {r.previous.get('alias')} moved to" if r.via == "alias" else "primary is now"
            entered: EventSpec = (
                "promoted",
                index,
                100,
                f"promoted: {how} version {r.version}; guards watched for {step.bake_s:g}s",
                None,
                None,
                {},
            )
        else:
            entered = (
                "step",
                index,
                step.weight,
                f"{step.weight}% of requests to version {r.version}",
                None,
                None,
                {},
            )
        log.info("rollout %s of %s: step %s at %s%%", r.id, r.deployment, index, step.weight)
        return self.store.move(r, at=now, step=index, events=[*events, entered])

    def _back(
        self,
        r: Rollout,
        now: dt.datetime,
        state: RolloutState,
        events: list[EventSpec],
        *,
        reason: str | None = None,
    ) -> Rollout | None:
        try:
            restore(r, self._deployments(r), self._registry(r))
        except NotFound as exc:  # the deployment (or the previous version) is gone
            return self.store.move(
                r,
                at=now,
                state="failed",
                reason=str(exc),
                events=[("failed", r.step, None, f"could not move traffic back: {exc}", None, None, {})],
            )
        final: RolloutState = state if state in ("aborted", "failed") else "rolled_back"
        moved = self.store.move(
            r, at=now, state=final, reason=reason or final.replace("_", " "), events=events
        )
        if moved is not None:
            log.warning("rollout %s of %s %s: %s", r.id, r.deployment, final, reason or "")
            if final == "aborted":
                self._drop_rules(r)
        return moved

    def _back_message(self, r: Rollout, what: str) -> str:
        target = r.previous.get("serving_version")
        return f"{what}: traffic back on version {target}, none to version {r.version}"

    def _rules(self, r: Rollout) -> list[tuple[Guard, Rule]]:
        out = []
        for guard in r.guards:
            try:
                out.append((guard, self._alerts(r).get_rule(guard.rule)))
            except NotFound:  # deleted by hand: that guard no longer watches
                continue
        return out

    def _drop_rules(self, r: Rollout) -> None:
        """A rollout that ended without a guard firing leaves no rules behind."""
        alerts = self._alerts(r)
        for guard in r.guards:
            try:
                alerts.delete_rule(guard.rule)
            except NotFound:
                continue


def _fired(guard: Guard, rule: Rule) -> str:
    value = "no value" if rule.value is None else f"{rule.value:.4g}"
    return (
        f"guard {guard.name} fired with value {value} "
        f"({guard.metric} {guard.op} {guard.threshold:g} over {guard.window_s:g}s)"
    )
