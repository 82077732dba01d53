"""Importing Hugging Face model folders through the control plane: SDK, CLI and plain HTTP."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from aiaas.errors import InvalidArgument
from aiaas.formats import read_folder
from aiaas.sdk import Client
from tests._auth import AUTH
from tests._hf_models import make_causal_lm, make_embedder
from tests._servers import ServerProcess, free_port
from tests.conftest import server_environment
from tests.e2e.conftest import start_api

#: Small enough to exceed with one made-up file, far above the tiny test models.
UPLOAD_LIMIT = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    home = tmp_path_factory.mktemp("folders")
    env = server_environment(home, f"sqlite:///{home / 'aiaas.db'}")
    env["AIAAS_MAX_UPLOAD_BYTES"] = str(UPLOAD_LIMIT)
    server = start_api(env, home, free_port())
    try:
        yield server, env
    finally:
        server.stop()


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"lm": make_causal_lm(root / "lm"), "embedder": make_embedder(root / "embedder")}


def test_sdk_registers_a_causal_lm_folder_and_downloads_it_back(
    api: tuple[ServerProcess, dict[str, str]], folders: dict[str, Path]
) -> None:
    with Client(api[0].url) as client:
        version = client.register_model("sdk-lm", str(folders["lm"]), description="tiny gpt2")
        assert (version.version, version.flavor) == (1, "hf-causal-lm")
        assert version.signature["parameters"]["architecture"] == "GPT2LMHeadModel"
        archive = client.download_artifact("sdk-lm", 1)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert files == read_folder(folders["lm"])


def test_cli_registers_an_embedding_folder(
    api: tuple[ServerProcess, dict[str, str]], folders: dict[str, Path]
) -> None:
    server, env = api
    result = subprocess.run(
        [sys.executable, "-m", "aiaas.cli", "--url", server.url, "register", str(folders["embedder"]),
         "--name", "cli-embedder", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    version = orjson.loads(result.stdout)
    assert version["flavor"] == "hf-embedding"
    assert version["signature"]["outputs"][0]["shape"] == [-1, 32]


def test_bad_folders_get_a_400_naming_the_problem(
    api: tuple[ServerProcess, dict[str, str]], folders: dict[str, Path]
) -> None:
    url = f"{api[0].url}/api/v1/models/bad/versions"
    files = read_folder(folders["lm"])

    def upload(parts: dict[str, bytes], metadata: str = "{}") -> httpx.Response:
        return httpx.post(
            url, files=[("files", (p, d, "application/octet-stream")) for p, d in parts.items()],
            data={"metadata": metadata}, timeout=60,
         headers=AUTH,)  # fmt: skip

    no_config = upload({k: v for k, v in files.items() if k != "config.json"})
    assert no_config.status_code == 400
    assert "no config.json" in no_config.json()["error"]["message"]
    pickled = upload({**files, "pytorch_model.bin": b"\x80\x04K\x01."})
    assert pickled.status_code == 400
    assert pickled.json()["error"]["details"]["value"] == "pytorch_model.bin"
    escaping = upload({**files, "../config.json": b"{}"})
    assert escaping.status_code == 400
    unknown = upload({**files, "config.json": orjson.dumps({"model_type": "nope", "architectures": ["X"]})})
    assert unknown.status_code == 400
    flavor = upload(files, '{"flavor": "sklearn"}')
    assert flavor.status_code == 400 and "metadata.flavor" in flavor.json()["error"]["message"]
    huge = upload({**files, "extra.safetensors": b"\0" * (UPLOAD_LIMIT + 1)})
    assert huge.status_code == 413
    assert (
        httpx.get(f"{api[0].url}/api/v1/models/bad", timeout=10, headers=AUTH).status_code == 404
    )  # nothing stored


def test_sdk_refuses_a_folder_with_pickle_weights_before_uploading(
    api: tuple[ServerProcess, dict[str, str]], folders: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "old-style"
    folder.mkdir()
    for name, data in read_folder(folders["lm"]).items():
        (folder / name).write_bytes(data)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    with Client(api[0].url) as client, pytest.raises(InvalidArgument, match="pickle"):
        client.register_model("old-style", str(folder))
