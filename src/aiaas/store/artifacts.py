"""Content-addressed artifact storage.

A blob's name is its SHA-256, so identical uploads are stored once and a blob that no
longer matches its name is caught on every read: a flipped bit gives
:class:`~aiaas.errors.ArtifactCorrupted`, never a silently wrong prediction. Writes go to a
temporary file in the same folder and are renamed into place, so a killed writer leaves
no half blob behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from aiaas.errors import ArtifactCorrupted, InvalidArgument, NotFound

__all__ = ["ArtifactStore", "FileArtifactStore", "open_artifact_store"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


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


class FileArtifactStore:
    """Blobs as files under ``root/sha256/<2 hex>/<64 hex>``.

    Example:
        >>> store = FileArtifactStore("/tmp/aiaas-doc-artifacts")
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
        if target.exists() and self._matches(target, digest):
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

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
