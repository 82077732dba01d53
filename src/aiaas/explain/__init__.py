"""Why a model answered what it did: per-prediction attributions and global feature importance.

Two questions, two tools, both model-agnostic over the served ONNX model (so every family the
platform serves is covered the same way, scikit-learn and PyTorch alike):

- :func:`explain_rows` answers "why this prediction": shap's permutation explainer, with a
  background sample of the version's training data standing for "feature unknown". Its
  attributions add up to the prediction minus the base value (the mean prediction over the
  background) for every row, whatever the model.
- :func:`permutation_importance` answers "which features matter overall": scikit-learn's
  permutation importance on the validation split, computed once when a training job registers
  a version.

captum is not used: served models are ONNX graphs, not live PyTorch modules, and shap's
explainers need only a function from rows to outputs, so one code path explains every model.
"""

from aiaas.explain.attributions import (
    DEFAULT_MAX_EVALS,
    MAX_EVALS_LIMIT,
    MAX_EXPLAIN_ROWS,
    Attributions,
    ExplainTask,
    explain_rows,
    min_evals,
)
from aiaas.explain.background import (
    BACKGROUND_ROWS,
    BACKGROUND_SEED,
    decode_background,
    encode_background,
    sample_background,
)
from aiaas.explain.importance import IMPORTANCE_MAX_ROWS, IMPORTANCE_REPEATS, permutation_importance
from aiaas.explain.model_io import explained_input, explained_output

__all__ = [
    "BACKGROUND_ROWS",
    "BACKGROUND_SEED",
    "DEFAULT_MAX_EVALS",
    "IMPORTANCE_MAX_ROWS",
    "IMPORTANCE_REPEATS",
    "MAX_EVALS_LIMIT",
    "MAX_EXPLAIN_ROWS",
    "Attributions",
    "ExplainTask",
    "decode_background",
    "encode_background",
    "explain_rows",
    "explained_input",
    "explained_output",
    "min_evals",
    "permutation_importance",
    "sample_background",
]
