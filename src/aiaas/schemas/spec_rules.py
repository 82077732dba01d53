"""The rules of a training job spec: which families exist, what each reads, and how fields relate.

One definition, used everywhere a spec meets a rule:

* the wire schema (:class:`aiaas.schemas.JobSpec`) applies them when a spec is submitted (API,
  SDK, CLI, ``launch``), naming the field path;
* the training service applies the task rules again once submission has settled the task from
  the dataset (:meth:`JobSpec.resolved`), and the image rule against the dataset's metadata;
* the trainer applies the task, image and early-stopping rules to the arrays it is handed, which
  is how a spec that was never submitted (a direct :func:`aiaas.training.train` call) is checked.

Each rule raises :class:`RuleBroken` naming the field (relative to the spec) and what was
expected; the schema turns it into one entry of a 400, a caller outside the schema into an
:class:`~aiaas.errors.InvalidArgument` through :func:`invalid`.
"""

from __future__ import annotations

from typing import Any, Literal

from aiaas.errors import InvalidArgument

__all__ = [
    "CLASSIFICATION_METRICS",
    "EPOCH_FAMILIES",
    "FAMILY_PARAMS",
    "FAMILY_TASK",
    "LANGUAGE_MODEL_FAMILIES",
    "LANGUAGE_MODEL_METRICS",
    "LOWER_IS_BETTER",
    "MAX_CONTEXT_LENGTH",
    "MAX_VOCAB_SIZE",
    "MIN_VOCAB_SIZE",
    "REGRESSION_METRICS",
    "SKLEARN_FAMILIES",
    "TEXT_GENERATION",
    "TORCH_FAMILIES",
    "TORCH_ONLY_FIELDS",
    "TRANSFORMER_DEFAULTS",
    "Family",
    "RuleBroken",
    "check_early_stopping",
    "check_image_shape",
    "check_language_model",
    "check_task",
    "check_used_fields",
    "check_workers",
    "early_stopping_metrics",
    "invalid",
    "unused_fields",
]

Family = Literal["logistic", "linear", "random_forest", "gradient_boosting", "mlp", "cnn", "transformer"]
TORCH_FAMILIES = ("mlp", "cnn")
SKLEARN_FAMILIES = ("logistic", "linear", "random_forest", "gradient_boosting")
#: Families that learn text (a decoder-only transformer: the next token of a text dataset).
LANGUAGE_MODEL_FAMILIES = ("transformer",)
#: Families trained epoch by epoch (the others fit in one step: one "epoch").
EPOCH_FAMILIES = (*TORCH_FAMILIES, *LANGUAGE_MODEL_FAMILIES)
#: The task of a language model.
TEXT_GENERATION = "text-generation"
#: Families that do one task only; the others do classification and regression alike.
FAMILY_TASK = {"logistic": "classification", "linear": "regression"}
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mse", "mae", "r2")
#: exp(mean validation cross-entropy per token).
LANGUAGE_MODEL_METRICS = ("perplexity",)
#: Early-stopping metrics that improve downwards (the others: upwards).
LOWER_IS_BETTER = ("loss", "val_loss", "val_mse", "val_mae", "val_perplexity")
#: The longest context a trained transformer may have (tokens); attention costs grow with its square.
MAX_CONTEXT_LENGTH = 8192
#: Byte-level BPE starts from 256 byte tokens and one special token (``<|endoftext|>``).
MIN_VOCAB_SIZE = 257
MAX_VOCAB_SIZE = 262_144
#: Hyper-parameters of a fresh transformer when the spec leaves them out.
TRANSFORMER_DEFAULTS: dict[str, Any] = {
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "context_length": 128,
    "vocab_size": 4096,
    "dropout": 0.0,
}

# Which hyper-parameters mean something to which family: a value given for another family is
# refused, since silently ignoring ``n_estimators`` on an MLP hides a mistake in the spec.
FAMILY_PARAMS: dict[str, frozenset[str]] = {
    "logistic": frozenset({"C", "max_iter"}),
    "linear": frozenset({"alpha"}),
    "random_forest": frozenset({"n_estimators", "max_depth", "min_samples_leaf"}),
    "gradient_boosting": frozenset(
        {"n_estimators", "max_depth", "min_samples_leaf", "learning_rate", "subsample"}
    ),
    "mlp": frozenset({"hidden_sizes", "dropout", "activation"}),
    "cnn": frozenset({"channels", "hidden_sizes", "dropout", "activation"}),
    "transformer": frozenset({"n_layer", "n_head", "n_embd", "context_length", "vocab_size", "dropout"}),
}

