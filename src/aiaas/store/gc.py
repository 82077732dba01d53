"""Garbage collection of the artifact store: blobs no stored record refers to any more.

Deleting a model version (or a model) removes its row, never its blob: another version, a
dataset or a training job may hold the same bytes, and the artifact store cannot know.
Collection answers that question the only safe way, from the database itself:

1. Every value of every text and JSON column of every table is read, and every string that
   is a SHA-256 hex digest (bare, or as ``sha256:<digest>``) counts as a reference. Reading
   all columns rather than a list of "digest columns" means a blob referenced from a place
   nobody thought of (a version's ``lineage.state_digest``, a dataset split's
   ``indices_digest``, a job's ``checkpoint_digest``, or a column added later) is kept.
2. A blob is deleted only when it is unreferenced *and* was last written (or last stored
   again by :meth:`~aiaas.store.ArtifactStore.put`) more than ``grace_s`` ago. Everything
   that writes a blob commits the row referencing it right after (a registration, a
   dataset upload, a training checkpoint, a trained model's state), so the grace period
   protects work in flight; it must be longer than the longest such gap.

The store deletes under a lock that ``put`` also takes (see :mod:`.artifacts`), so a blob
stored again while collection runs is either renewed before it is judged, or deleted and
then written anew.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, String, Text, select

from aiaas.store.artifacts import ArtifactStore, Blob
from aiaas.store.database import Database
from aiaas.store.tables import Base

__all__ = ["DEFAULT_GC_GRACE_S", "GarbageReport", "collect_garbage", "referenced_digests"]

logger = logging.getLogger("aiaas.store.gc")

#: Blobs younger than this (seconds since their last write) are never collected.
DEFAULT_GC_GRACE_S = 3600.0

_DIGEST = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
_BATCH_ROWS = 500


@dataclass(frozen=True)
class GarbageReport:
    """What one collection did (or, with ``dry_run``, would do)."""

    referenced: int
    deleted: list[Blob] = field(default_factory=list)
    #: Unreferenced blobs spared because they are younger than the grace period.
    young: int = 0
    temp_files: int = 0
    dry_run: bool = False

    @property
    def freed_bytes(self) -> int:
        return sum(b.size_bytes for b in self.deleted)


def referenced_digests(db: Database) -> set[str]:
    """Every blob digest any row of any table refers to (see the module docstring)."""
    found: set[str] = set()
    with db.transaction() as s:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if _may_hold_a_digest(c.type)]
            if not columns:
                continue
            result = s.execute(select(*columns).execution_options(yield_per=_BATCH_ROWS))
            for row in result:
                for value in row:
                    found.update(_digests_in(value))
    return found


def collect_garbage(
    db: Database,
    artifacts: ArtifactStore,
    *,
    grace_s: float = DEFAULT_GC_GRACE_S,
    dry_run: bool = False,
    now: float | None = None,
) -> GarbageReport:
    """Remove abandoned temporary files and the blobs no row refers to.

    Args:
        grace_s: only blobs last written more than this many seconds ago are collected.
        dry_run: report what would be deleted; delete nothing (temporary files included).
        now: the current time (seconds since the epoch), for tests.

    Raises:
        ValueError: a negative ``grace_s``.
        aiaas.errors.Unavailable: the database cannot be read; nothing is deleted.
    """
    if grace_s < 0:
        raise ValueError(f"grace_s must be >= 0; got {grace_s!r}")
    # The cutoff is fixed before the references are read: a blob stored after that is
    # younger than the cutoff, whether or not its row made it into the read.
    cutoff = (time.time() if now is None else now) - grace_s
    temp_files = 0 if dry_run else artifacts.sweep_temp_files()
    keep = referenced_digests(db)
    young = 0

    def unreferenced_and_old(blob: Blob) -> bool:
        nonlocal young
        if blob.digest in keep:
            return False
        if blob.modified_at > cutoff:
            young += 1
            return False
        return True

    deleted = artifacts.delete_blobs(unreferenced_and_old, dry_run=dry_run)
    report = GarbageReport(
        referenced=len(keep), deleted=deleted, young=young, temp_files=temp_files, dry_run=dry_run
    )
    if deleted or temp_files:
        logger.info(
            "artifact gc%s: %d unreferenced blob(s), %d bytes%s; %d temporary file(s)",
            " (dry run)" if dry_run else "",
            len(deleted),
            report.freed_bytes,
            " would be deleted" if dry_run else " deleted",
            temp_files,
        )
    return report


def _may_hold_a_digest(kind: Any) -> bool:
    if isinstance(kind, JSON | Text):
        return True
    if isinstance(kind, String):
        return kind.length is None or kind.length >= 64
    impl = getattr(kind, "impl", None)
    return impl is not None and _may_hold_a_digest(impl)


def _digests_in(value: Any) -> Iterator[str]:
    """Digests among the strings of a column value (JSON walked without recursion)."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) in (64, 71):
                match = _DIGEST.match(item)
                if match:
                    yield match.group(1)
        elif isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list | tuple):
            stack.extend(item)
