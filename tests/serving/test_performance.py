"""Live performance from logged rows and labels: the values are scikit-learn's on the same rows,
for a multi-class and a binary classifier (string and integer labels) and a regressor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from sklearn import metrics

from aiaas.errors import InvalidArgument
from aiaas.monitoring.feedback import check_label
from aiaas.monitoring.performance import Task, score
from aiaas.serving.prediction_log import LogPolicy, PredictionLog
from aiaas.serving.segment_writer import InProcessWriter
from aiaas.store.predictions import read_predictions

RNG = np.random.default_rng(7)


def _logged(tmp_path: Path, outputs: list[dict[str, Any]], versions: list[int]) -> Any:
    log = PredictionLog(tmp_path, max_queued=10_000, writer=InProcessWriter(tmp_path))
    policy = LogPolicy(max_rows_per_s=100_000)
    for i, (out, version) in enumerate(zip(outputs, versions, strict=True)):
        assert log.record("d", policy, version, f"r{i}", 0.001, {"X": np.zeros((1, 2))}, out)
    log.flush()
    return read_predictions(tmp_path, "d")


def test_multiclass_string_labels_match_sklearn(tmp_path: Path) -> None:
    classes = ("setosa", "versicolor", "virginica")
    proba = RNG.dirichlet(np.ones(3), size=60).astype(np.float32)
    pred = np.asarray(classes)[proba.argmax(axis=1)]
    truth = np.asarray(classes)[RNG.integers(0, 3, size=60)]
    outputs = [{"label": pred[i : i + 1], "probabilities": proba[i : i + 1]} for i in range(60)]
    table = _logged(tmp_path, outputs, [1] * 30 + [2] * 30)
    labels = {f"r{i}": str(truth[i]) for i in range(60) if i % 6}  # every sixth row has no label
    task = Task(value="label", classes=classes, scores="probabilities")

    by_version = {v.version: v for v in score(table, labels, lambda _: task)}
    for version, rows in ((1, range(0, 30)), (2, range(30, 60))):
        kept = [i for i in rows if i % 6]
        t, p = truth[kept], pred[kept]
        got = by_version[version]
        assert got.task == "classification" and got.labelled_rows == len(kept)
        assert got.metrics == {
            "accuracy": metrics.accuracy_score(t, p),
            "precision": metrics.precision_score(t, p, average="macro", zero_division=0),
            "recall": metrics.recall_score(t, p, average="macro", zero_division=0),
            "f1": metrics.f1_score(t, p, average="macro", zero_division=0),
            "roc_auc": metrics.roc_auc_score(
                t, proba[kept].astype(np.float64), multi_class="ovr", labels=list(classes)
            ),
        }


def test_binary_integer_labels_and_multi_row_requests_match_sklearn(tmp_path: Path) -> None:
    proba = RNG.dirichlet(np.ones(2), size=40)
    pred = proba.argmax(axis=1)
    truth = RNG.integers(0, 2, size=40)
    outputs = [{"label": pred[i : i + 4], "probabilities": proba[i : i + 4]} for i in range(0, 40, 4)]
    table = _logged(tmp_path, outputs, [1] * 10)
    labels = {f"r{j}": [float(v) for v in truth[4 * j : 4 * j + 4]] for j in range(10)}  # 1.0 is class 1
    labels = {k: check_label(v, "label") for k, v in labels.items()}
    (got,) = score(table, labels, lambda _: Task(value="label", classes=(0, 1), scores="probabilities"))
    assert got.labelled_rows == 40
    assert got.metrics["accuracy"] == metrics.accuracy_score(truth, pred)
    assert got.metrics["f1"] == metrics.f1_score(truth.astype(str), pred.astype(str), average="macro")
    assert got.metrics["roc_auc"] == metrics.roc_auc_score(truth, proba[:, 1])


def test_regression_matches_sklearn_and_a_mismatched_label_is_noted(tmp_path: Path) -> None:
    pred = RNG.normal(size=(25, 1)).astype(np.float32)
    truth = pred[:, 0].astype(np.float64) + RNG.normal(scale=0.3, size=25)
    table = _logged(tmp_path, [{"variable": pred[i : i + 1]} for i in range(25)], [3] * 25)
    labels: dict[str, Any] = {f"r{i}": float(truth[i]) for i in range(24)}
    labels["r24"] = [1.0, 2.0]  # two labels for a one-row request: left out, and said so
    (got,) = score(table, labels, lambda _: Task(value="variable"))
    # The log keeps float32 answers as their shortest decimal: score what it holds.
    p = np.asarray([orjson.loads(o)["variable"][0][0] for o in table.column("outputs").to_pylist()[:24]])
    np.testing.assert_allclose(p, pred[:24, 0], rtol=1e-6)
    assert got.task == "regression" and got.labelled_rows == 24
    assert got.metrics == {
        "mae": metrics.mean_absolute_error(truth[:24], p),
        "rmse": float(np.sqrt(metrics.mean_squared_error(truth[:24], p))),
        "r2": metrics.r2_score(truth[:24], p),
    }
    assert got.notes and "does not match" in got.notes[0]


@pytest.mark.parametrize("label", [None, {}, [], float("inf"), "", [1, {}]])
def test_a_bad_label_is_refused_naming_its_field(label: Any) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_label(label, "feedback[3].label")
    assert caught.value.details["field"].startswith("feedback[3].label")
