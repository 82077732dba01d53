from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from aiaas.training.metrics import classification_metrics, regression_metrics


def _probabilities(n: int, k: int, seed: int, decimals: int | None = None) -> np.ndarray:
    raw = np.random.default_rng(seed).random((n, k))
    if decimals is not None:  # coarse scores: many ties, as a saturated model gives
        raw = np.round(raw, decimals) + 1e-3
    return (raw / raw.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(("k", "decimals"), [(2, None), (2, 1), (4, None), (10, None), (10, 1)])
def test_classification_metrics_agree_with_sklearn(k: int, decimals: int | None) -> None:
    y = np.random.default_rng(1).integers(0, k, 300)
    p = _probabilities(300, k, 2, decimals)
    got = classification_metrics(y, p)
    pred = p.argmax(axis=1)
    kw = {"average": "macro", "zero_division": 0, "labels": list(range(k))}
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, **kw), abs=1e-12)
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, **kw), abs=1e-12)
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, **kw), abs=1e-12)
    p64 = p.astype(np.float64)
    expected_auc = skm.roc_auc_score(y, p64[:, 1]) if k == 2 else skm.roc_auc_score(y, p64, multi_class="ovr")
    assert got["roc_auc"] == pytest.approx(expected_auc, abs=1e-9)


def test_a_class_never_predicted_counts_as_zero_precision() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    p = np.tile(np.array([[0.6, 0.3, 0.1]], dtype=np.float32), (6, 1))
    p[[1, 4]] = [0.2, 0.7, 0.1]
    got = classification_metrics(y, p)
    pred = p.argmax(1)
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro", zero_division=0))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))


def test_roc_auc_is_nan_when_a_class_is_missing_from_validation() -> None:
    y = np.array([0, 1, 0, 1])
    got = classification_metrics(y, _probabilities(4, 3, 0))
    assert math.isnan(got["roc_auc"])
    assert 0 <= got["accuracy"] <= 1


@pytest.mark.parametrize("constant", [False, True])
def test_regression_metrics_agree_with_sklearn(constant: bool) -> None:
    rng = np.random.default_rng(3)
    y = np.full(100, 2.5) if constant else rng.normal(size=100)
    pred = (y + rng.normal(scale=0.3, size=100)).astype(np.float32)
    got = regression_metrics(y, pred)
    pred64 = pred.astype(np.float64)
    assert got["mse"] == pytest.approx(skm.mean_squared_error(y, pred64), rel=1e-12)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred64), rel=1e-12)
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred64), rel=1e-12)
