"""Encryption at rest of the artifact store: sealed blobs, wrong keys, tampering, mixed stores,
rotation (interrupted too), settings and the ``aiaas encryption`` commands."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from aiaas.cli.main import app
from aiaas.config import Settings
from aiaas.errors import ArtifactCorrupted, EncryptionKeyError, InvalidArgument
from aiaas.store import EncryptionKey, FileArtifactStore, Keyring, encryption, keyring_from_settings
from aiaas.store import artifacts as artifacts_module
from aiaas.store.encryption import write_key_file
from aiaas.store.rotation import encryption_census, rotate

#: A small chunk size for these tests, so that a few kilobytes make many chunks.
CHUNK = 64
DATA = bytes(range(256)) * 20 + b"the end"  # 5127 bytes: 81 chunks, the last one short


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encryption, "CHUNK_SIZE", CHUNK)


@pytest.fixture
def key() -> EncryptionKey:
    return EncryptionKey.generate()


@pytest.fixture
def store(tmp_path: Path, key: EncryptionKey) -> FileArtifactStore:
    return FileArtifactStore(tmp_path / "artifacts", Keyring(key))


def _sealed(store: FileArtifactStore, digest: str) -> bytes:
    return store.path(digest).read_bytes()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, len(DATA)])
def test_sealed_blobs_round_trip_and_hold_no_plaintext(store: FileArtifactStore, size: int) -> None:
    data = DATA[:size]
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()  # the name is still the plaintext's digest
    assert store.get(digest) == data
    on_disk = _sealed(store, digest)
    assert on_disk.startswith(encryption.MAGIC)
    if size >= 16:
        assert data[:16] not in on_disk and data[-16:] not in on_disk
    assert store.key_id(digest) == store.keyring.current.key_id  # type: ignore[union-attr]


def test_read_chunks_streams_piece_by_piece(store: FileArtifactStore) -> None:
    digest = store.put(DATA)
    pieces = list(store.read_chunks(digest))
    assert len(pieces) == -(-len(DATA) // CHUNK) and max(map(len, pieces)) == CHUNK
    assert b"".join(pieces) == DATA


def test_the_same_bytes_seal_differently_each_time(tmp_path: Path, key: EncryptionKey) -> None:
    a = FileArtifactStore(tmp_path / "a", Keyring(key))
    b = FileArtifactStore(tmp_path / "b", Keyring(key))
    digest = a.put(DATA)
    assert b.put(DATA) == digest
    assert _sealed(a, digest) != _sealed(b, digest)  # a fresh salt, so a fresh chunk key


def test_a_wrong_key_names_the_setting_and_never_returns_bytes(
    store: FileArtifactStore, tmp_path: Path
) -> None:
    digest = store.put(DATA)
    other = Keyring(EncryptionKey(os.urandom(32), source="AIAAS_ENCRYPTION_KEY"))
    with pytest.raises(EncryptionKeyError, match="AIAAS_ENCRYPTION_KEY") as info:
        FileArtifactStore(store.root, other).get(digest)
    assert info.value.details["key_id"] == store.keyring.current.key_id  # type: ignore[union-attr]
    assert info.value.code == "ENCRYPTION_KEY"


def test_no_key_for_a_sealed_blob_names_both_settings(store: FileArtifactStore) -> None:
    digest = store.put(DATA)
    with pytest.raises(EncryptionKeyError, match=r"no key is configured.*AIAAS_ENCRYPTION_KEY_FILE"):
        FileArtifactStore(store.root).get(digest)


def _chunks(sealed: bytes) -> tuple[bytes, list[bytes]]:
    header = sealed[: encryption._HEADER_BYTES]
    body = sealed[len(header) :]
    step = CHUNK + 16
    return header, [body[i : i + step] for i in range(0, len(body), step)]


def _tampered(how: str, sealed: bytes) -> bytes:
    header, chunks = _chunks(sealed)
    if how == "flipped byte":
        body = bytearray(sealed)
        body[len(header) + 5] ^= 0x01
        return bytes(body)
    if how == "cut at a chunk boundary":
        return header + b"".join(chunks[:-2])
    if how == "cut mid-chunk":
        return sealed[:-7]
    if how == "last chunk dropped":
        return header + b"".join(chunks[:-1])
    if how == "chunks swapped":
        chunks[1], chunks[2] = chunks[2], chunks[1]
        return header + b"".join(chunks)
    if how == "chunk repeated":
        return header + b"".join([chunks[0], *chunks[:-1]])
    if how == "bytes appended":
        return sealed + chunks[0]
    if how == "salt edited":
        body = bytearray(sealed)
        body[len(encryption.MAGIC) + 1 + 8] ^= 0x01
        return bytes(body)
    if how == "header only":
        return header
    if how == "chunk size edited":
        body = bytearray(sealed)
        body[len(header) - 4] = 0xFF  # about 4 GiB
        return bytes(body)
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "flipped byte",
        "cut at a chunk boundary",
        "cut mid-chunk",
        "last chunk dropped",
        "chunks swapped",
        "chunk repeated",
        "bytes appended",
        "salt edited",
        "header only",
        "chunk size edited",
    ],
)
def test_tampered_or_truncated_ciphertext_is_detected(store: FileArtifactStore, how: str) -> None:
    digest = store.put(DATA)
    path = store.path(digest)
    path.write_bytes(_tampered(how, path.read_bytes()))
    # Caught by authentication, chunk by chunk, before the digest of the whole is ever compared.
    with pytest.raises(
        ArtifactCorrupted,
        match=f"{digest} is corrupted: .*(fails authentication|cut short|header is damaged)",
    ):
        store.get(digest)
    # And a put of the same bytes repairs it (a re-registration from the source).
    assert store.put(DATA) == digest
    assert store.get(digest) == DATA


def test_an_edited_key_id_is_a_key_error_not_wrong_bytes(store: FileArtifactStore) -> None:
    digest = store.put(DATA)
    path = store.path(digest)
    body = bytearray(path.read_bytes())
    body[len(encryption.MAGIC) + 1] ^= 0x01
    path.write_bytes(bytes(body))
    with pytest.raises(EncryptionKeyError):
        store.get(digest)


def test_a_mixed_store_reads_plain_and_sealed_blobs(tmp_path: Path, key: EncryptionKey) -> None:
    plain = FileArtifactStore(tmp_path / "artifacts")
    old = plain.put(b"written before encryption was turned on")
    keyed = FileArtifactStore(tmp_path / "artifacts", Keyring(key))
    new = keyed.put(DATA)
    assert keyed.get(old) == b"written before encryption was turned on"
    assert keyed.get(new) == DATA
    assert encryption_census(keyed) == {key.key_id: 1, "plain": 1}
    # A put of a plain blob's bytes seals it.
    keyed.put(b"written before encryption was turned on")
    assert keyed.key_id(old) == key.key_id
    assert keyed.get(old) == b"written before encryption was turned on"


def test_a_plain_blob_that_looks_sealed_is_still_read(tmp_path: Path, key: EncryptionKey) -> None:
    data = encryption.MAGIC + b"\x01" + b"x" * 100  # plain bytes that start like a sealed blob
    plain = FileArtifactStore(tmp_path / "artifacts")
    digest = plain.put(data)
    assert FileArtifactStore(tmp_path / "artifacts", Keyring(key)).get(digest) == data
    assert plain.get(digest) == data


def test_a_plain_flipped_byte_is_still_caught_with_a_key(tmp_path: Path, key: EncryptionKey) -> None:
    digest = FileArtifactStore(tmp_path / "artifacts").put(DATA)
    keyed = FileArtifactStore(tmp_path / "artifacts", Keyring(key))
    path = keyed.path(digest)
    body = bytearray(path.read_bytes())
    body[10] ^= 0x01
    path.write_bytes(bytes(body))
    with pytest.raises(ArtifactCorrupted, match="now hashes to"):
        keyed.get(digest)


def test_rotation_reseals_everything_and_the_old_key_no_longer_opens_it(
    store: FileArtifactStore, key: EncryptionKey
) -> None:
    plain = FileArtifactStore(store.root).put(b"plain before")
    digests = [store.put(DATA[:n]) for n in (0, 10, CHUNK * 2, len(DATA))]
    before = {d: store.path(d).stat().st_mtime for d in digests}
    new = EncryptionKey.generate()

    report = rotate(store, new)

    assert (report.resealed, report.already, report.failed) == (5, 0, {})
    assert encryption_census(store) == {new.key_id: 5}
    rotated = FileArtifactStore(store.root, Keyring(new))
    assert rotated.get(plain) == b"plain before"
    assert [rotated.get(d) for d in digests] == [DATA[:n] for n in (0, 10, CHUNK * 2, len(DATA))]
    for d in digests:
        with pytest.raises(EncryptionKeyError):
            store.get(d)  # the old key
        assert store.path(d).stat().st_mtime == before[d]  # the garbage collector's clock kept
    assert not list(store.root.rglob(".tmp-*"))
    # Again: nothing to do.
    assert rotate(rotated, new).already == 5


def test_an_interrupted_rotation_loses_nothing_and_a_rerun_finishes(
    store: FileArtifactStore, key: EncryptionKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = {store.put(DATA[:n]): DATA[:n] for n in (1, 100, 1000, len(DATA))}
    new = EncryptionKey.generate()
    real_replace = os.replace
    calls = 0

    def crash_on_third(src: str, dst: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt  # killed midway
        real_replace(src, dst)

    monkeypatch.setattr(artifacts_module.os, "replace", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        rotate(store, new)
    monkeypatch.setattr(artifacts_module.os, "replace", real_replace)

    census = encryption_census(store)
    assert census == {key.key_id: 2, new.key_id: 2}
    both = FileArtifactStore(store.root, Keyring(new, (key,)))
    assert {d: both.get(d) for d in blobs} == blobs  # every blob whole, under one key or the other
    assert not list(store.root.rglob(".tmp-*"))

    report = rotate(store, new)
    assert (report.resealed, report.already) == (2, 2)
    assert encryption_census(store) == {new.key_id: 4}


def test_rotation_reports_a_blob_it_cannot_open_and_goes_on(store: FileArtifactStore) -> None:
    lost = FileArtifactStore(store.root, Keyring(EncryptionKey.generate())).put(b"under a lost key")
    kept = store.put(DATA)
    new = EncryptionKey.generate()
    report = rotate(store, new)
    assert report.resealed == 1 and list(report.failed) == [lost]
    assert "AIAAS_ENCRYPTION_KEY" in report.failed[lost] or "key id" in report.failed[lost]
    assert FileArtifactStore(store.root, Keyring(new)).get(kept) == DATA


def test_settings_give_the_keyring(tmp_path: Path, key: EncryptionKey) -> None:
    assert keyring_from_settings(Settings(home=tmp_path)) is None
    given = Settings(home=tmp_path, encryption_key=SecretStr(key.to_base64()))
    assert keyring_from_settings(given).current.key_id == key.key_id  # type: ignore[union-attr]
    write_key_file(tmp_path / "key", key)
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    from_file = Settings(home=tmp_path, encryption_key_file=tmp_path / "key")
    assert keyring_from_settings(from_file).current.key_id == key.key_id  # type: ignore[union-attr]
    assert "secret" not in repr(key) and key.to_base64() not in repr(given)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"encryption_key": SecretStr("not base64!")}, "AIAAS_ENCRYPTION_KEY"),
        (
            {"encryption_key": SecretStr("c2hvcnQ=")},
            "AIAAS_ENCRYPTION_KEY: an encryption key must be 32 bytes",
        ),
        ({"encryption_key_file": Path("/nonexistent/key")}, "AIAAS_ENCRYPTION_KEY_FILE: cannot read"),
        (
            {"encryption_key": SecretStr("x"), "encryption_key_file": Path("/k")},
            "one of AIAAS_ENCRYPTION_KEY and AIAAS_ENCRYPTION_KEY_FILE",
        ),
    ],
)
def test_a_bad_key_setting_is_named(tmp_path: Path, settings: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidArgument, match=named):
        keyring_from_settings(Settings(home=tmp_path, **settings))  # type: ignore[arg-type]


def test_a_key_file_is_never_overwritten(tmp_path: Path) -> None:
    write_key_file(tmp_path / "key", EncryptionKey.generate())
    before = (tmp_path / "key").read_text()
    with pytest.raises(InvalidArgument, match="never overwritten"):
        write_key_file(tmp_path / "key", EncryptionKey.generate())
    assert (tmp_path / "key").read_text() == before


def test_the_encryption_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    for name in [n for n in os.environ if n.startswith("AIAAS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AIAAS_HOME", str(home))
    runner = CliRunner()
    assert runner.invoke(app, ["encryption", "new-key", str(tmp_path / "k1")]).exit_code == 0
    assert runner.invoke(app, ["encryption", "new-key", str(tmp_path / "k2")]).exit_code == 0
    k1 = EncryptionKey.from_file(tmp_path / "k1", source="k1")
    k2 = EncryptionKey.from_file(tmp_path / "k2", source="k2")
    plain = FileArtifactStore(home / "artifacts").put(b"plain")
    sealed = FileArtifactStore(home / "artifacts", Keyring(k1)).put(DATA)

    monkeypatch.setenv("AIAAS_ENCRYPTION_KEY_FILE", str(tmp_path / "k1"))
    status = runner.invoke(app, ["encryption", "status", "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output) == {"configured_key_id": k1.key_id, "blobs": {k1.key_id: 1, "plain": 1}}
    assert encryption_census(FileArtifactStore(home / "artifacts")) == {k1.key_id: 1, "plain": 1}

    done = runner.invoke(app, ["encryption", "rotate", "--new-key-file", str(tmp_path / "k2")])
    assert done.exit_code == 0, done.output
    assert "re-encrypted 2 blob(s)" in done.output
    assert encryption_census(FileArtifactStore(home / "artifacts")) == {k2.key_id: 2}
    new = FileArtifactStore(home / "artifacts", Keyring(k2))
    assert (new.get(plain), new.get(sealed)) == (b"plain", DATA)

    # With the old key configured and the store rotated, a second rotation to k1 cannot open anything.
    monkeypatch.setenv("AIAAS_ENCRYPTION_KEY_FILE", str(tmp_path / "k1"))
    back = runner.invoke(app, ["encryption", "rotate", "--new-key-file", str(tmp_path / "k1")])
    assert back.exit_code == 1
    assert "left as it was" in back.output


@pytest.mark.parametrize("given", ["key", "file"])
def test_training_workers_get_the_control_planes_key(
    tmp_path: Path, key: EncryptionKey, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    from aiaas.api.app import build_scheduler

    write_key_file(tmp_path / "key", key)
    settings = (
        Settings(home=tmp_path, encryption_key=SecretStr(key.to_base64()))
        if given == "key"
        else Settings(home=tmp_path, encryption_key_file=tmp_path / "key")
    )
    # Whatever the environment says, the workers get the key this control plane was given.
    monkeypatch.setenv("AIAAS_ENCRYPTION_KEY", "stale")
    monkeypatch.setenv("AIAAS_ENCRYPTION_KEY_FILE", "/stale")
    env = build_scheduler(settings, jobs=None).env  # type: ignore[arg-type]
    worker = {k: v for k, v in env.items() if k.startswith("AIAAS_ENCRYPTION")}
    monkeypatch.delenv("AIAAS_ENCRYPTION_KEY")
    monkeypatch.delenv("AIAAS_ENCRYPTION_KEY_FILE")
    for name, value in worker.items():
        monkeypatch.setenv(name, value)
    assert keyring_from_settings(Settings(home=tmp_path)).current.key_id == key.key_id  # type: ignore[union-attr]
