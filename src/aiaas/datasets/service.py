"""Datasets and their immutable, numbered versions.

Creating a version checks everything first (name, options, size, parse, target, feature
types) and computes the schema, statistics and split in memory; only then are the data
file and the split indices written to the content-addressed artifact store, and the
version recorded in one transaction. A failure at any step leaves no version behind; at
worst an unreferenced blob, which is harmless and would be reused by the same upload.

Uploading the same bytes with the same target, text and split options to the same dataset
again returns the version that already holds them instead of making a new one: a retried
upload (a timeout, a re-run script) must not multiply versions, and a version is fully
determined by those inputs. Different options, or another dataset, make a new version that
shares the stored file.

Text datasets (a ``.txt`` corpus, or rows with named text columns) take the same path; see
:mod:`aiaas.datasets.text` for what their options mean.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from aiaas.datasets.loaded import FEATURE_KINDS, LoadedDataset
from aiaas.datasets.samples import TARGET, sample_csv
from aiaas.datasets.split import check_split_options, decode_indices, encode_indices, make_split
from aiaas.datasets.statistics import schema_of, statistics_of
from aiaas.datasets.tabular import DEFAULT_MAX_DATASET_CELLS, Column, Table, detect_format, read_table
from aiaas.datasets.text import (
    TEXT_FORMAT,
    TEXT_KIND,
    TextOptions,
    mark_text_columns,
    read_corpus,
    resolve_text_options,
)
from aiaas.entities.datasets import Dataset, DatasetVersion
from aiaas.entities.projects import DEFAULT_PROJECT
from aiaas.errors import InvalidArgument, PayloadTooLarge
from aiaas.store import ArtifactStore, Database, check_json, check_name, check_text
from aiaas.store.datasets import DatasetStore, VersionKey

__all__ = ["DEFAULT_MAX_DATASET_BYTES", "MAX_CLASSES", "TEXT_GENERATION", "DatasetService", "task_hint"]

DEFAULT_MAX_DATASET_BYTES = 256 * 1024 * 1024

#: An integer target with at most this many distinct values is taken as class labels.
MAX_CLASSES = 20
#: The task of a text dataset without a target: text to learn to generate (the same word as a
#: language model job's ``task``).
TEXT_GENERATION = "text-generation"


class DatasetService:
    """Datasets, backed by the metadata DB and the artifact store.

    A training process opens its own: ``DatasetService(Database(url), open_artifact_store(root))``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from aiaas.store import Database, FileArtifactStore
        >>> home = Path(tempfile.mkdtemp())
        >>> db = Database(f"sqlite:///{home / 'aiaas.db'}")
        >>> db.upgrade()
        >>> datasets = DatasetService(db, FileArtifactStore(home / "artifacts"))
        >>> csv_bytes = b"length,width,species\\n" + b"".join(
        ...     f"{i}.5,{i % 3},{'ab'[i % 2]}\\n".encode() for i in range(10)
        ... )
        >>> v = datasets.create_version("flowers", csv_bytes, filename="flowers.csv", target="species")
        >>> x, names = datasets.load("flowers", v.version).features()
        >>> x.shape, names
        ((10, 2), ['length', 'width'])
        >>> db.dispose()
    """

    def __init__(
        self,
        db: Database,
        artifacts: ArtifactStore,
        *,
        max_bytes: int = DEFAULT_MAX_DATASET_BYTES,
        max_cells: int = DEFAULT_MAX_DATASET_CELLS,
        project: str = DEFAULT_PROJECT,
    ) -> None:
        self.db = db
        self.project = project
        self.store = DatasetStore(db, project=project)
        self.artifacts = artifacts
        self.max_bytes = max_bytes
        self.max_cells = max_cells

    # -- creating versions ---------------------------------------------------------------

    def create_version(
        self,
        name: str,
        data: bytes,
        *,
        filename: str,
        target: str | None = None,
        description: str = "",
        validation_fraction: float = 0.2,
        seed: int = 0,
        metadata: dict[str, Any] | None = None,
        text_column: str | None = None,
        prompt_column: str | None = None,
        response_column: str | None = None,
        documents: str | None = None,
    ) -> DatasetVersion:
        """Register ``data`` (CSV, Parquet, JSONL or a ``.txt`` corpus, told apart by
        ``filename`` and content) as the next version of ``name``, creating the dataset on its
        first version.

        Args:
            target: the label column; when given, every other column must be numeric or bool
                (or one of the text columns).
            validation_fraction: share of rows in the validation split, in (0, 1).
            seed: seed of the split; same file, seed and fraction give the same split.
            metadata: extra JSON stored with the version (``filename`` is added).
            text_column: the column holding text (a ``.txt`` corpus is always column ``text``).
            prompt_column: with ``response_column``, the columns of chat pairs.
            response_column: the answer to each prompt.
            documents: how a ``.txt`` corpus is cut: ``paragraph`` (default) or ``line``.

        Returns:
            the new version, or the existing one holding the same file, target, text and split
            options (see the module docstring).

        Raises:
            InvalidArgument: a bad name or option, or bad data; the message names the field
                or column and what was expected. ``PayloadTooLarge`` over ``max_bytes``.
        """
        check_name(name)
        if len(data) > self.max_bytes:
            raise PayloadTooLarge(
                f"file is {len(data)} bytes, over the dataset limit of {self.max_bytes} bytes "
                "(AIAAS_MAX_DATASET_BYTES)",
                details={"field": "file", "limit": self.max_bytes, "size": len(data)},
            )
        return self._create(
            name,
            data,
            filename=filename,
            target=target,
            description=description,
            validation_fraction=validation_fraction,
            seed=seed,
            metadata=metadata,
            text=resolve_text_options(
                detect_format(filename, data),
                text_column=text_column,
                prompt_column=prompt_column,
                response_column=response_column,
                documents=documents,
            ),
        )

    def create_sample_version(
        self, name: str, sample: str, *, validation_fraction: float = 0.2, seed: int = 0
    ) -> DatasetVersion:
        """Register one of scikit-learn's bundled datasets (see ``SAMPLES``) as a version of
        ``name``, with target column ``target``, through the same path as an upload (the
        size limit, which guards uploads, does not apply to the bundled files).

        Raises:
            InvalidArgument: an unknown sample (the message lists them) or a bad option.
        """
        check_name(name)
        check_split_options(validation_fraction, seed)
        data, metadata = sample_csv(sample)
        return self._create(
            name,
            data,
            filename=f"{sample}.csv",
            target=TARGET,
            description=str(metadata["description"]),
            validation_fraction=validation_fraction,
            seed=seed,
            metadata=metadata,
            text=None,
        )

    def _create(
        self,
        name: str,
        data: bytes,
        *,
        filename: str,
        target: str | None,
        description: str,
        validation_fraction: float,
        seed: int,
        metadata: dict[str, Any] | None,
        text: TextOptions | None,
    ) -> DatasetVersion:
        check_name(name)
        check_split_options(validation_fraction, seed)
        check_text(description, "description")
        check_json(metadata, "metadata")
        digest = hashlib.sha256(data).hexdigest()
        text_json = text.to_json() if text is not None else None
        # A retried upload skips the parse: the same inputs were valid and recorded before.
        key = VersionKey(digest, target, validation_fraction, seed, text_json)
        existing = self.store.identical_version(name, key)
        if existing is not None:
            return existing
        fmt = detect_format(filename, data)
        table = _read(data, fmt, text, max_cells=self.max_cells)
        if text is not None:
            table = mark_text_columns(table, text, target)
        task = _check_target(table, target) if target is not None else None
        if text is not None and target is None:
            task = TEXT_GENERATION
        labels = table.column(target).values if target is not None and task == "classification" else None
        split = make_split(table.row_count, validation_fraction, seed, labels)
        schema, statistics = schema_of(table), statistics_of(table)
        meta = {"filename": filename} | dict(metadata or {})
        if text_json is not None:
            meta["text"] = text_json

        # Artifacts first: a crash before the transaction leaves blobs nobody references.
        self.artifacts.put(data)
        indices_digest = self.artifacts.put(encode_indices(split))
        split_json = {
            "seed": seed,
            "validation_fraction": float(validation_fraction),
            "stratified": split.stratified,
            "train_rows": len(split.train),
            "validation_rows": len(split.validation),
            "indices_digest": indices_digest,
        }
        return self.store.add_version(
            name,
            key,
            description=description,
            format=fmt,
            size_bytes=len(data),
            row_count=table.row_count,
            schema=schema,
            statistics=statistics,
            task=task,
            split=split_json,
            metadata=meta,
        )

    # -- reading -------------------------------------------------------------------------

    def list_datasets(self) -> list[Dataset]:
        return self.store.list_datasets()

    def get_dataset(self, name: str) -> Dataset:
        return self.store.get_dataset(name)

    def list_versions(self, name: str) -> list[DatasetVersion]:
        return self.store.list_versions(name)

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """Version ``version`` of ``name``; ``None`` is the latest.

        Raises:
            NotFound: no such dataset, or no such version (the message lists the versions).
        """
        return self.store.get_version(name, version)

    def load_data(self, version: DatasetVersion) -> bytes:
        """The version's data file as uploaded, verified against its SHA-256."""
        return self.artifacts.get(version.artifact_digest)

    def load(self, name: str, version: int | None = None) -> LoadedDataset:
        """Read a version back: its columns as numpy arrays and its stored split.

        Works in any process that opens the same database and artifact store.
        """
        entry = self.get_version(name, version)
        text = TextOptions.from_json(entry.metadata.get("text"))
        table = _read(self.load_data(entry), entry.format, text, max_cells=None)  # accepted already
        split = entry.split
        train, validation = decode_indices(
            self.artifacts.get(split["indices_digest"]), split["train_rows"], split["validation_rows"]
        )
        return LoadedDataset(
            version=entry,
            columns={c.name: c.values for c in table.columns},
            train_indices=train,
            validation_indices=validation,
        )


