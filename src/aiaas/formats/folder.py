"""Model versions made of several files: a manifest blob that names one blob per file.

A Hugging Face model is a folder (``config.json``, ``*.safetensors`` weights, tokenizer
files), not one file. The artifact store holds single content-addressed blobs, so such a
version is stored as one blob per file plus a **manifest**: canonical JSON mapping each
relative path to the SHA-256 and size of its blob. The manifest's own digest is the
version's ``artifact_digest``; since it names every file's digest, one number still means
one exact set of bytes.

Manifest (``FOLDER_FORMAT``, keys sorted, no spaces)::

    {"files": {"config.json": {"sha256": "…", "size": 612}, "1_Pooling/config.json": {…}, …},
     "format": "aiaas.folder/1"}

Loading never reads a user's path: :func:`materialize` writes the verified blobs into a
private folder named by the manifest digest, under a root the server owns, and checks an
existing one again before handing it out.

What a folder may hold is an allow-list (:func:`check_file_name`): configuration and
tokenizer files, ``*.safetensors`` weights, chat templates. Pickle-based weights
(``.bin``, ``.pt``, ``.pkl``, ...) and code (``.py``) are refused, never loaded: a model
file must never be able to run code in the platform.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from aiaas.errors import ArtifactCorrupted, InvalidArgument, PayloadTooLarge
from aiaas.formats.signature import Signature

__all__ = [
    "FOLDER_FORMAT",
    "MAX_FOLDER_FILES",
    "BlobReader",
    "FolderPackage",
    "FolderSignature",
    "Manifest",
    "check_file_name",
    "is_skipped_file",
    "materialize",
    "read_folder",
]

#: The manifest's ``format`` value; a reader refuses any other.
FOLDER_FORMAT = "aiaas.folder/1"
#: Files one folder version may hold (a sharded checkpoint has a few dozen at most).
MAX_FOLDER_FILES = 256
#: How deep a file may sit: sentence-transformers keeps module configs one folder down.
_MAX_DEPTH = 2

_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
#: Suffixes a model folder may hold: configs, weights, tokenizers, chat templates.
_ALLOWED_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".jinja", ".tiktoken")
#: Suffixes refused with a reason: they are pickles (or may hold one), or code.
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz", ".h5")
_CODE_SUFFIXES = (".py", ".pyc", ".so", ".sh")
#: Files a downloaded model folder often carries that are not part of the model:
#: :func:`read_folder` leaves them out instead of refusing the folder.
_SKIPPED = re.compile(r"^(readme|license|licence|notice|citation)(\..*)?$|.*\.(md|rst|png|jpg|gif)$", re.I)


def is_skipped_file(path: str) -> bool:
    """True for documentation and hidden files that a folder import leaves out."""
    parts = path.split("/")
    return any(p.startswith(".") for p in parts) or bool(_SKIPPED.match(parts[-1]))


def check_file_name(path: str, *, field: str = "files") -> str:
    """Check one relative path of a model folder against the allow-list.

    Returns:
        the path, unchanged.

    Raises:
        InvalidArgument: naming the file and the rule it breaks (absolute, ``..``, too
            deep, pickle weights, code, or a kind of file a model folder does not hold).
    """
    where = f"{field}[{path!r}]"
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        raise InvalidArgument(
            f"{where}: a file name must be a non-empty relative path with '/' separators; got {path!r}",
            details={"field": field, "value": repr(path)},
        )
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidArgument(
            f"{where}: must be a relative path inside the model folder (no leading '/', no '.' or "
            f"'..' parts); got {path!r}",
            details={"field": field, "value": path},
        )
    if len(parts) > _MAX_DEPTH:
        raise InvalidArgument(
            f"{where}: files may sit at most one folder deep (like 1_Pooling/config.json); got {path!r}",
            details={"field": field, "value": path},
        )
    if not all(_PART.match(p) for p in parts):
        raise InvalidArgument(
            f"{where}: each part of a file name may hold letters, digits, '_', '-' and '.', "
            f"starting with a letter, digit or '_'; got {path!r}",
            details={"field": field, "value": path},
        )
    lower = parts[-1].lower()
    if lower.endswith(_PICKLE_SUFFIXES):
        raise InvalidArgument(
            f"{where}: pickle-based weights are never loaded (they can run code); save the model "
            "with safetensors instead (save_pretrained(..., safe_serialization=True))",
            details={"field": field, "value": path, "expected": "*.safetensors"},
        )
    if lower.endswith(_CODE_SUFFIXES):
        raise InvalidArgument(
            f"{where}: model folders may not carry code (remote code is never trusted); only "
            "architectures that transformers ships are served",
            details={"field": field, "value": path},
        )
    if not lower.endswith(_ALLOWED_SUFFIXES):
        raise InvalidArgument(
            f"{where}: not a file a model folder holds; allowed are {', '.join(_ALLOWED_SUFFIXES)} "
            "(configs, safetensors weights, tokenizer files, chat templates)",
            details={"field": field, "value": path, "expected": list(_ALLOWED_SUFFIXES)},
        )
    return path


@dataclass(frozen=True)
class FolderSignature(Signature):
    """A signature plus facts about the model a client may want (task, context length...).

    Stored in the version's ``signature`` as an extra ``parameters`` object, which readers
    that only know inputs and outputs ignore.
    """

    parameters: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "parameters": dict(self.parameters)}


@dataclass(frozen=True)
class Manifest:
    """The files of a folder version: relative path → (sha256, size)."""

    files: Mapping[str, tuple[str, int]]

    def to_bytes(self) -> bytes:
        body = {
            "files": {p: {"sha256": d, "size": s} for p, (d, s) in sorted(self.files.items())},
            "format": FOLDER_FORMAT,
        }
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)

    @property
    def size_bytes(self) -> int:
        return sum(size for _, size in self.files.values())

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse and check a manifest blob.

        Raises:
            ArtifactCorrupted: the blob is not a manifest of this format.
        """
        try:
            body = orjson.loads(data)
            if body.get("format") != FOLDER_FORMAT:
                raise ValueError(f"format is {body.get('format')!r}, expected {FOLDER_FORMAT!r}")
            files = {check_file_name(p): (str(e["sha256"]), int(e["size"])) for p, e in body["files"].items()}
        except (
            orjson.JSONDecodeError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            InvalidArgument,
        ) as exc:
            raise ArtifactCorrupted(
                f"the version's artifact is not a readable folder manifest: {exc}",
                details={"expected": FOLDER_FORMAT},
            ) from None
        return cls(files)


