"""Encryption at rest of the artifact store's blobs: chunked AES-256-GCM, streamed.

Why chunks: a model or dataset blob can be gigabytes, and one AES-GCM message must be
encrypted and authenticated whole. Each blob is cut into chunks of :data:`CHUNK_SIZE`
plaintext bytes, each sealed on its own, so re-encryption (key rotation) and checks stream
through a fixed buffer, never the whole blob.

Why this layout (the STREAM construction): a per-blob key is derived from the master key and
a random salt (HKDF-SHA256), so nonces never repeat across blobs; a chunk's nonce is its index
(11 bytes) and a final flag (1 byte), and the header is the associated data of every chunk.
Swapping, dropping or repeating chunks, cutting the file at a chunk boundary (the last chunk
left was not sealed as final), appending bytes, or editing the header all fail
authentication: :class:`~aiaas.errors.ArtifactCorrupted`, never wrong bytes.

Why a key id: the header names the key that sealed the blob (an id derived from the key, not
the key), so a store may hold blobs under several keys while a rotation runs, and a missing
or wrong key is told apart from tampering: :class:`~aiaas.errors.EncryptionKeyError`, naming
the setting to fix.

A blob file is ``MAGIC | version | key id (8) | salt (16) | chunk size (4, big-endian)``
followed by the chunks, each its ciphertext and 16-byte tag. The blob's name stays the
SHA-256 of its plaintext, checked after decryption as for a plain blob.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from aiaas.config import Settings
from aiaas.errors import ArtifactCorrupted, EncryptionKeyError, InvalidArgument

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CHUNK_SIZE",
    "KEY_BYTES",
    "MAGIC",
    "EncryptionKey",
    "Keyring",
    "decrypt_chunks",
    "encrypt_to",
    "keyring_from_settings",
    "sealed_key_id",
    "write_key_file",
]

#: First bytes of an encrypted blob (a NUL first: no text, ONNX, Parquet or JSON starts so).
MAGIC = b"\x00AIAASENC"
_VERSION = 1
#: Plaintext bytes per chunk.
CHUNK_SIZE = 1024 * 1024
#: The largest chunk a reader accepts (a damaged header must not make it read a whole file).
_MAX_CHUNK_SIZE = 64 * 1024 * 1024
#: AES-256.
KEY_BYTES = 32
_KEY_ID_BYTES = 8
_SALT_BYTES = 16
_TAG_BYTES = 16
_HEADER_BYTES = len(MAGIC) + 1 + _KEY_ID_BYTES + _SALT_BYTES + 4
_INFO = b"aiaas artifact chunks v1"


@dataclass(frozen=True)
class EncryptionKey:
    """A 32-byte master key and its public id (16 hex characters derived from the key)."""

    secret: bytes = field(repr=False)
    #: Where the key came from, for error messages: ``AIAAS_ENCRYPTION_KEY`` or a file.
    source: str = "a key"

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise InvalidArgument(
                f"{self.source}: an encryption key must be {KEY_BYTES} bytes (base64 of 32 random "
                f"bytes, e.g. from `aiaas encryption new-key FILE`); got {len(self.secret)} bytes",
                details={"field": self.source},
            )

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"aiaas key id\x00" + self.secret).hexdigest()[: 2 * _KEY_ID_BYTES]

    @classmethod
    def from_base64(cls, text: str, *, source: str) -> EncryptionKey:
        """A key written as base64 (standard or URL-safe alphabet, surrounding space ignored).

        Raises:
            InvalidArgument: naming ``source`` when the text is not base64 of 32 bytes.
        """
        cleaned = text.strip()
        try:
            secret = base64.b64decode(cleaned.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument(
                f"{source}: an encryption key must be base64 of {KEY_BYTES} random bytes "
                "(`aiaas encryption new-key FILE` writes one)",
                details={"field": source},
            ) from None
        return cls(secret, source=source)

    @classmethod
    def from_file(cls, path: str | Path, *, source: str) -> EncryptionKey:
        """The key in a file (its base64 text).

        Raises:
            InvalidArgument: naming ``source`` when the file is missing or holds no key.
        """
        try:
            text = Path(path).expanduser().read_text()
        except OSError as exc:
            raise InvalidArgument(
                f"{source}: cannot read the key file {str(path)!r}: {exc.strerror or exc}",
                details={"field": source, "value": str(path)},
            ) from None
        return cls.from_base64(text, source=f"{source} ({path})")

    @classmethod
    def generate(cls) -> EncryptionKey:
        return cls(os.urandom(KEY_BYTES), source="a new key")

    def to_base64(self) -> str:
        return base64.b64encode(self.secret).decode()


@dataclass(frozen=True)
class Keyring:
    """The key new blobs are sealed with, and every key blobs may be opened with.

    A rotation holds the old and the new key; a server holds its one configured key.
    """

    current: EncryptionKey
    others: tuple[EncryptionKey, ...] = ()

    def find(self, key_id: str) -> EncryptionKey | None:
        for key in (self.current, *self.others):
            if key.key_id == key_id:
                return key
        return None


def keyring_from_settings(settings: Settings) -> Keyring | None:
    """The keyring ``AIAAS_ENCRYPTION_KEY`` or ``AIAAS_ENCRYPTION_KEY_FILE`` configure (``None``: off).

    Raises:
        InvalidArgument: both are set, or the key is not base64 of 32 bytes.
    """
    given = settings.encryption_key
    path = settings.encryption_key_file
    if given is not None and path is not None:
        raise InvalidArgument(
            "set one of AIAAS_ENCRYPTION_KEY and AIAAS_ENCRYPTION_KEY_FILE, not both",
            details={"field": "encryption_key"},
        )
    if given is not None:
        return Keyring(EncryptionKey.from_base64(given.get_secret_value(), source="AIAAS_ENCRYPTION_KEY"))
    if path is not None:
        return Keyring(EncryptionKey.from_file(path, source="AIAAS_ENCRYPTION_KEY_FILE"))
    return None


def write_key_file(path: str | Path, key: EncryptionKey) -> None:
    """Write ``key`` as base64 to a new file only its owner can read.

    Raises:
        InvalidArgument: the file exists (a key is never overwritten: blobs may need it).
    """
    target = Path(path).expanduser()
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except FileExistsError:
        raise InvalidArgument(
            f"{str(target)!r} exists; a key file is never overwritten (blobs may still need its key)",
            details={"field": "file", "value": str(target)},
        ) from None
    with os.fdopen(fd, "w") as f:
        f.write(key.to_base64() + "\n")


def sealed_key_id(head: bytes) -> str | None:
    """The key id in an encrypted blob's first bytes, or ``None`` for a plain blob."""
    if len(head) < _HEADER_BYTES or not head.startswith(MAGIC) or head[len(MAGIC)] != _VERSION:
        return None
    start = len(MAGIC) + 1
    return head[start : start + _KEY_ID_BYTES].hex()