def _read(data: bytes, fmt: str, text: TextOptions | None, *, max_cells: int | None) -> Table:
    """The file as a table: a ``.txt`` corpus cut into documents (at most one per byte, so
    bounded by the upload's size limit), any other format parsed within ``max_cells``."""
    if fmt == TEXT_FORMAT:
        return read_corpus(data, text.documents if text is not None and text.documents else "paragraph")
    return read_table(data, fmt, max_cells=max_cells)


def task_hint(column: Column) -> str:
    """``classification`` for string or bool labels and for integers with few distinct values
    (at most :data:`MAX_CLASSES`), else ``regression``. Jobs may still choose either."""
    if column.kind in ("string", "bool"):
        return "classification"
    if column.dtype.startswith(("int", "uint")) and len(np.unique(column.values)) <= MAX_CLASSES:
        return "classification"
    return "regression"


def _check_target(table: Table, target: str) -> str:
    if target not in table.names:
        raise InvalidArgument(
            f"target column {target!r} is not in the file; its columns are {table.names}",
            details={"field": "target", "value": target, "expected": table.names},
        )
    column = table.column(target)
    if column.kind == "other":
        raise InvalidArgument(
            f"target column {target!r} has dtype {column.dtype}; a target must be numeric, bool or string",
            details={"field": "target", "column": target, "dtype": column.dtype},
        )
    if column.null_count:
        raise InvalidArgument(
            f"target column {target!r} has {column.null_count} missing values; every row needs a label",
            details={"field": "target", "column": target, "null_count": column.null_count},
        )
    bad = [c for c in table.columns if c.name != target and c.kind not in (*FEATURE_KINDS, TEXT_KIND)]
    if bad:
        described = ", ".join(f"{c.name!r} ({c.dtype})" for c in bad)
        text_hint = "" if any(c.kind == TEXT_KIND for c in table.columns) else ", name a text column"
        raise InvalidArgument(
            f"feature columns must be numeric or bool; not so: {described}. Drop or encode them"
            f"{text_hint}, or upload without a target",
            details={"field": "file", "columns": [c.name for c in bad], "dtypes": [c.dtype for c in bad]},
        )
    return task_hint(column)