#: Top-level fields only the PyTorch families read. The scikit-learn families fit in one call
#: with their own solver: a value given for them would be silently ignored (``epochs: 3`` on a
#: random forest still trains once), so it is refused instead.
TORCH_ONLY_FIELDS = ("optimizer", "schedule", "epochs", "batch_size", "early_stopping")


class RuleBroken(ValueError):
    """A rule that concerns one field (relative to the model that checks it), and what it expects."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.rule = message


def invalid(exc: RuleBroken, prefix: str = "") -> InvalidArgument:
    """A broken rule as the 400 of a caller outside the wire schema (``details.field`` names it)."""
    return InvalidArgument(f"{prefix}{exc.field}: {exc.rule}", details={"field": exc.field})


def unused_fields(family: str) -> tuple[str, ...]:
    """The top-level spec fields ``family`` never reads (see :data:`TORCH_ONLY_FIELDS`)."""
    return TORCH_ONLY_FIELDS if family in SKLEARN_FAMILIES else ()


def check_used_fields(family: str, written: list[str]) -> None:
    """Refuse top-level fields the author wrote that ``family`` would silently ignore."""
    ignored = [name for name in unused_fields(family) if name in written]
    if ignored:
        others = f" (nor are {', '.join(ignored[1:])})" if ignored[1:] else ""
        raise RuleBroken(
            ignored[0],
            f"is not used by {family!r}{others}: the scikit-learn families fit once with their "
            f"own solver, and only the PyTorch families "
            f"{[*TORCH_FAMILIES, *LANGUAGE_MODEL_FAMILIES]} read "
            f"{', '.join(TORCH_ONLY_FIELDS)}; remove it, or pick one of those families",
        )


def check_workers(family: str, workers: int) -> None:
    if workers > 1 and family in SKLEARN_FAMILIES:
        raise RuleBroken("workers", f"must be 1 for {family!r}: scikit-learn families train in one process")


def check_task(family: str, task: str) -> None:
    """``family`` can do ``task`` (a tabular family; language models: :func:`check_language_model`)."""
    if task == TEXT_GENERATION:
        raise RuleBroken(
            "task", f"'text-generation' is the task of the 'transformer' family, not of {family!r}"
        )
    fits = FAMILY_TASK.get(family, task)
    if fits != task:
        other = "linear" if family == "logistic" else "logistic"
        raise RuleBroken(
            "model.family",
            f"{family!r} is for {fits}, but the task is {task!r}; use {other!r} or another family",
        )


def early_stopping_metrics(task: str | None) -> tuple[str, ...]:
    """The metrics early stopping may watch for ``task`` (None: for any task)."""
    names = {
        "classification": CLASSIFICATION_METRICS,
        "regression": REGRESSION_METRICS,
        TEXT_GENERATION: LANGUAGE_MODEL_METRICS,
    }
    metrics = names[task] if task is not None else tuple(m for ms in names.values() for m in ms)
    return ("loss", "val_loss", *(f"val_{m}" for m in metrics))


def check_early_stopping(metric: str, task: str | None, field: str = "early_stopping.metric") -> None:
    """Early stopping watches a metric the run reports for ``task`` (None: any task's)."""
    known = early_stopping_metrics(task)
    if metric not in known:
        kind = {None: "known", TEXT_GENERATION: "language model"}.get(task, task)
        raise RuleBroken(field, f"{metric!r} is not a {kind} metric; use one of {list(known)}")


def check_language_model(family: str, target: str | None, task: str | None) -> None:
    """A language model learns the text itself: no target, and its own task."""
    if target is not None:
        raise RuleBroken(
            "target",
            f"a {family!r} learns to continue the dataset's text, so it has no target column; "
            f"leave target out (got {target!r})",
        )
    if task not in (None, TEXT_GENERATION):
        raise RuleBroken("task", f"a {family!r} does 'text-generation', not {task!r}")


def check_image_shape(family: str, image_shape: Any, where: str = "this dataset") -> None:
    """A CNN needs rows that are images (the dataset records their shape)."""
    if family == "cnn" and not image_shape:
        raise RuleBroken(
            "model.family",
            f"'cnn' needs image-shaped rows (such as the digits sample, 1x8x8), and {where} records no "
            "image_shape; use 'mlp' for tabular data",
        )
