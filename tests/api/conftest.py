"""A control plane process with small limits, shared by the tests of ``aiaas.api``.

It runs with authentication on, as every test server does (``tests/_auth.py``), and limits small
enough for a test to go over them: bodies, the body read timeout and dataset size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests._api import api_error as api_error  # the tests here import it from this module
from tests._auth import ADMIN_KEY
from tests._servers import ServerProcess, free_port
from tests.conftest import DATABASES, fresh_database, server_environment
from tests.e2e.conftest import start_api

API_KEY = ADMIN_KEY  # the test servers' admin key (tests/_auth.py)
MAX_API_BODY_BYTES = 64 * 1024
MAX_DATASET_CELLS = 10_000
BODY_READ_TIMEOUT_S = 1.0


@dataclass
class ControlPlane:
    server: ServerProcess
    http: httpx.Client
    home: Path

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session", params=DATABASES)
def control_plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    home = tmp_path_factory.mktemp("api")
    with fresh_database(request.param, home, migrated=True) as url:
        env = server_environment(home, url) | {
            "AIAAS_MAX_API_BODY_BYTES": str(MAX_API_BODY_BYTES),
            "AIAAS_MAX_DATASET_CELLS": str(MAX_DATASET_CELLS),
            "AIAAS_BODY_READ_TIMEOUT_S": str(BODY_READ_TIMEOUT_S),
        }
        server = start_api(env, home, free_port())
        http = httpx.Client(
            base_url=f"{server.url}/api/v1", headers={"authorization": f"Bearer {API_KEY}"}, timeout=60
        )
        try:
            yield ControlPlane(server=server, http=http, home=home)
        finally:
            http.close()
            server.stop()
