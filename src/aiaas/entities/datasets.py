"""Plain dataset entities handed out by :class:`~aiaas.datasets.DatasetService`.

They are frozen like the registry's: a dataset version never changes once created, so
what a training job read is what the version still says.

The JSON fields have documented shapes, because they are read again later (the schema by
trainers, the statistics as the drift reference of every model trained on the version):

``schema`` (one entry per column, in file order)::

    [{"name": "sepal_length", "dtype": "float64", "kind": "numeric",
      "nullable": false, "null_count": 0}, ...]

``kind`` is ``"numeric"`` (integers and floats), ``"bool"``, ``"string"``, ``"text"`` (a
string column named as the text of a text dataset) or ``"other"`` (dates, nested types: kept
in the file, never usable as a feature). ``nullable`` is true
when the column has at least one missing value (NaN counts as missing).

``split``::

    {"seed": 0, "validation_fraction": 0.2, "stratified": true,
     "train_rows": 120, "validation_rows": 30, "indices_digest": "<sha256>"}

The indices artifact is one int64 ``.npy`` array (``np.save``, no pickle): the train row
indices, ascending, then the validation row indices, ascending.

``statistics``: see :mod:`aiaas.datasets.statistics`.

``metadata["text"]`` (text datasets only): see :class:`aiaas.datasets.text.TextOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Dataset", "DatasetVersion"]


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    tags: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    latest_version: int | None = None


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version: a stored data file plus what was learnt from it at upload."""

    dataset: str
    version: int
    artifact_digest: str
    format: str
    size_bytes: int
    row_count: int
    schema: list[dict[str, Any]]
    statistics: dict[str, Any]
    target: str | None
    task: str | None
    split: dict[str, Any]
    metadata: dict[str, Any]
    description: str
    created_at: datetime

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.schema]

    @property
    def text(self) -> dict[str, Any] | None:
        """The text options of a text dataset (``columns``, ``text_column`` or
        ``prompt_column``/``response_column``, ``documents``); None for tabular data."""
        text = self.metadata.get("text")
        return dict(text) if isinstance(text, dict) else None

    @property
    def text_columns(self) -> list[str]:
        """The text columns (empty for tabular data)."""
        return list((self.text or {}).get("columns", []))
