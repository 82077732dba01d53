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

With a :class:`~aiaas.store.encryption.Keyring` the store seals what it writes (chunked
AES-256-GCM, :mod:`aiaas.store.encryption`) and opens what it reads; plain blobs written
before encryption was turned on are still read (a store may hold both), and a ``put`` of a
plain blob's bytes seals it. The name stays the plaintext's SHA-256, checked on every read.
:meth:`FileArtifactStore.reseal` re-encrypts one blob under another key, streamed chunk by
chunk and renamed into place, for ``aiaas encryption rotate``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from aiaas.errors import AiaasError, ArtifactCorrupted, InvalidArgument, NotFound
from aiaas.store.encryption import (
    CHUNK_SIZE,
    MAGIC,
    Keyring,
    decrypt_chunks,
    encrypt_to,
    sealed_key_id,
)

__all__ = ["ArtifactStore", "Blob", "FileArtifactStore", "open_artifact_store"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_TEMP_PREFIX = ".tmp-"
#: Enough of a blob's first bytes to tell a sealed one and read its key id.
_HEAD = len(MAGIC) + 64


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
        """Read a blob (decrypting a sealed one) and verify it.

        Raises:
            NotFound: no blob with that digest.
            ArtifactCorrupted: the stored bytes no longer hash to ``digest``.
            EncryptionKeyError: the blob is sealed under a key this store is not given.
        """
        ...

    def exists(self, digest: str) -> bool: ...

    def read_chunks(self, digest: str) -> Iterator[bytes]:
        """A blob's bytes in pieces, verified when the last has been read (see ``get``)."""
        ...

    def key_id(self, digest: str) -> str | None:
        """The id of the key a blob is sealed under, ``None`` for a plain one."""
        ...

    def reseal(self, digest: str, keyring: Keyring) -> bool:
        """Re-encrypt one blob under ``keyring.current``; whether it was rewritten."""
        ...

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

    def __init__(self, root: str | Path, keyring: Keyring | None = None) -> None:
        self.root = Path(root)
        #: Seals new blobs (its current key) and opens sealed ones; ``None``: writes plain.
        self.keyring = keyring

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
            keyring = self.keyring
            if keyring is None:
                self._write(target, lambda f: f.write(data))
                return digest
            view = memoryview(data)
            offset = 0

            def read(n: int) -> bytes:  # one chunk at a time: never a second copy of the blob
                nonlocal offset
                part = bytes(view[offset : offset + n])
                offset += len(part)
                return part

            self._write(target, lambda f: encrypt_to(f, read, keyring.current))
        return digest

    def _write(
        self, target: Path, fill: Callable[[BinaryIO], object], *, mtime_ns: int | None = None
    ) -> None:
        """Write ``target`` through a locked temporary file renamed into place (caller holds the lock)."""
        fd, tmp = self._temp_file(target.parent)
        try:
            with os.fdopen(fd, "wb", closefd=False) as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
            if mtime_ns is not None:
                os.utime(tmp, ns=(mtime_ns, mtime_ns))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)  # releases the temporary file's lock, after the rename

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
            with target.open("rb") as f:
                if sealed_key_id(f.read(_HEAD)) is None:
                    f.seek(0)
                    return self._verified(digest, f.read())
        except FileNotFoundError:
            pass  # read_chunks says so
        # Sealed: decrypted into one growing buffer whose bytes getvalue() hands over uncopied.
        out = io.BytesIO()
        for part in self.read_chunks(digest):
            out.write(part)
        return out.getvalue()

    @staticmethod
    def _verified(digest: str, data: bytes) -> bytes:
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise _mismatch(digest, actual)
        return data

    def read_chunks(self, digest: str) -> Iterator[bytes]:
        """A blob's bytes in pieces (decrypted when sealed), for readers that stream.

        The SHA-256 is checked when the last piece has been read: a consumer must not trust
        what it wrote until the iterator ends without raising.

        Raises:
            NotFound: no blob with that digest.
            ArtifactCorrupted: the stored bytes no longer hash to ``digest`` (or, sealed, fail
                authentication).
            EncryptionKeyError: the blob is sealed under a key this store is not given.
        """
        target = self.path(digest)
        try:
            f = target.open("rb")
        except FileNotFoundError:
            raise NotFound(
                f"artifact sha256:{digest} is missing from {self.root}",
                details={"digest": digest},
            ) from None
        with f:
            sealed = sealed_key_id(f.read(_HEAD)) is not None
            f.seek(0)
            h = hashlib.sha256()
            if sealed:
                given = 0
                try:
                    for part in decrypt_chunks(f, self.keyring, digest=digest):
                        h.update(part)
                        given += 1
                        yield part
                except AiaasError:
                    if given or not self._plain_file_matches(f, digest):
                        raise
                    # A plain blob that happens to start like a sealed one.
                    f.seek(0)
                    yield from _plain_pieces(f)
                    return
            else:
                while part := f.read(CHUNK_SIZE):
                    h.update(part)
                    yield part
        actual = h.hexdigest()
        if actual != digest:
            raise _mismatch(digest, actual)

    def key_id(self, digest: str) -> str | None:
        """The id of the key ``digest``'s blob is sealed under, ``None`` for a plain blob.

        Raises:
            NotFound: no blob with that digest.
        """
        try:
            with self.path(digest).open("rb") as f:
                return sealed_key_id(f.read(_HEAD))
        except FileNotFoundError:
            raise NotFound(
                f"artifact sha256:{digest} is missing from {self.root}", details={"digest": digest}
            ) from None

    def reseal(self, digest: str, keyring: Keyring) -> bool:
        """Re-encrypt one blob under ``keyring.current`` (a plain one is sealed), streamed.

        The blob is opened with ``keyring`` (or this store's keyring), checked against its
        digest, written to a temporary file and renamed over the old one, keeping its
        modification time (the garbage collector's clock). Interrupted, the old file stays
        whole. A blob deleted meanwhile is left deleted.

        Returns:
            whether it was rewritten (``False``: already under that key, or gone).

        Raises:
            EncryptionKeyError: sealed under a key neither keyring holds.
            ArtifactCorrupted: it no longer matches its digest.
        """
        target = self.path(digest)
        with self._lock(fcntl.LOCK_SH):
            try:
                stat = target.stat()
            except FileNotFoundError:
                return False
            if self.key_id(digest) == keyring.current.key_id:
                return False
            opener = FileArtifactStore(self.root, _merged(keyring, self.keyring))
            pieces = opener.read_chunks(digest)
            buffered = b""

            def read(n: int) -> bytes:
                nonlocal buffered
                while len(buffered) < n:
                    part = next(pieces, None)
                    if part is None:
                        break
                    buffered += part
                out, buffered = buffered[:n], buffered[n:]
                return out

            self._write(target, lambda f: encrypt_to(f, read, keyring.current), mtime_ns=stat.st_mtime_ns)
        return True

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

    def _matches(self, path: Path, digest: str) -> bool:
        """Whether the stored blob reads back as ``digest`` and is sealed as this store seals."""
        try:
            with path.open("rb") as f:
                key_id = sealed_key_id(f.read(_HEAD))
        except FileNotFoundError:
            return False
        wanted = self.keyring.current.key_id if self.keyring is not None else None
        if key_id != wanted:
            return False  # rewritten: sealed now, or under the current key
        try:
            for _ in self.read_chunks(digest):
                pass
        except AiaasError:
            return False
        return True

    @staticmethod
    def _plain_file_matches(f: BinaryIO, digest: str) -> bool:
        f.seek(0)
        h = hashlib.sha256()
        while part := f.read(CHUNK_SIZE):
            h.update(part)
        return h.hexdigest() == digest


