"""Datasets and their versions on the wire.

``schema``, ``split`` and ``statistics`` keep the shapes documented in
:mod:`aiaas.entities.datasets` and :mod:`aiaas.datasets.statistics`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from aiaas.schemas._base import Wire, WireIn

__all__ = [
    "Dataset",
    "DatasetColumn",
    "DatasetList",
    "DatasetSampleCreate",
    "DatasetSplit",
    "DatasetText",
    "DatasetVersion",
    "DatasetVersionList",
]


class Dataset(Wire):
    name: str
    description: str
    tags: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    latest_version: int | None = None


class DatasetList(Wire):
    datasets: list[Dataset]


class DatasetColumn(Wire):
    """One column: ``kind`` is numeric, bool, string, text (a named text column of a text
    dataset) or other; only numeric and bool columns can be tabular features."""

    name: str
    dtype: str
    kind: str
    nullable: bool
    null_count: int


class DatasetSplit(Wire):
    """The stored train/validation split; ``indices_digest`` names the int64 ``.npy``
    artifact holding the train row indices, then the validation row indices."""

    seed: int
    validation_fraction: float
    stratified: bool
    train_rows: int
    validation_rows: int
    indices_digest: str


class DatasetText(Wire):
    """What makes a version a text dataset: its text columns and how they were named.

    ``text_column`` (one text per row; ``text`` for a ``.txt`` corpus) or
    ``prompt_column`` + ``response_column`` (chat pairs); ``documents`` says how a ``.txt``
    corpus was cut (``paragraph`` or ``line``).
    """

    columns: list[str]
    text_column: str | None = None
    prompt_column: str | None = None
    response_column: str | None = None
    documents: str | None = None


class DatasetVersion(Wire):
    """One immutable dataset version."""

    # "schema" is a BaseModel attribute, so the field is schema_ with the wire name "schema".
    model_config = ConfigDict(
        from_attributes=True, frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    dataset: str
    version: int
    artifact_digest: str
    format: str
    size_bytes: int
    row_count: int
    schema_: list[DatasetColumn] = Field(alias="schema")
    statistics: dict[str, Any]
    target: str | None
    task: str | None
    split: DatasetSplit
    metadata: dict[str, Any]
    description: str
    created_at: datetime
    text: DatasetText | None = Field(default=None, description="Text columns; null for tabular data.")


class DatasetVersionList(Wire):
    versions: list[DatasetVersion]


class DatasetSampleCreate(WireIn):
    """JSON body of ``POST /datasets/{name}/versions`` for a bundled sample."""

    sample: str = Field(description="iris, wine, breast_cancer, digits or diabetes.")
    validation_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Share of rows in validation, in (0, 1)."
    )
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Seed of the split.")
