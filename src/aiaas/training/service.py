"""Submitting a job (checked against the data it names) and running one (in a worker process).

Submission resolves everything a job depends on while the user is still there to be told:
the dataset version is pinned, the target and task are settled, the features are known to
be numeric (or, for a language model, the dataset is known to hold text), a warm-start version
is known to carry training state (or to be a causal LM folder), and the job fits the node's
CPU slots. Running turns the pinned dataset version into arrays (or documents), trains with
checkpoints, and registers the result with its lineage.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from aiaas.datasets import FEATURE_KINDS, DatasetService, DatasetVersion
from aiaas.errors import Conflict, InvalidArgument, NotFound
from aiaas.formats import HF_CAUSAL_LM, ModelPackage
from aiaas.registry import ModelVersion, Registry, check_name, store_training_reference
from aiaas.schemas.spec_rules import (
    EPOCH_FAMILIES,
    LANGUAGE_MODEL_FAMILIES,
    TEXT_GENERATION,
    RuleBroken,
    check_image_shape,
    invalid,
)
from aiaas.schemas.training import JobSpec
from aiaas.store import ArtifactStore
from aiaas.training.data import TrainingData
from aiaas.training.explanation_facts import explanation_facts
from aiaas.training.jobs import RUNNING, Job, JobStore, NewJob, Registration
from aiaas.training.text_data import TextData, chat_document

if TYPE_CHECKING:  # torch: only in the worker
    from aiaas.training.group import Member, Role

__all__ = ["JobCancelled", "JobReporter", "TrainingService"]


class JobCancelled(Exception):
    """Raised in the worker between epochs when the job's cancel was requested."""


class JobReporter:
    """Sends a trainer's progress to the job's rows: log lines, epoch metrics, checkpoints."""

    def __init__(self, jobs: JobStore, job_id: int, epochs: int) -> None:
        self.jobs, self.job_id, self.epochs = jobs, job_id, epochs

    def log(self, message: str) -> None:
        self.jobs.log(self.job_id, message)

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        cancel = self.jobs.record_epoch(self.job_id, epoch, dict(metrics))
        shown = "  ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, int | float))
        self.jobs.log(self.job_id, f"epoch {epoch}/{self.epochs}  {shown}")
        if cancel:  # stop at the epoch boundary (a scheduler's job is also stopped by signal)
            raise JobCancelled(f"job {self.job_id} cancelled after epoch {epoch}")

    def checkpoint(self, epoch: int, state: bytes) -> None:
        self.jobs.save_checkpoint(self.job_id, epoch, state)


