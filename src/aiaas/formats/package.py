"""Turning what a user has in hand (an estimator, a module, a file) into an ONNX package.

Everything is stored as ONNX, the one format that is both safe to load (no pickle) and
fast to serve. Conversion happens in the caller's process, so the platform never has to
unpickle a user's object.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from aiaas.errors import InvalidArgument
from aiaas.formats.classes import CLASSES_KEY, label_classes
from aiaas.formats.external_data import check_self_contained, external_tensors
from aiaas.formats.onnx_model import OnnxModel, parse_onnx, signature_of
from aiaas.formats.signature import Signature

__all__ = ["FLAVORS", "ModelPackage", "package_model"]

FLAVORS = ("sklearn", "pytorch", "onnx")


@dataclass
class ModelPackage:
    """An ONNX model ready to register, with its signature and input example."""

    onnx: bytes
    flavor: str
    signature: Signature
    example: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)

    def check(self) -> None:
        """Fail early, at registration, when the model names an external file, ONNX Runtime
        cannot load it (an IR version or operator it does not know), or the example does not
        fit it or cannot run."""
        import onnx

        try:
            proto = onnx.load_model_from_string(self.onnx)
        except Exception:  # DecodeError: parse_onnx says why
            proto = parse_onnx(self.onnx)
        check_self_contained(proto)
        model = OnnxModel(self.onnx)
        if not self.example:
            return
        self.signature.check_inputs(self.example)
        model.run(self.example)

    def with_classes(
        self,
        classes: Sequence[Any],
        *,
        label_from: Literal["labels", "indices", "scores"] = "labels",
        scores: str = "probabilities",
        label: str = "label",
    ) -> ModelPackage:
        """This package with the class labels of a classifier recorded, and its ``label``
        output answering with them (see :func:`aiaas.formats.classes.label_classes`)."""
        data = label_classes(self.onnx, classes, scores=scores, label=label, label_from=label_from)
        return dataclasses.replace(self, onnx=data, signature=signature_of(parse_onnx(data)))


def package_model(model: Any, example: Any = None, *, classes: Sequence[Any] | None = None) -> ModelPackage:
    """Convert a model object or file to a :class:`ModelPackage`.

    Args:
        model: a fitted scikit-learn estimator or pipeline, a PyTorch ``nn.Module``, ONNX
            bytes, an ``onnx.ModelProto``, or a path to an ``.onnx`` file (whose external
            data files, if any, are read from beside it and embedded).
        example: a few input rows (array-like, or a mapping name → array for multi-input
            ONNX models). Required for scikit-learn and PyTorch, which need it to trace.
        classes: for a PyTorch classifier, the class label of each column of its output
            (scores or probabilities): the package then also answers ``label``, the label of
            each row's highest score. scikit-learn classifiers bring their own
            (``classes_``); an ONNX file records them in its metadata (see
            :mod:`aiaas.formats.classes`).

    Raises:
        InvalidArgument: the model type is unsupported, the example does not fit, or the
            classes do not fit the model.
    """
    module = type(model).__module__.split(".")[0]
    torch_module = module == "torch" or _is_torch_module(model)
    if classes is not None and not torch_module:
        raise InvalidArgument(
            "classes is only for PyTorch modules: scikit-learn classifiers bring their own classes_, "
            f"and an ONNX model records them in its metadata_props under {CLASSES_KEY!r}",
            details={"field": "classes"},
        )
    if isinstance(model, bytes | bytearray | str | Path) or module == "onnx":
        package = _from_onnx(model, example)
    elif torch_module:
        package = _from_torch(model, _require_example(example))
        if classes is not None:
            package = package.with_classes(classes, label_from="scores", scores="output")
    elif hasattr(model, "fit") and hasattr(model, "predict"):
        package = _from_sklearn(model, _require_example(example))
    else:
        raise InvalidArgument(
            f"cannot register a {type(model).__qualname__}: expected a scikit-learn estimator, "
            "a torch.nn.Module, ONNX bytes or a path to an .onnx file",
            details={"field": "model"},
        )
    package.check()
    return package


def _is_torch_module(model: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") for c in type(model).__mro__)


def _require_example(example: Any) -> np.ndarray[Any, Any]:
    if example is None:
        raise InvalidArgument(
            "example is required: give a few input rows so the model can be traced to ONNX",
            details={"field": "example"},
        )
    array = np.asarray(example.detach().numpy() if hasattr(example, "detach") else example)
    if array.ndim < 2 or array.shape[0] < 1:
        raise InvalidArgument(
            f"example must be a batch of rows (at least 2-D, one row or more); got shape {list(array.shape)}",
            details={"field": "example", "value": list(array.shape)},
        )
    return array


def _from_onnx(model: Any, example: Any) -> ModelPackage:
    if isinstance(model, str | Path):
        data = _read_onnx_file(Path(model))
    elif isinstance(model, bytes | bytearray):
        data = bytes(model)
    else:
        data = model.SerializeToString()
    signature = signature_of(parse_onnx(data))
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    if isinstance(example, Mapping):
        arrays = {str(k): np.asarray(v) for k, v in example.items()}
    elif example is not None:
        if len(signature.inputs) != 1:
            raise InvalidArgument(
                f"this model takes inputs {signature.input_names()}: give example as a "
                "mapping from input name to array",
                details={"field": "example"},
            )
        arrays = {signature.inputs[0].name: np.asarray(example)}
    for spec in signature.inputs:
        if spec.name in arrays and spec.datatype != "BYTES":
            from aiaas.formats.signature import numpy_dtype

            arrays[spec.name] = arrays[spec.name].astype(numpy_dtype(spec.datatype))
    return ModelPackage(onnx=data, flavor="onnx", signature=signature, example=arrays)


def _read_onnx_file(path: Path) -> bytes:
    """The file's model with its external data (files beside it, on the caller's machine)
    embedded, so that what is registered is one self-contained file."""
    import onnx

    if not path.is_file():
        raise InvalidArgument(f"no ONNX file at {str(path)!r}", details={"field": "model"})
    data = path.read_bytes()
    try:
        proto = onnx.load_model_from_string(data)
    except Exception:  # not ONNX: parse_onnx says why
        return data
    if next(external_tensors(proto), None) is None:
        return data
    try:
        onnx.load_external_data_for_model(proto, str(path.parent))
        return bytes(proto.SerializeToString())
    except Exception as exc:  # a missing file, a path leaving the folder, a model over 2 GB
        raise InvalidArgument(
            f"cannot embed the external data of {str(path)!r}: {exc}", details={"field": "model"}
        ) from None


def _from_sklearn(model: Any, example: np.ndarray[Any, Any]) -> ModelPackage:
    from skl2onnx import to_onnx
    from sklearn.base import is_classifier

    # Floats go in as FP32: scikit-learn's trees compare in float32 themselves, so this
    # is exact for them, and it is what clients send most cheaply.
    if example.dtype.kind == "f":
        example = example.astype(np.float32)
    # Only classifiers have a zipmap option (skl2onnx rejects it for anything else); without
    # it their probabilities come out as a plain tensor, the only output kind we serve.
    options = {"zipmap": False} if is_classifier(model) else None
    try:
        proto = to_onnx(model, example[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    except Exception as exc:
        raise InvalidArgument(
            f"cannot export this {type(model).__name__} to ONNX with skl2onnx: {exc}",
            details={"field": "model"},
        ) from None
    data = proto.SerializeToString()
    signature = signature_of(proto)
    package = ModelPackage(
        onnx=data,
        flavor="sklearn",
        signature=signature,
        example={signature.inputs[0].name: example},
    )
    return _sklearn_classes(package, model) if is_classifier(model) else package


def _sklearn_classes(package: ModelPackage, model: Any) -> ModelPackage:
    """Record a classifier's ``classes_``, and make its label output answer with them.

    skl2onnx already outputs text and integer labels themselves; booleans come out as
    0/1, which are their indices ([False, True] is the only order scikit-learn keeps).
    """
    classes = np.asarray(getattr(model, "classes_", None))
    outputs = {o.name: o for o in package.signature.outputs}
    scores = outputs.get("probabilities")
    if classes.ndim != 1 or "label" not in outputs or scores is None or len(scores.shape) != 2:
        return package  # multi-output, or an estimator without scores: nothing to name
    label_from: Literal["labels", "indices"] = "labels"
    values: list[Any] = classes.tolist()
    if classes.dtype.kind == "b":
        label_from = "indices"
    elif classes.dtype.kind == "f":
        if not all(float(v).is_integer() for v in values):
            return package
        values = [int(v) for v in values]  # skl2onnx outputs them as INT64
    return package.with_classes(values, label_from=label_from)


def _from_torch(model: Any, example: np.ndarray[Any, Any]) -> ModelPackage:
    import torch

    if example.dtype == np.float64:
        example = example.astype(np.float32)
    was_training = model.training
    model.eval()
    buffer = io.BytesIO()
    try:
        # The TorchScript exporter is chosen on purpose (the dynamo one needs onnxscript).
        # Its deprecation notices say nothing the caller can act on, and the first one is
        # attributed to this module, so under -W error it would fail every export.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (torch.from_numpy(example),),
                buffer,  # type: ignore[arg-type]  # accepts file-like objects at run time
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:
        raise InvalidArgument(
            f"cannot export this {type(model).__name__} to ONNX: {exc}", details={"field": "model"}
        ) from None
    finally:
        model.train(was_training)
    data = buffer.getvalue()
    return ModelPackage(
        onnx=data,
        flavor="pytorch",
        signature=signature_of(parse_onnx(data)),
        example={"input": example},
    )
