"""Which input and output of a model an explanation is about.

One definition for the explain endpoints and for feature importance at training time: a model
is explained through its one (rows, features) numeric input, and through its classifier score
output (per class) or else its first floating-point output (a regressor's value).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aiaas.errors import Conflict
from aiaas.formats import Signature, numpy_dtype

__all__ = ["explained_input", "explained_output"]


def explained_input(signature: Signature) -> tuple[str, np.dtype[Any], int]:
    """The one (rows, features) numeric input an explanation needs: name, dtype, features.

    Raises:
        Conflict: the model takes several inputs, or one that is not a numeric matrix.
    """
    if len(signature.inputs) != 1 or len(signature.inputs[0].shape) != 2:
        shapes = {t.name: list(t.shape) for t in signature.inputs}
        raise Conflict(
            f"explanations need a model with one (rows, features) input; this one takes {shapes}",
            details={"field": "inputs", "expected": "one input of shape [-1, features]"},
        )
    spec = signature.inputs[0]
    dtype = numpy_dtype(spec.datatype)
    if dtype.kind not in "fiub":
        raise Conflict(
            f"explanations need a numeric input; {spec.name!r} is {spec.datatype}",
            details={"field": "inputs", "expected": "a numeric datatype"},
        )
    return spec.name, dtype, int(spec.shape[1])


def explained_output(signature: Signature) -> tuple[str, tuple[Any, ...], bool]:
    """The output explained, the labels of its columns, and whether they are classes.

    A classifier's score output (the one with class labels) is explained per class; otherwise
    the first floating-point output (a regressor's value).
    """
    for spec in signature.outputs:
        if spec.classes is not None:
            return spec.name, tuple(spec.classes), True
    for spec in signature.outputs:
        if spec.datatype in ("FP16", "FP32", "FP64"):
            return spec.name, (spec.name,), False
    raise Conflict(
        f"explanations need a numeric output to explain; this model's outputs are {signature.output_names()}",
        details={"field": "outputs"},
    )