class TrainingService:
    """Training jobs from submission to registered model version.

    Args:
        jobs: the job rows.
        datasets: where jobs read their data.
        registry: where results are registered, and warm-start versions come from.
        artifacts: where final training state is kept (to continue training later).
        slots: the node's CPU slots; a job asking for more workers can never start.
    """

    def __init__(
        self,
        jobs: JobStore,
        datasets: DatasetService,
        registry: Registry,
        artifacts: ArtifactStore,
        *,
        slots: int,
    ) -> None:
        self.jobs = jobs
        self.datasets = datasets
        self.registry = registry
        self.artifacts = artifacts
        self.slots = slots

    # -- submission ---------------------------------------------------------------------------

    def submit(self, spec: JobSpec, *, external: str | None = None) -> Job:
        """Check ``spec`` against the data and registry it names, then queue it (or, with
        ``external`` naming who runs it, record it as running outside the scheduler).

        The job returned carries its :class:`Registration`: the model name the result goes
        to and the versions that model holds already, so a derived name is never a surprise.

        Raises:
            InvalidArgument: naming the field of the spec that cannot work, and why.
        """
        new, _ = self._resolve(spec)
        job = self.jobs.create(new, external=external)
        return replace(job, registration=self._registration(spec, new))

    def _registration(self, spec: JobSpec, new: NewJob) -> Registration:
        name, numbers = new.register_as, [v.version for v in self._versions(new.register_as)]
        latest = max(numbers, default=None)
        held = (
            f"which already has {len(numbers)} version{'s' if len(numbers) != 1 else ''} "
            f"(latest {latest}): the result becomes a new version of it"
            if numbers
            else "a new model"
        )
        if spec.register_as is not None:
            note = f"the result is registered as {name!r}, {held}"
        else:
            rule = "the warm-start model" if spec.warm_start is not None else "<dataset>-<family>"
            note = (
                f"the spec has no register_as: the result is registered as {name!r} ({rule}), "
                f"{held}; set register_as to choose the name"
            )
        return Registration(
            model=name,
            defaulted=spec.register_as is None,
            existing_versions=len(numbers),
            latest_version=latest,
            note=note,
        )

    def _resolve(self, spec: JobSpec) -> tuple[NewJob, JobSpec]:
        """The job row to create, and the spec with what the dataset and registry settled."""
        name, ref = _dataset_ref(spec.dataset)
        try:
            version = self.datasets.get_version(name, ref)
        except NotFound as exc:
            known = (exc.details or {}).get("versions")
            if ref is not None and known:
                message = f"dataset: {name!r} has no version {ref}; its versions are {known}"
            else:
                message = (
                    f"dataset: there is no dataset {name!r} to train on; register it first "
                    f"(aiaas datasets create {name} --file FILE --target COLUMN, or --sample NAME)"
                )
            raise InvalidArgument(message, details={"field": "dataset", "value": spec.dataset}) from None
        family = spec.model.family
        target: str | None
        if family in LANGUAGE_MODEL_FAMILIES:
            _check_text(version, family)
            target, task = None, TEXT_GENERATION
        else:
            target = self._target(spec, version)
            task = self._task(spec, version, target)
            _check_features(version, target)
        try:
            check_image_shape(
                family, version.metadata.get("image_shape"), f"dataset {name}:{version.version}"
            )
        except RuleBroken as exc:
            raise invalid(exc) from None
        if spec.workers > self.slots:
            raise InvalidArgument(
                f"workers: {spec.workers} data-parallel workers need {spec.workers} CPU slots, and this "
                f"node has {self.slots} (AIAAS_TRAINING_SLOTS); ask for at most {self.slots}",
                details={"field": "workers", "slots": self.slots},
            )
        if spec.warm_start is not None:
            self._warm_start_version(spec)
        register_as = spec.register_as or (
            spec.warm_start.model if spec.warm_start is not None else f"{name}-{family.replace('_', '-')}"
        )
        check_name(register_as)
        resolved = spec.resolved(
            dataset=f"{name}:{version.version}", target=target, task=task, register_as=register_as
        )
        new = NewJob(
            spec=resolved.stored(),
            dataset=name,
            dataset_version=version.version,
            register_as=register_as,
            workers=resolved.workers,
            epochs=resolved.epochs if family in EPOCH_FAMILIES else 1,
        )
        return new, resolved

    # -- running (in the worker process) ------------------------------------------------------

    def run(self, job_id: int, *, role: Role | None = None) -> ModelVersion | None:
        """Train the job (resuming from its checkpoint) and register the result.

        ``role`` is this process' part in the run: by default, the spec's (a scheduler's worker
        trains alone or coordinates ``workers`` local ranks); ``launch`` passes rank 0 of the
        group torchrun formed.

        Returns None when the job was no longer running at the end (cancelled meanwhile): its
        result is then registered, but the job keeps the status it was given.
        """
        from aiaas.training.trainer import train  # torch and sklearn: only in the worker

        job = self.jobs.begin_attempt(job_id)
        if job.status != RUNNING:
            raise Conflict(f"job {job_id} is {job.status}, not running", details={"job": job_id})
        spec = JobSpec.from_stored(job.spec)
        dataset = self.datasets.get_version(job.dataset, job.dataset_version)
        data = self._training_data(dataset, spec)
        warm_state, parent = self._warm_start_state(spec, data)
        resume = self.jobs.checkpoint(job)
        reporter = JobReporter(self.jobs, job_id, job.epochs)
        if resume is None and isinstance(data, TextData):
            reporter.log(
                f"training {spec.model.family} on {job.dataset}:{job.dataset_version}: "
                f"{len(data.train)} training documents, {len(data.validation)} validation documents"
                + (" (chat pairs)" if data.chat else "")
            )
        elif resume is None and isinstance(data, TrainingData):
            reporter.log(
                f"training {spec.model.family} on {job.dataset}:{job.dataset_version}: "
                f"{len(data.y_train)} training rows, {len(data.y_val)} validation rows, "
                f"{data.n_features} features"
            )
        # A scheduler's job holds one CPU slot per worker: one thread per rank. An external
        # launch owns its machines and keeps torch's default.
        threads = 1 if job.launcher == "scheduler" else None
        result = train(spec, data, reporter, resume=resume, warm_start=warm_state, threads=threads, role=role)
        version = self._register(job, spec, dataset, data, result, parent)
        return version if self.jobs.succeed(job_id, version.version) else None

    def run_rank(self, spec: JobSpec, member: Member) -> None:
        """A rank other than 0 of an external data-parallel launch: the data rank 0 resolves, no
        reporting (rank 0 reports, checkpoints and registers for the group)."""
        from aiaas.training.reporter import NullReporter
        from aiaas.training.trainer import train

        new, resolved = self._resolve(spec)
        data = self._training_data(self.datasets.get_version(new.dataset, new.dataset_version), resolved)
        warm_state, _ = self._warm_start_state(resolved, data)
        train(resolved, data, NullReporter(), warm_start=warm_state, role=member)

    def _register(
        self,
        job: Job,
        spec: JobSpec,
        dataset: DatasetVersion,
        data: TrainingData | TextData,
        result: Any,
        parent: ModelVersion | None,
    ) -> ModelVersion:
        """Register once: a worker killed after registering, then resumed, finds its version."""
        source = f"job:{job.id}"
        for existing in self._versions(job.register_as):
            if existing.source == source:
                return existing
        if result.package is None:
            raise RuntimeError("the training run returned no model to register (not rank 0?)")
        state_digest = self.artifacts.put(result.state)
        columns = dataset.statistics.get("columns", {})
        target = spec.target or ""
        if isinstance(data, TextData):
            lineage = _text_lineage(job, spec, dataset, parent, state_digest)
        else:
            lineage = {
                "job": job.id,
                "dataset": {
                    "name": dataset.dataset,
                    "version": dataset.version,
                    "digest": dataset.artifact_digest,
                    "split": dataset.split,
                },
                "spec": job.spec,
                "parent": {"model": parent.model, "version": parent.version} if parent else None,
                "state_digest": state_digest,
                "family": spec.model.family,
                "task": spec.task,
                "target": target,
                "feature_names": data.feature_names,
                "classes": data.classes,
                "reference_statistics": {
                    "format": dataset.statistics.get("format"),
                    "row_count": dataset.statistics.get("row_count"),
                    "columns": {c: columns[c] for c in [*data.feature_names, target] if c in columns},
                },
            }
        if isinstance(data, TrainingData) and isinstance(result.package, ModelPackage):
            lineage.update(explanation_facts(result.package, data, self.artifacts))
        same_model = parent is not None and parent.model == job.register_as
        registered = self.registry.register_version(
            job.register_as,
            result.package,
            metrics=dict(result.metrics),
            params=dict(result.params),
            description=f"trained by job {job.id} on {dataset.dataset}:{dataset.version}",
            source=source,
            parent_version=parent.version if same_model and parent is not None else None,
            lineage=lineage,
        )
        if isinstance(data, TrainingData):
            store_training_reference(self.registry, registered, data.x_train, data.feature_names, dataset)
        return registered

    # -- helpers ------------------------------------------------------------------------------

    def _versions(self, model: str) -> list[ModelVersion]:
        try:
            return self.registry.list_versions(model)
        except NotFound:
            return []

    @staticmethod
    def _target(spec: JobSpec, version: DatasetVersion) -> str:
        target = spec.target or version.target
        if target is None:
            raise InvalidArgument(
                f"target: dataset {version.dataset}:{version.version} was registered without a target "
                f"column; name one of {version.column_names}",
                details={"field": "target", "expected": version.column_names},
            )
        if target not in version.column_names:
            raise InvalidArgument(
                f"target: dataset {version.dataset}:{version.version} has no column {target!r}; its "
                f"columns are {version.column_names}",
                details={"field": "target", "expected": version.column_names},
            )
        return target

    @staticmethod
    def _task(spec: JobSpec, version: DatasetVersion, target: str) -> str:
        if spec.task is not None:
            return spec.task
        if target == version.target and version.task:
            return version.task
        kind = next(c["kind"] for c in version.schema if c["name"] == target)
        if kind in ("string", "bool"):
            return "classification"
        raise InvalidArgument(
            f"task: cannot tell whether the numeric column {target!r} is a class label or a value; "
            "say task: classification or task: regression",
            details={"field": "task"},
        )

    def _warm_start_version(self, spec: JobSpec) -> ModelVersion:
        assert spec.warm_start is not None
        ref = spec.warm_start
        try:
            version = self.registry.get_version(ref.model, ref.version)
        except NotFound as exc:
            raise InvalidArgument(f"warm_start: {exc.message}", details={"field": "warm_start"}) from None
        lineage = version.lineage or {}
        if spec.model.family in LANGUAGE_MODEL_FAMILIES:
            # A language model continues from the registered folder itself, so a model imported
            # from a Hugging Face folder can be fine-tuned as well as one trained here.
            if version.flavor != HF_CAUSAL_LM:
                raise InvalidArgument(
                    f"warm_start: {ref.model} version {ref.version} is a {version.flavor} model; a "
                    f"{spec.model.family!r} fine-tunes a causal language model ({HF_CAUSAL_LM})",
                    details={"field": "warm_start"},
                )
            return version
        if not lineage.get("state_digest"):
            raise InvalidArgument(
                f"warm_start: {ref.model} version {ref.version} was not trained by an aiaas job, so "
                "there are no weights to continue from; start a fresh job instead",
                details={"field": "warm_start"},
            )
        if lineage.get("family") != spec.model.family:
            raise InvalidArgument(
                f"warm_start: {ref.model} version {ref.version} is a {lineage.get('family')!r} model; "
                f"the spec asks for {spec.model.family!r}",
                details={"field": "model.family"},
            )
        return version

    def _warm_start_state(
        self, spec: JobSpec, data: TrainingData | TextData
    ) -> tuple[bytes | None, ModelVersion | None]:
        if spec.warm_start is None:
            return None, None
        parent = self._warm_start_version(spec)
        if isinstance(data, TextData):
            from aiaas.training.language_model import warm_start_state  # torch: only in the worker

            return warm_start_state(self.registry.load_files(parent)), parent
        lineage = parent.lineage or {}
        if list(lineage.get("feature_names") or []) != data.feature_names:
            raise InvalidArgument(
                f"warm_start: {parent.model} version {parent.version} was trained on features "
                f"{lineage.get('feature_names')}; this dataset has {data.feature_names}",
                details={"field": "warm_start"},
            )
        if lineage.get("classes") != data.classes:
            raise InvalidArgument(
                f"warm_start: {parent.model} version {parent.version} knows classes "
                f"{lineage.get('classes')}; this dataset has {data.classes}",
                details={"field": "warm_start"},
            )
        return self.artifacts.get(lineage["state_digest"]), parent

    def training_data(self, version: DatasetVersion, spec: JobSpec) -> TrainingData | TextData:
        """The arrays (or documents) a job with ``spec`` trains on: the dataset version's split,
        its target and label encoding, exactly as a training job sees them (the optimizer
        fine-tunes and evaluates on the same)."""
        return self._training_data(version, spec)

    def _training_data(self, version: DatasetVersion, spec: JobSpec) -> TrainingData | TextData:
        loaded = self.datasets.load(version.dataset, version.version)
        if spec.model.family in LANGUAGE_MODEL_FAMILIES:
            return _text_data(
                version, loaded.texts_by_column(), loaded.train_indices, loaded.validation_indices
            )
        x, names = loaded.features(spec.target)
        raw = loaded.labels(spec.target)
        classes: list[Any] | None = None
        if spec.task == "classification":
            values, y = np.unique(raw, return_inverse=True)
            classes = [v.item() if hasattr(v, "item") else v for v in values]
        else:
            try:
                y = raw.astype(np.float32)
            except ValueError:
                raise InvalidArgument(
                    f"task: regression needs a numeric target, and {spec.target!r} holds labels",
                    details={"field": "task"},
                ) from None
        train, val = loaded.train_indices, loaded.validation_indices
        shape = loaded.metadata.get("image_shape")
        data = TrainingData(
            x_train=x[train],
            y_train=y[train],
            x_val=x[val],
            y_val=y[val],
            feature_names=names,
            task=str(spec.task),
            classes=classes,
            image_shape=tuple(shape) if shape else None,
        )
        data.check()
        return data


