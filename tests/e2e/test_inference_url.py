"""Where the SDK sends predictions, and what it says when nothing listens there.

The control plane reports its inference server's URL on ``GET /api/v1/health``; a client
given only the control plane asks it once, and an explicit URL or ``AIAAS_INFERENCE_URL``
wins. A refused connection is reported as such, at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiaas.errors import Unavailable
from aiaas.sdk import Client
from tests._auth import AUTH
from tests._servers import ServerProcess, free_port, spawn


@pytest.fixture(autouse=True)
def _no_inference_url_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIAAS_INFERENCE_URL", "AIAAS_INFERENCE_PORT", "AIAAS_HOST"):
        monkeypatch.delenv(name, raising=False)


def _control_plane(tmp_path: Path, **settings: str) -> Iterator[ServerProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_")}
    env.update(AIAAS_HOME=str(tmp_path), PYTHONUNBUFFERED="1", **settings)
    port = free_port()
    server = spawn(
        ["-m", "aiaas.api", "--port", str(port)],
        env=env,
        ready_url=f"http://127.0.0.1:{port}/api/v1/health",
        log=tmp_path / "api.log",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def wildcard_control_plane(tmp_path: Path) -> Iterator[ServerProcess]:
    """Started alone on every interface, told only its inference server's port."""
    yield from _control_plane(tmp_path, AIAAS_HOST="0.0.0.0", AIAAS_INFERENCE_PORT="18080")


@pytest.fixture
def pointed_control_plane(tmp_path: Path) -> Iterator[ServerProcess]:
    """Started alone and told its inference server's URL."""
    yield from _control_plane(tmp_path, AIAAS_INFERENCE_URL="http://inference.internal:9000/")


def test_a_control_plane_told_its_inference_url_reports_it_and_the_sdk_uses_it(
    pointed_control_plane: ServerProcess,
) -> None:
    health = httpx.get(f"{pointed_control_plane.url}/api/v1/health", headers=AUTH).json()
    assert health["inference_url"] == "http://inference.internal:9000"
    with Client(pointed_control_plane.url) as client:
        assert client.inference_url == "http://inference.internal:9000"
    schema = httpx.get(f"{pointed_control_plane.url}/openapi.json", headers=AUTH).json()["components"][
        "schemas"
    ]
    assert "inference_url" in schema["Health"]["properties"]


def test_on_every_interface_it_reports_the_host_the_client_reached_it_under(
    wildcard_control_plane: ServerProcess,
) -> None:
    port = wildcard_control_plane.url.rsplit(":", 1)[1]
    for host in ("127.0.0.1", "localhost"):
        with Client(f"http://{host}:{port}") as client:
            assert client.inference_url == f"http://{host}:18080", "0.0.0.0 is no address to call"


def test_an_explicit_url_or_aiaas_inference_url_wins_and_nothing_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # no control plane: asking would fail
    with Client(nobody, inference_url="http://given:1/") as client:
        assert client.inference_url == "http://given:1"
    monkeypatch.setenv("AIAAS_INFERENCE_URL", "http://from-env:2")
    with Client(nobody) as client:
        assert client.inference_url == "http://from-env:2"
    with Client(nobody, inference_url="http://given:1") as client:
        assert client.inference_url == "http://given:1"


def test_without_a_control_plane_to_ask_the_error_says_how_to_give_the_url() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    with Client(nobody) as client, pytest.raises(Unavailable) as info:
        client.predict("iris", [[1.0, 2.0, 3.0, 4.0]])
    message = info.value.message
    assert f"cannot connect to the control plane at {nobody}: connection refused" in message
    assert "inference_url=" in message and "AIAAS_INFERENCE_URL" in message
    assert info.value.details["reason"] == "connection refused"


def test_a_refused_inference_connection_is_reported_at_once_as_refused() -> None:
    # Regression: wait_until_served took a refused connection for "not served yet", polled
    # for its whole timeout and blamed the server's log.
    closed = f"http://127.0.0.1:{free_port()}"
    expected = f"cannot connect to the inference server at {closed}: connection refused; is it running?"
    with Client(f"http://127.0.0.1:{free_port()}", inference_url=closed) as client:
        with pytest.raises(Unavailable, match=expected):
            client.served_version("iris")
        with pytest.raises(Unavailable, match=expected):
            client.wait_until_served("iris", 1, timeout=30)
        with pytest.raises(Unavailable, match=expected) as info:
            client.infer_json("iris", {"instances": [[1.0, 2.0]]}, protocol="v1")
    assert info.value.code == "UNAVAILABLE" and info.value.details["url"] == closed
