"""The control plane's retraining driver: trigger → job → version → evaluation → canary → outcome.

It runs inside the alert evaluator's pass (:attr:`aiaas.alerts.Evaluator.passes`), after the
rollout driver, under the same ``alerts-evaluator`` lease: of several control-plane processes
only one drives. Each pass:

- per run under way: ``training`` — when its job succeeded, the version the job registered is
  scored against the served one on held-out rows (:mod:`.evaluation`); worse by more than the
  tolerance: ``discarded`` with the figures (the candidate is archived, the served version
  stays); else its guarded canary is started (:class:`aiaas.rollouts.RolloutService`) and the
  run is ``rolling_out``; a failed or cancelled job: ``failed``. ``rolling_out`` — the
  rollout's end decides: ``promoted``, or ``rolled_back`` with the rollout's reason;
- per policy whose deployment is gone: the policy is deleted with it;
- per policy with no run under way, no rollout in progress and its cooldown over since the
  last run ended: the trigger's metric is read over its window; when it holds, a run starts
  and its job is submitted (on the newest version of the policy's dataset, or on the
  prediction log joined with its feedback).

Every step is an event of the run, with its time and reason, and every move a compare-and-set
on the run's stored state: a restarted control plane carries on from the row.

It drives every project's loops (a store of every project), each through the services of its
own project (``services(policy.project)``: deployments, registry, datasets, training jobs,
rollouts, metrics), so a policy of ``iris`` in one project never reads, trains or rolls out
another project's ``iris``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from aiaas.alerts import MetricReader
from aiaas.alerts.series import Scope
from aiaas.datasets import DatasetService
from aiaas.deployments import DeploymentService
from aiaas.entities.projects import qualified_name
from aiaas.entities.retraining import Policy, Run
from aiaas.errors import AiaasError, NotFound, Unavailable
from aiaas.registry import ReferenceStore, Registry
from aiaas.retraining.evaluation import verdict
from aiaas.retraining.feedback_data import feedback_dataset
from aiaas.retraining.service import RetrainingService, job_spec
from aiaas.rollouts import RolloutService
from aiaas.schemas.training import JobSpec
from aiaas.store.feedback import FeedbackStore
from aiaas.store.retraining import RetrainingStore, RunEventSpec
from aiaas.training import TrainingData, TrainingService

__all__ = ["RetrainingDriver", "RetrainingServices"]

log = logging.getLogger("aiaas.retraining")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RetrainingServices(Protocol):
    """What the driver uses of a loop's project (a :class:`aiaas.platform.Platform` of it)."""

    @property
    def deployments(self) -> DeploymentService: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def datasets(self) -> DatasetService: ...

    @property
    def training(self) -> TrainingService: ...

    @property
    def rollouts(self) -> RolloutService: ...

    @property
    def retraining(self) -> RetrainingService: ...

    @property
    def metrics(self) -> MetricReader: ...

    @property
    def feedback(self) -> FeedbackStore: ...


