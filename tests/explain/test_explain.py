"""The explain library on its own: exact attributions for a linear model, a seeded background
sample stored without pickle, and permutation importance ranking the features that matter."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

from aiaas.explain import (
    ExplainTask,
    decode_background,
    encode_background,
    explain_rows,
    min_evals,
    permutation_importance,
    sample_background,
)
from aiaas.formats import OnnxModel


@pytest.fixture(scope="module")
def linear() -> tuple[np.ndarray[Any, Any], LinearRegression, bytes]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    y = 3 * x[:, 1] - 2 * x[:, 3] + 4
    model = LinearRegression().fit(x, y)
    return x, model, to_onnx(model, x[:1]).SerializeToString()


def test_a_linear_model_gets_its_exact_shapley_values(
    linear: tuple[np.ndarray[Any, Any], LinearRegression, bytes],
) -> None:
    x, model, onnx = linear
    background = sample_background(x, rows=50)
    task = ExplainTask("digest", onnx, "X", "variable", background, x[:4], max_evals=min_evals(5))
    result = explain_rows(task)
    assert result.values.shape == (4, 5, 1) and result.base_values.shape == (4, 1)
    # w_i * (x_i - E[x_i]) is the exact answer for a linear model and an independent masker.
    expected = model.coef_ * (x[:4] - background.mean(axis=0))
    np.testing.assert_allclose(result.values[:, :, 0], expected, atol=1e-4)
    np.testing.assert_allclose(result.values.sum(axis=1) + result.base_values, result.predictions, atol=1e-6)
    np.testing.assert_allclose(result.predictions[:, 0], model.predict(x[:4]), atol=1e-4)


def test_the_background_sample_is_seeded_capped_and_stored_without_pickle() -> None:
    x = np.arange(1000 * 3, dtype=np.float64).reshape(1000, 3)
    a, b = sample_background(x, rows=100, seed=0), sample_background(x, rows=100, seed=0)
    assert a.shape == (100, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_background(x, rows=100, seed=1))
    assert np.all(np.diff(a[:, 0]) > 0)  # the training rows' order is kept
    assert sample_background(x[:10]).shape == (10, 3)  # fewer rows than the cap: all of them
    np.testing.assert_array_equal(decode_background(encode_background(a)), a)
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        decode_background(pickled.getvalue())  # a stored blob never runs code when read


def test_permutation_importance_ranks_the_features_the_model_uses(
    linear: tuple[np.ndarray[Any, Any], LinearRegression, bytes],
) -> None:
    x, _, onnx = linear
    model = OnnxModel(onnx)
    y = 3 * x[:, 1] - 2 * x[:, 3] + 4

    def predict(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return model.run({"X": rows.astype(np.float32)})["variable"].reshape(-1)

    names = ["a", "b", "c", "d", "e"]
    result = permutation_importance(predict, x, y, task="regression", feature_names=names)
    assert (result["method"], result["scoring"], result["rows"]) == ("permutation", "r2", 300)
    ranked = sorted(names, key=lambda n: -result["importances"][n])
    assert ranked[:2] == ["b", "d"]
    assert all(abs(result["importances"][n]) < 1e-6 for n in ("a", "c", "e"))
    again = permutation_importance(predict, x, y, task="regression", feature_names=names)
    assert again == result  # seeded
