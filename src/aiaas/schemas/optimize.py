"""The optimization request: which version to optimize, by which method, with which settings.

One definition of every method's settings, read by the REST API, the SDK, the CLI and the
optimization worker alike. Each method has its own settings object (``prune``, ``distill``,
...); only the chosen method's may be given (``auto`` may carry any, and uses them for its
candidates), so settings meant for another method are a 400 naming the field rather than
silently ignored. Defaults are filled in, and stored with the job, so a result's lineage says
exactly what was run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from aiaas.schemas._base import MAX_ID, Wire, WireIn
from aiaas.schemas.spec_rules import RuleBroken
from aiaas.translate import invalid_argument

__all__ = [
    "AUTO",
    "METHODS",
    "OPTIMIZE_KIND",
    "DistillSettings",
    "DynamicInt8Settings",
    "Fp16Settings",
    "OptimizationCandidate",
    "OptimizationReport",
    "OptimizeRequest",
    "OptimizeSpec",
    "PruneSettings",
    "StaticInt8Settings",
]

#: The methods, in the order ``auto`` tries them.
METHODS = ("dynamic_int8", "static_int8", "fp16", "prune", "distill")
#: Try the methods and keep the fastest candidate within ``max_metric_drop``.
AUTO = "auto"
#: The ``kind`` an optimization job's stored spec carries (training jobs have none).
OPTIMIZE_KIND = "optimize"

Method = Literal["dynamic_int8", "static_int8", "fp16", "prune", "distill", "auto"]

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_DATASET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(:[1-9][0-9]*)?$"
_WIDTH = Field(ge=1, le=65_536)


class DynamicInt8Settings(WireIn):
    """Dynamic int8 quantization (ONNX Runtime ``quantize_dynamic``): int8 weights, activations
    quantized at run time. Needs no data."""

    per_channel: bool = Field(default=False, description="One scale per output channel (else per tensor).")


class StaticInt8Settings(WireIn):
    """Static int8 quantization in QDQ form (ONNX Runtime ``quantize_static``), activation ranges
    calibrated on the rows of a dataset version."""

    calibration_dataset: str | None = Field(
        default=None,
        pattern=_DATASET_PATTERN,
        description="Dataset (name or name:version) whose rows calibrate the activation ranges; "
        "default: the evaluation dataset. Its feature columns must be the model's inputs.",
    )
    calibration_rows: int = Field(default=256, ge=1, le=100_000, description="Rows used for calibration.")
    per_channel: bool = Field(default=False, description="One scale per output channel (else per tensor).")


class Fp16Settings(WireIn):
    """Half-precision weights: stored as FP16 and widened to FP32 where they are used, so the
    artifact halves and every runtime (CPU included) still computes in FP32."""


class PruneSettings(WireIn):
    """Magnitude pruning of a PyTorch-family model (mlp, cnn), then optional fine-tuning."""

    structured: bool = Field(
        default=True,
        description="Remove whole hidden neurons and conv channels (a smaller, faster model); false: "
        "zero the smallest weights of each layer (a sparser model of the same size).",
    )
    sparsity: float = Field(
        default=0.5, gt=0, lt=1, description="Fraction of neurons/channels or weights removed."
    )
    fine_tune_epochs: int = Field(default=5, ge=0, le=10_000, description="Epochs of training after pruning.")
    learning_rate: float | None = Field(
        default=None, gt=0, le=10, description="Fine-tuning learning rate; default: the source job's."
    )


class DistillSettings(WireIn):
    """Knowledge distillation into a smaller student of the same family, trained on the
    teacher's soft targets (temperature ``temperature``, weight ``alpha``) plus the labels."""

    width_factor: float = Field(
        default=0.4,
        gt=0,
        le=1,
        description="Student widths = teacher widths x this factor (unless hidden_sizes/channels are given).",
    )
    hidden_sizes: list[int] | None = Field(
        default=None, max_length=16, description="The student's hidden widths."
    )
    channels: list[int] | None = Field(
        default=None, min_length=1, max_length=8, description="The student's conv channels (cnn)."
    )
    temperature: float = Field(default=4.0, gt=0, le=100, description="Softening of the teacher's outputs.")
    alpha: float = Field(
        default=0.7, ge=0, le=1, description="Weight of the soft-target loss (1-alpha: labels)."
    )
    epochs: int = Field(default=40, ge=1, le=10_000, description="Training epochs of the student.")
    learning_rate: float | None = Field(default=None, gt=0, le=10, description="Default: the teacher job's.")

    @model_validator(mode="after")
    def _check(self) -> DistillSettings:
        for name in ("hidden_sizes", "channels"):
            for i, width in enumerate(getattr(self, name) or []):
                if not 1 <= width <= 65_536:
                    raise RuleBroken(f"{name}.{i}", f"must be a width from 1 to 65536; got {width}")
        return self


_SETTINGS: dict[str, type[WireIn]] = {
    "dynamic_int8": DynamicInt8Settings,
    "static_int8": StaticInt8Settings,
    "fp16": Fp16Settings,
    "prune": PruneSettings,
    "distill": DistillSettings,
}


