from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import load_wine

from aiaas.errors import InvalidArgument
from aiaas.training import MemoryReporter, TrainingData, TrainingResult, train
from aiaas.training.checkpoint import load_npz
from tests.training.conftest import spec, split

SMALL_TREES: dict[str, Any] = {"n_estimators": 20, "max_depth": 4}


def _onnx(result: TrainingResult, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(result.package.onnx, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: x}), strict=True))


def _refit(result: TrainingResult, data: TrainingData) -> Any:
    """The same estimator fitted again outside the platform, to compare predictions with."""
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    params = result.params
    cls = {
        c.__name__: c
        for c in (
            GradientBoostingClassifier,
            GradientBoostingRegressor,
            RandomForestClassifier,
            RandomForestRegressor,
            LogisticRegression,
            Ridge,
        )
    }
    est = cls[params["estimator"]]
    kwargs = {k: params[k] for k in est().get_params() if k in params}
    if "random_state" in est().get_params():
        kwargs["random_state"] = params["seed"]
    return est(**kwargs).fit(data.x_train, data.y_train)


@pytest.mark.parametrize(
    ("family", "model"),
    [
        ("logistic", {"C": 0.5, "max_iter": 500}),
        ("random_forest", SMALL_TREES),
        ("gradient_boosting", {**SMALL_TREES, "max_depth": 2}),
    ],
)
def test_classifiers_on_breast_cancer_match_their_onnx_package(
    cancer: TrainingData, family: str, model: dict[str, Any]
) -> None:
    reporter = MemoryReporter()
    result = train(spec(model={"family": family, **model}), cancer, reporter)
    assert result.metrics["accuracy"] > 0.9 and result.metrics["roc_auc"] > 0.9
    assert [e for e, _ in reporter.epochs] == [1] and [e for e, _ in reporter.checkpoints] == [1]
    out = _onnx(result, cancer.x_val)
    reference = _refit(result, cancer)
    np.testing.assert_allclose(
        out["probabilities"], reference.predict_proba(cancer.x_val), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(out["label"], reference.predict(cancer.x_val))
    assert result.metrics["accuracy"] == pytest.approx(np.mean(out["label"] == cancer.y_val))


@pytest.mark.parametrize(
    ("family", "model"),
    [("linear", {"alpha": 0.1}), ("random_forest", SMALL_TREES), ("gradient_boosting", SMALL_TREES)],
)
def test_regressors_on_diabetes_match_their_onnx_package(
    diabetes: TrainingData, family: str, model: dict[str, Any]
) -> None:
    result = train(spec(model={"family": family, **model}), diabetes, MemoryReporter())
    assert result.metrics["r2"] > 0.2
    out = _onnx(result, diabetes.x_val)["variable"][:, 0]
    expected = _refit(result, diabetes).predict(diabetes.x_val)
    # skl2onnx computes in float32: compare at float32's precision relative to the target scale.
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5 * float(np.abs(expected).max()))


@pytest.mark.parametrize(
    ("family", "model"),
    [
        ("logistic", {}),
        ("random_forest", SMALL_TREES),
        ("gradient_boosting", {**SMALL_TREES, "max_depth": 2}),
    ],
)
def test_text_classes_are_the_output_labels_and_name_the_probability_columns(
    iris: TrainingData, family: str, model: dict[str, Any]
) -> None:
    result = train(spec(model={"family": family, **model}), iris, MemoryReporter())
    classes = ["setosa", "versicolor", "virginica"]
    out = _onnx(result, iris.x_val)
    reference = _refit(result, iris)  # fitted on class indices
    np.testing.assert_array_equal(out["label"], np.asarray(classes)[reference.predict(iris.x_val)])
    label, probabilities = result.package.signature.outputs
    assert (label.datatype, probabilities.classes) == ("BYTES", tuple(classes))
    assert result.params["classes"] == classes


def test_integer_classes_are_the_output_labels() -> None:
    x, y = load_wine(return_X_y=True)
    data = split(x, np.asarray(y), "classification", classes=[3, 7, 9])
    result = train(spec(model={"family": "random_forest", **SMALL_TREES}), data, MemoryReporter())
    out = _onnx(result, data.x_val)
    np.testing.assert_array_equal(out["label"], np.asarray([3, 7, 9])[out["probabilities"].argmax(1)])
    assert set(np.unique(out["label"])) == {3, 7, 9}
    label, probabilities = result.package.signature.outputs
    assert (label.datatype, probabilities.classes) == ("INT64", (3, 7, 9))


def test_boolean_classes_are_the_output_labels(cancer: TrainingData) -> None:
    data = TrainingData(
        cancer.x_train,
        cancer.y_train,
        cancer.x_val,
        cancer.y_val,
        cancer.feature_names,
        "classification",
        classes=[False, True],
    )
    result = train(spec(model={"family": "logistic", "max_iter": 500}), data, MemoryReporter())
    out = _onnx(result, data.x_val)
    assert out["label"].dtype == np.bool_
    np.testing.assert_array_equal(out["label"], out["probabilities"].argmax(1).astype(bool))
    assert result.package.signature.outputs[1].classes == (False, True)


def test_logistic_warm_start_continues_from_stored_coefficients(cancer: TrainingData) -> None:
    first = train(spec(model={"family": "logistic", "max_iter": 2000}), cancer, MemoryReporter())
    state = load_npz(first.state, field="state")
    assert set(state) >= {"coef", "intercept", "classes"}
    # Two solver iterations: from scratch that is far from converged, from the stored
    # coefficients it is already there.
    cold = train(spec(model={"family": "logistic", "max_iter": 2}), cancer, MemoryReporter())
    warm = train(
        spec(model={"family": "logistic", "max_iter": 2}), cancer, MemoryReporter(), warm_start=first.state
    )
    assert warm.metrics["accuracy"] >= first.metrics["accuracy"] - 0.02
    assert warm.metrics["accuracy"] > cold.metrics["accuracy"] + 0.05


@pytest.mark.parametrize("family", ["random_forest", "gradient_boosting", "linear"])
def test_warm_start_is_refused_for_families_that_cannot(
    cancer: TrainingData, diabetes: TrainingData, family: str
) -> None:
    data = diabetes if family == "linear" else cancer
    first = train(spec(model={"family": family}), data, MemoryReporter()) if family == "linear" else None
    state = (
        first.state if first else train(spec(model={"family": "logistic"}), cancer, MemoryReporter()).state
    )
    with pytest.raises(InvalidArgument, match=family) as info:
        train(spec(model={"family": family}), data, MemoryReporter(), warm_start=state)
    assert info.value.details["field"] == "warm_start"


def test_torch_state_is_refused_as_a_sklearn_warm_start(iris: TrainingData) -> None:
    torch_state = train(spec(model={"family": "mlp"}, epochs=1), iris, MemoryReporter()).state
    with pytest.raises(InvalidArgument, match="warm_start is not a saved state of a 'logistic'"):
        train(spec(model={"family": "logistic"}), iris, MemoryReporter(), warm_start=torch_state)


def test_resume_of_a_sklearn_job_fits_again_to_the_same_model(cancer: TrainingData) -> None:
    job = spec(model={"family": "random_forest", **SMALL_TREES}, seed=4)
    first_reporter = MemoryReporter()
    first = train(job, cancer, first_reporter)
    again = train(job, cancer, MemoryReporter(), resume=first_reporter.checkpoints[-1][1])
    assert again.metrics == first.metrics
    assert again.package.onnx == first.package.onnx
