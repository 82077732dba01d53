"""The candidate against the served version on the same held-out rows.

Both models answer the validation split of one dataset version (the version the candidate was
trained on, or the policy's evaluation dataset), read exactly as a training job reads it
(:meth:`aiaas.training.TrainingService.training_data`). A classifier is scored by accuracy
(its ``label`` output against the true labels), a regressor by R². The candidate is kept when
its score is at least the served version's minus the policy's tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aiaas.registry import ModelVersion, Registry
from aiaas.training.data import TrainingData

__all__ = ["Evaluation", "score_version", "verdict"]

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Evaluation:
    """The figures of one comparison, as a run's history keeps them."""

    metric: str
    served: float
    candidate: float
    tolerance: float
    rows: int
    dataset: str

    @property
    def kept(self) -> bool:
        return self.candidate >= self.served - self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "served": self.served,
            "candidate": self.candidate,
            "tolerance": self.tolerance,
            "rows": self.rows,
            "dataset": self.dataset,
            "kept": self.kept,
        }


def _labels(values: Array) -> list[Any]:
    return [v.decode() if isinstance(v, bytes) else v for v in values.tolist()]


def score_version(registry: Registry, version: ModelVersion, data: TrainingData) -> tuple[str, float]:
    """``version``'s accuracy (classification) or R² (regression) on ``data``'s validation rows."""
    from aiaas.formats import isolated_folder, new_session

    session = new_session(
        registry.load_artifact(version),
        external_data_folder=isolated_folder(),
        intra_op_threads=1,
        log_severity_level=3,
    )
    feed = session.get_inputs()[0]
    x = np.ascontiguousarray(data.x_val, dtype=np.float32)
    if "double" in str(feed.type):
        x = x.astype(np.float64)
    names = [o.name for o in session.get_outputs()]
    if data.task == "classification":
        wanted = "label" if "label" in names else names[0]
        got = _labels(np.asarray(session.run([wanted], {feed.name: x})[0]).reshape(-1))
        classes = data.class_labels()
        truth = [classes[int(i)] for i in data.y_val]
        return "accuracy", float(
            np.mean([a == b or str(a) == str(b) for a, b in zip(got, truth, strict=True)])
        )
    pred = np.asarray(session.run([names[0]], {feed.name: x})[0], dtype=np.float64).reshape(-1)
    y = np.asarray(data.y_val, dtype=np.float64)
    denom = float(np.sum((y - y.mean()) ** 2)) or 1.0
    return "r2", 1.0 - float(np.sum((y - pred) ** 2)) / denom


def verdict(
    registry: Registry,
    served: ModelVersion,
    candidate: ModelVersion,
    data: TrainingData,
    *,
    tolerance: float,
    dataset: str,
) -> Evaluation:
    """Both versions scored on the same rows."""
    metric, candidate_score = score_version(registry, candidate, data)
    _, served_score = score_version(registry, served, data)
    return Evaluation(metric, served_score, candidate_score, tolerance, len(data.y_val), dataset)
