"""Live performance: the prediction log joined with feedback, scored per model version.

A version whose signature has a score output with class labels (a classifier) gets accuracy,
macro precision, recall and F1, and ROC-AUC from the logged scores; any other version is a
regressor and gets MAE, RMSE and R² of its first output. The metrics are scikit-learn's own
functions on the joined rows, so they are exactly what ``sklearn.metrics`` says for them.

Labels are matched with what the log says the version answered, row by row: a label for a
one-row request, or a list of labels for a request of several rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from aiaas.formats import Signature

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Task", "VersionPerformance", "score", "task_of"]


@dataclass(frozen=True)
class Task:
    """What a version predicts, read from its signature.

    ``classes`` is ``None`` for a regressor. For a classifier, ``scores`` names the output
    whose columns are ``classes`` and ``label`` the output holding the predicted class (when
    the model has one; else the class of the highest score is the prediction).
    """

    value: str
    classes: tuple[Any, ...] | None = None
    scores: str | None = None

    @property
    def kind(self) -> str:
        return "regression" if self.classes is None else "classification"


def task_of(signature: Mapping[str, Any]) -> Task:
    """The task of a version, from its stored signature."""
    outputs = Signature.from_dict(signature).outputs
    scored = [t for t in outputs if t.classes is not None]
    if not scored:
        return Task(value=outputs[0].name)
    scores = scored[0]
    others = [t.name for t in outputs if t.name != scores.name]
    return Task(value=others[0] if others else scores.name, classes=scores.classes, scores=scores.name)


@dataclass(frozen=True)
class VersionPerformance:
    version: int
    task: str
    labelled_rows: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def score(
    table: pa.Table, labels: Mapping[str, Any], task_for: Callable[[int], Task]
) -> list[VersionPerformance]:
    """Per version (ascending) of the rows in ``table`` whose request has a label.

    Args:
        table: prediction log rows (:func:`aiaas.store.predictions.schema`).
        labels: request id → label (a value, or a list of one per row).
        task_for: the task of a version number.
    """
    columns = table.select(["request_id", "version", "outputs"]).to_pydict()
    joined: dict[int, list[tuple[Any, dict[str, Any]]]] = {}
    for request_id, version, outputs in zip(
        columns["request_id"], columns["version"], columns["outputs"], strict=True
    ):
        if request_id in labels:
            joined.setdefault(version, []).append((labels[request_id], orjson.loads(outputs)))
    return [_score_version(v, task_for(v), joined[v]) for v in sorted(joined)]


def _score_version(version: int, task: Task, rows: list[tuple[Any, dict[str, Any]]]) -> VersionPerformance:
    y_true: list[Any] = []
    predicted: list[Any] = []
    scores: list[Any] = []
    skipped = 0
    for label, outputs in rows:
        values = outputs.get(task.value)
        if values is None:
            skipped += 1
            continue
        n = len(values)
        truths = label if isinstance(label, list) else [label]
        if len(truths) != n:
            skipped += 1
            continue
        y_true += truths
        if task.classes is None:
            predicted += [np.ravel(v)[0] if isinstance(v, list) else v for v in values]
        else:
            predicted += values
            if task.scores is not None and task.scores in outputs:
                scores += outputs[task.scores]
    notes = [f"{skipped} labelled requests whose label count does not match their rows"] if skipped else []
    if task.classes is None:
        metrics = _regression(y_true, predicted)
    else:
        metrics = _classification(y_true, predicted, scores, task.classes, notes)
    return VersionPerformance(version, task.kind, len(y_true), metrics, notes)


def _classification(
    y_true: list[Any], y_pred: list[Any], scores: list[Any], classes: tuple[Any, ...], notes: list[str]
) -> dict[str, float | None]:
    from sklearn import metrics

    if not y_true:
        return dict.fromkeys(("accuracy", "precision", "recall", "f1", "roc_auc"))
    truth, pred = [str(v) for v in y_true], [str(v) for v in y_pred]
    out: dict[str, float | None] = {
        "accuracy": float(metrics.accuracy_score(truth, pred)),
        "precision": float(metrics.precision_score(truth, pred, average="macro", zero_division=0)),
        "recall": float(metrics.recall_score(truth, pred, average="macro", zero_division=0)),
        "f1": float(metrics.f1_score(truth, pred, average="macro", zero_division=0)),
        "roc_auc": None,
    }
    if len(scores) != len(truth):
        notes.append("roc_auc: the log has no scores for some labelled rows")
        return out
    names = [str(c) for c in classes]
    try:
        matrix = np.asarray(scores, dtype=np.float64)
        if len(names) == 2:
            out["roc_auc"] = float(metrics.roc_auc_score([t == names[1] for t in truth], matrix[:, 1]))
        else:
            out["roc_auc"] = float(
                metrics.roc_auc_score(truth, matrix, multi_class="ovr", average="macro", labels=names)
            )
    except ValueError as exc:  # one class only so far, a label that is no class, ...
        notes.append(f"roc_auc: {exc}")
    return out


def _regression(y_true: list[Any], y_pred: list[Any]) -> dict[str, float | None]:
    from sklearn import metrics

    if not y_true:
        return dict.fromkeys(("mae", "rmse", "r2"))
    truth = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    r2 = float(metrics.r2_score(truth, pred)) if len(truth) >= 2 else None
    return {
        "mae": float(metrics.mean_absolute_error(truth, pred)),
        "rmse": float(np.sqrt(metrics.mean_squared_error(truth, pred))),
        "r2": None if r2 is None or not np.isfinite(r2) else r2,
    }
