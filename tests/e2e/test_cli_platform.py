"""``make run`` on ports of the user's choosing, and what ``aiaas up`` says when a port is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from aiaas.cli import app
from tests._auth import AUTH
from tests._servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, headers=AUTH).status_code == 200
    except httpx.HTTPError:
        return False


def test_make_run_takes_the_ports(tmp_path: Path) -> None:
    port, inference_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AIAAS_") and k not in ("MAKEFLAGS", "MFLAGS")
    }
    env.update(AIAAS_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1", COLUMNS="200")
    log = tmp_path / "make-run.log"
    with open(log, "wb") as out:
        # The venv running the tests, never a reinstall: -o keeps make from remaking the stamp.
        proc = subprocess.Popen(
            [
                "make",
                "--no-print-directory",
                "-o",
                ".venv/.installed",
                "run",
                f"BIN={Path(sys.executable).parent}",
                f"PORT={port}",
                f"INFERENCE_PORT={inference_port}",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: (
                proc.poll() is not None
                or (
                    _answers(f"http://127.0.0.1:{port}/api/v1/health")
                    and _answers(f"http://127.0.0.1:{inference_port}/v2/health/ready")
                )
            ),
            timeout=180,
            what="make run's servers on the ports given",
        )
        assert proc.poll() is None, log.read_text()
        assert f"--port {port} --inference-port {inference_port}" in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches make and aiaas up alike
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_a_port_in_use_says_how_to_pick_another_under_make(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            app, ["up", "--port", str(port), "--inference-port", str(free_port()), "--home", str(tmp_path)]
        )
    assert result.exit_code == 2
    message = " ".join(result.stderr.replace("│", " ").split())
    assert f"127.0.0.1:{port} is already in use" in message
    assert "aiaas up --port N" in message and "make run PORT=N" in message
