"""The scikit-learn families: logistic and linear (ridge) models, random forest, gradient boosting.

They fit in one step, so there is nothing to resume mid-way: the trainer reports one
"epoch" and checkpoints only the final state, and a resumed job simply fits again (the
fit is seeded, so the result is the same). Warm start is offered only where scikit-learn
really continues from stored numbers: logistic regression, whose coefficients are kept as
plain arrays (an ``.npz`` read with ``allow_pickle=False``) and given back to a
``warm_start=True`` solver. Trees cannot be stored as safe arrays and refitting a ridge is
exact anyway, so the other families refuse a warm start.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument
from aiaas.formats import package_model
from aiaas.schemas.training import JobSpec
from aiaas.training.checkpoint import load_npz, save_npz
from aiaas.training.data import TrainingData
from aiaas.training.metrics import classification_metrics, regression_metrics
from aiaas.training.reporter import Reporter
from aiaas.training.result import TrainingResult

__all__ = ["WARM_START_FAMILIES", "sklearn_params", "train_sklearn"]

WARM_START_FAMILIES = ("logistic", "mlp", "cnn")


def sklearn_params(spec: JobSpec) -> dict[str, Any]:
    """Effective hyper-parameters of a scikit-learn family, defaults filled in."""
    m = spec.model
    if m.family == "logistic":
        return {"C": m.C if m.C is not None else 1.0, "max_iter": m.max_iter or 200}
    if m.family == "linear":
        return {"alpha": m.alpha if m.alpha is not None else 1.0}
    params: dict[str, Any] = {
        "n_estimators": m.n_estimators or 100,
        "max_depth": m.max_depth,
        "min_samples_leaf": m.min_samples_leaf or 1,
    }
    if m.family == "gradient_boosting":
        params["learning_rate"] = m.learning_rate if m.learning_rate is not None else 0.1
        params["subsample"] = m.subsample if m.subsample is not None else 1.0
        params["max_depth"] = m.max_depth or 3
    return params


def _estimator(family: str, task: str, params: dict[str, Any], seed: int, threads: int) -> Any:
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    classification = task == "classification"
    if family == "logistic":
        return LogisticRegression(**params, random_state=seed)
    if family == "linear":
        return Ridge(**params)
    if family == "random_forest":
        cls = RandomForestClassifier if classification else RandomForestRegressor
        return cls(**params, random_state=seed, n_jobs=threads)
    cls = GradientBoostingClassifier if classification else GradientBoostingRegressor
    return cls(**params, random_state=seed)


def train_sklearn(
    spec: JobSpec,
    data: TrainingData,
    reporter: Reporter,
    *,
    warm_start: bytes | None = None,
    threads: int = 1,
) -> TrainingResult:
    """Fit once, evaluate on the validation split, export with skl2onnx."""
    family = spec.model.family
    classification = data.task == "classification"
    params = sklearn_params(spec)
    if warm_start is not None and family not in WARM_START_FAMILIES:
        raise InvalidArgument(
            f"warm_start is not supported for model.family {family!r}: only "
            f"{list(WARM_START_FAMILIES)} can continue from stored weights; train it from scratch",
            details={"field": "warm_start", "family": family},
        )
    estimator = _estimator(family, data.task, params, spec.seed, threads)
    labels = data.integer_labels()
    y_fit: np.ndarray[Any, Any] = data.y_train
    if classification:
        missing = sorted(set(range(data.n_classes)) - set(np.unique(data.y_train).tolist()))
        if missing:
            raise InvalidArgument(
                f"training data: y_train lacks classes {missing}; scikit-learn families need "
                "every class in the training split",
                details={"field": "y_train"},
            )
        if labels is not None:
            y_fit = labels[data.y_train]
    if warm_start is not None:
        _warm(estimator, load_npz(warm_start, field="warm_start"), data, labels)
        reporter.log("warm start: continuing from the stored coefficients")
    reporter.log(f"fitting {type(estimator).__name__} on {len(data.x_train)} rows")
    from sklearn.exceptions import ConvergenceWarning

    began = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        # A solver that stops at max_iter is the user's choice (a warm start may want just
        # that): it goes to the job's log instead of being raised or lost on stderr.
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(data.x_train, y_fit)
    fit_s = time.perf_counter() - began
    for warning in caught:
        reporter.log(f"{warning.category.__name__}: {str(warning.message).splitlines()[0]}")
    if classification:
        metrics = classification_metrics(data.y_val, estimator.predict_proba(data.x_val))
        val_loss = _log_loss(data.y_val, estimator.predict_proba(data.x_val))
    else:
        metrics = regression_metrics(data.y_val, estimator.predict(data.x_val))
        val_loss = metrics["mse"]
    epoch_metrics = {
        "val_loss": val_loss,
        **{f"val_{k}": v for k, v in metrics.items()},
        "samples_per_s": len(data.x_train) / fit_s if fit_s > 0 else float("inf"),
        "epoch_s": fit_s,
    }
    state = _state(family, estimator)
    reporter.epoch(1, epoch_metrics)
    reporter.checkpoint(1, state)
    package = package_model(estimator, data.x_train[:5])
    if classification and labels is None:
        # Fitted on class indices (the labels are text, fractions or booleans): the graph
        # looks the labels up, so the version answers with them all the same.
        package = package.with_classes(data.class_labels(), label_from="indices")
    return TrainingResult(
        package=package,
        metrics=metrics,
        params={
            "family": family,
            "task": data.task,
            "estimator": type(estimator).__name__,
            **params,
            "seed": spec.seed,
            "n_features": data.n_features,
            "epochs_run": 1,
            "n_iter": int(np.max(estimator.n_iter_))
            if getattr(estimator, "n_iter_", None) is not None
            else None,
            "classes": data.class_labels() if classification else None,
        },
        history=[epoch_metrics],
        state=state,
    )


def _log_loss(y: np.ndarray[Any, Any], probabilities: np.ndarray[Any, Any]) -> float:
    p = np.clip(probabilities[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.log(p).mean())


def _state(family: str, estimator: Any) -> bytes:
    arrays: dict[str, Any] = {"family": np.asarray(family)}
    if family == "logistic":
        arrays |= {"coef": estimator.coef_, "intercept": estimator.intercept_, "classes": estimator.classes_}
    return save_npz(arrays)


def _warm(estimator: Any, state: dict[str, np.ndarray[Any, Any]], data: TrainingData, labels: Any) -> None:
    if str(state.get("family", "")) != "logistic" or "coef" not in state:
        raise InvalidArgument(
            f"warm_start holds a {str(state.get('family', 'unknown'))!r} state, not a logistic one",
            details={"field": "warm_start"},
        )
    expected = labels if labels is not None else np.arange(data.n_classes)
    if state["coef"].shape[1] != data.n_features or not np.array_equal(state["classes"], expected):
        raise InvalidArgument(
            f"warm_start was trained on {state['coef'].shape[1]} features and classes "
            f"{state['classes'].tolist()}; this data has {data.n_features} and {expected.tolist()}",
            details={"field": "warm_start"},
        )
    # LogisticRegression(warm_start=True) starts lbfgs from coef_/intercept_ when they fit.
    estimator.set_params(warm_start=True)
    estimator.coef_ = state["coef"].copy()
    estimator.intercept_ = state["intercept"].copy()
    estimator.classes_ = state["classes"].copy()