class OptimizeRequest(WireIn):
    """How to optimize a version: a method and that method's settings (the body of
    ``POST /api/v1/models/{name}/versions/{ref}/optimize``; :class:`OptimizeSpec` adds the version).

    Example (JSON)::

        {"method": "prune", "prune": {"structured": true, "sparsity": 0.5, "fine_tune_epochs": 5}}

    ``auto`` tries ``candidates`` (default: every method that applies to the model) and keeps the
    fastest (batch-32 latency) whose task metric is at most ``max_metric_drop`` below the source's.
    """

    method: Method = Field(description=f"One of {', '.join(METHODS)} or {AUTO}.")
    dataset: str | None = Field(
        default=None,
        pattern=_DATASET_PATTERN,
        description="Dataset whose validation split measures the task metric (and whose training split "
        "fine-tunes and distils); default: the one the source version was trained on.",
    )
    register_as: str | None = Field(
        default=None,
        pattern=_NAME_PATTERN,
        description="Model the result is registered under; default: the source's.",
    )
    alias: str | None = Field(
        default=None,
        pattern=_NAME_PATTERN,
        description="Point this alias of the result's model at the result.",
    )
    max_metric_drop: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="auto only: the largest drop of the task metric (accuracy, or r2) accepted, e.g. 0.01 "
        "(one point); default 0.01.",
    )
    candidates: list[Literal["dynamic_int8", "static_int8", "fp16", "prune", "distill"]] | None = Field(
        default=None, min_length=1, max_length=5, description="auto only: the methods to try."
    )
    latency_runs: int = Field(
        default=300, ge=10, le=100_000, description="Timed runs per latency figure (the median is reported)."
    )
    dynamic_int8: DynamicInt8Settings | None = None
    static_int8: StaticInt8Settings | None = None
    fp16: Fp16Settings | None = None
    prune: PruneSettings | None = None
    distill: DistillSettings | None = None

    @model_validator(mode="after")
    def _check_method(self) -> OptimizeRequest:
        if self.method != AUTO:
            for name in ("max_metric_drop", "candidates"):
                if getattr(self, name) is not None:
                    raise RuleBroken(name, f"is read by method 'auto' only; method is {self.method!r}")
            for name in METHODS:
                if name != self.method and getattr(self, name) is not None:
                    raise RuleBroken(name, f"are settings of method {name!r}; method is {self.method!r}")
        elif self.candidates is not None and len(set(self.candidates)) != len(self.candidates):
            raise RuleBroken("candidates", "must not repeat a method")
        return self

    def settings(self, method: str) -> dict[str, Any]:
        """The settings of ``method``, defaults filled in."""
        given = getattr(self, method)
        return (given if given is not None else _SETTINGS[method]()).model_dump(mode="json")

    def budget(self) -> float:
        """The accepted metric drop of ``auto``."""
        return 0.01 if self.max_metric_drop is None else self.max_metric_drop


class OptimizeSpec(OptimizeRequest):
    """An optimization job: a registered version, a method and that method's settings (what the
    job row stores, the SDK validates, and the worker runs).

    Example (JSON)::

        {"model": "digits-cnn", "version": 3, "method": "prune",
         "prune": {"structured": true, "sparsity": 0.5, "fine_tune_epochs": 5}}
    """

    model: str = Field(pattern=_NAME_PATTERN, description="The registered model.")
    version: int | str = Field(default="latest", description="Version number, alias or 'latest'.")

    @model_validator(mode="after")
    def _check_version(self) -> OptimizeSpec:
        if isinstance(self.version, int) and not 1 <= self.version <= MAX_ID:
            raise RuleBroken("version", f"must be a version number from 1 to {MAX_ID}; got {self.version}")
        return self

    def stored(self) -> dict[str, Any]:
        """The spec as a job row keeps it: ``kind`` marks it as an optimization job, and the
        chosen method's settings are filled in."""
        data = self.model_dump(mode="json", exclude_none=True)
        if self.method != AUTO:
            data[self.method] = self.settings(self.method)
        return {"kind": OPTIMIZE_KIND, **data}

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> OptimizeSpec:
        return cls.model_validate({k: v for k, v in data.items() if k != "kind"})

    @classmethod
    def parse(cls, data: Any) -> OptimizeSpec:
        """Validate a decoded request, pydantic's errors turned into one InvalidArgument."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise invalid_argument(exc, what="optimization request", default_field="spec") from None


class OptimizationReport(Wire):
    """How an optimized version compares with its parent, measured in one run on one machine."""

    size_bytes: int
    parent_size_bytes: int
    size_ratio: float = Field(description="parent size / this size (> 1: smaller).")
    latency_1_ms: float = Field(description="Median latency of one row (ONNX Runtime, one thread).")
    latency_32_ms: float = Field(description="Median latency of a batch of 32 rows.")
    parent_latency_1_ms: float
    parent_latency_32_ms: float
    speedup_32: float = Field(description="parent batch-32 latency / this one (> 1: faster).")
    metric: str = Field(description="The task metric: accuracy (classification) or r2 (regression).")
    value: float
    parent_value: float
    metric_drop: float = Field(description="parent value - this value (> 0: worse).")
    agreement: float = Field(description="Fraction of validation rows predicted as the parent predicts.")
    parameters: int | None = None
    parent_parameters: int | None = None
    validation_rows: int


class OptimizationCandidate(Wire):
    """One candidate an ``auto`` search tried, with its report, and whether it was kept."""

    method: str
    settings: dict[str, Any]
    report: OptimizationReport | None
    within_budget: bool
    chosen: bool
    error: str = ""
