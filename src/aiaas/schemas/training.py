"""The training job spec: what a user writes (JSON or YAML) to ask for a trained model.

Every field is checked here, once, where a spec enters the platform (the API, the SDK, the
CLI, ``launch``), so a typo or an out-of-range value is a 400 naming the field path
(``model.hidden_sizes.1``, ``optimizer.lr``) rather than a job that fails minutes later. The
rules that relate fields to each other live in :mod:`aiaas.schemas.spec_rules`, the one
definition the training service and the trainer apply too once the dataset settles the task.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml  # type: ignore[import-untyped]
from pydantic import Field, ValidationError, model_validator

from aiaas.errors import InvalidArgument
from aiaas.schemas._base import MAX_ID, WireIn
from aiaas.schemas.spec_rules import (
    CLASSIFICATION_METRICS,
    FAMILY_PARAMS,
    LANGUAGE_MODEL_FAMILIES,
    LANGUAGE_MODEL_METRICS,
    LOWER_IS_BETTER,
    MAX_CONTEXT_LENGTH,
    MAX_VOCAB_SIZE,
    MIN_VOCAB_SIZE,
    REGRESSION_METRICS,
    SKLEARN_FAMILIES,
    TEXT_GENERATION,
    TORCH_FAMILIES,
    TORCH_ONLY_FIELDS,
    TRANSFORMER_DEFAULTS,
    Family,
    RuleBroken,
    check_early_stopping,
    check_language_model,
    check_task,
    check_used_fields,
    check_workers,
    unused_fields,
)
from aiaas.translate import invalid_argument

__all__ = [
    "CLASSIFICATION_METRICS",
    "LANGUAGE_MODEL_FAMILIES",
    "LANGUAGE_MODEL_METRICS",
    "MAX_CONTEXT_LENGTH",
    "MAX_VOCAB_SIZE",
    "MIN_VOCAB_SIZE",
    "REGRESSION_METRICS",
    "SKLEARN_FAMILIES",
    "TEXT_GENERATION",
    "TORCH_FAMILIES",
    "TORCH_ONLY_FIELDS",
    "TRANSFORMER_DEFAULTS",
    "EarlyStoppingSpec",
    "JobSpec",
    "ModelSpec",
    "OptimizerSpec",
    "ScheduleSpec",
    "WarmStartRef",
    "unused_fields",
]

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_DATASET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(:[1-9][0-9]*)?$"


class ModelSpec(WireIn):
    """The model family and its hyper-parameters; only those of the chosen family may be set.

    Defaults (given when left out): ``C=1.0, max_iter=200`` (logistic), ``alpha=1.0``
    (linear, a ridge regression), ``n_estimators=100, max_depth=None`` (trees),
    ``learning_rate=0.1, subsample=1.0`` (gradient boosting), ``hidden_sizes=[64]`` (mlp) or
    ``[64]`` after ``channels=[16, 32]`` (cnn), ``dropout=0.0``, ``activation="relu"``;
    the transformer (a decoder-only, GPT-2-style language model): ``n_layer=4, n_head=4,
    n_embd=128, context_length=128, vocab_size=4096, dropout=0.0`` (see
    :data:`TRANSFORMER_DEFAULTS`). A transformer warm-started from a registered model keeps
    that model's architecture and tokenizer: ``n_layer``, ``n_head``, ``n_embd`` and
    ``vocab_size`` may then only repeat its values, and ``context_length`` may shorten it.
    """

    family: Family = Field(description="Model family.")
    C: float | None = Field(default=None, gt=0, description="Inverse regularisation (logistic).")
    max_iter: int | None = Field(default=None, ge=1, le=100_000, description="Solver iterations (logistic).")
    alpha: float | None = Field(default=None, ge=0, description="L2 penalty (linear).")
    n_estimators: int | None = Field(default=None, ge=1, le=10_000, description="Trees or stages.")
    max_depth: int | None = Field(default=None, ge=1, le=1_000, description="Tree depth (none: unlimited).")
    min_samples_leaf: int | None = Field(default=None, ge=1, le=MAX_ID, description="Samples per leaf.")
    learning_rate: float | None = Field(
        default=None, gt=0, le=10, description="Shrinkage (gradient boosting)."
    )
    subsample: float | None = Field(default=None, gt=0, le=1, description="Row fraction per stage.")
    hidden_sizes: list[int] | None = Field(
        default=None, max_length=16, description="Widths of the hidden layers (mlp, cnn head)."
    )
    channels: list[int] | None = Field(
        default=None, min_length=1, max_length=8, description="Output channels of each conv layer (cnn)."
    )
    dropout: float | None = Field(default=None, ge=0, lt=1, description="Dropout probability.")
    activation: Literal["relu", "tanh", "gelu"] | None = Field(default=None, description="Activation.")
    n_layer: int | None = Field(default=None, ge=1, le=128, description="Transformer blocks (transformer).")
    n_head: int | None = Field(default=None, ge=1, le=256, description="Attention heads (transformer).")
    n_embd: int | None = Field(
        default=None,
        ge=8,
        le=16_384,
        description="Width: embedding size, a multiple of n_head (transformer).",
    )
    context_length: int | None = Field(
        default=None, ge=8, le=MAX_CONTEXT_LENGTH, description="Tokens the model attends to (transformer)."
    )
    vocab_size: int | None = Field(
        default=None,
        ge=MIN_VOCAB_SIZE,
        le=MAX_VOCAB_SIZE,
        description="Largest vocabulary of the byte-level BPE tokenizer trained on the data (transformer).",
    )

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        allowed = FAMILY_PARAMS[self.family]
        for name in type(self).model_fields:
            if name != "family" and getattr(self, name) is not None and name not in allowed:
                raise RuleBroken(
                    name, f"is not a hyper-parameter of {self.family!r} (it takes {sorted(allowed)})"
                )
        for name in ("hidden_sizes", "channels"):
            for i, size in enumerate(getattr(self, name) or []):
                if not 1 <= size <= 65_536:
                    raise RuleBroken(f"{name}.{i}", f"must be between 1 and 65536; got {size}")
        if self.family == "transformer" and (self.n_embd is not None or self.n_head is not None):
            width = self.n_embd or TRANSFORMER_DEFAULTS["n_embd"]
            heads = self.n_head or TRANSFORMER_DEFAULTS["n_head"]
            if width % heads:
                raise RuleBroken(
                    "n_embd",
                    f"must be a multiple of n_head ({heads}) so each head gets n_embd/n_head; got {width}",
                )
        return self


class OptimizerSpec(WireIn):
    """The optimizer of the PyTorch families (the scikit-learn ones use their own solvers)."""

    name: Literal["sgd", "momentum", "adam", "adamw"] = Field(default="adam", description="Optimizer.")
    lr: float = Field(default=1e-3, gt=0, le=10, description="Learning rate.")
    weight_decay: float = Field(default=0.0, ge=0, le=1, description="L2 penalty (decoupled for adamw).")
    momentum: float | None = Field(
        default=None, ge=0, lt=1, description="Momentum of 'momentum' (default 0.9); only for it."
    )

    @model_validator(mode="after")
    def _check(self) -> OptimizerSpec:
        if self.momentum is not None and self.name != "momentum":
            raise RuleBroken("momentum", f"applies only to the 'momentum' optimizer, not {self.name!r}")
        return self


class ScheduleSpec(WireIn):
    """How the learning rate moves from epoch to epoch (stepped once per epoch)."""

    name: Literal["constant", "step", "cosine", "exponential"] = Field(description="Schedule.")
    step_size: int | None = Field(default=None, ge=1, description="Epochs between decays ('step').")
    gamma: float | None = Field(default=None, gt=0, le=1, description="Decay factor ('step', 'exponential').")

    @model_validator(mode="after")
    def _check(self) -> ScheduleSpec:
        if self.step_size is not None and self.name != "step":
            raise RuleBroken("step_size", f"applies only to the 'step' schedule, not {self.name!r}")
        if self.gamma is not None and self.name not in ("step", "exponential"):
            raise RuleBroken("gamma", f"applies only to 'step' and 'exponential', not {self.name!r}")
        return self


class EarlyStoppingSpec(WireIn):
    """Stop when a validation metric has not improved for ``patience`` epochs.

    ``restore_best`` (default true) puts back the weights of the best epoch at the end, so
    the registered model is the best one seen rather than the last.
    """

    metric: str = Field(default="val_loss", description="'loss', 'val_loss' or 'val_<metric>'.")
    patience: int = Field(default=5, ge=1, le=10_000, description="Epochs without improvement.")
    min_delta: float = Field(default=0.0, ge=0, description="Smallest change that counts.")
    mode: Literal["min", "max"] | None = Field(
        default=None, description="Default: 'min' for losses and errors, 'max' otherwise."
    )
    restore_best: bool = Field(default=True, description="Keep the best epoch's weights.")

    @model_validator(mode="after")
    def _check(self) -> EarlyStoppingSpec:
        check_early_stopping(self.metric, None, field="metric")
        return self

    def effective_mode(self) -> str:
        """'min' or 'max', from ``mode`` or from the metric's name."""
        if self.mode is not None:
            return self.mode
        return "min" if self.metric in LOWER_IS_BETTER else "max"


