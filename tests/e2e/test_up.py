"""``aiaas up --demo``: what ``make run`` does on a fresh machine."""

from __future__ import annotations

import os
import signal
import socket
import stat
from pathlib import Path

import httpx
import psutil
import pytest
from typer.testing import CliRunner

from aiaas.cli.main import app
from aiaas.sdk import Client
from tests._auth import AUTH
from tests._servers import ServerProcess, free_port, spawn, wait_until


def _up(
    home: Path, port: int, inference_port: int, log: Path, *, demo: bool = True, dev: bool = False
) -> ServerProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_")}
    env.update(AIAAS_HOME=str(home), PYTHONUNBUFFERED="1", COLUMNS="200")
    server = spawn(
        ["-m", "aiaas.cli", "up", "--port", str(port), "--inference-port", str(inference_port)]
        + (["--demo"] if demo else [])
        + (["--dev"] if dev else []),
        env=env,
        ready_url=f"http://127.0.0.1:{port}/api/v1/health",
        log=log,
        timeout=180,
    )
    wait_until(lambda: "aiaas is up" in server.output() or not server.alive(), timeout=180, what="the demo")
    assert server.alive(), server.output()
    return server


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_up_demo_serves_predictions_and_stops_on_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIAAS_INFERENCE_URL", raising=False)
    monkeypatch.delenv("AIAAS_INFERENCE_PORT", raising=False)
    home = tmp_path / "home"  # does not exist yet: a fresh machine
    # As a user on that machine: no key given, so the SDK and CLI read the one the first start made.
    monkeypatch.delenv("AIAAS_API_KEY", raising=False)
    monkeypatch.setenv("AIAAS_HOME", str(home))
    port, inference_port = free_port(), free_port()
    server = _up(home, port, inference_port, tmp_path / "up.log")
    try:
        key_file = home / "admin.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, "the admin key is its owner's only"
        key = key_file.read_text().strip()
        assert server.output().count(key) == 1, "the first start prints the admin key, once"
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/models").status_code == 401, "auth is on"
        # Regression: given only the control plane on a port of its own, the SDK and CLI sent
        # predictions to :8080 and reported a timeout; they ask the control plane instead.
        with Client(f"http://127.0.0.1:{port}") as c:
            assert c.inference_url == f"http://127.0.0.1:{inference_port}"
            assert c.wait_until_served("iris", 1) == 1
            assert c.predict("iris", [[5.1, 3.5, 1.4, 0.2]])["label"].tolist() == [0]
        body = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
        predicted = CliRunner().invoke(
            app, ["--url", f"http://127.0.0.1:{port}", "predict", "iris", "--json"], input=body
        )
        assert predicted.exit_code == 0, predicted.output
        assert '"predictions"' in predicted.stdout
        out = server.output()
        assert "/v2/models/iris/infer" in out and "/v1/models/iris:predict" in out
        assert '"model_name":"iris","model_version":"1"' in out.replace(" ", "").replace("\n", "").replace(
            "│", ""
        )
        assert f"http://127.0.0.1:{port}/docs" in out
        assert (home / "aiaas.db").is_file(), "the embedded default database lives under AIAAS_HOME"
        with Client(f"http://127.0.0.1:{port}", inference_url=f"http://127.0.0.1:{inference_port}") as c:
            assert [d.name for d in c.list_deployments()] == ["iris"]
            assert c.predict("iris", [[5.1, 3.5, 1.4, 0.2]])["label"].tolist() == [0]
            # The demo's training job runs under the platform's scheduler and registers its model.
            (job,) = c.list_jobs()
            assert f"aiaas jobs logs -f {job.id}" in out
            job = c.wait_for_job(job.id, timeout=180)
            assert job.status == "succeeded", job.error
            assert c.get_version("iris-mlp", job.result_version or 0).lineage is not None
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.output()
    assert _port_closed(port) and _port_closed(inference_port), "Ctrl-C must stop both servers"

    # again on the same home: everything is still there and nothing is registered twice
    server = _up(home, port, inference_port, tmp_path / "up2.log")
    try:
        assert "already registered" in server.output()
        assert "aiaas_" not in server.output(), "a key is shown only when it is made"
        assert (home / "admin.key").read_text().strip() == key
        with Client(f"http://127.0.0.1:{port}", inference_url=f"http://127.0.0.1:{inference_port}") as c:
            assert [v.version for v in c.list_versions("iris")] == [1]
            assert len(c.list_jobs()) == 1
    finally:
        server.stop()
    assert server.proc.returncode == 0


