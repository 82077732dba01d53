"""Per-row attributions with shap's permutation explainer over an ONNX model.

:func:`explain_rows` is what an explanation worker process runs (see
:mod:`aiaas.serving.explainers`): everything it needs travels in one picklable
:class:`ExplainTask`, and the ONNX Runtime session it builds is kept per artifact digest, so
only the first explanation of a version pays for loading it.

Why the permutation explainer: it is model-agnostic (a function from rows to outputs is all it
needs, so it covers every ONNX model the platform serves), and it guarantees local accuracy:
for every row, the attributions of each output add up to that output's prediction minus its
base value (the mean prediction over the background sample). Its cost is explicit:
``max_evals`` masked evaluations per row, each over every background row.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiaas.formats import OnnxModel

__all__ = [
    "DEFAULT_MAX_EVALS",
    "MAX_EVALS_LIMIT",
    "MAX_EXPLAIN_ROWS",
    "Attributions",
    "ExplainTask",
    "explain_rows",
    "min_evals",
]

#: The most rows one explanation request may carry (each row costs ``max_evals`` x background
#: rows model evaluations); more is refused with 400 naming this limit.
MAX_EXPLAIN_ROWS = 64
#: Model evaluations per explained row when the request does not say (raised to
#: :func:`min_evals` for models with many features).
DEFAULT_MAX_EVALS = 500
#: The most model evaluations per row a request may ask for.
MAX_EVALS_LIMIT = 10_000
#: ONNX Runtime sessions an explanation worker keeps loaded (least recently used dropped).
_SESSIONS_KEPT = 4

Array = np.ndarray[Any, Any]


def min_evals(n_features: int) -> int:
    """The fewest evaluations the permutation explainer accepts: one permutation forward and
    back (``2 * features + 1``)."""
    return 2 * n_features + 1


@dataclass(frozen=True)
class ExplainTask:
    """One explanation request, as the worker process receives it.

    Attributes:
        model_digest: the artifact's SHA-256, the key of the worker's session cache.
        model: the ONNX bytes (loaded only when the digest is not cached yet).
        input_name: the model's one input, a (rows, features) tensor.
        output_name: the output explained: a classifier's score output (one column per class)
            or a regressor's value output.
        background: the background sample, float32 (n, features).
        rows: the rows to explain, in the input's dtype (m, features).
        max_evals: model evaluations per row (at least :func:`min_evals`).
        seed: seeds the permutations, so the same request gives the same answer.
    """

    model_digest: str
    model: bytes
    input_name: str
    output_name: str
    background: Array
    rows: Array
    max_evals: int
    seed: int = 0


@dataclass(frozen=True)
class Attributions:
    """The answer: ``values[r, f, k]`` is feature ``f``'s share of output column ``k`` for row
    ``r``, and ``values[r, :, k].sum() == predictions[r, k] - base_values[r, k]``."""

    values: Array  # (rows, features, outputs)
    base_values: Array  # (rows, outputs)
    predictions: Array  # (rows, outputs)
    compute_s: float


_sessions: OrderedDict[str, OnnxModel] = OrderedDict()


def _session(task: ExplainTask) -> OnnxModel:
    model = _sessions.pop(task.model_digest, None)
    if model is None:
        model = OnnxModel(task.model)
    _sessions[task.model_digest] = model
    while len(_sessions) > _SESSIONS_KEPT:
        _sessions.popitem(last=False)
    return model


def explain_rows(task: ExplainTask) -> Attributions:
    """Attributions of ``task.rows`` (runs in an explanation worker process).

    Raises:
        InvalidArgument: the model rejected the rows (from :meth:`OnnxModel.run`).
    """
    import shap  # imported here: only explanation workers pay for it

    started = time.perf_counter()
    model = _session(task)
    dtype = task.rows.dtype

    def predict(x: Array) -> Array:
        out = model.run({task.input_name: np.asarray(x, dtype=dtype)}, [task.output_name])[task.output_name]
        return np.asarray(out, dtype=np.float64).reshape(len(x), -1)

    background = np.asarray(task.background, dtype=dtype)
    masker = shap.maskers.Independent(background, max_samples=len(background))
    np.random.seed(task.seed)  # the explainer draws its permutations from numpy's global generator
    explainer = shap.PermutationExplainer(predict, masker, seed=task.seed)
    explanation = explainer(task.rows, max_evals=task.max_evals, silent=True)
    predictions = predict(task.rows)
    n, features, outputs = len(task.rows), task.rows.shape[1], predictions.shape[1]
    values = np.asarray(explanation.values, dtype=np.float64).reshape(n, features, outputs)
    base = np.asarray(explanation.base_values, dtype=np.float64).reshape(n, outputs)
    return Attributions(values, base, predictions, time.perf_counter() - started)
