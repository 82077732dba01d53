"""Datasets: versions of CSV/Parquet/JSONL files, text corpora or bundled samples, with schema,
statistics (the drift reference) and a reproducible train/validation split, loaded back as numpy."""

from __future__ import annotations

from aiaas.datasets.loaded import FEATURE_KINDS, LoadedDataset
from aiaas.datasets.samples import SAMPLES
from aiaas.datasets.service import DEFAULT_MAX_DATASET_BYTES, TEXT_GENERATION, DatasetService, task_hint
from aiaas.datasets.statistics import HISTOGRAM_BINS, QUANTILES, TOKEN_PATTERN, TOP_CATEGORIES
from aiaas.datasets.text import DOCUMENT_MODES, TEXT_KIND, TextOptions
from aiaas.entities.datasets import Dataset, DatasetVersion

__all__ = [
    "DEFAULT_MAX_DATASET_BYTES",
    "DOCUMENT_MODES",
    "FEATURE_KINDS",
    "HISTOGRAM_BINS",
    "QUANTILES",
    "SAMPLES",
    "TEXT_GENERATION",
    "TEXT_KIND",
    "TOKEN_PATTERN",
    "TOP_CATEGORIES",
    "Dataset",
    "DatasetService",
    "DatasetVersion",
    "LoadedDataset",
    "TextOptions",
    "task_hint",
]
