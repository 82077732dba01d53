"""The prediction log's storage: Parquet segments, one folder per deployment and UTC day.

Layout under the log folder (``AIAAS_PREDICTION_LOG_DIR``, default ``<home>/predictions``)::

    <deployment>/<YYYY-MM-DD>/<first row's time in µs>-<random>.parquet

One segment holds the rows of one deployment written at one flush (every couple of seconds),
so a segment is never appended to or rewritten: a writer makes it under a temporary name and
renames it into place, and a reader sees whole segments or none. Day folders make retention
a folder deletion and let a time-range query skip whole days without opening a file.

Each row is one request: ``request_id``, ``version``, ``time`` (UTC, µs), ``latency_ms``, and
the request's ``inputs`` and ``outputs`` as JSON objects (tensor name → nested lists), which
is what a client sent and got back whatever the model's signature; with the deployment's
``outlier_scores`` on, ``outlier_score`` (the Isolation Forest's anomaly score in (0, 1]) and
``outlier`` (its verdict), null otherwise and in segments written before they existed (a
reader fills a missing column with nulls). Parquet with zstd keeps
a row of a 30-feature tabular request near 150 bytes.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "LoggedRequest",
    "prune_segments",
    "read_predictions",
    "schema",
    "write_segment",
]

_DAY = "%Y-%m-%d"


@functools.cache
def schema() -> pa.Schema:
    """The columns of every segment.

    pyarrow is imported here and in the functions that read and write, never at module
    level: the inference server imports this module (for pruning) and keeps pyarrow out of
    its process; segments are written by a child process (:mod:`.segment_writer` says why).
    """
    import pyarrow as pa

    return pa.schema(
        [
            ("request_id", pa.string()),
            ("version", pa.int32()),
            ("time", pa.timestamp("us", tz="UTC")),
            ("latency_ms", pa.float64()),
            ("inputs", pa.string()),
            ("outputs", pa.string()),
            ("outlier_score", pa.float64()),
            ("outlier", pa.bool_()),
        ]
    )


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the log keeps it; ``inputs`` and ``outputs`` are JSON text; the outlier
    score and flag are None when not scored."""

    request_id: str
    version: int
    time_us: int
    latency_ms: float
    inputs: str
    outputs: str
    outlier_score: float | None = None
    outlier: bool | None = None


def write_segment(root: Path, deployment: str, rows: Sequence[LoggedRequest]) -> Path:
    """Write ``rows`` (one deployment's, in time order) as one new segment; return its path.

    Rows that straddle midnight go to the first row's day: a query widens its day range by
    one to find them (see :func:`read_predictions`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    first_us = rows[0].time_us
    day = dt.datetime.fromtimestamp(first_us / 1e6, dt.UTC).strftime(_DAY)
    folder = _folder(root, deployment) / day
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "request_id": [r.request_id for r in rows],
            "version": [r.version for r in rows],
            "time": pa.array([r.time_us for r in rows], pa.timestamp("us", tz="UTC")),
            "latency_ms": [r.latency_ms for r in rows],
            "inputs": [r.inputs for r in rows],
            "outputs": [r.outputs for r in rows],
            "outlier_score": pa.array([r.outlier_score for r in rows], pa.float64()),
            "outlier": pa.array([r.outlier for r in rows], pa.bool_()),
        },
        schema=schema(),
    )
    name = f"{first_us}-{os.urandom(4).hex()}.parquet"
    temporary = folder / f".{name}.tmp"
    pq.write_table(table, temporary, compression="zstd")
    os.replace(temporary, folder / name)
    return folder / name


def read_predictions(
    root: Path,
    deployment: str,
    *,
    version: int | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    request_ids: Iterable[str] | None = None,
) -> pa.Table:
    """The logged rows of ``deployment`` with ``start <= time < end``, in time order.

    Args:
        root: the log folder.
        deployment: whose rows.
        version: only this model version's rows, when given.
        start: inclusive lower bound (aware datetime), when given.
        end: exclusive upper bound (aware datetime), when given.
        request_ids: only these requests' rows, when given.

    Returns:
        A table with the columns of :func:`schema` (empty when nothing matches).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = [
        pq.read_table(path, schema=schema()) for path in _segments(_folder(root, deployment), start, end)
    ]
    if not tables:
        return schema().empty_table()
    table = pa.concat_tables(tables)
    mask: Any = None
    for condition in _conditions(table, version, start, end, request_ids):
        mask = condition if mask is None else pc.and_(mask, condition)
    if mask is not None:
        table = table.filter(mask)
    return table.sort_by("time")


def prune_segments(root: Path, retention: dt.timedelta, now: dt.datetime) -> int:
    """Delete every day folder whose whole day ended more than ``retention`` before ``now``.

    Returns:
        How many day folders were deleted.
    """
    cutoff = (now - retention).date()
    deleted = 0
    if not root.is_dir():
        return 0
    for deployment in root.iterdir():
        for folder in _day_folders(deployment):
            if _day_of(folder) < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                deleted += 1
    return deleted


def _folder(root: Path, deployment: str) -> Path:
    """The folder of a deployment's segments: one level under ``root`` for every deployment, a
    qualified name's ``project/name`` spelled ``project@name`` (``@`` is in no name)."""
    return root / deployment.replace("/", "@")


def _conditions(
    table: pa.Table,
    version: int | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    request_ids: Iterable[str] | None,
) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    times = table.column("time")
    if version is not None:
        yield pc.equal(table.column("version"), pa.scalar(version, pa.int32()))
    if start is not None:
        yield pc.greater_equal(times, pa.scalar(start, times.type))
    if end is not None:
        yield pc.less(times, pa.scalar(end, times.type))
    if request_ids is not None:
        yield pc.is_in(table.column("request_id"), value_set=pa.array(list(request_ids), pa.string()))


def _segments(folder: Path, start: dt.datetime | None, end: dt.datetime | None) -> list[Path]:
    """The segments in the day folders that may hold rows in [start, end), oldest first. A
    segment is filed under its first row's day, so the day before ``start`` is read too."""
    low = (start - dt.timedelta(days=1)).date() if start is not None else None
    high = end.date() if end is not None else None
    paths: list[Path] = []
    for day in _day_folders(folder):
        when = _day_of(day)
        if (low is None or when >= low) and (high is None or when <= high):
            paths += sorted(p for p in day.iterdir() if p.suffix == ".parquet" and not p.name.startswith("."))
    return paths


def _day_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    days = []
    for child in folder.iterdir():
        try:
            _day_of(child)
        except ValueError:
            continue  # not one of ours
        days.append(child)
    return sorted(days)


def _day_of(folder: Path) -> dt.date:
    return dt.datetime.strptime(folder.name, _DAY).date()