def test_up_dev_runs_without_authentication_and_says_so_on_every_start(tmp_path: Path) -> None:
    port, inference_port = free_port(), free_port()
    home = tmp_path / "home"
    for attempt in ("first", "second"):
        server = _up(home, port, inference_port, tmp_path / f"up-{attempt}.log", demo=False, dev=True)
        try:
            wait_until(
                lambda server=server: server.output().count("AUTHENTICATION IS OFF") >= 3,
                timeout=60,
                what="up and both servers to say authentication is off",
            )
            assert httpx.get(f"http://127.0.0.1:{port}/api/v1/models", timeout=10).status_code == 200
            ready = httpx.get(f"http://127.0.0.1:{inference_port}/v1/models", timeout=10)
            assert ready.status_code == 200, ready.text
            assert not (home / "admin.key").exists(), "no key is made with authentication off"
        finally:
            server.stop()


def test_servers_do_not_outlive_a_killed_up(tmp_path: Path) -> None:
    port, inference_port = free_port(), free_port()
    server = _up(tmp_path / "home", port, inference_port, tmp_path / "up.log", demo=False)
    server.kill()  # SIGKILL: up cannot stop its servers itself
    wait_until(
        lambda: _port_closed(port) and _port_closed(inference_port),
        timeout=30,
        what="both servers to stop after up was killed",
    )


def _server_pid(up: ServerProcess, module: str, *, besides: frozenset[int] = frozenset()) -> int | None:
    """The live child of ``up`` running ``python -m module``, other than those in ``besides``."""
    for child in psutil.Process(up.proc.pid).children():
        try:
            running = child.cmdline()[-2:] == ["-m", module] and child.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            continue
        if running and child.pid not in besides:
            return child.pid
    return None


def test_a_crash_looping_control_plane_never_stops_the_inference_server(tmp_path: Path) -> None:
    # Regression: after 6 exits in a minute, up gave up and stopped the healthy inference
    # server with it. Here the control plane is killed each time it is started, 6 times.
    port, inference_port = free_port(), free_port()
    server = _up(tmp_path / "home", port, inference_port, tmp_path / "up.log", demo=False)
    inference = f"http://127.0.0.1:{inference_port}"
    try:
        inference_pid = _server_pid(server, "aiaas.serving")
        assert inference_pid is not None
        killed: set[int] = set()
        for _ in range(6):
            wait_until(
                lambda: _server_pid(server, "aiaas.api", besides=frozenset(killed)) or not server.alive(),
                timeout=60,
                what="up to start the control plane again",
            )
            victim = _server_pid(server, "aiaas.api", besides=frozenset(killed))
            assert server.alive() and victim is not None, server.output()
            os.kill(victim, signal.SIGKILL)
            killed.add(victim)
            # Meanwhile predictions keep their server: the same process, ready throughout.
            assert httpx.get(f"{inference}/v2/health/ready", timeout=5, headers=AUTH).status_code == 200

        said = "the control plane was killed by SIGKILL (6 exits in the last minute)"
        wait_until(lambda: said in server.output() or not server.alive(), timeout=10, what=said)
        assert server.alive(), server.output()
        assert httpx.get(f"{inference}/v2/health/ready", timeout=5, headers=AUTH).status_code == 200
        out = server.output()
        assert "the inference server keeps running" in out
        delays = [
            float(line.split("restarting it in ")[1].split(" s")[0])
            for line in out.splitlines()
            if "restarting it in" in line
        ]
        assert delays == [0.25, 0.5, 1, 2, 4, 8], "the delay doubles while it keeps exiting"
        # Left alone, it comes back, and up says so.
        wait_until(
            lambda: "the control plane is back" in server.output() or not server.alive(),
            timeout=60,
            what="the control plane to be back",
        )
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5, headers=AUTH).status_code == 200
        assert _server_pid(server, "aiaas.serving") == inference_pid
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.output()
    assert _port_closed(port) and _port_closed(inference_port)
