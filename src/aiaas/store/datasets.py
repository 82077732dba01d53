"""The datasets' repository: datasets and their numbered versions in the metadata database.

Every method is one transaction and returns plain entities (:mod:`aiaas.entities.datasets`);
the rows never leave this module. Parsing, statistics and the split are the dataset
service's; what is decided here is what needs the transaction: the next version number,
and whether an identical version (same file, target, split and text options) exists, so a
retried upload answers with the version it made before instead of a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiaas.entities.datasets import Dataset, DatasetVersion
from aiaas.entities.projects import DEFAULT_PROJECT
from aiaas.errors import Conflict, NotFound
from aiaas.store.database import Database
from aiaas.store.limits import readable_json, readable_text
from aiaas.store.quotas import check_quota
from aiaas.store.tables import DatasetRow, DatasetVersionRow, utcnow

__all__ = ["MAX_CREATE_RETRIES", "DatasetStore", "VersionKey"]

#: Transactions one upload tries before answering 409: each retry follows a concurrent
#: upload taking the number (or creating the dataset) first.
MAX_CREATE_RETRIES = 5


@dataclass(frozen=True)
class VersionKey:
    """What makes two uploads the same version: the file's digest, target, split and text options."""

    digest: str
    target: str | None
    fraction: float
    seed: int
    text: dict[str, Any] | None


class DatasetStore:
    """Datasets and their versions of one project, read and written through one :class:`Database`.

    Another project's datasets are not found, exactly as if they did not exist.
    """

    def __init__(self, db: Database, *, project: str = DEFAULT_PROJECT) -> None:
        self.db = db
        self.project = project

    def identical_version(self, name: str, key: VersionKey) -> DatasetVersion | None:
        """The version of ``name`` made from the same upload, if there is one."""
        with self.db.transaction() as s:
            dataset_id = s.scalar(
                select(DatasetRow.id).where(DatasetRow.project == self.project, DatasetRow.name == name)
            )
            if dataset_id is None:
                return None
            row = _identical_row(s, dataset_id, key)
            return None if row is None else _version(row, name)

    def add_version(
        self,
        name: str,
        key: VersionKey,
        *,
        description: str,
        format: str,
        size_bytes: int,
        row_count: int,
        schema: list[Any],
        statistics: dict[str, Any],
        task: str | None,
        split: dict[str, Any],
        metadata: dict[str, Any],
    ) -> DatasetVersion:
        """Record the next version of ``name`` (creating the dataset), or the identical one.

        Raises:
            Conflict: no number could be allocated in :data:`MAX_CREATE_RETRIES` tries.
        """
        for _ in range(MAX_CREATE_RETRIES):
            try:
                with self.db.transaction() as s:
                    dataset = s.scalar(
                        select(DatasetRow).where(DatasetRow.project == self.project, DatasetRow.name == name)
                    )
                    if dataset is None:
                        dataset = DatasetRow(
                            project=self.project, name=name, description=description, tags={}
                        )
                        s.add(dataset)
                        s.flush()
                    # Writing the dataset row first takes its lock, so concurrent uploads
                    # to one dataset number their versions one after another.
                    dataset.updated_at = utcnow()
                    s.flush()
                    same = _identical_row(s, dataset.id, key)
                    if same is not None:
                        return _version(same, name)
                    last = s.scalar(
                        select(func.max(DatasetVersionRow.version)).where(
                            DatasetVersionRow.dataset_id == dataset.id
                        )
                    )
                    row = DatasetVersionRow(
                        dataset_id=dataset.id,
                        version=(last or 0) + 1,
                        artifact_digest=key.digest,
                        format=format,
                        size_bytes=size_bytes,
                        row_count=row_count,
                        schema=schema,
                        statistics=statistics,
                        target=key.target,
                        task=task,
                        split=split,
                        meta=metadata,
                        description=description,
                    )
                    s.add(row)
                    s.flush()
                    check_quota(s, dataset.project, {"max_bytes": size_bytes})
                    return _version(row, name)
            except IntegrityError:
                continue  # another upload took this number (or created the dataset): retry
        raise Conflict(f"could not allocate a version number for dataset {name!r}; try again")

    def list_datasets(self) -> list[Dataset]:
        with self.db.transaction() as s:
            rows = s.scalars(
                select(DatasetRow).where(DatasetRow.project == self.project).order_by(DatasetRow.name)
            ).all()
            return [_dataset(r) for r in rows]

    def get_dataset(self, name: str) -> Dataset:
        with self.db.transaction() as s:
            return _dataset(_dataset_row(s, name, self.project))

    def list_versions(self, name: str) -> list[DatasetVersion]:
        with self.db.transaction() as s:
            return [_version(v, name) for v in _dataset_row(s, name, self.project).versions]

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """Version ``version`` of ``name``; ``None`` is the latest.

        Raises:
            NotFound: no such dataset, or no such version (the message lists the versions).
        """
        with self.db.transaction() as s:
            dataset = _dataset_row(s, name, self.project)
            if not dataset.versions:
                raise NotFound(f"dataset {name!r} has no versions", details={"dataset": name})
            if version is None:
                return _version(dataset.versions[-1], name)
            for row in dataset.versions:
                if row.version == version:
                    return _version(row, name)
            known = [v.version for v in dataset.versions]
            raise NotFound(
                f"dataset {name!r} has no version {version}; its versions are {known}",
                details={"dataset": name, "version": version, "versions": known},
            )


def _identical_row(s: Session, dataset_id: int, key: VersionKey) -> DatasetVersionRow | None:
    rows = s.scalars(
        select(DatasetVersionRow).where(
            DatasetVersionRow.dataset_id == dataset_id, DatasetVersionRow.artifact_digest == key.digest
        )
    ).all()
    for row in rows:
        if (
            row.target == key.target
            and row.split.get("seed") == key.seed
            and row.split.get("validation_fraction") == float(key.fraction)
            and (row.meta or {}).get("text") == key.text
        ):
            return row
    return None


def _dataset_row(s: Session, name: str, project: str) -> DatasetRow:
    row = s.scalar(select(DatasetRow).where(DatasetRow.project == project, DatasetRow.name == name))
    if row is None:
        raise NotFound(f"dataset {name!r} not found", details={"dataset": name})
    return row


def _dataset(row: DatasetRow) -> Dataset:
    return Dataset(
        name=row.name,
        description=readable_text(row.description),
        tags=readable_json(dict(row.tags or {})),
        created_at=row.created_at,
        updated_at=row.updated_at,
        latest_version=row.versions[-1].version if row.versions else None,
    )


def _version(row: DatasetVersionRow, name: str) -> DatasetVersion:
    return DatasetVersion(
        dataset=name,
        version=row.version,
        artifact_digest=row.artifact_digest,
        format=row.format,
        size_bytes=row.size_bytes,
        row_count=row.row_count,
        schema=list(row.schema),
        statistics=dict(row.statistics),
        target=row.target,
        task=row.task,
        split=dict(row.split),
        metadata=readable_json(dict(row.meta or {})),
        description=readable_text(row.description),
        created_at=row.created_at,
    )
