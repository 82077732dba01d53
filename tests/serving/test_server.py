"""The server process: command line, graceful stop, and serving on while the DB is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from aiaas.deployments import DeploymentService
from aiaas.registry import Registry
from aiaas.store import Database, open_artifact_store
from tests._auth import AUTH
from tests._servers import free_port, spawn, wait_until
from tests.conftest import PG_ADMIN_URL, _libpq
from tests.serving.conftest import IrisModel, artifact_root


def test_help_describes_the_server() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "aiaas.serving", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "Open Inference Protocol" in out.stdout
    assert "--port" in out.stdout
    assert "AIAAS_INFERENCE_PORT" in out.stdout


def test_invalid_setting_is_named_on_exit() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_")}
    out = subprocess.run(
        [sys.executable, "-m", "aiaas.serving", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 2
    assert "AIAAS_INFERENCE_PORT" in out.stderr


def _break_database(url: str) -> None:
    """Make the metadata DB unusable under the running server's feet."""
    if url.startswith("sqlite"):
        # Overwrite the file and its WAL companions in place: open connections see it too.
        db_file = Path(url.removeprefix("sqlite:///"))
        for path in (db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
            if path.exists():
                path.write_bytes(b"\xff" * max(path.stat().st_size, 4096))
        return
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def _infer(http: httpx.Client, x: np.ndarray[Any, Any]) -> httpx.Response:
    body = {
        "inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.reshape(-1).tolist()}]
    }
    return http.post("/v2/models/iris/infer", json=body)


def test_inference_goes_on_while_the_database_is_down_and_sigterm_stops_cleanly(
    home: Path,
    database_url: str,
    server_env: dict[str, str],
    tmp_path: Path,
    iris_model: Callable[[float], IrisModel],
    iris_x: np.ndarray[Any, Any],
) -> None:
    model = iris_model(1.0)
    db = Database(database_url)
    db.upgrade()
    registry = Registry(db, open_artifact_store(artifact_root(home)))
    registry.register_version("iris", model.package)
    DeploymentService(registry).create("iris", model="iris")
    db.dispose()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = spawn(
        ["-m", "aiaas.serving"],
        env={**server_env, "AIAAS_INFERENCE_PORT": str(port)},
        ready_url=f"{url}/v2/health/ready",
        log=tmp_path / "serve.log",
    )
    try:
        assert f"aiaas inference server listening on {url}" in server.output()
        with httpx.Client(base_url=url, timeout=30, headers=AUTH) as http:
            wait_until(lambda: _infer(http, iris_x).status_code == 200, timeout=30, what="iris to serve")

            _break_database(database_url)
            wait_until(
                lambda: "cannot read desired state" in server.output(),
                timeout=30,
                what="the reconciler to notice that the DB is gone",
            )

            r = _infer(http, iris_x)
            assert r.status_code == 200, r.text
            got = np.asarray(r.json()["outputs"][1]["data"]).reshape(-1, 3)
            np.testing.assert_allclose(got, model.proba(iris_x), rtol=1e-5, atol=1e-7)
            assert http.get("/v2/health/ready").status_code == 200
            assert http.get("/v2/models/iris/ready").status_code == 200
            assert http.get("/v2/models/iris").json()["versions"] == ["1"]
            # A version other than the routed one needs the DB: a clear 503, not a hang.
            pinned = http.get("/v2/models/iris/versions/2")
            assert pinned.status_code == 503
            assert pinned.json()["error"]

        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
        assert "inference server stopped" in server.output()
    finally:
        server.kill()
