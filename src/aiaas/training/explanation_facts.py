"""What a trained version stores for explaining it: a background sample and feature importance.

Called once by the orchestrator when it registers a tabular model (see
:meth:`aiaas.training.TrainingService`), on the exported ONNX model itself, so the importance
describes exactly the model that is served. Kept apart from the trainers: they never see the
registry or the artifact store.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aiaas.explain import (
    BACKGROUND_ROWS,
    BACKGROUND_SEED,
    encode_background,
    explained_input,
    explained_output,
    permutation_importance,
    sample_background,
)
from aiaas.formats import ModelPackage, OnnxModel
from aiaas.store import ArtifactStore
from aiaas.training.data import TrainingData

__all__ = ["IMPORTANCE_MAX_FEATURES", "explanation_facts"]

#: Models with more features than this (flattened images) get no permutation importance: it
#: costs one shuffled validation pass per feature and repeat, and single pixels mean little.
IMPORTANCE_MAX_FEATURES = 256

Array = np.ndarray[Any, Any]


def explanation_facts(package: ModelPackage, data: TrainingData, artifacts: ArtifactStore) -> dict[str, Any]:
    """The lineage entries ``background`` and ``feature_importance`` of a trained version.

    ``background``: ``{"digest", "rows", "seed"}`` of a seeded sample of training rows (a
    ``.npy`` artifact). ``feature_importance``: permutation importance on the validation split
    (:func:`aiaas.explain.permutation_importance`), or ``{"skipped": reason}``.
    """
    background = sample_background(data.x_train, BACKGROUND_ROWS, BACKGROUND_SEED)
    facts: dict[str, Any] = {
        "background": {
            "digest": artifacts.put(encode_background(background)),
            "rows": int(background.shape[0]),
            "seed": BACKGROUND_SEED,
        }
    }
    if data.n_features > IMPORTANCE_MAX_FEATURES:
        limit = f"IMPORTANCE_MAX_FEATURES={IMPORTANCE_MAX_FEATURES}"
        facts["feature_importance"] = {"skipped": f"{data.n_features} features, more than {limit}"}
        return facts
    model = OnnxModel(package.onnx)
    input_name, dtype, _ = explained_input(package.signature)
    output_name, _, classes = explained_output(package.signature)

    def predict(x: Array) -> Array:
        out = model.run({input_name: np.asarray(x, dtype=dtype)}, [output_name])[output_name]
        out = np.asarray(out).reshape(len(x), -1)
        return out.argmax(axis=1) if classes else out[:, 0]

    facts["feature_importance"] = permutation_importance(
        predict, data.x_val, data.y_val, task=data.task, feature_names=data.feature_names
    )
    return facts
