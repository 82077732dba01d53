"""Observing served models on the wire: the prediction log, feedback and live performance."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from aiaas.schemas._base import Wire, WireIn

__all__ = [
    "MAX_FEEDBACK_ITEMS",
    "FeedbackBatch",
    "FeedbackItem",
    "FeedbackResult",
    "Performance",
    "Prediction",
    "PredictionList",
    "VersionPerformance",
]

#: The most labels one feedback request may carry.
MAX_FEEDBACK_ITEMS = 10_000


class Prediction(Wire):
    """One logged request: what was sent, what was answered, by which version, how fast."""

    request_id: str = Field(description="The answer's x-request-id: the key for feedback.")
    version: int = Field(description="The model version that answered.")
    time: datetime = Field(description="When the answer was ready (UTC).")
    latency_ms: float = Field(description="From the request's body read to its answer, in ms.")
    inputs: dict[str, Any] = Field(description="Input name → the values sent (nested lists).")
    outputs: dict[str, Any] = Field(description="Output name → the values answered (nested lists).")


class PredictionList(Wire):
    deployment: str
    predictions: list[Prediction] = Field(description="Oldest first.")
    truncated: bool = Field(
        description="More rows match than `limit`: ask again from the last row's time, or download "
        "them all as Parquet (format=parquet)."
    )


Label = str | int | float | bool | list[str | int | float | bool]


class FeedbackItem(WireIn):
    """The ground truth of one answered request."""

    request_id: str = Field(
        min_length=1, max_length=128, description="The answer's x-request-id (or V2 body id)."
    )
    label: Label = Field(
        description="What the answer should have been: a class label or a target value, or a list "
        "of them for a request of several rows (one per row)."
    )


class FeedbackBatch(WireIn):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=MAX_FEEDBACK_ITEMS)


class FeedbackResult(Wire):
    deployment: str
    accepted: int = Field(description="Labels stored (a request labelled before gets the new label).")
    unknown_request_ids: list[str] = Field(
        description="Request ids not in the deployment's prediction log (never answered, not "
        "sampled, past retention, or answered in the last few seconds and not written yet): "
        "their labels were not stored; post them again later if they were just answered."
    )


class VersionPerformance(Wire):
    version: int
    task: str = Field(description="classification or regression, from the version's signature.")
    labelled_rows: int = Field(description="Logged rows with a label, in the window.")
    metrics: dict[str, float | None] = Field(
        description="classification: accuracy, precision, recall, f1 (macro averages over the "
        "classes seen) and roc_auc (one-vs-rest macro, from the logged scores); regression: mae, "
        "rmse, r2. null where undefined (no rows; roc_auc with one class)."
    )
    notes: list[str] = Field(default_factory=list, description="Why some rows or metrics are left out.")


class Performance(Wire):
    deployment: str
    start: datetime | None = Field(description="The window's start (null: the whole log).")
    end: datetime | None = Field(description="The window's end (null: now).")
    versions: list[VersionPerformance] = Field(description="One entry per version with labelled rows.")
