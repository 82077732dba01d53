"""The answer of the inference server's explain endpoints, as the SDK reads it.

The server writes it with orjson (see :mod:`aiaas.serving.explanations`, whose OpenAPI schema
says the same); this model is the SDK's typed view of it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from aiaas.schemas._base import Wire

__all__ = ["Explanation", "RowExplanation"]


class RowExplanation(Wire):
    """One explained row: ``sum(attributions[k]) == prediction[k] - base_value[k]`` for each
    output column ``k``."""

    prediction: list[float] = Field(description="The model's output columns for this row.")
    base_value: list[float] = Field(description="The mean output over the background sample.")
    attributions: list[list[float]] = Field(
        description="One list per output column (class), one value per feature."
    )
    predicted_class: Any = Field(default=None, description="A classifier's label for this row.")


class Explanation(Wire):
    """Feature attributions of some rows, from one version of a deployment's model."""

    model_name: str
    model_version: str
    id: str | None = None
    explainer: str = Field(description="The shap explainer used: permutation.")
    max_evals: int = Field(description="Model evaluations per row.")
    background_rows: int = Field(description="Rows of the background sample.")
    output: str = Field(description="The model output explained.")
    output_columns: list[Any] = Field(description="Class labels, or the output's name.")
    feature_names: list[str]
    explanations: list[RowExplanation]
    compute_ms: float | None = None
    latency_ms: float | None = None

    def top_features(self, row: int = 0, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` features with the largest attribution magnitude for ``row``'s predicted
        class (a regressor's only column), largest first."""
        explained = self.explanations[row]
        column = 0
        if explained.predicted_class is not None and explained.predicted_class in self.output_columns:
            column = self.output_columns.index(explained.predicted_class)
        values = explained.attributions[column]
        ranked = sorted(zip(self.feature_names, values, strict=True), key=lambda p: -abs(p[1]))
        return ranked[:k]
