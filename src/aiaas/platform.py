"""The composition root: the platform opened from its settings, in one place.

The control plane (:mod:`aiaas.api`), the scheduler's worker processes
(:mod:`aiaas.training.worker`, :mod:`aiaas.optimize.worker`, the ``torchrun`` launcher) and the
CLI's local commands (``aiaas gc``, ``aiaas migrate``) each need the metadata database, the
artifact store and the services over them. Each used to wire them itself, and the copies
drifted (the workers' dataset service had no size limits, the CLI's database was migrated by
one command and not another). Here they are wired once, from :class:`~aiaas.config.Settings`.

The services are built, and their packages imported, when first asked for: a training worker
never touches deployments, and ``aiaas db upgrade`` needs only the database; importing the
serving package would cost each the start-up time of a server it does not run.

It sits above the domains and below the API and the CLI in the import layers. The worker
processes' entry modules live in their domains (the scheduler starts ``python -m
aiaas.training.worker``) but are composition too: they are the one place a domain imports
this module, named as such in the import-linter contract.

Example:
    >>> from aiaas.config import load_settings
    >>> platform = open_platform(load_settings(home="aiaas-home"))
    >>> platform.registry.list_models()  # doctest: +SKIP
    []
    >>> platform.close()
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from aiaas.config import Settings
from aiaas.entities.projects import DEFAULT_PROJECT, qualified_name
from aiaas.store import ArtifactStore, Database, keyring_from_settings, open_artifact_store
from aiaas.store.feedback import FeedbackStore
from aiaas.store.projects import ProjectStore

if TYPE_CHECKING:
    from aiaas.alerts import AlertService, Evaluator, MetricReader
    from aiaas.datasets import DatasetService
    from aiaas.deployments import DeploymentService
    from aiaas.optimize import OptimizationService
    from aiaas.registry import Registry
    from aiaas.retraining import RetrainingDriver, RetrainingService
    from aiaas.rollouts import RolloutDriver, RolloutService
    from aiaas.security import AuditLog
    from aiaas.training import JobStore, TrainingService

__all__ = ["Platform", "open_database", "open_platform"]


def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    """The metadata database ``settings`` name, migrated to the current schema unless told not to."""
    db = Database(settings.resolved_database_url())
    if migrate:
        try:
            db.upgrade()
        except BaseException:
            db.dispose()
            raise
    return db


class Platform:
    """The database, the artifact store and every control-plane service over them.

    Args:
        settings: where the database and artifacts are, and the services' limits.
        db: the metadata database (see :func:`open_database`).
        artifacts: the artifact store.
        slots: CPU slots of the training service; ``None`` is ``settings.training_slots``
            (a ``torchrun`` launch passes its world size).
        project: the project every service of this platform works in: each sees that
            project's rows only. :meth:`for_project` gives the platform of another.
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        artifacts: ArtifactStore,
        *,
        slots: int | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> None:
        self.settings = settings
        self.db = db
        self.artifacts = artifacts
        self.slots = slots or settings.training_slots
        self.project = project
        self._root = self
        self._scoped: dict[str, Platform] = {project: self}
        self._scoped_lock = threading.Lock()

    def for_project(self, project: str) -> Platform:
        """The same platform (database, artifacts, settings) with every service in ``project``.

        Built once per project and kept: its services are as cheap to share as this one's.
        The project is not checked here; :attr:`projects` says whether it exists.
        """
        root = self._root
        with root._scoped_lock:
            found = root._scoped.get(project)
            if found is None:
                found = Platform(root.settings, root.db, root.artifacts, slots=root.slots, project=project)
                found._root = root
                root._scoped[project] = found
            return found

    def deployment_key(self, name: str) -> str:
        """How the inference server names deployment ``name`` of this project in the rows it
        writes (metric samples, drift counts, feedback, scaling events, served state, the
        prediction log): :func:`aiaas.entities.projects.qualified_name`."""
        return qualified_name(self.project, name)

    def for_job(self, job_id: int) -> Platform:
        """The platform of the project training job ``job_id`` belongs to (a worker's).

        Raises:
            NotFound: no such job.
        """
        return self.for_project(self.all_jobs.get(job_id).project)

    @cached_property
    def projects(self) -> ProjectStore:
        """Every project (they are not owned by one)."""
        return ProjectStore(self.db)

    @cached_property
    def registry(self) -> Registry:
        from aiaas.registry import Registry

        return Registry(self.db, self.artifacts, project=self.project)

    @cached_property
    def datasets(self) -> DatasetService:
        from aiaas.datasets import DatasetService

        return DatasetService(
            self.db,
            self.artifacts,
            max_bytes=self.settings.max_dataset_bytes,
            max_cells=self.settings.max_dataset_cells,
            project=self.project,
        )

    @cached_property
    def jobs(self) -> JobStore:
        from aiaas.training import JobStore

        return JobStore(self.db, self.artifacts, project=self.project)

    @cached_property
    def all_jobs(self) -> JobStore:
        """Every project's jobs: the scheduler's queue, and the job counts of ``/metrics``."""
        from aiaas.training import JobStore

        return JobStore(self.db, self.artifacts, project=None)

    @cached_property
    def training(self) -> TrainingService:
        from aiaas.training import TrainingService

        return TrainingService(self.jobs, self.datasets, self.registry, self.artifacts, slots=self.slots)

    @cached_property
    def feedback(self) -> FeedbackStore:
        """The ground truth posted for answered requests (monitoring's performance)."""
        return FeedbackStore(self.db)

    @cached_property
    def deployments(self) -> DeploymentService:
        from aiaas.deployments import DeploymentService

        return DeploymentService(self.registry)

    @cached_property
    def optimization(self) -> OptimizationService:
        from aiaas.optimize import OptimizationService

        return OptimizationService(self.training)

    @cached_property
    def metrics(self) -> MetricReader:
        """Any metric of a deployment or job as a value or a series (alerts, charts)."""
        from aiaas.alerts import MetricReader
        from aiaas.store.drift import CountStore
        from aiaas.store.metric_samples import SampleStore

        return MetricReader(
            samples=SampleStore(self.db),
            counts=CountStore(self.db),
            feedback=self.feedback,
            registry=self.registry,
            deployments=self.deployments,
            jobs=self.jobs,
            prediction_log_dir=self.settings.resolved_prediction_log_dir(),
        )

    @cached_property
    def alerts(self) -> AlertService:
        """Alert rules, silences, webhooks and their history."""
        from aiaas.alerts import AlertService
        from aiaas.store.alerts import AlertStore

        return AlertService(
            AlertStore(self.db, project=self.project),
            self.metrics,
            deployments=self.deployments,
            registry=self.registry,
            jobs=self.jobs,
        )

    @cached_property
    def audit(self) -> AuditLog:
        """The hash-chained audit log (every mutating API request, every authentication failure)."""
        from aiaas.security import AuditLog
        from aiaas.store.audit import AuditStore

        return AuditLog(AuditStore(self.db))

    @cached_property
    def rollouts(self) -> RolloutService:
        """Guarded rollouts of deployments (driven by the alert evaluator's pass)."""
        from aiaas.rollouts import RolloutService
        from aiaas.store.rollouts import RolloutStore

        return RolloutService(
            RolloutStore(self.db, project=self.project), self.deployments, self.registry, self.alerts
        )

    @cached_property
    def retraining(self) -> RetrainingService:
        """Deployments' retraining policies and their runs (driven by the alert evaluator's pass)."""
        from aiaas.retraining import RetrainingService
        from aiaas.store.retraining import RetrainingStore

        return RetrainingService(
            RetrainingStore(self.db, project=self.project), self.deployments, self.registry, self.datasets
        )

    def alert_evaluator(self) -> Evaluator:
        """A new evaluator for this process (the control plane starts one with the API): it
        evaluates every project's rules, each with the metrics of its own project, and drives
        every project's rollouts in progress, then retraining loops, each through its own
        project's services, in each pass, under the same lease."""
        from aiaas.alerts import Evaluator
        from aiaas.store.alerts import AlertStore
        from aiaas.store.leases import LeaseStore

        evaluator = Evaluator.of(
            self.settings,
            AlertStore(self.db, project=None),
            LeaseStore(self.db),
            self.metrics,
            readers=lambda project: self.for_project(project).metrics,
        )
        evaluator.passes.append(self.rollout_driver().tick)
        evaluator.passes.append(self.retraining_driver().tick)
        return evaluator

    def rollout_driver(self) -> RolloutDriver:
        """The driver of every project's rollouts, each moved in its own project."""
        from aiaas.rollouts import RolloutDriver
        from aiaas.store.rollouts import RolloutStore

        return RolloutDriver(RolloutStore(self.db, project=None), self.for_project)

    def retraining_driver(self) -> RetrainingDriver:
        """The driver of every project's retraining loops, each run in its own project."""
        from aiaas.retraining import RetrainingDriver
        from aiaas.store.retraining import RetrainingStore

        return RetrainingDriver(
            RetrainingStore(self.db, project=None),
            self.for_project,
            prediction_log_dir=self.settings.resolved_prediction_log_dir(),
        )

    def close(self) -> None:
        """Close the database's connections (the artifact store holds none)."""
        self.db.dispose()


def open_platform(settings: Settings, *, migrate: bool = True, slots: int | None = None) -> Platform:
    """Open the database (migrating it unless ``migrate`` is false) and the artifact store.

    The control plane migrates on start; a worker process, started by a control plane that
    already did, passes ``migrate=False``.
    """
    keyring = keyring_from_settings(settings)  # a bad key fails here, before the database is touched
    db = open_database(settings, migrate=migrate)
    return Platform(
        settings, db, open_artifact_store(settings.resolved_artifact_root(), keyring), slots=slots
    )
