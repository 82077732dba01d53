"""Datasets: versions of CSV/Parquet files or bundled samples, with schema, statistics
(the drift reference) and a reproducible train/validation split, loaded back as numpy."""

from __future__ import annotations

from aiaas.datasets.entities import Dataset, DatasetVersion
from aiaas.datasets.loaded import FEATURE_KINDS, LoadedDataset
from aiaas.datasets.samples import SAMPLES
from aiaas.datasets.service import DEFAULT_MAX_DATASET_BYTES, DatasetService, task_hint
from aiaas.datasets.statistics import HISTOGRAM_BINS, QUANTILES, TOP_CATEGORIES

__all__ = [
    "DEFAULT_MAX_DATASET_BYTES",
    "FEATURE_KINDS",
    "HISTOGRAM_BINS",
    "QUANTILES",
    "SAMPLES",
    "TOP_CATEGORIES",
    "Dataset",
    "DatasetService",
    "DatasetVersion",
    "LoadedDataset",
    "task_hint",
]
