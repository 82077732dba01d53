"""Running ONNX models, and reading signatures from graphs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.pipeline import Pipeline

from aiaas.errors import InvalidArgument
from aiaas.formats import ModelPackage, OnnxModel, parse_onnx, signature_of

Array = np.ndarray[Any, Any]


def test_run_returns_every_output_by_default(iris_package: ModelPackage, iris: tuple[Array, Array]) -> None:
    model = OnnxModel(iris_package.onnx)
    out = model.run({"X": iris[0][:4].astype(np.float32)})
    assert list(out) == ["label", "probabilities"]
    assert out["probabilities"].shape == (4, 3)


def test_run_can_select_outputs(iris_package: ModelPackage, iris: tuple[Array, Array]) -> None:
    out = OnnxModel(iris_package.onnx).run({"X": iris[0][:2].astype(np.float32)}, ["label"])
    assert list(out) == ["label"]


def test_input_the_runtime_rejects_is_an_invalid_argument(iris_package: ModelPackage) -> None:
    with pytest.raises(InvalidArgument, match="the model rejected the input"):
        OnnxModel(iris_package.onnx).run({"X": np.zeros((2, 7), np.float32)})


def test_map_outputs_are_refused_with_a_hint(iris: tuple[Array, Array], iris_pipeline: Pipeline) -> None:
    # skl2onnx's default for classifiers is a ZipMap: a sequence of maps, not a tensor.
    proto = to_onnx(iris_pipeline, iris[0][:1].astype(np.float32), target_opset={"": 17, "ai.onnx.ml": 3})
    with pytest.raises(InvalidArgument, match=r"only tensors are supported.*zipmap disabled"):
        signature_of(parse_onnx(proto.SerializeToString()))


def test_signature_excludes_initializers(iris_package: ModelPackage) -> None:
    proto = parse_onnx(iris_package.onnx)
    assert [i.name for i in proto.graph.input] == ["X"]
    assert signature_of(proto).input_names() == ["X"]


def test_a_loaded_model_reports_the_signature_read_from_its_graph(iris_package: ModelPackage) -> None:
    """Serving takes the signature from ONNX Runtime (no onnx import); it must be the same."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["ids"], ["as_float"], to=TensorProto.FLOAT),
            helper.make_node("Add", ["as_float", "x"], ["y"]),
            helper.make_node("Identity", ["flag"], ["same_flag"]),
        ],
        "mixed",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 3]),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, [2]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("same_flag", TensorProto.BOOL, [2]),
        ],
    )
    mixed = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    for data in (iris_package.onnx, mixed.SerializeToString()):
        assert OnnxModel(data).signature == signature_of(parse_onnx(data))
    assert [spec.shape for spec in OnnxModel(mixed.SerializeToString()).signature.inputs] == [
        (-1, 3),
        (-1, 3),
        (2,),
    ]