@dataclass
class FolderPackage:
    """A model folder ready to register: its files, flavor and signature.

    It quacks like :class:`~aiaas.formats.ModelPackage` where the registry needs it
    (``flavor``, ``signature``, ``example``, ``check``), and stores itself through
    :meth:`manifest` instead of one ONNX blob.
    """

    files: dict[str, bytes]
    flavor: str
    signature: FolderSignature
    example: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Check every file name again (the package may have been built by hand)."""
        if not self.files:
            raise InvalidArgument("a model folder needs at least one file", details={"field": "files"})
        if len(self.files) > MAX_FOLDER_FILES:
            raise InvalidArgument(
                f"a model folder may hold at most {MAX_FOLDER_FILES} files; got {len(self.files)}",
                details={"field": "files", "value": len(self.files)},
            )
        for name in self.files:
            check_file_name(name)

    def manifest(self) -> Manifest:
        return Manifest({p: (hashlib.sha256(data).hexdigest(), len(data)) for p, data in self.files.items()})

    @property
    def size_bytes(self) -> int:
        return sum(len(d) for d in self.files.values())


def read_folder(path: str | Path, *, max_bytes: int | None = None) -> dict[str, bytes]:
    """The files of a model folder on local disk, by relative path.

    Documentation and hidden files (``README.md``, ``.gitattributes``) are left out; every
    other file must pass :func:`check_file_name`. Symbolic links are followed only when
    they stay inside the folder.

    Raises:
        InvalidArgument: not a folder, or a file the allow-list refuses.
        PayloadTooLarge: the files add up to more than ``max_bytes``.
    """
    root = Path(path)
    if not root.is_dir():
        raise InvalidArgument(f"no model folder at {str(root)!r}", details={"field": "model"})
    real_root = root.resolve()
    files: dict[str, bytes] = {}
    total = 0
    for file in sorted(root.rglob("*")):
        if file.is_dir():
            continue
        rel = file.relative_to(root).as_posix()
        if is_skipped_file(rel):
            continue
        check_file_name(rel)
        if not file.resolve().is_relative_to(real_root):
            raise InvalidArgument(
                f"files[{rel!r}]: a link that points outside the model folder",
                details={"field": "files", "value": rel},
            )
        data = file.read_bytes()
        total += len(data)
        if max_bytes is not None and total > max_bytes:
            raise PayloadTooLarge(
                f"the model folder is larger than the limit of {max_bytes} bytes",
                details={"field": "files", "limit": max_bytes},
            )
        files[rel] = data
    if len(files) > MAX_FOLDER_FILES:
        raise InvalidArgument(
            f"a model folder may hold at most {MAX_FOLDER_FILES} files; {str(root)!r} has {len(files)}",
            details={"field": "files", "value": len(files)},
        )
    return files


class BlobReader(Protocol):
    """What :func:`materialize` needs of an artifact store: verified reads by digest."""

    def get(self, digest: str) -> bytes: ...

    def read_chunks(self, digest: str) -> Iterator[bytes]:
        """The blob in pieces (decrypted if sealed), its SHA-256 checked after the last."""
        ...


def materialize(store: BlobReader, digest: str, root: str | Path) -> Path:
    """The folder of a folder version, written from verified blobs under ``root/<digest>``.

    An existing folder is checked file by file (size and SHA-256) and rebuilt when it no
    longer matches; a new one is written to a temporary folder and renamed into place, so
    a reader never sees half a folder. Each file is streamed from the store (a sealed blob
    decrypted piece by piece), never held whole in memory. The libraries that load these
    models read files by path, so the folder holds the plain bytes: ``root`` is made
    readable by its owner only (see docs/security.md, "Encryption at rest").

    Args:
        store: the artifact store (``get`` verifies each blob's SHA-256).
        digest: the version's artifact digest, the manifest's.
        root: a folder the server owns (``<AIAAS_HOME>/model-cache`` by default).

    Raises:
        ArtifactCorrupted: the manifest or a blob no longer matches its digest.
        NotFound: a blob is missing from the store.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise InvalidArgument(f"artifact digest must be 64 hex characters; got {digest!r}")
    manifest = Manifest.from_bytes(store.get(digest))
    base = Path(root)
    target = base / digest
    if target.is_dir():
        if _matches(target, manifest):
            return target
        shutil.rmtree(target, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o700)  # decrypted copies of the store's blobs: the owner's only
    tmp = base / f".tmp-{digest[:12]}-{uuid.uuid4().hex[:8]}"
    try:
        for rel, (file_digest, size) in manifest.files.items():
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with out.open("wb") as f:
                for part in store.read_chunks(file_digest):  # raises at the end on a wrong digest
                    f.write(part)
                    written += len(part)
            if written != size:
                raise ArtifactCorrupted(
                    f"file {rel!r} of artifact sha256:{digest} has {written} bytes; the manifest says {size}",
                    details={"digest": digest, "file": rel},
                )
        try:
            os.rename(tmp, target)
        except OSError:  # another process materialised it first: use theirs if it is whole
            if not (target.is_dir() and _matches(target, manifest)):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _matches(folder: Path, manifest: Manifest) -> bool:
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    if present != set(manifest.files):
        return False
    for rel, (file_digest, size) in manifest.files.items():
        path = folder / rel
        if path.stat().st_size != size or _sha256(path) != file_digest:
            return False
    return True


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
