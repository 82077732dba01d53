"""KServe V1 (TensorFlow-Serving style) protocol.

Row form: ``{"instances": [row, ...]}`` → ``{"predictions": [...]}``.
Columnar form: ``{"inputs": tensor | {name: tensor}}`` → ``{"outputs": tensor | {name: tensor}}``.
With several inputs a row is an object ``{input_name: value}``; with several outputs each
prediction is an object ``{output_name: value}``. V1 carries no datatypes, so values are
cast to the signature's datatype (after checking they are of the right kind).

In the row form, the score output of a classifier is an object per row, keyed by class
label: ``{"predictions": [{"label": "east", "probabilities": {"east": 0.9, "west": 0.1}}]}``
(labels that are not text are written as JSON keys are: ``"3"``, ``"true"``). The columnar
form keeps plain arrays, whose columns are in the order of the signature's ``classes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument
from aiaas.formats import Signature, class_key, numpy_dtype, to_array
from aiaas.serving.protocols._json import dumps, loads_object, rows

__all__ = ["V1Request", "decode_v1", "encode_v1"]


@dataclass
class V1Request:
    inputs: dict[str, np.ndarray[Any, Any]]
    row_format: bool


def decode_v1(body: bytes, signature: Signature) -> V1Request:
    req = loads_object(body)
    has_instances, has_inputs = "instances" in req, "inputs" in req
    if has_instances == has_inputs:
        raise InvalidArgument(
            'request must have exactly one of "instances" (rows) or "inputs" (columns)',
            details={"field": "instances"},
        )
    if has_instances:
        arrays = _from_instances(req["instances"], signature)
    else:
        arrays = _from_columns(req["inputs"], signature)
    signature.check_inputs(arrays)
    return V1Request(inputs=arrays, row_format=has_instances)


def _cast(data: Any, signature: Signature, name: str) -> np.ndarray[Any, Any]:
    spec = signature.input(name)
    return to_array(data, numpy_dtype(spec.datatype), None, name=name)


def _from_instances(instances: Any, signature: Signature) -> dict[str, np.ndarray[Any, Any]]:
    if not isinstance(instances, list) or not instances:
        raise InvalidArgument("instances must be a non-empty list of rows", details={"field": "instances"})
    if len(signature.inputs) == 1:
        name = signature.inputs[0].name
        return {name: _cast(instances, signature, name)}
    if not all(isinstance(row, Mapping) for row in instances):
        raise InvalidArgument(
            f"this model takes several inputs {signature.input_names()}: each instance must be "
            "an object {input_name: value}",
            details={"field": "instances", "expected": signature.input_names()},
        )
    columns: dict[str, list[Any]] = {}
    for i, row in enumerate(instances):
        if set(row) != set(signature.input_names()):
            raise InvalidArgument(
                f"instances[{i}] has keys {sorted(row)}; expected {signature.input_names()}",
                details={"field": f"instances[{i}]", "expected": signature.input_names()},
            )
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
    return {k: _cast(v, signature, k) for k, v in columns.items()}


def _from_columns(inputs: Any, signature: Signature) -> dict[str, np.ndarray[Any, Any]]:
    if isinstance(inputs, Mapping):
        return {str(k): _cast(v, signature, str(k)) for k, v in inputs.items()}
    if len(signature.inputs) != 1:
        raise InvalidArgument(
            f"this model takes several inputs {signature.input_names()}: inputs must be an "
            "object {input_name: tensor}",
            details={"field": "inputs", "expected": signature.input_names()},
        )
    name = signature.inputs[0].name
    return {name: _cast(inputs, signature, name)}


def encode_v1(
    results: Mapping[str, np.ndarray[Any, Any]],
    *,
    row_format: bool,
    classes: Mapping[str, Sequence[Any]] | None = None,
) -> bytes:
    """The response body; ``classes`` (output name → labels of its columns) key the rows of
    those outputs by class in the row form."""
    if row_format:
        named = (
            {k: _by_class(results[k], c) for k, c in classes.items() if _fits(results.get(k), c)}
            if classes
            else {}
        )
        if len(results) == 1:
            name, array = next(iter(results.items()))
            return dumps({"predictions": named[name] if name in named else rows(array)})
        lists = {k: named[k] if k in named else _as_list(rows(a)) for k, a in results.items()}
        n = len(next(iter(lists.values())))
        return dumps({"predictions": [{k: v[i] for k, v in lists.items()} for i in range(n)]})
    if len(results) == 1:
        return dumps({"outputs": rows(next(iter(results.values())))})
    return dumps({"outputs": {k: rows(a) for k, a in results.items()}})


def _fits(array: np.ndarray[Any, Any] | None, classes: Sequence[Any]) -> bool:
    """Whether ``array`` has one column per class: a model whose column count is dynamic and
    turns out to differ keeps plain rows rather than failing the request."""
    return array is not None and array.ndim == 2 and array.shape[1] == len(classes)


def _by_class(array: np.ndarray[Any, Any], classes: Sequence[Any]) -> list[dict[str, Any]]:
    keys = [class_key(c) for c in classes]
    return [dict(zip(keys, row, strict=True)) for row in _as_list(rows(array))]


def _as_list(value: Any) -> list[Any]:
    return value.tolist() if isinstance(value, np.ndarray) else list(value)