class RetrainingDriver:
    """Moves every retraining loop one pass forward (call :meth:`tick` under the lease).

    Args:
        store: the policies and runs it drives: a store of every project (``project=None``),
            or of one.
        services: the services of a project, by name.
        prediction_log_dir: where the inference server logs predictions (feedback data).
        clock: now.
    """

    def __init__(
        self,
        store: RetrainingStore,
        services: Callable[[str], RetrainingServices],
        *,
        prediction_log_dir: Path,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self.store, self.services, self.prediction_log_dir = store, services, prediction_log_dir
        self.clock = clock

    def tick(self) -> None:
        for run in self.store.in_progress():
            try:
                self.drive(run)
            except Unavailable:
                raise
            except Exception:  # one loop's failure must not hold the others back
                log.exception(
                    "retraining run %s of %s (project %s) could not be driven",
                    run.id,
                    run.deployment,
                    run.project,
                )
        for policy in self.store.policies():
            try:
                self.consider(policy)
            except Unavailable:
                raise
            except Exception:
                log.exception(
                    "the retraining policy of %s (project %s) could not be considered",
                    policy.deployment,
                    policy.project,
                )

    # -- the trigger ------------------------------------------------------------------------

    def trigger_value(self, policy: Policy) -> float | None:
        """The trigger's metric of the deployment over the window ending now (None: no data)."""
        trigger = policy.spec["trigger"]
        now = self.clock()
        start = now - dt.timedelta(seconds=float(trigger["window_s"]))
        metric = trigger["metric"]
        scope = Scope(policy.deployment, None, None, trigger.get("feature"))
        services = self.services(policy.project)
        if metric != "drift_share":
            return services.metrics.value(metric, scope, start, now)
        drifted = services.metrics.value("drift", scope, start, now)
        if drifted is None:
            return None
        d = services.deployments.get(policy.deployment)
        registry = services.registry
        reference = ReferenceStore(registry.db, project=registry.project).get(d.model, d.serving_version)
        features = len(reference.profile.features) if reference is not None else 0
        return drifted / features if features else None

    def consider(self, policy: Policy) -> Run | None:
        """Start a run of ``policy`` if it is due and its trigger holds; returns it, or None."""
        now = self.clock()
        services = self.services(policy.project)
        store = services.retraining.store
        try:
            d = services.deployments.get(policy.deployment)
        except NotFound:  # the policy belonged to it: a new deployment of that name starts without
            log.info("deployment %s is gone: its retraining policy is deleted", policy.deployment)
            with contextlib.suppress(NotFound):  # another control plane deleted it first
                store.delete_policy(policy.deployment)
            return None
        last = store.runs(deployment=policy.deployment, limit=1)
        if last:
            if last[0].finished_at is None:
                return None
            if (now - last[0].finished_at).total_seconds() < float(policy.spec.get("cooldown_s", 0)):
                return None
        if any(
            r.state in ("running", "aborting")
            for r in services.rollouts.store.list(deployment=d.name, limit=1)
        ):
            return None  # a rollout (by hand, or a run's) is moving the traffic: wait for its end
        trigger = policy.spec["trigger"]
        value = self.trigger_value(policy)
        op, threshold = trigger["op"], float(trigger["threshold"])
        if value is None or not (value > threshold if op == ">" else value < threshold):
            return None
        what = trigger["metric"] + (f" of {trigger['feature']}" if trigger.get("feature") else "")
        why = f"{what} was {value:.4g} over {float(trigger['window_s']):g}s ({op} {threshold:g})"
        run = store.create_run(
            deployment=d.name,
            model=d.model,
            served_version=d.serving_version,
            trigger={**trigger, "value": value},
            at=now,
            events=[("triggered", f"triggered: {why}; version {d.serving_version} serves", {"value": value})],
        )
        log.info("retraining of %s triggered: %s", d.name, why)
        return self._submit(run, policy)

    def _submit(self, run: Run, policy: Policy) -> Run | None:
        now = self.clock()
        services = self.services(run.project)
        try:
            served = services.registry.get_version(run.model, run.served_version)
            if policy.spec["data"].get("feedback"):
                version = feedback_dataset(
                    run.deployment,
                    served,
                    services.datasets,
                    services.feedback,
                    self.prediction_log_dir,
                    key=qualified_name(run.project, run.deployment),
                )
            else:
                version = services.datasets.get_version(policy.spec["data"]["dataset"])
            dataset = f"{version.dataset}:{version.version}"
            spec = job_spec(policy.spec, served, dataset)
            job = services.training.submit(spec)
        except (Unavailable, NotFound) as exc:
            if isinstance(exc, Unavailable):
                raise
            return self._fail(run, now, f"the training job could not be submitted: {exc}")
        except AiaasError as exc:
            return self._fail(run, now, f"the training job could not be submitted: {exc}")
        warm = f", warm start from version {spec.warm_start.version}" if spec.warm_start else ""
        return self.store.move(
            run,
            at=now,
            job_id=job.id,
            events=[
                (
                    "job",
                    f"training job {job.id} submitted on {dataset}{warm}",
                    {"job": job.id, "dataset": dataset},
                )
            ],
        )

    # -- runs under way ---------------------------------------------------------------------

    def drive(self, run: Run) -> Run | None:
        """One move of ``run``, if it is due; returns it as stored after, or None."""
        now = self.clock()
        services = self.services(run.project)
        if run.state == "training":
            if run.job_id is None:  # the control plane stopped between the run and its job
                try:
                    policy = services.retraining.store.get_policy(run.deployment)
                except NotFound:
                    return self._fail(run, now, "the policy was deleted before its job was submitted")
                return self._submit(run, policy)
            job = services.training.jobs.get(run.job_id)
            if job.status in ("failed", "cancelled"):
                return self._fail(
                    run, now, f"training job {job.id} {job.status}: {job.error or 'no reason given'}"
                )
            if job.status != "succeeded" or job.result_version is None:
                return None
            return self._evaluate(run, job.result_version, job.spec, now)
        if run.state == "rolling_out" and run.rollout_id is not None:
            rollout = services.rollouts.store.get(run.rollout_id)
            if rollout.state == "completed":
                return self.store.move(
                    run,
                    at=now,
                    state="promoted",
                    reason=f"version {run.version} promoted",
                    events=[
                        (
                            "promoted",
                            f"rollout {rollout.id} completed: version {run.version} serves {run.deployment}",
                            {"rollout": rollout.id},
                        )
                    ],
                )
            if rollout.state in ("rolled_back", "aborted", "failed"):
                why = f"rollout {rollout.id} {rollout.state.replace('_', ' ')}: {rollout.reason}"
                return self.store.move(
                    run,
                    at=now,
                    state="rolled_back",
                    reason=why,
                    events=[
                        ("rolled_back", f"{why}; version {run.served_version} stays", {"rollout": rollout.id})
                    ],
                )
        return None

    def _evaluate(self, run: Run, version: int, stored_spec: dict[str, Any], now: dt.datetime) -> Run | None:
        services = self.services(run.project)
        try:
            policy = services.retraining.store.get_policy(run.deployment).spec
        except NotFound:
            policy = {"evaluation": {"tolerance": 0.0, "dataset": None}, "rollout": {}}
        trained: RunEventSpec = (
            "trained",
            f"version {version} registered by job {run.job_id}",
            {"version": version},
        )
        try:
            candidate = services.registry.get_version(run.model, version)
            served = services.registry.get_version(run.model, run.served_version)
            spec = JobSpec.from_stored(stored_spec)
            ref = policy["evaluation"].get("dataset") or spec.dataset
            name, _, number = str(ref).partition(":")
            dataset = services.datasets.get_version(name, int(number) if number else None)
            data = services.training.training_data(dataset, spec)
            if not isinstance(data, TrainingData):
                raise AiaasError("held-out evaluation needs a table dataset")
            figures = verdict(
                services.registry,
                served,
                candidate,
                data,
                tolerance=float(policy["evaluation"].get("tolerance", 0.0)),
                dataset=f"{dataset.dataset}:{dataset.version}",
            )
        except Unavailable:
            raise
        except Exception as exc:
            return self._fail(
                run, now, f"version {version} could not be evaluated: {exc}", [trained], version=version
            )
        shown = (
            f"{figures.metric} on {figures.rows} held-out rows of {figures.dataset}: candidate "
            f"{figures.candidate:.4f}, served version {run.served_version} {figures.served:.4f} "
            f"(tolerance {figures.tolerance:g})"
        )
        evaluated: RunEventSpec = ("evaluated", shown, figures.as_dict())
        if not figures.kept:
            why = f"version {version} is worse than the served version {run.served_version}: {shown}"
            try:
                services.registry.archive_version(run.model, version)
            except AiaasError as exc:
                log.warning("discarded version %s of %s not archived: %s", version, run.model, exc)
            moved = self.store.move(
                run,
                at=now,
                state="discarded",
                reason=why,
                version=version,
                evaluation=figures.as_dict(),
                events=[
                    trained,
                    evaluated,
                    ("discarded", f"discarded: {why}; version {run.served_version} stays", {}),
                ],
            )
            log.info("retraining of %s: %s", run.deployment, why)
            return moved
        rollout_plan = policy.get("rollout") or {}
        try:
            rollout = services.rollouts.start(
                run.deployment,
                version=version,
                steps=rollout_plan.get("steps")
                or [{"weight": 10, "bake": "1m"}, {"weight": 100, "bake": "1m"}],
                guards=rollout_plan.get("guards") or [],
            )
        except Unavailable:
            raise
        except AiaasError as exc:
            return self._fail(
                run,
                now,
                f"the canary of version {version} could not start: {exc}",
                [trained, evaluated],
                version=version,
                evaluation=figures.as_dict(),
            )
        ladder = " → ".join(f"{s.weight}%" for s in rollout.steps)
        return self.store.move(
            run,
            at=now,
            state="rolling_out",
            version=version,
            evaluation=figures.as_dict(),
            rollout_id=rollout.id,
            events=[
                trained,
                evaluated,
                ("rollout", f"guarded canary: rollout {rollout.id} ({ladder})", {"rollout": rollout.id}),
            ],
        )

    def _fail(
        self, run: Run, now: dt.datetime, why: str, events: list[RunEventSpec] | None = None, **values: Any
    ) -> Run | None:
        log.warning("retraining run %s of %s failed: %s", run.id, run.deployment, why)
        return self.store.move(
            run, at=now, state="failed", reason=why, events=[*(events or []), ("failed", why, {})], **values
        )
