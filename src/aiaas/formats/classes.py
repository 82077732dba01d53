"""Class labels of classifiers: kept in the ONNX file, applied inside its graph.

A classifier answers with the labels of its training data (``east``/``west``, ``3``/``7``/``9``),
never bare class indices, and its probability columns are named by those labels. Both
facts live in the model file itself, so every runtime, replica and client sees the same
thing and the hot path does no extra work:

- the class list is written to the model's ``metadata_props`` under :data:`CLASSES_KEY`,
  as JSON ``{output name: [label, ...]}``: the labels of the columns of that output (the
  probabilities), in column order. Registration reads it into the version's signature
  (``TensorSpec.classes``), from which the servers name the columns (V2 ``parameters``,
  V1 objects);
- when the model's label output holds class *indices* (a network's argmax, a model fitted
  on encoded labels) or there is no label output at all, :func:`label_classes` appends a
  lookup to the graph (``Gather`` from a constant holding the labels, after an ``ArgMax``
  where needed), so the label output answers with the labels themselves, in their own
  datatype (text as ``BYTES``, integers as ``INT64``, fractions as ``FP64``, booleans as
  ``BOOL``).

The one writer is :func:`label_classes`, used by the SDK's packaging and by the training
service's export alike; the one reader is :func:`read_classes`. A user converting a model
by hand may write the metadata entry themselves; it is checked at registration.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from aiaas.errors import InvalidArgument

if TYPE_CHECKING:
    import onnx

    from aiaas.formats.signature import TensorSpec

__all__ = ["CLASSES_KEY", "ClassLabel", "check_classes", "class_key", "label_classes", "read_classes"]

#: The ``metadata_props`` key of an ONNX model holding ``{output: [class labels]}`` as JSON.
CLASSES_KEY = "aiaas.classes"
#: What a class label may be: text, an integer, a fraction or a boolean (one kind per model).
ClassLabel = str | int | float | bool

_SCORE_DATATYPES = ("FP16", "FP32", "FP64")
_FIELD = f"metadata_props[{CLASSES_KEY!r}]"


def check_classes(classes: Any, *, field: str = "classes") -> list[ClassLabel]:
    """The class labels as a plain list, checked.

    Numpy scalars become Python values; integral fractions stay fractions.

    Raises:
        InvalidArgument: not a list of at least two distinct labels of one kind (text,
            integers, fractions or booleans), or a fraction that is not finite.
    """
    try:
        values = [v.item() if hasattr(v, "item") else v for v in classes]
    except TypeError:
        raise InvalidArgument(
            f"{field} must be a list of class labels; got {type(classes).__name__}",
            details={"field": field},
        ) from None
    kinds = {_kind(v) for v in values}
    if None in kinds or len(kinds) > 1:
        raise InvalidArgument(
            f"{field} must all be text, all integers, all fractions or all booleans; got "
            f"{sorted({type(v).__name__ for v in values})}",
            details={"field": field, "value": [repr(v) for v in values[:20]]},
        )
    if len(values) < 2:
        raise InvalidArgument(
            f"{field} needs at least two classes; got {values!r}", details={"field": field, "value": values}
        )
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
        raise InvalidArgument(f"{field} must be finite numbers; got {values!r}", details={"field": field})
    if kinds == {"int"} and any(not -(2**63) <= v < 2**63 for v in values):
        raise InvalidArgument(f"{field}: integer labels must fit in 64 bits", details={"field": field})
    if len(set(values)) != len(values):
        repeated = sorted({repr(v) for v in values if values.count(v) > 1})
        raise InvalidArgument(
            f"{field} must be distinct; {', '.join(repeated)} appear more than once",
            details={"field": field, "value": repeated},
        )
    return values


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return None


def class_key(label: ClassLabel) -> str:
    """A label as an object key (V1 answers): text as is, ``true``/``false``, numbers as written."""
    if isinstance(label, bool):
        return "true" if label else "false"
    return str(label)


def read_classes(
    metadata: Mapping[str, str], outputs: Sequence[TensorSpec]
) -> dict[str, tuple[ClassLabel, ...]]:
    """The class labels recorded in a model's metadata, by output, checked against its outputs.

    Args:
        metadata: the model's ``metadata_props`` (or ONNX Runtime's custom metadata map).
        outputs: the model's output tensors.

    Raises:
        InvalidArgument: the entry is not JSON ``{output: [labels]}``, names an unknown
            output or one that is not a 2-D score tensor, or lists as many labels as that
            output does not have columns.
    """
    text = metadata.get(CLASSES_KEY)
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"{_FIELD} is not valid JSON: {exc}", details={"field": _FIELD}) from None
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"{_FIELD} must be a JSON object {{output name: [class labels]}}; got {type(value).__name__}",
            details={"field": _FIELD},
        )
    by_name = {spec.name: spec for spec in outputs}
    out: dict[str, tuple[ClassLabel, ...]] = {}
    for name, classes in value.items():
        spec = by_name.get(name)
        where = f"{_FIELD}.{name}"
        if spec is None:
            raise InvalidArgument(
                f"{where}: the model has no output {name!r}; its outputs are {list(by_name)}",
                details={"field": where, "expected": list(by_name)},
            )
        _check_scores(spec, where)
        if not isinstance(classes, list):
            raise InvalidArgument(f"{where} must be a list of class labels", details={"field": where})
        labels = check_classes(classes, field=where)
        if spec.shape[1] >= 0 and spec.shape[1] != len(labels):
            raise InvalidArgument(
                f"{where} lists {len(labels)} classes, but output {name!r} has {spec.shape[1]} columns",
                details={"field": where, "expected": spec.shape[1], "value": len(labels)},
            )
        out[name] = tuple(labels)
    return out


def _check_scores(spec: TensorSpec, where: str) -> None:
    if len(spec.shape) != 2 or spec.datatype not in _SCORE_DATATYPES:
        raise InvalidArgument(
            f"{where}: output {spec.name!r} ({spec.datatype}, shape {list(spec.shape)}) cannot have "
            "classes: they name the columns of a 2-D score tensor (rows, classes) of FP16/FP32/FP64",
            details={"field": where},
        )


def label_classes(
    data: bytes,
    classes: Sequence[Any],
    *,
    scores: str = "probabilities",
    label: str = "label",
    label_from: Literal["labels", "indices", "scores"] = "labels",
) -> bytes:
    """The model with ``classes`` recorded, and its ``label`` output answering with them.

    Args:
        data: the ONNX model.
        classes: the class labels, in the order of the columns of ``scores``.
        scores: the output whose columns the classes name (probabilities or scores).
        label: the output that answers with the label of each row.
        label_from: what the model gives now: ``"labels"``, its ``label`` output already
            answers with the labels (only the metadata is written); ``"indices"``, it
            answers with class indices (a lookup replaces them by the labels);
            ``"scores"``, it has no ``label`` output (one is added: the label of the
            highest score of each row, the first on a tie, as numpy's argmax).

    Raises:
        InvalidArgument: the classes are not valid labels, or the outputs named do not
            exist or do not have the form this needs.
    """
    import onnx

    labels = check_classes(classes)
    proto = onnx.load_model_from_string(data)
    graph = proto.graph
    outputs = {o.name: o for o in graph.output}
    if scores not in outputs:
        raise InvalidArgument(
            f"the model has no output {scores!r} to name by class; its outputs are {list(outputs)}",
            details={"field": "classes", "expected": list(outputs)},
        )
    if label_from == "scores":
        if label in outputs:
            raise InvalidArgument(
                f"the model already has an output {label!r}", details={"field": "classes", "value": label}
            )
        _append_label(proto, labels, scores, label)
    elif label not in outputs:
        raise InvalidArgument(
            f"the model has no output {label!r}; its outputs are {list(outputs)}",
            details={"field": "classes", "expected": list(outputs)},
        )
    elif label_from == "indices":
        _replace_indices(proto, labels, label)
    _set_metadata(proto, {scores: labels})
    return bytes(proto.SerializeToString())


def _unique(graph: onnx.GraphProto, base: str) -> str:
    taken = {v for n in graph.node for v in (*n.input, *n.output)}
    taken |= {t.name for t in graph.initializer} | {v.name for v in (*graph.input, *graph.output)}
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def _classes_tensor(name: str, labels: list[ClassLabel]) -> onnx.TensorProto:
    """The labels as a constant of their own datatype: BOOL, INT64, DOUBLE or STRING."""
    import numpy as np
    from onnx import numpy_helper

    first = labels[0]
    dtype: Any = object
    if isinstance(first, bool):
        dtype = np.bool_
    elif isinstance(first, int):
        dtype = np.int64
    elif isinstance(first, float):
        dtype = np.float64
    return numpy_helper.from_array(np.asarray(labels, dtype=dtype), name)


def _lookup(proto: onnx.ModelProto, labels: list[ClassLabel], indices: str, label: str) -> int:
    """Append ``label = classes[indices]``; returns the label's ONNX element type."""
    from onnx import helper

    graph = proto.graph
    table = _classes_tensor(_unique(graph, f"{label}_classes"), labels)
    graph.initializer.append(table)
    graph.node.append(
        helper.make_node("Gather", [table.name, indices], [label], axis=0, name=f"{label}_lookup")
    )
    if not any(o.domain in ("", "ai.onnx") for o in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid("", 13))  # Gather and ArgMax, any version
    return int(table.data_type)


def _replace_indices(proto: onnx.ModelProto, labels: list[ClassLabel], label: str) -> None:
    graph = proto.graph
    producers = [n for n in graph.node if label in n.output]
    if not producers:
        raise InvalidArgument(
            f"output {label!r} is not computed by the graph (it is an input or a constant), so it "
            "cannot be turned from class indices into labels",
            details={"field": "classes", "value": label},
        )
    output = next(o for o in graph.output if o.name == label)
    elem_type = output.type.tensor_type.elem_type
    if elem_type not in (6, 7):  # INT32, INT64: what Gather takes as indices
        raise InvalidArgument(
            f"output {label!r} must hold class indices as INT32 or INT64 to be looked up",
            details={"field": "classes", "value": label},
        )
    indices = _unique(graph, f"{label}_index")
    _rename(graph, label, indices)
    output.type.tensor_type.elem_type = _lookup(proto, labels, indices, label)


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename a value everywhere it is produced or used, subgraphs (outer-scope uses) included."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for attribute in node.attribute:
            subgraphs = [attribute.g] if attribute.HasField("g") else []
            for sub in [*subgraphs, *attribute.graphs]:
                _rename(sub, old, new)
    for info in graph.value_info:
        if info.name == old:
            info.name = new


def _append_label(proto: onnx.ModelProto, labels: list[ClassLabel], scores: str, label: str) -> None:
    from onnx import helper

    graph = proto.graph
    output = next(o for o in graph.output if o.name == scores)
    dims = output.type.tensor_type.shape.dim
    if len(dims) != 2:
        raise InvalidArgument(
            f"output {scores!r} must be 2-D (rows, classes) to give each row a label; it has {len(dims)} "
            "dimensions",
            details={"field": "classes", "value": scores},
        )
    if dims[1].HasField("dim_value") and dims[1].dim_value != len(labels):
        raise InvalidArgument(
            f"{len(labels)} classes given, but output {scores!r} has {dims[1].dim_value} columns",
            details={"field": "classes", "expected": dims[1].dim_value, "value": len(labels)},
        )
    indices = _unique(graph, f"{label}_index")
    graph.node.append(
        helper.make_node("ArgMax", [scores], [indices], axis=1, keepdims=0, name=f"{label}_argmax")
    )
    elem_type = _lookup(proto, labels, indices, label)
    row = dims[0]
    batch: str | int | None = row.dim_param if row.HasField("dim_param") else None
    if row.HasField("dim_value"):
        batch = row.dim_value
    graph.output.append(helper.make_tensor_value_info(label, elem_type, [batch]))


def _set_metadata(proto: onnx.ModelProto, classes: dict[str, list[ClassLabel]]) -> None:
    for entry in proto.metadata_props:
        if entry.key == CLASSES_KEY:
            entry.value = json.dumps(classes)
            return
    entry = proto.metadata_props.add()
    entry.key, entry.value = CLASSES_KEY, json.dumps(classes)
