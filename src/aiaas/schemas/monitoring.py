"""Observing served models on the wire: the prediction log, feedback and live performance."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from aiaas.schemas._base import Wire

__all__ = ["Prediction", "PredictionList"]


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