def _chunk_cipher(key: EncryptionKey, salt: bytes) -> AESGCM:
    # Imported here: a server with encryption off never loads the library.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    derived = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=_INFO).derive(key.secret)
    return AESGCM(derived)


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def encrypt_to(out: BinaryIO, read: Callable[[int], bytes], key: EncryptionKey) -> None:
    """Seal the bytes ``read(n)`` returns (until it returns ``b""``) into ``out``, chunk by chunk."""
    salt = os.urandom(_SALT_BYTES)
    header = MAGIC + bytes([_VERSION]) + bytes.fromhex(key.key_id) + salt + CHUNK_SIZE.to_bytes(4, "big")
    cipher = _chunk_cipher(key, salt)
    out.write(header)
    chunk = read(CHUNK_SIZE)
    index = 0
    while True:
        following = read(CHUNK_SIZE)
        final = not following
        out.write(cipher.encrypt(_nonce(index, final), chunk, header))
        if final:
            return
        chunk, index = following, index + 1


def decrypt_chunks(f: BinaryIO, keyring: Keyring | None, *, digest: str) -> Iterator[bytes]:
    """The plaintext chunks of the encrypted blob open in ``f`` (positioned at its start).

    Raises:
        EncryptionKeyError: no key, or not the key the blob was sealed with.
        ArtifactCorrupted: a chunk fails authentication (tampered, reordered, truncated,
            extended).
    """
    from cryptography.exceptions import InvalidTag

    header = _read_exactly(f, _HEADER_BYTES)
    key_id = sealed_key_id(header)
    if key_id is None:
        raise _corrupted(digest, "its encryption header is damaged")
    key = keyring.find(key_id) if keyring is not None else None
    if key is None:
        raise _key_error(digest, key_id, keyring)
    chunk_size = int.from_bytes(header[-4:], "big")
    if not 0 < chunk_size <= _MAX_CHUNK_SIZE:  # checked before a chunk of that size is read
        raise _corrupted(digest, "its encryption header is damaged")
    cipher = _chunk_cipher(
        key, header[len(MAGIC) + 1 + _KEY_ID_BYTES : len(MAGIC) + 1 + _KEY_ID_BYTES + _SALT_BYTES]
    )
    sealed = chunk_size + _TAG_BYTES
    chunk = _read_exactly(f, sealed)
    index = 0
    while True:
        if len(chunk) < _TAG_BYTES:
            raise _corrupted(digest, "it was cut short")
        following = _read_exactly(f, sealed) if len(chunk) == sealed else b""
        final = not following
        try:
            yield cipher.decrypt(_nonce(index, final), chunk, header)
        except InvalidTag:
            raise _corrupted(
                digest, f"chunk {index} fails authentication (edited, reordered or cut short)"
            ) from None
        if final:
            return
        chunk, index = following, index + 1


def _read_exactly(f: BinaryIO, n: int) -> bytes:
    parts: list[bytes] = []
    left = n
    while left:
        part = f.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _corrupted(digest: str, why: str) -> ArtifactCorrupted:
    return ArtifactCorrupted(
        f"artifact sha256:{digest} is corrupted: {why}; re-register the model version from its source",
        details={"digest": digest},
    )


def _key_error(digest: str, key_id: str, keyring: Keyring | None) -> EncryptionKeyError:
    if keyring is None:
        why = (
            f"artifact sha256:{digest} is encrypted (key id {key_id}) and no key is configured: "
            "set AIAAS_ENCRYPTION_KEY or AIAAS_ENCRYPTION_KEY_FILE to the key it was stored under"
        )
    else:
        why = (
            f"artifact sha256:{digest} is encrypted under key id {key_id}, but the configured key "
            f"({keyring.current.source}) has key id {keyring.current.key_id}: set it to the key the "
            "store was encrypted with (after `aiaas encryption rotate`, the new key)"
        )
    return EncryptionKeyError(why, details={"digest": digest, "key_id": key_id, "field": "encryption_key"})
