"""Retraining policies as users set, read and delete them, and the runs of their loops.

A policy is refused with a 4xx naming the field when it could not work: an unknown dataset
(``data.dataset``, ``evaluation.dataset``), a threshold out of its range
(``trigger.threshold``), an accuracy trigger or a feedback source on a deployment that logs
no predictions to join feedback with (``trigger.metric``, ``data.feedback``), a served version
with no training job to repeat and no ``training.model`` (``training.model``), training
overrides a job spec refuses (``training.<field>``), a bad canary plan (``rollout.*``).
Nothing runs here: the control plane's driver (:mod:`.driver`) watches the trigger.
"""

from __future__ import annotations

import builtins
from typing import Any

from aiaas.datasets import DatasetService
from aiaas.deployments import DeploymentService
from aiaas.entities.retraining import Policy, Run, RunEvent
from aiaas.errors import InvalidArgument, NotFound
from aiaas.registry import ModelVersion, Registry
from aiaas.retraining.policy import check_policy
from aiaas.schemas.deployment_settings import DeploymentSettings
from aiaas.schemas.setting_values import invalid
from aiaas.schemas.training import JobSpec
from aiaas.store.retraining import RetrainingStore

__all__ = ["RetrainingService", "job_spec"]

#: Fields of the served version's job spec a retraining job repeats unless overridden.
_REPEATED = (
    "target",
    "task",
    "model",
    "optimizer",
    "schedule",
    "epochs",
    "batch_size",
    "early_stopping",
    "seed",
)


def job_spec(policy: dict[str, Any], served: ModelVersion, dataset: str) -> JobSpec:
    """The job a run submits: the served version's own job spec (when a job trained it) with
    the policy's overrides, on ``dataset`` (``name:version``), registered as a new version of
    the served model, warm-started from the served version unless ``warm_start`` is false or
    the family cannot continue from it.

    Raises:
        InvalidArgument: naming ``training.<field>``.
    """
    lineage = served.lineage or {}
    stored = lineage.get("spec") if isinstance(lineage.get("spec"), dict) else {}
    base = {k: v for k, v in (stored or {}).items() if k in _REPEATED}
    overrides = dict(policy.get("training") or {})
    warm = bool(overrides.pop("warm_start", True))
    spec: dict[str, Any] = {**base, **overrides, "dataset": dataset, "register_as": served.model}
    if "model" not in spec:
        raise invalid(
            "training.model",
            f"is required: version {served.version} of {served.model!r} was not trained by an aiaas job, "
            'so there is no spec to repeat; give the model to train, such as {"family": "logistic"}',
            None,
        )
    family = (spec.get("model") or {}).get("family") if isinstance(spec.get("model"), dict) else None
    if warm and lineage.get("state_digest") and lineage.get("family") == family:
        spec["warm_start"] = {"model": served.model, "version": served.version}
    try:
        return JobSpec.parse(spec)
    except InvalidArgument as exc:
        field = str(exc.details.get("field", "spec"))
        raise InvalidArgument(
            f"training: {exc.message}", details={**exc.details, "field": f"training.{field}"}
        ) from None


class RetrainingService:
    """Set, read and delete a deployment's retraining policy; list its runs."""

    def __init__(
        self,
        store: RetrainingStore,
        deployments: DeploymentService,
        registry: Registry,
        datasets: DatasetService,
    ) -> None:
        self.store, self.deployments, self.registry, self.datasets = store, deployments, registry, datasets

    def set(self, deployment: str, body: Any) -> Policy:
        """Check ``body`` against the deployment, its served version and the datasets, then store it."""
        d = self.deployments.get(deployment)
        spec = check_policy(body, deployment)
        logs = _logs_predictions(d.settings)
        if spec["trigger"]["metric"] in ("accuracy", "f1") and not logs:
            raise invalid(
                "trigger.metric",
                f"{spec['trigger']['metric']} is read from feedback joined with the prediction log, and "
                f"deployment {deployment!r} logs no predictions (prediction_log.sample_rate is 0)",
                spec["trigger"]["metric"],
            )
        if spec["data"].get("feedback") and not logs:
            raise invalid(
                "data.feedback",
                f"needs the prediction log, and deployment {deployment!r} logs no predictions "
                "(prediction_log.sample_rate is 0)",
                True,
            )
        newest = None
        if "dataset" in spec["data"]:
            newest = self._dataset("data.dataset", spec["data"]["dataset"])
        if spec["evaluation"]["dataset"] is not None:
            self._dataset("evaluation.dataset", spec["evaluation"]["dataset"])
        served = self.registry.get_version(d.model, d.serving_version)
        job_spec(spec, served, newest or "placeholder")
        return self.store.put_policy(deployment, spec)

    def _dataset(self, field: str, ref: str) -> str:
        name, _, number = ref.partition(":")
        try:
            version = self.datasets.get_version(name, int(number) if number else None)
        except NotFound:
            raise invalid(
                field,
                "must name a registered dataset (aiaas datasets create NAME --file FILE --target COLUMN)"
                + (" and one of its versions" if number else ""),
                ref,
            ) from None
        return f"{version.dataset}:{version.version}"

    def get(self, deployment: str) -> Policy:
        self.deployments.get(deployment)
        return self.store.get_policy(deployment)

    def delete(self, deployment: str) -> None:
        """Remove the policy; a run under way finishes."""
        self.store.delete_policy(deployment)

    def runs(self, deployment: str, *, limit: int = 20) -> builtins.list[tuple[Run, builtins.list[RunEvent]]]:
        """The deployment's runs, newest first, each with its events (oldest first)."""
        self.deployments.get(deployment)
        runs = self.store.runs(deployment=deployment, limit=limit)
        events = self.store.events([r.id for r in runs])
        return [(r, events[r.id]) for r in runs]


def _logs_predictions(settings: DeploymentSettings) -> bool:
    return settings.prediction_log.sample_rate > 0
