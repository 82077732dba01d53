"""Model signatures: the names, datatypes and shapes a model takes and returns.

Datatypes use the Open Inference Protocol names (``FP32``, ``INT64``, ``BYTES``, ...), so
what a version's metadata says is exactly what a V2 client must send. Checking a request
against a signature lives here too, because registration (checking the input example) and
serving (checking every request) must apply the very same rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument

__all__ = [
    "DATATYPES",
    "Signature",
    "TensorSpec",
    "datatype_name",
    "datatype_of",
    "numpy_dtype",
]

#: Open Inference Protocol datatype → numpy dtype. BF16 has no numpy dtype, so it is absent.
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
_BY_DTYPE = {dt: name for name, dt in DATATYPES.items()}


def numpy_dtype(datatype: str, *, field: str = "datatype") -> np.dtype[Any]:
    """The numpy dtype for an OIP datatype name.

    Raises:
        InvalidArgument: naming ``field`` when the datatype is unknown or unsupported.
    """
    try:
        return DATATYPES[datatype]
    except (KeyError, TypeError):
        raise InvalidArgument(
            f"{field}: unsupported datatype {datatype!r}; expected one of {', '.join(DATATYPES)}",
            details={"field": field, "value": datatype},
        ) from None


def datatype_name(dtype: np.dtype[Any]) -> str:
    """The OIP datatype name of a numpy dtype (strings map to ``BYTES``)."""
    if dtype.kind in "USO":
        return "BYTES"
    try:
        return _BY_DTYPE[dtype]
    except KeyError:
        raise InvalidArgument(
            f"numpy dtype {dtype} has no Open Inference Protocol datatype",
            details={"dtype": str(dtype)},
        ) from None


def datatype_of(array: np.ndarray[Any, Any]) -> str:
    """The OIP datatype name of a numpy array."""
    return datatype_name(array.dtype)


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor; ``-1`` in ``shape`` means any size (the batch axis, usually).

    ``classes``, on the score output of a classifier (rows, classes), are the class labels
    its columns stand for, in column order (see :mod:`aiaas.formats.classes`).
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    classes: tuple[str | int | float | bool, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}
        if self.classes is not None:
            out["classes"] = list(self.classes)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TensorSpec:
        classes = d.get("classes")
        return cls(
            name=str(d["name"]),
            datatype=str(d["datatype"]),
            shape=tuple(d["shape"]),
            classes=tuple(classes) if classes is not None else None,
        )

    def accepts_shape(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.shape) and all(
            want < 0 or want == got for want, got in zip(self.shape, shape, strict=True)
        )


@dataclass(frozen=True)
class Signature:
    """The inputs and outputs of a model version.

    Example:
        >>> sig = Signature(inputs=(TensorSpec("x", "FP32", (-1, 4)),), outputs=())
        >>> sig.check_inputs({"x": np.zeros((2, 4), np.float32)})
    """

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Signature:
        return cls(
            inputs=tuple(TensorSpec.from_dict(t) for t in d["inputs"]),
            outputs=tuple(TensorSpec.from_dict(t) for t in d["outputs"]),
        )

    def input(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise InvalidArgument(
            f"unknown input {name!r}; this model takes {self.input_names()}",
            details={"field": "inputs", "value": name, "expected": self.input_names()},
        )

    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @cached_property
    def output_classes(self) -> dict[str, tuple[str | int | float | bool, ...]]:
        """Output name → the class labels of its columns, for the outputs that have them.

        Computed once per signature: the response encoders read it on every request.
        """
        return {t.name: t.classes for t in self.outputs if t.classes is not None}

    def check_inputs(self, arrays: Mapping[str, np.ndarray[Any, Any]]) -> None:
        """Check names, datatypes and shapes of a full set of inputs.

        Raises:
            InvalidArgument: naming the first input that breaks the signature and how.
        """
        for name in arrays:
            self.input(name)
        for spec in self.inputs:
            if spec.name not in arrays:
                raise InvalidArgument(
                    f"missing input {spec.name!r}; this model takes {self.input_names()}",
                    details={"field": "inputs", "expected": self.input_names()},
                )
            array = arrays[spec.name]
            got = datatype_of(array)
            if got != spec.datatype:
                raise InvalidArgument(
                    f"input {spec.name!r} has datatype {got}; expected {spec.datatype}",
                    details={"field": spec.name, "expected": spec.datatype, "value": got},
                )
            if not spec.accepts_shape(tuple(array.shape)):
                raise InvalidArgument(
                    f"input {spec.name!r} has shape {list(array.shape)}; expected "
                    f"{list(spec.shape)} (-1 = any size)",
                    details={
                        "field": spec.name,
                        "expected": list(spec.shape),
                        "value": list(array.shape),
                    },
                )
