"""Evaluation metrics of the validation split, with scikit-learn's definitions.

Classification: accuracy, macro precision/recall/F1 (a class never predicted has precision
0, as ``zero_division=0``), and ROC-AUC (binary on the positive class' probability,
one-vs-rest macro average for more classes). Regression: MSE, MAE, R².

They are computed here with numpy rather than by calling ``sklearn.metrics``, because they
run after every epoch: scikit-learn's input validation and its one-vs-rest ROC curves cost
~0.2 s per call on 2,000 rows and 10 classes, over 10% of an epoch of a small MLP. The tests
check every value against ``sklearn.metrics``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["classification_metrics", "regression_metrics", "roc_auc"]

Array = np.ndarray[Any, Any]


def classification_metrics(y_true: Array, probabilities: Array) -> dict[str, float]:
    """Metrics of class probabilities (n, k) against true class indices (n,).

    ROC-AUC is NaN when the validation split does not hold every class (it is undefined
    then), rather than failing the job.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    n_classes = probabilities.shape[1]
    y_pred = probabilities.argmax(axis=1)
    confusion = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    true_positive = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros(n_classes), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros(n_classes), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(n_classes), where=denominator > 0)
    auc = math.nan
    if np.all(actual > 0):
        if n_classes == 2:
            auc = roc_auc(y_true == 1, probabilities[:, 1])
        else:
            auc = float(np.mean([roc_auc(y_true == k, probabilities[:, k]) for k in range(n_classes)]))
    return {
        "accuracy": float(true_positive.sum() / len(y_true)),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "roc_auc": auc,
    }


def roc_auc(positive: Array, scores: Array) -> float:
    """Area under the ROC curve: the Mann-Whitney statistic, ties counted half (as sklearn)."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    # Average ranks, tied scores sharing the mean of their positions.
    _, inverse, counts = np.unique(
        np.asarray(scores, dtype=np.float64), return_inverse=True, return_counts=True
    )
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def regression_metrics(y_true: Array, y_pred: Array) -> dict[str, float]:
    """MSE, MAE and R² of predictions against true values (both (n,)).

    R² of a constant target is 1.0 for a perfect prediction and 0.0 otherwise, as
    scikit-learn's ``force_finite``.
    """
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    error = y_true - y_pred
    ss_res = float(np.sum(error**2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    return {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error))), "r2": r2}
