"""ONNX models whose tensors name an external file, in every place ONNX Runtime reads one from.

Each model takes ``x`` (UINT8, 64 values) and answers ``y = x + W`` where the 64 bytes of
``W`` come from the file named: run on zeros, it answers the file's first 64 bytes. That is
what a version registered this way would have served of the server's own files.
"""

from __future__ import annotations

from typing import Any

SIZE = 64


def _external(name: str, location: str) -> Any:
    from onnx import TensorProto

    tensor = TensorProto()
    tensor.name = name
    tensor.data_type = TensorProto.UINT8
    tensor.dims.extend([SIZE])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("length", str(SIZE))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _model(nodes: list[Any], **graph: Any) -> bytes:
    from onnx import TensorProto, helper

    functions = graph.pop("functions", [])
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, [SIZE])
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, [SIZE])
    model = helper.make_model(
        helper.make_graph(nodes, "reader", [x], [y], **graph),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
        functions=functions,
        ir_version=8,
    )
    return bytes(model.SerializeToString())


def _sparse(name: str, location: str) -> Any:
    from onnx import SparseTensorProto, TensorProto, helper

    sparse = SparseTensorProto()
    sparse.values.CopyFrom(_external(name, location))
    sparse.indices.CopyFrom(
        helper.make_tensor(f"{name}_indices", TensorProto.INT64, [SIZE], list(range(SIZE)))
    )
    sparse.dims.extend([SIZE])
    return sparse


def file_readers(location: str) -> dict[str, tuple[bytes, str]]:
    """Where a tensor can hide → (model bytes, name of the tensor that names ``location``)."""
    from onnx import TensorProto, helper

    add = helper.make_node("Add", ["x", "W"], ["y"])
    then_out = helper.make_tensor_value_info("then_y", TensorProto.UINT8, [SIZE])
    else_out = helper.make_tensor_value_info("else_y", TensorProto.UINT8, [SIZE])
    then_branch = helper.make_graph(
        [helper.make_node("Add", ["x", "B"], ["then_y"])],
        "then",
        [],
        [then_out],
        initializer=[_external("B", location)],
    )
    else_branch = helper.make_graph([helper.make_node("Identity", ["x"], ["else_y"])], "else", [], [else_out])
    condition = helper.make_tensor("always", TensorProto.BOOL, [], [True])
    function = helper.make_function(
        "local",
        "AddFile",
        ["a"],
        ["b"],
        [
            helper.make_node("Constant", [], ["F"], value=_external("F", location)),
            helper.make_node("Add", ["a", "F"], ["b"]),
        ],
        [helper.make_opsetid("", 17)],
    )
    return {
        "initializer": (_model([add], initializer=[_external("W", location)]), "W"),
        "constant attribute": (
            _model([helper.make_node("Constant", [], ["W"], value=_external("W", location)), add]),
            "W",
        ),
        "sparse initializer": (_model([add], sparse_initializer=[_sparse("W", location)]), "W"),
        "sparse constant attribute": (
            _model([helper.make_node("Constant", [], ["W"], sparse_value=_sparse("W", location)), add]),
            "W",
        ),
        "If subgraph initializer": (
            _model(
                [
                    helper.make_node("Constant", [], ["c"], value=condition),
                    helper.make_node("If", ["c"], ["y"], then_branch=then_branch, else_branch=else_branch),
                ]
            ),
            "B",
        ),
        "model-local function": (
            _model([helper.make_node("AddFile", ["x"], ["y"], domain="local")], functions=[function]),
            "F",
        ),
    }
