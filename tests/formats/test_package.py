"""Turning estimators, modules and ONNX files into packages that predict like the original."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline

from aiaas.errors import InvalidArgument
from aiaas.formats import ModelPackage, OnnxModel, Signature, TensorSpec, package_model

Array = np.ndarray[Any, Any]


def _run(package: ModelPackage, x: Array) -> dict[str, Array]:
    return OnnxModel(package.onnx).run({package.signature.inputs[0].name: x})


def _two_input_onnx() -> bytes:
    """``z = a + b`` over FP32 ``[-1, 2]`` tensors, built by hand."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["z"])],
        "add",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 2]),
        ],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


# -- scikit-learn ------------------------------------------------------------------------


def test_pipeline_matches_predict_and_predict_proba(
    iris: tuple[Array, Array], iris_pipeline: Pipeline, iris_package: ModelPackage
) -> None:
    x = iris[0].astype(np.float32)
    out = _run(iris_package, x)
    np.testing.assert_array_equal(out["label"], iris_pipeline.predict(x))
    np.testing.assert_allclose(out["probabilities"], iris_pipeline.predict_proba(x), rtol=1e-5, atol=0)


def test_pipeline_package_has_the_expected_signature_and_example(
    iris: tuple[Array, Array], iris_package: ModelPackage
) -> None:
    assert iris_package.flavor == "sklearn"
    assert iris_package.signature == Signature(
        inputs=(TensorSpec("X", "FP32", (-1, 4)),),
        outputs=(
            TensorSpec("label", "INT64", (-1,)),
            TensorSpec("probabilities", "FP32", (-1, 3), classes=(0, 1, 2)),
        ),
    )
    assert list(iris_package.example) == ["X"]
    assert iris_package.example["X"].dtype == np.float32
    np.testing.assert_array_equal(iris_package.example["X"], iris[0][:5].astype(np.float32))


def test_regressor_matches_predict() -> None:
    x, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(x, y)
    package = package_model(model, x[:3])
    assert package.signature.outputs == (TensorSpec("variable", "FP32", (-1, 1)),)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(_run(package, x32)["variable"][:, 0], model.predict(x32), rtol=1e-5)


def test_random_forest_labels_match_predict(iris: tuple[Array, Array]) -> None:
    x, y = iris
    model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(x, y)
    x32 = x.astype(np.float32)
    np.testing.assert_array_equal(_run(package_model(model, x[:2]), x32)["label"], model.predict(x32))


def test_unfitted_estimator_is_an_invalid_argument(iris: tuple[Array, Array]) -> None:
    with pytest.raises(InvalidArgument, match="cannot export this LogisticRegression to ONNX"):
        package_model(LogisticRegression(), iris[0][:2])


def test_sklearn_needs_an_example(iris_pipeline: Pipeline) -> None:
    with pytest.raises(InvalidArgument, match="example is required") as info:
        package_model(iris_pipeline)
    assert info.value.details["field"] == "example"


def test_example_must_be_a_batch_of_rows(iris: tuple[Array, Array], iris_pipeline: Pipeline) -> None:
    with pytest.raises(InvalidArgument, match=r"batch of rows.*got shape \[4\]"):
        package_model(iris_pipeline, iris[0][0])


# -- PyTorch -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


@pytest.fixture(scope="module")
def mlp_package(mlp: torch.nn.Module) -> ModelPackage:
    example = np.random.default_rng(0).normal(size=(3, 4))  # float64: exported as FP32
    return package_model(mlp, example)


@pytest.mark.parametrize("batch", [1, 7])
def test_torch_mlp_matches_the_module_at_any_batch_size(
    mlp: torch.nn.Module, mlp_package: ModelPackage, batch: int
) -> None:
    x = np.random.default_rng(batch).normal(size=(batch, 4)).astype(np.float32)
    with torch.no_grad():
        expected = mlp(torch.from_numpy(x)).numpy()
    got = _run(mlp_package, x)["output"]
    assert got.shape == (batch, 3)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_torch_package_signature_has_a_dynamic_batch_axis(mlp_package: ModelPackage) -> None:
    assert mlp_package.flavor == "pytorch"
    assert mlp_package.signature == Signature(
        inputs=(TensorSpec("input", "FP32", (-1, 4)),),
        outputs=(TensorSpec("output", "FP32", (-1, 3)),),
    )
    assert mlp_package.example["input"].dtype == np.float32


