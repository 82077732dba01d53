"""The bundled sample datasets: scikit-learn's small built-in tables, shipped in its wheel.

A sample becomes CSV bytes here and is then registered exactly like an upload, so a
sample version has a data file, a schema, statistics and a split like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiaas.datasets.tabular import table_to_csv
from aiaas.errors import InvalidArgument

__all__ = ["SAMPLES", "TARGET", "Sample", "sample_csv"]

#: The name of the label column of every sample.
TARGET = "target"


@dataclass(frozen=True)
class Sample:
    name: str
    task: str
    description: str
    image_shape: tuple[int, ...] | None = None


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample("iris", "classification", "Iris flowers: 150 rows, 4 measurements, 3 species."),
        Sample(
            "wine", "classification", "Wine recognition: 178 rows, 13 chemical measurements, 3 cultivars."
        ),
        Sample(
            "breast_cancer",
            "classification",
            "Breast cancer Wisconsin (diagnostic): 569 rows, 30 features, malignant or benign.",
        ),
        Sample(
            "digits",
            "classification",
            "Handwritten digits: 1797 images of 8x8 pixels (values 0-16), 10 classes.",
            image_shape=(1, 8, 8),
        ),
        Sample("diabetes", "regression", "Diabetes progression: 442 rows, 10 standardised features."),
    )
}


def sample_csv(name: str) -> tuple[bytes, dict[str, Any]]:
    """The sample as CSV bytes (features, then ``target``) and its version metadata.

    Raises:
        InvalidArgument: ``name`` is not a bundled sample; the message lists them.
    """
    sample = SAMPLES.get(name)
    if sample is None:
        raise InvalidArgument(
            f"sample must be one of {sorted(SAMPLES)}; got {name!r}",
            details={"field": "sample", "value": name, "expected": sorted(SAMPLES)},
        )
    from sklearn import datasets  # imported here: only sample creation pays for it

    bunch = getattr(datasets, f"load_{name}")()
    data: np.ndarray[Any, Any] = np.asarray(bunch.data)
    if name == "digits":
        data = data.astype(np.int64)  # pixel intensities 0..16, stored without ".0"
    features = [_column_name(str(f)) for f in bunch.feature_names]
    columns = {f: data[:, i] for i, f in enumerate(features)}
    target = np.asarray(bunch.target)
    columns[TARGET] = target.astype(np.int64) if sample.task == "classification" else target
    metadata: dict[str, Any] = {"sample": name, "description": sample.description}
    if sample.task == "classification":
        metadata["target_names"] = [str(t) for t in bunch.target_names]
    if sample.image_shape is not None:
        metadata["image_shape"] = list(sample.image_shape)
    return table_to_csv(columns), metadata


def _column_name(name: str) -> str:
    """``sepal length (cm)`` → ``sepal_length_cm``: names that are easy to type in a job spec."""
    return re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower()
