"""Key rotation and the encryption census of an artifact store (``aiaas encryption ...``).

Rotation re-encrypts blob by blob, each through a temporary file renamed over the old one
(:meth:`~aiaas.store.FileArtifactStore.reseal`), so an interrupted rotation loses nothing:
every blob is whole, under the old key or the new, and running it again finishes the rest
(blobs already under the new key are skipped). A blob that cannot be opened (its key is
not given, or it is corrupted) is reported and left as it is; the rest carry on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from aiaas.errors import AiaasError, NotFound
from aiaas.store.artifacts import ArtifactStore
from aiaas.store.encryption import EncryptionKey, Keyring

__all__ = ["RotationReport", "encryption_census", "rotate"]

#: The census' name for blobs written without encryption.
PLAIN = "plain"


@dataclass
class RotationReport:
    """What a rotation did, blob by blob counted."""

    key_id: str
    resealed: int = 0
    already: int = 0
    #: digest -> why it was left as it was.
    failed: dict[str, str] = field(default_factory=dict)


def rotate(store: ArtifactStore, new_key: EncryptionKey) -> RotationReport:
    """Re-encrypt every blob of ``store`` under ``new_key`` (plain blobs are sealed).

    Blobs are opened with the store's own keyring (the key configured now) or ``new_key``.
    """
    report = RotationReport(new_key.key_id)
    keyring = Keyring(new_key)
    for blob in store.blobs():
        try:
            if store.reseal(blob.digest, keyring):
                report.resealed += 1
            else:
                report.already += 1
        except NotFound:
            continue  # deleted by the garbage collector meanwhile
        except AiaasError as exc:
            report.failed[blob.digest] = exc.message
    return report


def encryption_census(store: ArtifactStore) -> dict[str, int]:
    """How many blobs are sealed under each key id (``"plain"``: not encrypted)."""
    counts: Counter[str] = Counter()
    for blob in store.blobs():
        try:
            counts[store.key_id(blob.digest) or PLAIN] += 1
        except NotFound:
            continue
    return dict(sorted(counts.items()))