def test_torch_export_keeps_the_module_training_mode() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    model.train()
    package_model(model, torch.zeros(2, 2))
    assert model.training
    model.eval()
    package_model(model, torch.zeros(2, 2))
    assert not model.training


def test_torch_accepts_a_tensor_example(mlp: torch.nn.Module) -> None:
    package = package_model(mlp, torch.ones(2, 4))
    np.testing.assert_array_equal(package.example["input"], np.ones((2, 4), np.float32))


# -- uploaded ONNX -----------------------------------------------------------------------


def test_onnx_bytes_round_trip(iris_package: ModelPackage, iris: tuple[Array, Array]) -> None:
    uploaded = package_model(iris_package.onnx, iris[0][:2])
    assert uploaded.flavor == "onnx"
    assert uploaded.onnx == iris_package.onnx
    assert uploaded.signature == iris_package.signature
    # The example is cast to the input's datatype (given as float64, stored as FP32).
    assert uploaded.example["X"].dtype == np.float32
    x = iris[0].astype(np.float32)
    np.testing.assert_array_equal(_run(uploaded, x)["probabilities"], _run(iris_package, x)["probabilities"])


def test_onnx_from_a_path_and_from_a_model_proto(iris_package: ModelPackage, tmp_path: Path) -> None:
    path = tmp_path / "iris.onnx"
    path.write_bytes(iris_package.onnx)
    for source in (path, str(path), onnx.load_model_from_string(iris_package.onnx)):
        package = package_model(source)
        assert package.flavor == "onnx"
        assert package.signature == iris_package.signature
        assert package.example == {}


def test_onnx_with_two_inputs_takes_a_mapping_example() -> None:
    package = package_model(_two_input_onnx(), {"a": [[1, 2]], "b": [[3, 4]]})
    assert package.signature.input_names() == ["a", "b"]
    assert package.example["a"].dtype == np.float32
    np.testing.assert_array_equal(OnnxModel(package.onnx).run(package.example)["z"], [[4, 6]])


def test_onnx_with_two_inputs_refuses_a_bare_example() -> None:
    with pytest.raises(InvalidArgument, match=r"takes inputs \['a', 'b'\].*mapping"):
        package_model(_two_input_onnx(), [[1, 2]])


def test_example_that_does_not_fit_the_onnx_model_is_refused(iris_package: ModelPackage) -> None:
    with pytest.raises(InvalidArgument, match=r"input 'X' has shape \[2, 5\]"):
        package_model(iris_package.onnx, np.zeros((2, 5)))


@pytest.mark.parametrize("data", [b"", b"not an onnx model at all", b"\x08\x07\x12\x00garbage\xff"])
def test_invalid_onnx_bytes_are_an_invalid_argument(data: bytes) -> None:
    with pytest.raises(InvalidArgument, match="not a valid ONNX model") as info:
        package_model(data)
    assert info.value.details["field"] == "file"


def test_missing_onnx_file_is_an_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no ONNX file at"):
        package_model(tmp_path / "missing.onnx")


@pytest.mark.parametrize(
    ("model", "type_name"),
    [({"weights": [1, 2]}, "dict"), (lambda x: x, "function"), (42, "int"), (object(), "object")],
    ids=["dict", "lambda", "int", "object"],
)
def test_unsupported_object_is_an_invalid_argument_with_a_hint(model: object, type_name: str) -> None:
    with pytest.raises(InvalidArgument, match=f"cannot register a {type_name}") as info:
        package_model(model, [[1.0]])
    assert "scikit-learn estimator" in info.value.message
    assert "torch.nn.Module" in info.value.message
    assert "ONNX" in info.value.message
    assert info.value.details["field"] == "model"


def test_a_model_onnx_runtime_cannot_load_is_refused_at_registration() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["Y"])],
        "too-new",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 2])],
    )
    # onnx's default IR version (14) is newer than this ONNX Runtime reads (13)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(InvalidArgument, match="ONNX Runtime cannot load"):
        package_model(proto.SerializeToString())
