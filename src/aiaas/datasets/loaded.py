"""A dataset version read back into memory: what a trainer works with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiaas.entities.datasets import DatasetVersion
from aiaas.errors import InvalidArgument

__all__ = ["FEATURE_KINDS", "LoadedDataset"]

#: Column kinds that can be features: they convert to float32 without loss of meaning.
FEATURE_KINDS = ("numeric", "bool")


@dataclass(frozen=True)
class LoadedDataset:
    """The columns of one dataset version as numpy arrays, with its schema and split.

    Columns are as :class:`~aiaas.datasets.tabular.Column` describes them: int64 or
    float64 numbers (NaN for missing values), bool, or object arrays of ``str``/``None``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from aiaas.datasets import DatasetService
        >>> from aiaas.store import Database, FileArtifactStore
        >>> home = Path(tempfile.mkdtemp())
        >>> db = Database(f"sqlite:///{home / 'aiaas.db'}")
        >>> db.upgrade()
        >>> service = DatasetService(db, FileArtifactStore(home / "artifacts"))
        >>> _ = service.create_sample_version("iris", "iris")
        >>> data = service.load("iris")
        >>> x, names = data.features()  # every column but the target, float32
        >>> y = data.labels()
        >>> x_train, y_train = x[data.train_indices], y[data.train_indices]
        >>> x.dtype, x.shape, len(x_train) + len(data.validation_indices)
        (dtype('float32'), (150, 4), 150)
        >>> db.dispose()
    """

    version: DatasetVersion
    columns: dict[str, np.ndarray[Any, Any]]
    train_indices: np.ndarray[Any, np.dtype[np.int64]]
    validation_indices: np.ndarray[Any, np.dtype[np.int64]]

    @property
    def name(self) -> str:
        return self.version.dataset

    @property
    def schema(self) -> list[dict[str, Any]]:
        return self.version.schema

    @property
    def target(self) -> str | None:
        """The target column recorded with the version (None when none was given)."""
        return self.version.target

    @property
    def task(self) -> str | None:
        return self.version.task

    @property
    def metadata(self) -> dict[str, Any]:
        return self.version.metadata

    @property
    def row_count(self) -> int:
        return self.version.row_count

    @property
    def column_names(self) -> list[str]:
        return self.version.column_names

    def features(
        self,
        target: str | None = None,
        *,
        columns: Sequence[str] | None = None,
        allow_missing: bool = False,
    ) -> tuple[np.ndarray[Any, np.dtype[np.float32]], list[str]]:
        """The feature matrix ``(rows, features)`` as float32, and the feature names.

        Args:
            target: the label column, left out of the features; default: the version's target.
            columns: the feature columns, in this order; default: every column but the target.
            allow_missing: give missing values as NaN instead of refusing them.

        Raises:
            InvalidArgument: no target known, an unknown column, a feature column that is
                not numeric or bool (named, with its dtype), or one with missing values.
        """
        label = self._target(target)
        names = list(columns) if columns is not None else [n for n in self.column_names if n != label]
        kinds = {c["name"]: c for c in self.schema}
        for name in names:
            self._check_known(name, "columns")
            if name == label:
                raise InvalidArgument(
                    f"column {name!r} is the target; it cannot also be a feature",
                    details={"field": "columns", "column": name},
                )
            if kinds[name]["kind"] not in FEATURE_KINDS:
                raise InvalidArgument(
                    f"feature column {name!r} has dtype {kinds[name]['dtype']}; features must be "
                    f"numeric or bool: drop the column or encode it as numbers",
                    details={"field": "columns", "column": name, "dtype": kinds[name]["dtype"]},
                )
            if not allow_missing and kinds[name]["null_count"]:
                raise InvalidArgument(
                    f"feature column {name!r} has {kinds[name]['null_count']} missing values; "
                    "fill them before training",
                    details={"field": "columns", "column": name, "null_count": kinds[name]["null_count"]},
                )
        if not names:
            raise InvalidArgument(
                f"dataset {self.name!r} has no feature columns besides the target {label!r}",
                details={"field": "columns"},
            )
        matrix = np.empty((self.row_count, len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            values = self.columns[name]
            if values.dtype == object:  # bool with missing values
                values = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
            matrix[:, j] = values
        return matrix, names

    @property
    def text_columns(self) -> list[str]:
        """The text columns of a text dataset, in order (prompt before response); else empty."""
        return self.version.text_columns

    def texts(self, column: str | None = None) -> list[str | None]:
        """The values of a text column, one per row (``None`` where missing).

        Args:
            column: default: the version's only text column (a chat dataset has two: name one).

        Raises:
            InvalidArgument: the version has no text column, or ``column`` is not one of them.
        """
        names = self.text_columns
        if not names:
            raise InvalidArgument(
                f"dataset {self.name!r} version {self.version.version} holds no text column; register "
                "a .txt corpus, or name the text column of a JSONL/CSV/Parquet file (text_column)",
                details={"field": "dataset", "dataset": self.name},
            )
        if column is None:
            if len(names) != 1:
                raise InvalidArgument(
                    f"dataset {self.name!r} has text columns {names}; name one", details={"field": "column"}
                )
            column = names[0]
        if column not in names:
            raise InvalidArgument(
                f"column {column!r} is not a text column of dataset {self.name!r}; they are {names}",
                details={"field": "column", "column": column, "expected": names},
            )
        return [v if isinstance(v, str) else None for v in self.columns[column].tolist()]

    def texts_by_column(self) -> dict[str, list[str | None]]:
        """Every text column's values, by name (empty for tabular data)."""
        return {name: self.texts(name) for name in self.text_columns}

    def labels(self, target: str | None = None) -> np.ndarray[Any, Any]:
        """The target column: int64/float64 numbers, bool, or ``str`` class labels.

        Raises:
            InvalidArgument: no target known, an unknown column, or missing labels.
        """
        label = self._target(target)
        entry = next(c for c in self.schema if c["name"] == label)
        if entry["null_count"]:
            raise InvalidArgument(
                f"target column {label!r} has {entry['null_count']} missing values",
                details={"field": "target", "column": label},
            )
        values = self.columns[label]
        return values.astype(str) if entry["kind"] == "string" else values

    def _target(self, target: str | None) -> str:
        label = target if target is not None else self.version.target
        if label is None:
            raise InvalidArgument(
                f"dataset {self.name!r} version {self.version.version} was registered without a "
                f"target; name the target column (one of {self.column_names})",
                details={"field": "target", "expected": self.column_names},
            )
        self._check_known(label, "target")
        return label

    def _check_known(self, name: str, field: str) -> None:
        if name not in self.columns:
            raise InvalidArgument(
                f"{field}: dataset {self.name!r} has no column {name!r}; its columns are {self.column_names}",
                details={"field": field, "column": name, "expected": self.column_names},
            )
