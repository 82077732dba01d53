"""ONNX models: reading a signature from the graph and running it with ONNX Runtime.

The ``onnx`` package is imported only to parse and check a model (at registration):
loading one to serve needs ONNX Runtime alone, and importing ``onnx`` would cost the
inference server a tenth of a second of start-up and about 12 MB for its lifetime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from aiaas.errors import InvalidArgument
from aiaas.formats.classes import read_classes
from aiaas.formats.external_data import check_self_contained, isolated_folder
from aiaas.formats.onnx_session import new_session
from aiaas.formats.signature import Signature, TensorSpec
from aiaas.translate import invalid_model, rejected_input, unloadable_model

if TYPE_CHECKING:
    import onnx

__all__ = ["OnnxModel", "parse_onnx", "signature_of"]

# onnx.TensorProto element type (values fixed by the ONNX spec) → OIP datatype
_ELEM_TYPES: dict[int, str] = {
    9: "BOOL",  # BOOL
    2: "UINT8",  # UINT8
    4: "UINT16",  # UINT16
    12: "UINT32",  # UINT32
    13: "UINT64",  # UINT64
    3: "INT8",  # INT8
    5: "INT16",  # INT16
    6: "INT32",  # INT32
    7: "INT64",  # INT64
    10: "FP16",  # FLOAT16
    1: "FP32",  # FLOAT
    11: "FP64",  # DOUBLE
    8: "BYTES",  # STRING
}
# ONNX Runtime's type strings → OIP datatype
_ORT_TYPES: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def parse_onnx(data: bytes) -> onnx.ModelProto:
    """Parse and check ONNX bytes.

    Raises:
        InvalidArgument: the bytes are not a valid ONNX model, with the checker's reason, or
            a tensor keeps its data in an external file (see :mod:`.external_data`).
    """
    import onnx

    try:
        proto = onnx.load_model_from_string(data)
    except Exception as exc:  # DecodeError
        raise invalid_model(exc) from None
    # Before the checker: it would look an external file up on this server's disk.
    check_self_contained(proto)
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx raises ValidationError, ...
        raise invalid_model(exc) from None
    return proto


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        raise InvalidArgument(
            f"ONNX graph value {value.name!r} is a {kind}, only tensors are supported "
            "(export scikit-learn classifiers with zipmap disabled)",
            details={"field": value.name},
        )
    tensor = value.type.tensor_type
    datatype = _ELEM_TYPES.get(tensor.elem_type)
    if datatype is None:
        import onnx

        raise InvalidArgument(
            f"ONNX tensor {value.name!r} has element type "
            f"{onnx.TensorProto.DataType.Name(tensor.elem_type)}, which has no OIP datatype",
            details={"field": value.name},
        )
    shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
    return TensorSpec(name=value.name, datatype=datatype, shape=shape)


def signature_of(proto: onnx.ModelProto) -> Signature:
    """The graph's real inputs (initializers excluded) and outputs, with the class labels
    of a classifier's score output (see :mod:`.classes`).

    Raises:
        InvalidArgument: an input or output is not a tensor of an OIP datatype, or the
            class labels recorded in the model do not fit it.
    """
    initializers = {i.name for i in proto.graph.initializer}
    metadata = {p.key: p.value for p in proto.metadata_props}
    return _with_classes(
        tuple(_spec(v) for v in proto.graph.input if v.name not in initializers),
        tuple(_spec(v) for v in proto.graph.output),
        metadata,
    )


def _with_classes(
    inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...], metadata: Mapping[str, str]
) -> Signature:
    classes = read_classes(metadata, outputs)
    return Signature(
        inputs=inputs,
        outputs=tuple(replace(o, classes=classes[o.name]) if o.name in classes else o for o in outputs),
    )


class OnnxModel:
    """A loaded ONNX model, ready to run.

    Example (``onnx_bytes`` stands for a model file's bytes, so the docstring test skips it):
        >>> model = OnnxModel(onnx_bytes)  # doctest: +SKIP
        >>> model.run({"input": x})["output"]  # doctest: +SKIP
    """

    def __init__(self, data: bytes, *, intra_op_threads: int = 1) -> None:
        try:
            # External data resolves against an empty private folder, never this process's
            # working directory: a model cannot read a file of the server (see .external_data).
            self.session = new_session(
                data, external_data_folder=isolated_folder(), intra_op_threads=intra_op_threads
            )
        except Exception as exc:
            raise unloadable_model(exc) from None
        self.signature = _session_signature(self.session)

    def run(
        self,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        output_names: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Run the model; inputs must already satisfy :attr:`signature`."""
        names = list(output_names) if output_names else self.signature.output_names()
        feed = {name: (a.astype(str) if a.dtype == object else a) for name, a in inputs.items()}
        try:
            values = self.session.run(names, feed)
        except Exception as exc:  # ORT raises its own Fail/InvalidArgument types
            raise rejected_input(exc) from None
        return {n: np.asarray(v) for n, v in zip(names, values, strict=True)}


def _session_signature(session: ort.InferenceSession) -> Signature:
    """The same signature :func:`signature_of` reads from the graph, as ONNX Runtime reports it."""

    def spec(arg: Any) -> TensorSpec:
        datatype = _ORT_TYPES.get(arg.type)
        if datatype is None:
            tensor = arg.type.startswith("tensor(")
            what = "an element type with no OIP datatype" if tensor else "not a tensor"
            raise InvalidArgument(
                f"ONNX graph value {arg.name!r} has type {arg.type}, {what}",
                details={"field": arg.name},
            )
        shape = tuple(d if isinstance(d, int) else -1 for d in (arg.shape or ()))
        return TensorSpec(name=arg.name, datatype=datatype, shape=shape)

    return _with_classes(
        tuple(spec(a) for a in session.get_inputs()),
        tuple(spec(a) for a in session.get_outputs()),
        session.get_modelmeta().custom_metadata_map,
    )