def _check_text(version: DatasetVersion, family: str) -> None:
    if not version.text_columns:
        raise InvalidArgument(
            f"dataset: model.family {family!r} learns text, and {version.dataset}:{version.version} has no "
            "text column; register a .txt corpus, or name the text column (text_column) of a JSONL, CSV "
            "or Parquet file",
            details={"field": "dataset"},
        )


def _text_data(
    version: DatasetVersion,
    texts: dict[str, list[str | None]],
    train: np.ndarray[Any, Any],
    validation: np.ndarray[Any, Any],
) -> TextData:
    """A language model's documents from a text dataset's split: the text column's values, or
    chat pairs in the layout of the chat template (a pair missing either side is left out)."""
    options = version.text or {}
    prompts, responses = options.get("prompt_column"), options.get("response_column")
    if prompts and responses:
        documents: list[str | None] = [
            chat_document(p, r) if p and p.strip() and r and r.strip() else None
            for p, r in zip(texts[prompts], texts[responses], strict=True)
        ]
    else:
        documents = texts[version.text_columns[0]]
    data = TextData(
        train=[documents[i] for i in train.tolist() if documents[i]],
        validation=[documents[i] for i in validation.tolist() if documents[i]],
        chat=bool(prompts and responses),
    )
    data.check()
    return data


