"""Submitting an optimization (checked against the registry and the data) and running one.

Submission resolves everything while the user is still there to be told: the source version
(pinned to its number), that each method applies to it (a tree ensemble has no weights to
quantize; pruning and distillation need a network trained here), the evaluation dataset (the
one the source was trained on, or one given, whose columns must be the model's features), and
the calibration dataset of ``static_int8`` (same rule). A refused request queues nothing and
registers nothing. The job then runs in the training scheduler's slots (one slot), as
``python -m aiaas.optimize.worker JOB_ID``, with the job rows' progress, logs and cancel.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiaas.datasets import FEATURE_KINDS, DatasetVersion
from aiaas.errors import InvalidArgument, NotFound
from aiaas.formats import FOLDER_FLAVORS, ModelPackage, decode_tensors, parse_onnx, signature_of
from aiaas.registry import ModelVersion, check_alias_name, check_name
from aiaas.schemas.optimize import AUTO, METHODS, OptimizeSpec
from aiaas.schemas.training import TORCH_FAMILIES, JobSpec
from aiaas.training import RUNNING, Job, JobCancelled, NewJob, TrainingData, TrainingService

__all__ = ["OptimizationService", "worker_command"]

_QUANTIZATION = ("dynamic_int8", "static_int8", "fp16")


def worker_command() -> list[str]:
    """The command that runs one optimization job (its id is appended)."""
    return [sys.executable, "-m", "aiaas.optimize.worker"]


@dataclass(frozen=True)
class _Plan:
    source: ModelVersion
    dataset: DatasetVersion
    calibration: DatasetVersion | None
    calibration_columns: list[str]
    methods: list[str]
    register_as: str
    features: list[str] | None
    target: str
    task: str


class _JobLog:
    """The training engine's reporter for fine-tuning inside an optimization job: epochs become
    log lines (the job's own steps are its methods), and a cancel stops at an epoch boundary."""

    def __init__(self, service: OptimizationService, job_id: int, prefix: str) -> None:
        self.service, self.job_id, self.prefix = service, job_id, prefix

    def log(self, message: str) -> None:
        self.service.jobs.log(self.job_id, f"{self.prefix}{message}")

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        shown = "  ".join(
            f"{k}={v:.4g}" for k, v in metrics.items() if k in ("loss", "val_loss", "val_accuracy")
        )
        self.log(f"epoch {epoch}  {shown}")
        if self.service.jobs.get(self.job_id).cancel_requested:
            raise JobCancelled(f"job {self.job_id} cancelled during {self.prefix.strip(': ')}")

    def checkpoint(self, epoch: int, state: bytes) -> None:
        pass  # an optimization is short: a killed job starts again


class OptimizationService:
    """Optimization jobs, from request to registered version.

    Args:
        training: the training service; its job rows, datasets, registry and artifacts are
            shared (an optimization job is a job of the same scheduler).
    """

    def __init__(self, training: TrainingService) -> None:
        self.training = training
        self.jobs = training.jobs
        self.datasets = training.datasets
        self.registry = training.registry
        self.artifacts = training.artifacts

    # -- submission ---------------------------------------------------------------------------

    def submit(self, spec: OptimizeSpec) -> Job:
        """Check ``spec`` against the registry and datasets, then queue it.

        Raises:
            InvalidArgument: naming the field that cannot work (``model``, ``method``,
                ``candidates``, ``dataset``, ``static_int8.calibration_dataset``, ...).
        """
        plan = self._plan(spec)
        stored = spec.stored()
        stored.update(version=plan.source.version, dataset=f"{plan.dataset.dataset}:{plan.dataset.version}")
        stored["methods"] = plan.methods
        if plan.calibration is not None:
            stored["static_int8"] = {
                **spec.settings("static_int8"),
                "calibration_dataset": f"{plan.calibration.dataset}:{plan.calibration.version}",
            }
        new = NewJob(
            spec=stored,
            dataset=plan.dataset.dataset,
            dataset_version=plan.dataset.version,
            register_as=plan.register_as,
            workers=1,
            epochs=len(plan.methods) + 1,
        )
        return self.jobs.create(new)

    def _plan(self, spec: OptimizeSpec) -> _Plan:
        for field in ("model", "version"):
            try:
                if field == "model":
                    self.registry.get_model(spec.model)
                else:
                    source = self.registry.get_version(spec.model, spec.version)
            except NotFound as exc:
                raise InvalidArgument(f"{field}: {exc.message}", details={"field": field}) from None
        where = f"{source.model}:{source.version}"
        if source.flavor in FOLDER_FLAVORS:
            raise InvalidArgument(
                f"model: {where} is a {source.flavor} model folder; optimization works on ONNX models",
                details={"field": "model"},
            )
        inputs = source.signature.get("inputs", [])
        if len(inputs) != 1 or inputs[0].get("datatype") != "FP32" or len(inputs[0].get("shape", [])) != 2:
            raise InvalidArgument(
                f"model: {where} takes inputs "
                f"{[(i.get('name'), i.get('datatype'), i.get('shape')) for i in inputs]}; optimization "
                "measures models with one FP32 input of feature rows",
                details={"field": "model"},
            )
        lineage = source.lineage or {}
        methods = self._methods(spec, source, lineage)
        register_as = spec.register_as or source.model
        check_name(register_as)
        if spec.alias is not None:
            check_alias_name(spec.alias)
        dataset, target, task, features = self._dataset(spec, source, lineage, int(inputs[0]["shape"][1]))
        calibration, columns = None, list[str]()
        settings = spec.static_int8 if "static_int8" in methods else None
        if settings is not None and settings.calibration_dataset is not None:
            calibration, columns = self._calibration(
                settings.calibration_dataset, features, int(inputs[0]["shape"][1])
            )
        return _Plan(source, dataset, calibration, columns, methods, register_as, features, target, task)

    def _methods(self, spec: OptimizeSpec, source: ModelVersion, lineage: dict[str, Any]) -> list[str]:
        wanted = [spec.method] if spec.method != AUTO else list(spec.candidates or METHODS)
        family = lineage.get("family")
        trained = family in TORCH_FAMILIES and bool(lineage.get("state_digest"))
        layers: int | None = None
        usable: list[str] = []
        problems: dict[str, str] = {}
        what = (
            f"{source.model}:{source.version} ({family!r})" if family else f"{source.model}:{source.version}"
        )
        for method in wanted:
            if method in _QUANTIZATION:
                if layers is None:
                    from aiaas.optimize.quantize import quantizable_layers

                    layers = quantizable_layers(self.registry.load_artifact(source))
                if layers == 0:
                    problems[method] = (
                        f"{method!r} quantizes Conv, MatMul and Gemm weights, and {what} has none "
                        "(tree ensembles and linear models are other operators)"
                    )
                    continue
            elif not trained:
                problems[method] = (
                    f"{method!r} works on the PyTorch families {list(TORCH_FAMILIES)} trained by an aiaas "
                    f"job; {what} is {'a ' + repr(family) + ' model' if family else 'an uploaded model'}"
                )
                continue
            usable.append(method)
        if spec.method != AUTO and problems:
            raise InvalidArgument(f"method: {problems[spec.method]}", details={"field": "method"})
        if spec.candidates is not None and problems:
            first = next(iter(problems))
            raise InvalidArgument(f"candidates: {problems[first]}", details={"field": "candidates"})
        if not usable:
            raise InvalidArgument(
                f"method: no optimization method applies to {what}: " + "; ".join(problems.values()),
                details={"field": "method"},
            )
        return usable

    def _dataset(
        self, spec: OptimizeSpec, source: ModelVersion, lineage: dict[str, Any], width: int
    ) -> tuple[DatasetVersion, str, str, list[str] | None]:
        trained_on = lineage.get("dataset") or {}
        ref = spec.dataset or (
            f"{trained_on['name']}:{trained_on['version']}" if trained_on.get("name") else None
        )
        if ref is None:
            raise InvalidArgument(
                f"dataset: {source.model}:{source.version} was not trained by an aiaas job, so name the "
                "dataset whose validation split measures it (dataset: NAME[:VERSION])",
                details={"field": "dataset"},
            )
        version = self._dataset_version(ref, "dataset")
        target = lineage.get("target") or version.target
        task = lineage.get("task") or version.task
        if not target or target not in version.column_names or task not in ("classification", "regression"):
            raise InvalidArgument(
                f"dataset: {version.dataset}:{version.version} has no target column "
                f"{target!r} with a classification or regression task to measure the model on",
                details={"field": "dataset"},
            )
        features: list[str] | None = lineage.get("feature_names")
        columns = [c for c in version.column_names if c != target]
        if (features is not None and columns != features) or (features is None and len(columns) != width):
            expected = features if features is not None else f"{width} feature columns"
            raise InvalidArgument(
                f"dataset: the columns of {version.dataset}:{version.version} besides {target!r} are "
                f"{_few(columns)}; the model takes "
                f"{_few(features) if features is not None else expected}",
                details={"field": "dataset", "expected": expected},
            )
        return version, target, task, features

    def _calibration(
        self, ref: str, features: list[str] | None, width: int
    ) -> tuple[DatasetVersion, list[str]]:
        field = "static_int8.calibration_dataset"
        version = self._dataset_version(ref, field)
        numeric = [c["name"] for c in version.schema if c["kind"] in FEATURE_KINDS]
        if features is not None:
            missing = [f for f in features if f not in numeric]
            if missing:
                raise InvalidArgument(
                    f"{field}: the model's signature takes {width} features ({_few(features)}), and "
                    f"{version.dataset}:{version.version} has columns {_few(version.column_names)}: "
                    f"{_few(missing)} missing or not numeric",
                    details={"field": field, "expected": features, "missing": missing},
                )
            return version, features
        columns = [c for c in numeric if c != version.target]
        if len(columns) != width:
            raise InvalidArgument(
                f"{field}: {version.dataset}:{version.version} has {len(columns)} numeric feature columns; "
                f"the model's signature takes {width}",
                details={"field": field, "expected": width},
            )
        return version, columns

    def _dataset_version(self, ref: str, field: str) -> DatasetVersion:
        name, _, number = ref.partition(":")
        try:
            return self.datasets.get_version(name, int(number) if number else None)
        except NotFound as exc:
            raise InvalidArgument(f"{field}: {exc.message}", details={"field": field}) from None

    # -- running (in the worker process) ------------------------------------------------------

    def run(self, job_id: int) -> ModelVersion | None:
        """Run every method of the job, measure them beside the source, register the result.

        Returns None when the job was no longer running at the end (cancelled meanwhile).

        Raises:
            InvalidArgument: ``auto`` found no candidate within the budget (the job's metrics
                hold every candidate's report), or the only method failed on this model.
        """
        from aiaas.optimize.methods import Source, run_method
        from aiaas.optimize.report import build_report, measure

        job = self.jobs.begin_attempt(job_id)
        if job.status != RUNNING:
            raise InvalidArgument(f"job {job_id} is {job.status}, not running", details={"job": job_id})
        spec = OptimizeSpec.from_stored({k: v for k, v in job.spec.items() if k != "methods"})
        methods: list[str] = list(job.spec["methods"])
        existing = self._registered(job)
        if existing is not None:
            return existing if self.jobs.succeed(job_id, existing.version) else None
        source = self.registry.get_version(spec.model, spec.version)
        plan = self._plan(spec)
        data = self._data(plan)
        lineage = source.lineage or {}
        state = self.artifacts.get(lineage["state_digest"]) if lineage.get("state_digest") else None
        src = Source(
            onnx=self.registry.load_artifact(source),
            input_name=source.signature["inputs"][0]["name"],
            family=lineage.get("family"),
            state=state,
            spec=lineage.get("spec"),
        )
        calibration = None
        if plan.calibration is not None:
            loaded = self.datasets.load(plan.calibration.dataset, plan.calibration.version)
            calibration = np.column_stack(
                [np.asarray(loaded.columns[name], dtype=np.float32) for name in plan.calibration_columns]
            )
            calibration = calibration[np.isfinite(calibration).all(axis=1)]
        self.jobs.log(
            job_id,
            f"optimizing {source.model}:{source.version} by {', '.join(methods)}; measured on "
            f"{plan.dataset.dataset}:{plan.dataset.version} ({len(data.y_val)} validation rows)",
        )
        candidates: dict[str, Any] = {}
        failures: dict[str, str] = {}
        for step, method in enumerate(methods, 1):
            try:
                candidates[method] = run_method(
                    method,
                    spec.settings(method),
                    src,
                    data,
                    _JobLog(self, job_id, f"{method}: "),
                    calibration=calibration,
                )
            except InvalidArgument as exc:
                if spec.method != AUTO:
                    raise
                failures[method] = exc.message
                self.jobs.log(job_id, f"{method}: failed: {exc.message}")
            if self.jobs.record_epoch(job_id, step, {"method": method, "done": method in candidates}):
                raise JobCancelled(f"job {job_id} cancelled after {method}")
        truth = _truth(data)
        measured = measure(
            {"parent": src.onnx, **{m: c.onnx for m, c in candidates.items()}},
            data.x_val,
            truth,
            task=data.task,
            runs=spec.latency_runs,
        )
        reports = {
            m: build_report(
                measured[m],
                measured["parent"],
                truth=truth,
                task=data.task,
                parameters=c.parameters,
                parent_parameters=c.parent_parameters,
            )
            for m, c in candidates.items()
        }
        chosen, rows = _choose(spec, methods, reports, failures)
        for row in rows:
            self.jobs.log(job_id, _row_line(row))
        if self.jobs.record_epoch(job_id, len(methods) + 1, {"candidates": rows, "chosen": chosen}):
            raise JobCancelled(f"job {job_id} cancelled before registering")
        if chosen is None:
            raise InvalidArgument(
                f"max_metric_drop: no candidate stays within a drop of {spec.budget():g} "
                f"({plan.task} metric); see the job's candidates",
                details={"field": "max_metric_drop", "candidates": rows},
            )
        version = self._register(job, spec, plan, src, chosen, candidates[chosen], reports[chosen], rows)
        if spec.alias is not None:
            self.registry.set_alias(version.model, spec.alias, version.version)
            self.jobs.log(
                job_id, f"alias {spec.alias!r} of {version.model!r} now points at version {version.version}"
            )
        return version if self.jobs.succeed(job_id, version.version) else None

    def _registered(self, job: Job) -> ModelVersion | None:
        """The version an earlier attempt of this job registered (it was killed after)."""
        try:
            versions = self.registry.list_versions(job.register_as)
        except NotFound:
            return None
        return next((v for v in versions if v.source == f"optimize-job:{job.id}"), None)

    def _data(self, plan: _Plan) -> TrainingData:
        family = (plan.source.lineage or {}).get("family") or "mlp"
        spec = JobSpec.parse(
            {
                "dataset": f"{plan.dataset.dataset}:{plan.dataset.version}",
                "model": {"family": family},
                "target": plan.target,
                "task": plan.task,
            }
        )
        data = self.training.training_data(plan.dataset, spec)
        assert isinstance(data, TrainingData)
        return data

    def _register(
        self,
        job: Job,
        spec: OptimizeSpec,
        plan: _Plan,
        src: Any,
        method: str,
        candidate: Any,
        result: dict[str, Any],
        rows: list[dict[str, Any]],
    ) -> ModelVersion:
        source = plan.source
        lineage = dict(source.lineage or {})
        kept = ("dataset", "family", "task", "target", "feature_names", "classes", "reference_statistics")
        settings = spec.settings(method)
        if method == "static_int8" and plan.calibration is not None:
            settings["calibration_dataset"] = f"{plan.calibration.dataset}:{plan.calibration.version}"
        new_lineage: dict[str, Any] = {
            **{k: lineage[k] for k in kept if k in lineage},
            "job": job.id,
            "parent": {"model": source.model, "version": source.version},
            "state_digest": self.artifacts.put(candidate.state) if candidate.state else None,
            "spec": candidate.spec,
            "optimization": {
                "method": method,
                "settings": settings,
                "report": result,
                "notes": candidate.notes,
                "source": {"model": source.model, "version": source.version},
                "evaluated_on": {"name": plan.dataset.dataset, "version": plan.dataset.version},
                **({"budget": spec.budget(), "candidates": rows} if spec.method == AUTO else {}),
            },
        }
        if "dataset" not in new_lineage:
            new_lineage["dataset"] = {"name": plan.dataset.dataset, "version": plan.dataset.version}
        example = (
            decode_tensors(source.example["inputs"], field="example") if source.example.get("inputs") else {}
        )
        package = ModelPackage(
            onnx=candidate.onnx,
            flavor=source.flavor,
            signature=signature_of(parse_onnx(candidate.onnx)),
            example=example,
        )
        same_model = plan.register_as == source.model
        return self.registry.register_version(
            plan.register_as,
            package,
            metrics={result["metric"]: result["value"], "agreement_with_parent": result["agreement"]},
            params={"method": method, **settings},
            description=f"{method} of {source.model}:{source.version} (optimization job {job.id})",
            source=f"optimize-job:{job.id}",
            parent_version=source.version if same_model else None,
            lineage=new_lineage,
        )


def _few(names: list[str], shown: int = 6) -> str:
    """Column names for a message: the first few, and how many there are."""
    head = ", ".join(repr(n) for n in names[:shown])
    return head if len(names) <= shown else f"{head}, ... ({len(names)} in all)"


def _truth(data: TrainingData) -> list[Any]:
    if data.task == "classification":
        labels = data.class_labels()
        return [labels[i] for i in data.y_val.tolist()]
    return [float(v) for v in data.y_val.tolist()]


def _choose(
    spec: OptimizeSpec, methods: list[str], reports: dict[str, dict[str, Any]], failures: dict[str, str]
) -> tuple[str | None, list[dict[str, Any]]]:
    """The kept method (the fastest at batch 32 within the budget, for ``auto``) and one row
    per candidate for the table."""
    if spec.method != AUTO:
        chosen: str | None = spec.method if spec.method in reports else None
    else:
        within = [m for m, r in reports.items() if r["metric_drop"] <= spec.budget() + 1e-12]
        chosen = min(within, key=lambda m: reports[m]["latency_32_ms"]) if within else None
    rows = []
    for method in methods:
        r = reports.get(method)
        rows.append(
            {
                "method": method,
                "settings": spec.settings(method),
                "report": r,
                "within_budget": r is not None
                and (spec.method != AUTO or r["metric_drop"] <= spec.budget() + 1e-12),
                "chosen": method == chosen,
                "error": failures.get(method, ""),
            }
        )
    return chosen, rows


def _row_line(row: dict[str, Any]) -> str:
    r = row["report"]
    if r is None:
        return f"{row['method']}: failed: {row['error']}"
    mark = " <- kept" if row["chosen"] else ("" if row["within_budget"] else " (over budget)")
    return (
        f"{row['method']}: {r['size_ratio']:.2f}x smaller, batch-32 {r['latency_32_ms']:.3f} ms "
        f"(parent {r['parent_latency_32_ms']:.3f}, {r['speedup_32']:.2f}x), {r['metric']} {r['value']:.4f} "
        f"(drop {r['metric_drop']:+.4f}), agreement {r['agreement']:.1%}{mark}"
    )
