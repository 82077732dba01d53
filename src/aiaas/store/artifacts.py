"""Content-addressed artifact storage.

A blob's name is its SHA-256, so identical uploads are stored once and a blob that no
longer matches its name is caught on every read: a flipped bit gives
:class:`~aiaas.errors.ArtifactCorrupted`, never a silently wrong prediction. Writes go to a
temporary file in the same folder and are renamed into place, so a killed writer leaves
no half blob behind.

What a killed writer does leave is its temporary file (``.tmp-*``). Each writer holds an
exclusive ``flock`` on its temporary file until the rename, and the kernel drops that lock
when the writer dies; :meth:`FileArtifactStore.sweep_temp_files` removes exactly the
temporary files nobody holds, so it is safe while other processes write.

Blobs nothing references any more (deleted versions, uploads that failed before their row
was committed) are collected by :func:`aiaas.store.collect_garbage`, which relies on two
guarantees from here: :meth:`~FileArtifactStore.put` renews the modification time of a
blob it finds already stored (a registration in flight re-using an old, unreferenced blob
makes it young again), and :meth:`~FileArtifactStore.delete_blobs` and ``put`` exclude
each other (a shared ``flock`` on the ``sha256`` folder for ``put``, an exclusive one to
delete), so a blob is never deleted between ``put`` returning and its row being written.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiaas.errors import ArtifactCorrupted, InvalidArgument, NotFound

__all__ = ["ArtifactStore", "Blob", "FileArtifactStore", "open_artifact_store"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Blob:
    """One stored blob, as the garbage collector sees it."""

    digest: str
    size_bytes: int
    #: Last write or last :meth:`ArtifactStore.put` of the same bytes, seconds since the epoch.
    modified_at: float


class ArtifactStore(Protocol):
    """Where model files live; implementations are chosen by URL scheme."""

    def put(self, data: bytes) -> str:
        """Store ``data``.

        Returns:
            its SHA-256 hex digest, the key to read it back.
        """
        ...

    def get(self, digest: str) -> bytes:
        """Read a blob and verify it.

        Raises:
            NotFound: no blob with that digest.
            ArtifactCorrupted: the stored bytes no longer hash to ``digest``.
        """
        ...

    def exists(self, digest: str) -> bool: ...

    def blobs(self) -> Iterator[Blob]:
        """Every stored blob (for garbage collection)."""
        ...

    def delete_blobs(self, should_delete: Callable[[Blob], bool], *, dry_run: bool = False) -> list[Blob]:
        """Delete the blobs ``should_delete`` picks, judged and deleted with no ``put`` in between.

        Returns:
            the blobs deleted (or, with ``dry_run``, that would be).
        """
        ...

    def sweep_temp_files(self) -> int:
        """Remove temporary files left by writers that died.

        Returns:
            how many were removed.
        """
        ...


class FileArtifactStore:
    """Blobs as files under ``root/sha256/<2 hex>/<64 hex>``.

    Example:
        >>> store = FileArtifactStore("artifacts")
        >>> key = store.put(b"onnx bytes")
        >>> store.get(key)
        b'onnx bytes'
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        if not _DIGEST.match(digest):
            raise InvalidArgument(
                f"artifact digest must be 64 lowercase hex characters; got {digest!r}",
                details={"field": "digest"},
            )
        return self.root / "sha256" / digest[:2] / digest

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._lock(fcntl.LOCK_SH):
            if target.exists() and self._matches(target, digest):
                # Young again: a registration about to reference it must not lose it to
                # the garbage collector's grace period.
                os.utime(target)
                return digest
            fd, tmp = self._temp_file(target.parent)
            try:
                with os.fdopen(fd, "wb", closefd=False) as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            finally:
                os.close(fd)  # releases the temporary file's lock, after the rename
        return digest

    @staticmethod
    def _temp_file(folder: Path) -> tuple[int, str]:
        """A new temporary file in ``folder``, locked by this process until it closes it."""
        while True:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=_TEMP_PREFIX)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink:
                return fd, tmp
            # Swept between its creation and the lock (it looked abandoned): take another.
            os.close(fd)

    def get(self, digest: str) -> bytes:
        target = self.path(digest)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"artifact sha256:{digest} is missing from {self.root}",
                details={"digest": digest},
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ArtifactCorrupted(
                f"artifact sha256:{digest} is corrupted: its content now hashes to sha256:{actual}; "
                "re-register the model version from its source",
                details={"digest": digest, "actual": actual},
            )
        return data

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def blobs(self) -> Iterator[Blob]:
        for path in sorted((self.root / "sha256").glob("??/*")):
            if not _DIGEST.match(path.name):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            yield Blob(path.name, stat.st_size, stat.st_mtime)

    def delete_blobs(self, should_delete: Callable[[Blob], bool], *, dry_run: bool = False) -> list[Blob]:
        deleted: list[Blob] = []
        if not (self.root / "sha256").is_dir():
            return deleted
        # Exclusive: no put can find a blob (and renew it) between the judgement and the unlink.
        with self._lock(fcntl.LOCK_EX):
            for blob in list(self.blobs()):
                if not should_delete(blob):
                    continue
                if not dry_run:
                    self.path(blob.digest).unlink(missing_ok=True)
                deleted.append(blob)
        return deleted

    def sweep_temp_files(self) -> int:
        removed = 0
        for path in sorted((self.root / "sha256").glob(f"??/{_TEMP_PREFIX}*")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # renamed into place meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer holds it
                try:
                    current = os.stat(path)
                except FileNotFoundError:
                    continue
                opened = os.fstat(fd)
                if (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
                    continue  # the name now belongs to another file
                path.unlink()
                removed += 1
            finally:
                os.close(fd)
        return removed

    @contextlib.contextmanager
    def _lock(self, kind: int) -> Iterator[None]:
        """The lock that keeps ``put`` and :meth:`delete_blobs` apart (a ``flock`` on the folder)."""
        folder = self.root / "sha256"
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, kind)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _matches(path: Path, digest: str) -> bool:
        return hashlib.sha256(path.read_bytes()).hexdigest() == digest


def open_artifact_store(url: str) -> ArtifactStore:
    """The artifact store for a URL: a plain path or ``file://`` for now.

    Raises:
        InvalidArgument: for a scheme that has no implementation.
    """
    if url.startswith("file://"):
        return FileArtifactStore(url.removeprefix("file://"))
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise InvalidArgument(
            f"AIAAS_ARTIFACT_ROOT scheme {scheme!r} is not supported; use a folder path or file://",
            details={"field": "artifact_root", "value": url},
        )
    return FileArtifactStore(url)
