"""A served model reads no file of the server: replicas run in an empty private folder, and a
version that names a file (stored before registration refused that) fails to load instead of
answering with the file's bytes."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from aiaas.formats import ModelPackage, Signature, TensorSpec
from tests._external_data import SIZE, file_readers
from tests._servers import wait_until
from tests.serving.conftest import IrisModel, Stack
from tests.serving.test_replicas import replica_pids


def _server_file(stack: Stack) -> tuple[str, bytes]:
    """A file in the inference server's working directory, as the server sees it."""
    cwd = Path(psutil.Process(stack.server.proc.pid).cwd())
    for path in sorted(cwd.iterdir()):
        if path.is_file() and path.stat().st_size >= SIZE:
            return path.name, path.read_bytes()[:SIZE]
    pytest.skip(f"no file of {SIZE} bytes or more in the server's working directory {cwd}")


def test_replicas_run_in_an_empty_private_folder(
    stack: Stack, iris_model: Callable[[float], IrisModel]
) -> None:
    stack.registry.register_version("cwd", iris_model(0.6).package)
    stack.deployments.create("cwd", model="cwd")
    stack.wait_served("cwd", 1)
    wait_until(lambda: len(replica_pids(stack, "cwd", 1)) == 1, timeout=30, what="a replica")
    server_cwd = psutil.Process(stack.server.proc.pid).cwd()
    for pid in replica_pids(stack, "cwd", 1):
        cwd = psutil.Process(pid).cwd()
        assert cwd != server_cwd
        assert os.listdir(cwd) == []
        info = os.stat(cwd)
        assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()


@pytest.mark.parametrize("case", ["initializer", "constant attribute", "If subgraph initializer"])
def test_a_stored_version_naming_a_server_file_fails_to_load(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    name, secret = _server_file(stack)
    data, _ = file_readers(name)[case]
    spec = TensorSpec("x", "UINT8", (SIZE,))
    package = ModelPackage(
        onnx=data,
        flavor="onnx",
        signature=Signature(inputs=(spec,), outputs=(TensorSpec("y", "UINT8", (SIZE,)),)),
    )
    # Stored as a release that did not check external data would have stored it.
    deployment = "reader-" + case.split()[0].lower()
    with monkeypatch.context() as patch:
        patch.setattr(ModelPackage, "check", lambda self: None)
        stack.registry.register_version(deployment, package)
    stack.deployments.create(deployment, model=deployment)

    wait_until(
        lambda: stack.http.get(f"/v2/models/{deployment}/ready").status_code in (200, 503),
        timeout=30,
        what=f"deployment {deployment!r} to be known to the server",
    )
    body: dict[str, Any] = {
        "inputs": [{"name": "x", "datatype": "UINT8", "shape": [SIZE], "data": np.zeros(SIZE, int).tolist()}]
    }
    r = stack.http.post(f"/v2/models/{deployment}/infer", json=body)
    if r.status_code == 200:
        answered = bytes(r.json()["outputs"][0]["data"])
        pytest.fail(f"the model loaded and answered {answered!r} (the server's {name}: {secret!r})")
    assert r.status_code == 503, r.text
    assert "cannot load" in r.json()["error"]
    assert stack.http.get(f"/v2/models/{deployment}/ready").status_code == 503
    assert stack.http.get("/v2/health/ready").status_code == 200
