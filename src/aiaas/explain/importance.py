"""Global feature importance: how much a model's validation score drops when one feature's
values are shuffled (scikit-learn's permutation importance, over any predict function).

Computed once per trained version, on its validation split, and stored with it: it says which
features the model relies on, model-agnostically, in the units of the score (accuracy for a
classifier, R² for a regressor).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["IMPORTANCE_MAX_ROWS", "IMPORTANCE_REPEATS", "permutation_importance"]

#: Shuffles per feature; the importance is their mean drop (their spread is stored too).
IMPORTANCE_REPEATS = 5
#: The most validation rows scored per shuffle (a seeded sample beyond it): bounds the cost at
#: registration to features x repeats x this many rows.
IMPORTANCE_MAX_ROWS = 2000

Array = np.ndarray[Any, Any]


class _Predictor:
    """The smallest estimator scikit-learn's permutation importance accepts: ``fit`` (never
    called: the model is already trained) and ``predict``."""

    def __init__(self, predict: Callable[[Array], Array]) -> None:
        self._predict = predict

    def fit(self, x: Array, y: Array) -> _Predictor:
        return self

    def predict(self, x: Array) -> Array:
        return self._predict(x)


def permutation_importance(
    predict: Callable[[Array], Array],
    x: Array,
    y: Array,
    *,
    task: str,
    feature_names: Sequence[str],
    n_repeats: int = IMPORTANCE_REPEATS,
    max_rows: int = IMPORTANCE_MAX_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """Permutation importance of each feature on ``(x, y)``.

    Args:
        predict: rows → class indices (classification) or values (regression), shape (n,).
        x: validation features (n, features).
        y: validation targets: class indices or values.
        task: "classification" (scored by accuracy) or "regression" (scored by R²).
        feature_names: one name per column of ``x``.
        n_repeats: shuffles per feature.
        max_rows: score at most this many rows (a seeded sample).
        seed: seeds the sample and the shuffles.

    Returns:
        ``{"method", "scoring", "n_repeats", "rows", "importances": {feature: mean drop},
        "std": {feature: std of the drops}}``, features in column order.
    """
    from sklearn.inspection import permutation_importance as sklearn_importance
    from sklearn.metrics import accuracy_score, r2_score

    scoring = "accuracy" if task == "classification" else "r2"
    score = accuracy_score if task == "classification" else r2_score

    def scorer(estimator: _Predictor, xs: Array, ys: Array) -> float:
        return float(score(ys, estimator.predict(xs)))

    result = sklearn_importance(
        _Predictor(predict),
        x,
        y,
        scoring=scorer,
        n_repeats=n_repeats,
        random_state=seed,
        max_samples=min(max_rows, len(x)),
    )
    names = list(feature_names)
    return {
        "method": "permutation",
        "scoring": scoring,
        "n_repeats": n_repeats,
        "rows": min(max_rows, len(x)),
        "importances": {n: round(float(v), 6) for n, v in zip(names, result.importances_mean, strict=True)},
        "std": {n: round(float(v), 6) for n, v in zip(names, result.importances_std, strict=True)},
    }
