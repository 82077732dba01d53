"""What a finished training run hands back to the orchestrator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiaas.formats import FolderPackage, ModelPackage

__all__ = ["TrainingResult"]


@dataclass
class TrainingResult:
    """A trained model, ready to register.

    Attributes:
        package: the ONNX package. Classifiers output ``label`` (the class label of the
            training data, in its own datatype: text, integer, fraction or boolean) and
            ``probabilities`` (n, classes, in class-index order, the classes recorded in
            the signature); regressors output ``variable`` (n, 1), like scikit-learn packages.
            A language model is a Hugging Face folder package (``hf-causal-lm``: config,
            safetensors weights, tokenizer), saved by rank 0 only: it is None on the other
            ranks of a data-parallel run.
        metrics: evaluation of the returned model on the validation split.
        params: effective hyper-parameters and facts of the run (``family``, ``task``,
            ``epochs_run``, ``best_epoch``, ``classes``, ...), for lineage.
        history: one dict of metrics per epoch, as reported.
        state: final state bytes, the ``warm_start`` input of a later run.
    """

    package: ModelPackage | FolderPackage | None
    metrics: dict[str, float]
    params: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    state: bytes = b""