def _mismatch(digest: str, actual: str) -> ArtifactCorrupted:
    return ArtifactCorrupted(
        f"artifact sha256:{digest} is corrupted: its content now hashes to sha256:{actual}; "
        "re-register the model version from its source",
        details={"digest": digest, "actual": actual},
    )


def _plain_pieces(f: BinaryIO) -> Iterator[bytes]:
    while part := f.read(CHUNK_SIZE):
        yield part


def _merged(first: Keyring, second: Keyring | None) -> Keyring:
    """``first``, also able to open what ``second`` opens."""
    if second is None:
        return first
    return Keyring(first.current, (*first.others, second.current, *second.others))


def open_artifact_store(url: str, keyring: Keyring | None = None) -> FileArtifactStore:
    """The artifact store for a URL: a plain path or ``file://`` for now.

    Args:
        url: the artifact root.
        keyring: seal new blobs and open sealed ones with it (``None``: write plain).

    Raises:
        InvalidArgument: for a scheme that has no implementation.
    """
    if url.startswith("file://"):
        return FileArtifactStore(url.removeprefix("file://"), keyring)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise InvalidArgument(
            f"AIAAS_ARTIFACT_ROOT scheme {scheme!r} is not supported; use a folder path or file://",
            details={"field": "artifact_root", "value": url},
        )
    return FileArtifactStore(url, keyring)
