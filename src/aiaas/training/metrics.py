"""Evaluation metrics of the validation split, computed with scikit-learn's definitions.

Classification: accuracy, macro precision/recall/F1, and ROC-AUC (binary on the positive
class' probability, one-vs-rest macro for more classes). Regression: MSE, MAE, R².
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = ["classification_metrics", "regression_metrics"]

Array = np.ndarray[Any, Any]


def classification_metrics(y_true: Array, probabilities: Array) -> dict[str, float]:
    """Metrics of class probabilities (n, k) against true class indices (n,).

    ROC-AUC is NaN when the validation split does not hold every class (it is undefined
    then), rather than failing the job.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

    n_classes = probabilities.shape[1]
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(n_classes))
    with warnings.catch_warnings():
        # Precision of a class never predicted is 0 by definition here (zero_division=0).
        warnings.simplefilter("ignore")
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average="macro", zero_division=0
        )
    roc_auc = math.nan
    if len(np.unique(y_true)) == n_classes:
        if n_classes == 2:
            roc_auc = float(roc_auc_score(y_true, probabilities[:, 1]))
        else:
            # roc_auc_score wants rows that sum to exactly 1; float32 softmax is off by ~1e-7.
            p = probabilities.astype(np.float64)
            p = p / p.sum(axis=1, keepdims=True)
            roc_auc = float(roc_auc_score(y_true, p, multi_class="ovr", average="macro", labels=labels))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": roc_auc,
    }


def regression_metrics(y_true: Array, y_pred: Array) -> dict[str, float]:
    """MSE, MAE and R² of predictions against true values (both (n,))."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    return {
        "mse": float(mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }
