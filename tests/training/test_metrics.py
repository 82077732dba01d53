from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from aiaas.training.metrics import classification_metrics, regression_metrics


def _probabilities(n: int, k: int, seed: int) -> np.ndarray:
    raw = np.random.default_rng(seed).random((n, k)).astype(np.float32)
    return raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k", [2, 4])
def test_classification_metrics_agree_with_sklearn(k: int) -> None:
    y = np.random.default_rng(1).integers(0, k, 200)
    p = _probabilities(200, k, 2)
    got = classification_metrics(y, p)
    pred = p.argmax(axis=1)
    assert got["accuracy"] == skm.accuracy_score(y, pred)
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"), abs=1e-12)
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"), abs=1e-12)
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-12)
    expected_auc = (
        skm.roc_auc_score(y, p[:, 1])
        if k == 2
        else skm.roc_auc_score(y, p.astype(np.float64) / p.sum(axis=1, keepdims=True), multi_class="ovr")
    )
    assert got["roc_auc"] == pytest.approx(expected_auc, abs=1e-9)


def test_roc_auc_is_nan_when_a_class_is_missing_from_validation() -> None:
    y = np.array([0, 1, 0, 1])
    got = classification_metrics(y, _probabilities(4, 3, 0))
    assert math.isnan(got["roc_auc"])
    assert 0 <= got["accuracy"] <= 1


def test_regression_metrics_agree_with_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=100)
    pred = y + rng.normal(scale=0.3, size=100)
    got = regression_metrics(y, pred.astype(np.float32))
    pred32 = pred.astype(np.float32).astype(np.float64)
    assert got["mse"] == pytest.approx(skm.mean_squared_error(y, pred32), rel=1e-12)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred32), rel=1e-12)
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred32), rel=1e-12)
