"""Quantization of a registered ONNX model: dynamic int8, static int8 (QDQ), FP16 weights.

The first two are ONNX Runtime's own tools (``onnxruntime.quantization``). Two things are done
around them:

- PyTorch exports ``nn.Linear`` as ``Gemm``, which ONNX Runtime's *dynamic* quantizer does not
  handle (its registry has ``MatMul`` and ``Conv``): each ``Gemm`` with a constant weight is
  rewritten as ``MatMul`` + ``Add`` first, the same arithmetic, so its weight is quantized.
- Only the arithmetic layers (``Conv``, ``MatMul``, ``Gemm``) are quantized. The rest of the
  graph (input standardisation, softmax, the lookup that turns a class index into the user's
  label) stays as it was, and the model's metadata (its class labels, see
  :mod:`aiaas.formats.classes`) is copied onto the result, so an optimized classifier answers
  with the same labels as its parent.

FP16 is done here without ``onnxconverter-common`` (not a dependency of the platform): float
weights are stored as FP16 and widened back to FP32 by a ``Cast`` where they are used. The file
halves; every runtime, CPU included, still computes in FP32 (CPU kernels for FP16 arithmetic
are few and slower), so FP16 is a size optimization here, not a speed one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument

__all__ = [
    "QUANTIZED_OPS",
    "dynamic_int8",
    "finish_graph",
    "fp16_weights",
    "quantizable_layers",
    "static_int8",
]

#: The operators whose weights are quantized.
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")

Array = np.ndarray[Any, Any]


def quantizable_layers(onnx_bytes: bytes) -> int:
    """How many layers of the graph have a constant float weight that quantization would shrink."""
    import onnx

    model = onnx.load_model_from_string(onnx_bytes)
    floats = {
        init.name
        for init in model.graph.initializer
        if init.data_type == onnx.TensorProto.FLOAT and init.dims
    }
    return sum(
        1
        for node in model.graph.node
        if node.op_type in QUANTIZED_OPS and any(i in floats for i in node.input[1:2])
    )


def dynamic_int8(onnx_bytes: bytes, *, per_channel: bool = False) -> bytes:
    """int8 weights; activations quantized per batch at run time (no calibration data)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    prepared = _gemm_as_matmul(onnx_bytes)
    with _workdir() as folder:
        source, target = folder / "in.onnx", folder / "out.onnx"
        source.write_bytes(prepared)
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=["MatMul", "Conv"],
            extra_options={"MatMulConstBOnly": True},
        )
        return finish_graph(target.read_bytes(), onnx_bytes)


class _Rows:
    """ONNX Runtime's ``CalibrationDataReader`` over the rows of a dataset, a few at a time."""

    def __init__(self, input_name: str, rows: Array, batch: int = 32) -> None:
        self.input_name, self.rows, self.batch, self.at = input_name, rows, batch, 0

    def get_next(self) -> dict[str, Array] | None:
        if self.at >= len(self.rows):
            return None
        chunk = self.rows[self.at : self.at + self.batch]
        self.at += self.batch
        return {self.input_name: chunk}

    def rewind(self) -> None:
        self.at = 0


def static_int8(onnx_bytes: bytes, rows: Array, *, input_name: str, per_channel: bool = False) -> bytes:
    """int8 weights and activations in QDQ form, activation ranges calibrated on ``rows``.

    Args:
        onnx_bytes: the model.
        rows: float32 feature rows, shape (n, d): the calibration data.
        input_name: the model's input.
        per_channel: one weight scale per output channel.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    reader = type("CalibrationRows", (_Rows, CalibrationDataReader), {})(
        input_name, np.ascontiguousarray(rows, dtype=np.float32)
    )
    with _workdir() as folder:
        source, target = folder / "in.onnx", folder / "out.onnx"
        source.write_bytes(onnx_bytes)
        quantize_static(
            source,
            target,
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=list(QUANTIZED_OPS),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        return finish_graph(target.read_bytes(), onnx_bytes)


def fp16_weights(onnx_bytes: bytes) -> bytes:
    """Float weights of at least 16 values stored as FP16, each widened by one ``Cast`` to FP32.

    Small constants (scales, shapes, biases of a few values) are left alone: a ``Cast`` costs
    more than the bytes it saves.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_model_from_string(onnx_bytes)
    graph = model.graph
    kept: list[Any] = []
    casts: list[Any] = []
    for init in graph.initializer:
        size = int(np.prod(init.dims)) if init.dims else 1
        if init.data_type != onnx.TensorProto.FLOAT or size < 16:
            kept.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{init.name}__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT))
    if not casts:
        raise InvalidArgument(
            "fp16: the model has no float weights to store in half precision", details={"field": "method"}
        )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*casts, *nodes])
    return finish_graph(model.SerializeToString(), onnx_bytes)


def _gemm_as_matmul(onnx_bytes: bytes) -> bytes:
    """``Gemm(A, W, C)`` with a constant ``W`` (alpha = beta = 1, A not transposed) as
    ``MatMul(A, W') + C``; other nodes untouched."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_model_from_string(onnx_bytes)
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    nodes: list[Any] = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = inits.get(node.input[1]) if node.op_type == "Gemm" and len(node.input) > 1 else None
        if (
            weight is None
            or attrs.get("transA", 0)
            or attrs.get("alpha", 1.0) != 1.0
            or attrs.get("beta", 1.0) != 1.0
        ):
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weight)
        if attrs.get("transB", 0):
            w = w.T
        name = f"{node.input[1]}__matmul"
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w), name))
        if len(node.input) > 2 and node.input[2]:
            product = f"{node.output[0]}__product"
            nodes.append(
                helper.make_node("MatMul", [node.input[0], name], [product], name=f"{node.name}_matmul")
            )
            nodes.append(
                helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_add")
            )
        else:
            nodes.append(helper.make_node("MatMul", [node.input[0], name], [node.output[0]], name=node.name))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    remaining = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(remaining)
    return bytes(model.SerializeToString())


def finish_graph(result: bytes, source: bytes) -> bytes:
    """``result`` made ready to register: the metadata (class labels) of ``source``, and compact.

    Compact means: no shapes of intermediate tensors (the quantizer's shape inference records
    them; ONNX Runtime infers them again at load), no node names or doc strings, and short names
    for intermediate tensors and weights (``t12``). The graph inputs and outputs keep their
    names, so the signature is the parent's. In a small model the exporter's and quantizer's
    long names (``/network/convs/convs.0/Conv_output_0_output_quantized_cast_output``) weigh as
    much as its int8 weights; dropping them changes no arithmetic.
    """
    import onnx

    model = onnx.load_model_from_string(result)
    original = onnx.load_model_from_string(source)
    graph = model.graph
    del graph.value_info[:]
    del model.metadata_props[:]
    model.metadata_props.extend(original.metadata_props)
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {""}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for init in graph.initializer:
        init.name = short(init.name)
        init.doc_string = ""
    for node in graph.node:
        node.name, node.doc_string = "", ""
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


@contextmanager
def _workdir() -> Iterator[Path]:
    """A private temporary folder: ONNX Runtime's quantizers read and write files."""
    with tempfile.TemporaryDirectory(prefix="aiaas-quantize-") as name:
        yield Path(name)
