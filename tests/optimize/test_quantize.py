"""Quantization keeps the graph's answers and labels while shrinking its weights."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from sklearn.ensemble import RandomForestClassifier

from aiaas.errors import InvalidArgument
from aiaas.formats import CLASSES_KEY, OnnxModel, package_model
from aiaas.optimize.quantize import (
    _gemm_as_matmul,
    dynamic_int8,
    fp16_weights,
    quantizable_layers,
    static_int8,
)
from aiaas.schemas import JobSpec
from aiaas.training import TrainingData, TrainingResult
from tests.optimize.conftest import NAMES


def _run(data: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    return OnnxModel(data).run({"input": x.astype(np.float32)})


def test_gemm_rewritten_as_matmul_computes_the_same(
    mlp: tuple[JobSpec, TrainingResult], digits: TrainingData
) -> None:
    source = mlp[1].package.onnx
    rewritten = _gemm_as_matmul(source)
    ops = [n.op_type for n in onnx.load_model_from_string(rewritten).graph.node]
    assert "Gemm" not in ops and ops.count("MatMul") == 3
    a, b = _run(source, digits.x_val), _run(rewritten, digits.x_val)
    np.testing.assert_allclose(a["probabilities"], b["probabilities"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["dynamic", "static", "fp16"])
def test_quantized_models_are_smaller_agree_and_keep_the_labels(
    method: str, cnn: tuple[JobSpec, TrainingResult], digits: TrainingData
) -> None:
    source = cnn[1].package.onnx
    if method == "dynamic":
        result = dynamic_int8(source)
    elif method == "static":
        result = static_int8(source, digits.x_train[:64], input_name="input")
    else:
        result = fp16_weights(source)
    model = onnx.load_model_from_string(result)
    onnx.checker.check_model(model)
    ops = {n.op_type for n in model.graph.node}
    expected = {"dynamic": "ConvInteger", "static": "QuantizeLinear", "fp16": "Cast"}[method]
    assert expected in ops
    assert len(result) < len(source) / (1.8 if method == "fp16" else 2.2)  # a tiny net: see the benchmark
    props = {p.key: p.value for p in model.metadata_props}
    assert CLASSES_KEY in props and "nine" in props[CLASSES_KEY]
    a, b = _run(source, digits.x_val), _run(result, digits.x_val)
    assert set(b["label"].tolist()) <= set(NAMES)
    assert np.mean(a["label"] == b["label"]) > 0.95


def test_a_forest_has_nothing_to_quantize() -> None:
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(x, x[:, 0] > 0)
    assert quantizable_layers(package_model(forest, x[:2]).onnx) == 0
    with pytest.raises(InvalidArgument, match="no float weights"):
        fp16_weights(package_model(forest, x[:2]).onnx)