def _text_lineage(
    job: Job, spec: JobSpec, dataset: DatasetVersion, parent: ModelVersion | None, state_digest: str
) -> dict[str, Any]:
    """A language model's lineage: the text columns and their statistics are its reference."""
    columns = dataset.statistics.get("columns", {})
    return {
        "job": job.id,
        "dataset": {
            "name": dataset.dataset,
            "version": dataset.version,
            "digest": dataset.artifact_digest,
            "split": dataset.split,
        },
        "spec": job.spec,
        "parent": {"model": parent.model, "version": parent.version} if parent else None,
        "state_digest": state_digest,
        "family": spec.model.family,
        "task": TEXT_GENERATION,
        "target": None,
        "text": dataset.text,
        "feature_names": None,
        "classes": None,
        "reference_statistics": {
            "format": dataset.statistics.get("format"),
            "row_count": dataset.statistics.get("row_count"),
            "columns": {c: columns[c] for c in dataset.text_columns if c in columns},
            "text": dataset.statistics.get("text"),
        },
    }


def _dataset_ref(ref: str) -> tuple[str, int | None]:
    name, _, version = ref.partition(":")
    if not version or version == "latest":
        return name, None
    try:
        return name, int(version)
    except ValueError:
        raise InvalidArgument(
            f"dataset: expected 'name' or 'name:version' with a version number; got {ref!r}",
            details={"field": "dataset"},
        ) from None


def _check_features(version: DatasetVersion, target: str) -> None:
    features = [c for c in version.schema if c["name"] != target]
    if not features:
        raise InvalidArgument(
            f"dataset {version.dataset}:{version.version} has no feature columns besides the target",
            details={"field": "dataset"},
        )
    for column in features:
        if column["kind"] == "text":
            raise InvalidArgument(
                f"dataset: column {column['name']!r} holds text, and tabular families take numeric or bool "
                "features; a 'transformer' learns text (as a language model of the text column)",
                details={"field": "dataset", "column": column["name"]},
            )
        if column["kind"] not in FEATURE_KINDS:
            raise InvalidArgument(
                f"dataset: feature column {column['name']!r} has dtype {column['dtype']}; features must "
                "be numeric or bool: drop the column or encode it as numbers",
                details={"field": "dataset", "column": column["name"]},
            )
        if column["null_count"]:
            raise InvalidArgument(
                f"dataset: feature column {column['name']!r} has {column['null_count']} missing values; "
                "fill them before training",
                details={"field": "dataset", "column": column["name"]},
            )
