"""The whole platform as a user runs it: control plane and inference server processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiaas.sdk import Client
from tests._servers import ServerProcess, free_port, spawn
from tests.conftest import DATABASES, fresh_database, server_environment


@dataclass
class Platform:
    home: Path
    env: dict[str, str]
    api: ServerProcess
    inference: ServerProcess
    client: Client

    @property
    def api_url(self) -> str:
        return self.api.url

    @property
    def inference_url(self) -> str:
        return self.inference.url

    def start_api(self) -> ServerProcess:
        """(Re)start the control plane on its port, as after a crash."""
        self.api = start_api(self.env, self.home, int(self.api.url.rsplit(":", 1)[1]))
        return self.api


def start_api(env: dict[str, str], home: Path, port: int) -> ServerProcess:
    return spawn(
        ["-m", "aiaas.api", "--port", str(port)],
        env=env,
        ready_url=f"http://127.0.0.1:{port}/api/v1/health",
        log=home / f"api-{port}.log",
    )


def start_inference(env: dict[str, str], home: Path, port: int) -> ServerProcess:
    return spawn(
        ["-m", "aiaas.serving", "--port", str(port)],
        env=env,
        ready_url=f"http://127.0.0.1:{port}/v2/health/ready",
        log=home / f"serve-{port}.log",
    )


@pytest.fixture(scope="module", params=DATABASES)
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Both servers on free ports, sharing one home and database (SQLite, then PostgreSQL)."""
    home = tmp_path_factory.mktemp("platform")
    with fresh_database(request.param, home, migrated=True) as url:
        inference_port = free_port()
        # As `aiaas up` does: the control plane knows where its inference server listens.
        env = {**server_environment(home, url), "AIAAS_INFERENCE_PORT": str(inference_port)}
        api = start_api(env, home, free_port())
        inference = start_inference(env, home, inference_port)
        client = Client(api.url, inference_url=inference.url)
        p = Platform(home=home, env=env, api=api, inference=inference, client=client)
        try:
            yield p
        finally:
            client.close()
            p.inference.stop()
            p.api.stop()