class WarmStartRef(WireIn):
    """A registered model version whose weights a job starts from."""

    model: str = Field(pattern=_NAME_PATTERN, description="Registered model name.")
    version: int = Field(ge=1, le=MAX_ID, description="Version number.")


class JobSpec(WireIn):
    """A training job: which data, which model, how to optimise it.

    Example (YAML)::

        dataset: digits:1
        model: {family: cnn, channels: [16, 32], dropout: 0.1}
        optimizer: {name: adamw, lr: 0.003, weight_decay: 0.01}
        schedule: {name: cosine}
        epochs: 20
        batch_size: 64
        early_stopping: {metric: val_accuracy, patience: 4}
        workers: 2

    A language model on a text dataset (``batch_size`` counts sequences of
    ``context_length`` tokens)::

        dataset: poems
        model: {family: transformer, n_layer: 4, n_head: 4, n_embd: 128, context_length: 128}
        optimizer: {name: adamw, lr: 0.001}
        epochs: 5
        batch_size: 16
        early_stopping: {metric: val_perplexity, patience: 2}
    """

    dataset: str = Field(pattern=_DATASET_PATTERN, description="'name' or 'name:version'.")
    target: str | None = Field(default=None, min_length=1, description="Default: the dataset's target.")
    task: Literal["classification", "regression", "text-generation"] | None = Field(
        default=None, description="Default: inferred from the dataset ('text-generation' for a transformer)."
    )
    model: ModelSpec
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec | None = None
    epochs: int = Field(default=10, ge=1, le=100_000, description="Passes over the training split.")
    batch_size: int = Field(
        default=32, ge=1, le=1_000_000, description="Samples per step, all workers together."
    )
    early_stopping: EarlyStoppingSpec | None = None
    seed: int = Field(default=0, ge=0, lt=2**31, description="Seeds initialisation and shuffling.")
    workers: int = Field(default=1, ge=1, le=256, description="Data-parallel processes (torch families).")
    register_as: str | None = Field(default=None, pattern=_NAME_PATTERN, description="Model name.")
    warm_start: WarmStartRef | None = None

    @model_validator(mode="after")
    def _check(self) -> JobSpec:
        family = self.model.family
        # Only what the author wrote counts: the defaults are filled in for every family.
        check_used_fields(family, [n for n in self.model_fields_set if getattr(self, n) is not None])
        check_workers(family, self.workers)
        self._check_task()
        return self

    def _check_task(self) -> None:
        """The rules that involve the task: run again by :meth:`resolved` once it is inferred."""
        family = self.model.family
        if family in LANGUAGE_MODEL_FAMILIES:
            check_language_model(family, self.target, self.task)
            if self.early_stopping is not None:
                check_early_stopping(self.early_stopping.metric, TEXT_GENERATION)
            return
        if self.task is not None:
            check_task(family, self.task)
            if self.early_stopping is not None:
                check_early_stopping(self.early_stopping.metric, self.task)

    def resolved(self, **settled: Any) -> JobSpec:
        """This (validated) spec with fields that submission settled from the dataset and the
        registry (``dataset`` pinned to a version, ``target``, ``task``, ``register_as``).

        The settled values come from the platform, not from the author, so only the rules they
        can break (those that involve the task) are applied again, from the same definitions.

        Raises:
            InvalidArgument: the family does not fit the settled task, or the early-stopping
                metric is not one of its metrics; naming the field.
        """
        spec = self.model_copy(update=settled)
        try:
            spec._check_task()
        except RuleBroken as exc:
            raise InvalidArgument(
                f"invalid job spec: {exc.field}: {exc.rule}",
                details={"field": exc.field, "errors": [{"field": exc.field, "message": exc.rule}]},
            ) from None
        return spec

    @classmethod
    def from_text(cls, text: str, *, source: str | None = None) -> JobSpec:
        """Parse and validate a spec written in JSON or YAML.

        Args:
            text: the spec.
            source: where the text came from (a file name), named in a syntax error.

        Raises:
            InvalidArgument: the text is not JSON/YAML of a mapping, or fields are wrong; the
                message names each bad field path and what was expected, and ``details``
                holds them as ``{"errors": [{"field", "message"}]}``.
        """
        where = source or "job spec"
        try:
            data: Any = json.loads(text)
        except ValueError:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise InvalidArgument(
                    f"{where} is neither JSON nor YAML: {_yaml_problem(exc, where)}; "
                    "check the indentation and the brackets there",
                    details={"field": "spec", "source": where},
                ) from None
        if not isinstance(data, dict):
            raise InvalidArgument(
                f"{where} must be a mapping of fields (such as 'dataset: iris'); got {type(data).__name__}",
                details={"field": "spec", "source": where},
            )
        return cls.parse(data)

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> JobSpec:
        """A resolved spec read back from a job row (or a job folder): the one way a spec
        re-enters a process after submission validated it.

        It is validated again, through the same rules, rather than trusted: the row is JSON
        that outlives the code that wrote it (an older release, a hand-edited row), and a few
        microseconds here turn such a row into a failed job naming the field instead of an
        error deep inside a trainer. Rows written before fields were checked against the
        family hold the defaults of fields the family ignores (an optimizer on a random
        forest): dropped here, so such a job still runs.
        """
        family = (data.get("model") or {}).get("family", "")
        return cls.model_validate({k: v for k, v in data.items() if k not in unused_fields(family)})

    def stored(self) -> dict[str, Any]:
        """The spec as a job row keeps it: defaults filled in, minus the fields its family
        ignores (which would read as if they had been used)."""
        return self.model_dump(mode="json", exclude_none=True, exclude=set(unused_fields(self.model.family)))

    @classmethod
    def parse(cls, data: Any) -> JobSpec:
        """Validate an already-decoded spec, turning pydantic's errors into one InvalidArgument."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise invalid_argument(exc, what="job spec", default_field="spec") from None


def _yaml_problem(exc: yaml.YAMLError, where: str) -> str:
    """PyYAML's message, with its ``"<unicode string>"`` replaced by the file's name and the
    position counted from 1, as editors count."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or problem is None:
        return str(exc).replace("<unicode string>", where)
    context = getattr(exc, "context", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" + (f" ({context})" if context else "")
