"""The content-addressed artifact store: digests, deduplication, verification, atomic writes."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiaas.errors import ArtifactCorrupted, InvalidArgument, NotFound
from aiaas.store import FileArtifactStore, open_artifact_store
from aiaas.store import artifacts as artifacts_module


@pytest.fixture
def store(tmp_path: Path) -> FileArtifactStore:
    return FileArtifactStore(tmp_path / "artifacts")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_returns_the_sha256_hex_and_get_returns_the_bytes(store: FileArtifactStore) -> None:
    data = b"\x08\x07onnx model bytes"
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.get(digest) == data
    assert store.exists(digest)
    assert store.path(digest) == store.root / "sha256" / digest[:2] / digest


def test_empty_blob_round_trips(store: FileArtifactStore) -> None:
    assert store.get(store.put(b"")) == b""


def test_same_bytes_are_stored_once(store: FileArtifactStore) -> None:
    first = store.put(b"same")
    second = store.put(b"same")
    other = store.put(b"different")
    assert first == second != other
    assert _files(store.root) == sorted([store.path(first), store.path(other)])


def test_put_leaves_no_temporary_files(store: FileArtifactStore) -> None:
    digests = {store.put(bytes([i]) * 1000) for i in range(5)}
    store.put(bytes([0]) * 1000)
    files = _files(store.root)
    assert {p.name for p in files} == digests
    assert all(re.fullmatch(r"[0-9a-f]{64}", p.name) for p in files)


def test_failed_write_leaves_neither_a_blob_nor_a_temporary_file(
    store: FileArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifacts_module.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.put(b"never stored")
    assert _files(store.root) == []
    assert not store.exists(hashlib.sha256(b"never stored").hexdigest())


def test_flipped_byte_is_caught_on_get(store: FileArtifactStore) -> None:
    digest = store.put(b"precious weights")
    path = store.path(digest)
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactCorrupted, match=digest) as info:
        store.get(digest)
    assert info.value.code == "ARTIFACT_CORRUPTED"
    assert info.value.details == {"digest": digest, "actual": hashlib.sha256(bytes(data)).hexdigest()}


def test_putting_the_same_bytes_again_repairs_a_corrupted_blob(store: FileArtifactStore) -> None:
    digest = store.put(b"precious weights")
    store.path(digest).write_bytes(b"garbage")
    assert store.put(b"precious weights") == digest
    assert store.get(digest) == b"precious weights"


def test_deleted_blob_is_not_found(store: FileArtifactStore) -> None:
    digest = store.put(b"soon gone")
    store.path(digest).unlink()
    assert not store.exists(digest)
    with pytest.raises(NotFound, match=digest) as info:
        store.get(digest)
    assert info.value.details == {"digest": digest}


@pytest.mark.parametrize("digest", ["../../etc/passwd", "ABC", "A" * 64, "0" * 63, ""])
def test_malformed_digest_is_an_invalid_argument(store: FileArtifactStore, digest: str) -> None:
    with pytest.raises(InvalidArgument, match="64 lowercase hex"):
        store.get(digest)


def test_open_artifact_store_takes_a_plain_path(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "plain"))
    assert isinstance(store, FileArtifactStore)
    assert store.root == tmp_path / "plain"
    assert store.get(store.put(b"x")) == b"x"


def test_open_artifact_store_takes_a_file_url(tmp_path: Path) -> None:
    store = open_artifact_store(f"file://{tmp_path / 'by-url'}")
    assert isinstance(store, FileArtifactStore)
    assert store.root == tmp_path / "by-url"


@pytest.mark.parametrize("url", ["s3://bucket/prefix", "gs://bucket", "http://host/artifacts"])
def test_unsupported_scheme_is_an_invalid_argument(url: str) -> None:
    scheme = url.split("://")[0]
    with pytest.raises(InvalidArgument, match=f"scheme '{scheme}' is not supported") as info:
        open_artifact_store(url)
    assert info.value.details["field"] == "artifact_root"


# -- temporary files of killed writers ----------------------------------------------------

#: A writer that stops inside ``put`` (after creating its temporary file, before the rename),
#: says so, and finishes when a line arrives on its stdin.
_WRITER = """
import os, sys
from aiaas.store import artifacts
real_fsync = os.fsync
def paused(fd):
    print("writing", flush=True)
    sys.stdin.readline()
    real_fsync(fd)
artifacts.os.fsync = paused
store = artifacts.FileArtifactStore(sys.argv[1])
print(store.put(b"model bytes " * 1000), flush=True)
"""


def _writer(root: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    return proc


def _temp_files(root: Path) -> list[Path]:
    return sorted(root.glob("sha256/*/.tmp-*"))


def test_a_writer_killed_midway_leaves_a_temp_file_the_sweep_removes(store: FileArtifactStore) -> None:
    kept = store.put(b"kept")
    proc = _writer(store.root)
    proc.kill()
    proc.communicate(timeout=30)
    assert len(_temp_files(store.root)) == 1  # what a killed upload leaves behind
    assert store.sweep_temp_files() == 1
    assert _temp_files(store.root) == []
    assert store.get(kept) == b"kept"
    assert [b.digest for b in store.blobs()] == [kept]


def test_the_sweep_spares_the_temp_file_of_a_live_writer(store: FileArtifactStore) -> None:
    proc = _writer(store.root)
    try:
        assert store.sweep_temp_files() == 0
        assert len(_temp_files(store.root)) == 1
    finally:
        out, _ = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 0
    digest = out.strip()
    assert store.get(digest) == b"model bytes " * 1000
    assert _temp_files(store.root) == []


def test_put_of_a_stored_blob_renews_its_modification_time(store: FileArtifactStore) -> None:
    digest = store.put(b"again")
    old = time.time() - 7200
    os.utime(store.path(digest), (old, old))
    assert store.put(b"again") == digest
    (blob,) = list(store.blobs())
    assert blob.modified_at > old + 3600


def test_delete_blobs_removes_only_what_it_is_told(store: FileArtifactStore) -> None:
    a, b = store.put(b"a"), store.put(b"bb")
    assert [x.digest for x in store.delete_blobs(lambda blob: blob.digest == a, dry_run=True)] == [a]
    assert store.exists(a)
    deleted = store.delete_blobs(lambda blob: blob.digest == a)
    assert [(x.digest, x.size_bytes) for x in deleted] == [(a, 1)]
    assert not store.exists(a)
    assert store.get(b) == b"bb"
