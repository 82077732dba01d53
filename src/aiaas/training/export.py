"""Exporting a trained PyTorch network to an ONNX package with named outputs."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from aiaas.errors import InvalidArgument
from aiaas.formats import ModelPackage, parse_onnx, signature_of
from aiaas.training.networks import Exported, Network

__all__ = ["export_network"]


def export_network(
    network: Network,
    example: np.ndarray[Any, Any],
    *,
    classes: Sequence[Any] | None,
) -> ModelPackage:
    """An ONNX package of ``network`` (moved to CPU, in eval mode) taking raw feature rows.

    ``aiaas.formats.package_model`` names a single output; classifiers here have two
    (``label``, ``probabilities``), so the export is done here with those names. With
    ``classes`` (a classifier: the label of each class index) the ``label`` output answers
    with those labels and the probability columns are named by them.
    """
    classification = classes is not None
    module = Exported(network, classification).cpu().eval()
    example = np.ascontiguousarray(example, dtype=np.float32)
    outputs = ["label", "probabilities"] if classification else ["variable"]
    buffer = io.BytesIO()
    try:
        # The TorchScript exporter, as in aiaas.formats (the dynamo one needs onnxscript); its
        # deprecation notices say nothing a caller can act on.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                (torch.from_numpy(example),),
                buffer,  # type: ignore[arg-type]  # accepts file-like objects at run time
                input_names=["input"],
                output_names=outputs,
                dynamic_axes={"input": {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:
        raise InvalidArgument(f"cannot export the trained network to ONNX: {exc}") from None
    data = buffer.getvalue()
    package = ModelPackage(
        onnx=data, flavor="pytorch", signature=signature_of(parse_onnx(data)), example={"input": example}
    )
    if classes is not None:
        package = package.with_classes(classes, label_from="indices")
    package.check()
    return package
