"""Encryption at rest with the real servers: the stored artifact holds no plain ONNX, the model
serves the same predictions, a wrong or old key is a clear error (never a prediction), and
``aiaas encryption rotate`` moves the store to a new key that the servers then serve with."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from aiaas.sdk import Client
from aiaas.store import EncryptionKey
from aiaas.store.encryption import write_key_file
from tests._auth import AUTH
from tests._models import iris, iris_classifier
from tests._servers import ServerProcess, free_port, wait_until
from tests.conftest import fresh_database, server_environment
from tests.e2e.conftest import start_api, start_inference


@pytest.fixture
def database(home: Path) -> Iterator[str]:
    # The artifact store is the same whatever the database: SQLite only.
    with fresh_database("sqlite", home, migrated=True) as url:
        yield url


def _blob_files(home: Path) -> list[Path]:
    return [p for p in (home / "artifacts").rglob("*") if p.is_file()]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiaas.cli", "encryption", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _infer(url: str, x: np.ndarray) -> httpx.Response:  # type: ignore[type-arg]
    body = {
        "inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.reshape(-1).tolist()}]
    }
    return httpx.post(f"{url}/v2/models/iris-sealed/infer", json=body, timeout=30, headers=AUTH)


def _refused_for_its_key(server: ServerProcess, x: np.ndarray, key_id: str) -> None:  # type: ignore[type-arg]
    """The deployment is answered with a 503 that names the key setting, never a prediction."""
    wait_until(lambda: _infer(server.url, x).status_code != 200 or None, timeout=30, what="a refusal")
    r = _infer(server.url, x)
    assert r.status_code == 503, r.text
    message = r.json()["error"]
    assert "AIAAS_ENCRYPTION_KEY_FILE" in message and f"key id {key_id}" in message, message
    assert "outputs" not in r.json()
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200 and server.alive()


def test_sealed_artifacts_serve_the_same_predictions_refuse_a_wrong_key_and_survive_rotation(
    home: Path, database: str, tmp_path: Path
) -> None:
    k1, k2 = EncryptionKey.generate(), EncryptionKey.generate()
    write_key_file(tmp_path / "k1", k1)
    write_key_file(tmp_path / "k2", k2)
    port = free_port()
    base = {**server_environment(home, database), "AIAAS_INFERENCE_PORT": str(port)}
    with_k1 = {**base, "AIAAS_ENCRYPTION_KEY_FILE": str(tmp_path / "k1")}
    with_k2 = {**base, "AIAAS_ENCRYPTION_KEY_FILE": str(tmp_path / "k2")}
    X, _ = iris()
    clf = iris_classifier()
    x = np.asarray(X[:20], dtype=np.float32)

    servers: list[ServerProcess] = []
    try:
        api = start_api(with_k1, home, free_port())
        servers.append(api)
        inference = start_inference(with_k1, home, port)
        servers.append(inference)
        with Client(api.url, inference_url=inference.url) as client:
            version = client.register_model("iris-sealed", clf, example=X[:5])
            client.deploy("iris-sealed", model="iris-sealed", version=1)
            client.wait_until_served("iris-sealed", 1)
            served = client.predict("iris-sealed", X)
            np.testing.assert_array_equal(served["label"], clf.predict(X))
            np.testing.assert_allclose(served["probabilities"], clf.predict_proba(X), rtol=1e-5, atol=1e-7)
            onnx = client.download_artifact("iris-sealed", 1)  # the control plane decrypts it

        # On disk: sealed under k1, and no piece of the serialized model in any stored file.
        assert onnx.startswith(b"\x08") and b"skl2onnx" in onnx
        stored = _blob_files(home)
        sealed_artifact = next(p for p in stored if p.name == version.artifact_digest)
        assert k1.key_id in _cli(with_k1, "status").stdout
        for piece in (b"skl2onnx", onnx[len(onnx) // 2 : len(onnx) // 2 + 32], onnx[:32]):
            assert all(piece not in p.read_bytes() for p in stored), piece
        assert len(sealed_artifact.read_bytes()) > len(onnx)
        first = _infer(inference.url, x)
        assert first.status_code == 200
        inference.stop()

        # A wrong key: a 503 naming the setting, never a prediction, and the server stays up.
        inference = start_inference(with_k2, home, port)
        servers.append(inference)
        _refused_for_its_key(inference, x, k1.key_id)
        inference.stop()
        api.stop()

        # Rotation, with the servers stopped: every blob under k2.
        rotated = _cli(with_k1, "rotate", "--new-key-file", str(tmp_path / "k2"))
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        status = json.loads(_cli(with_k2, "status", "--json").stdout)
        assert status == {"configured_key_id": k2.key_id, "blobs": {k2.key_id: len(stored)}}

        # The old key no longer opens anything ...
        inference = start_inference(with_k1, home, port)
        servers.append(inference)
        _refused_for_its_key(inference, x, k2.key_id)
        inference.stop()
        api = start_api(with_k1, home, free_port())
        servers.append(api)
        download = httpx.get(
            f"{api.url}/api/v1/models/iris-sealed/versions/1/artifact", timeout=30, headers=AUTH
        )
        assert download.status_code == 503, download.text
        assert download.json()["error"]["code"] == "ENCRYPTION_KEY"
        assert "AIAAS_ENCRYPTION_KEY_FILE" in download.json()["error"]["message"]
        api.stop()

        # ... and the new one serves the same predictions as before the rotation.
        inference = start_inference(with_k2, home, port)
        servers.append(inference)
        wait_until(lambda: _infer(inference.url, x).status_code == 200, timeout=60, what="iris under k2")
        after = _infer(inference.url, x)
        assert after.json()["outputs"] == first.json()["outputs"]
    finally:
        for server in servers:
            server.stop()


@pytest.mark.parametrize("server", ["aiaas.api", "aiaas.serving"])
def test_a_bad_key_stops_a_server_at_start_naming_the_setting(home: Path, database: str, server: str) -> None:
    env = {**server_environment(home, database), "AIAAS_ENCRYPTION_KEY": "c2hvcnQ="}  # 5 bytes
    done = subprocess.run(
        [sys.executable, "-m", server, "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "AIAAS_ENCRYPTION_KEY: an encryption key must be 32 bytes" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
