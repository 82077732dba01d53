"""The control plane app in the test process, with the limits and API key of ``tests/api``.

The same app as the server process of ``tests/api/conftest.py`` (``create_app`` with the same
settings, its lifespan opening the database and services), reached through
``httpx.ASGITransport`` (``tests/_asgi.py``): request handling, validation and errors without a
server process. The training scheduler polls once an hour here, so a job a test submits stays
queued rather than starting a worker process (the in-process tier starts none).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aiaas.api import create_app
from aiaas.config import Settings
from aiaas.sdk import Client
from tests._asgi import AppTransport
from tests._auth import write_admin_key
from tests.api.conftest import API_KEY, BODY_READ_TIMEOUT_S, MAX_API_BODY_BYTES, MAX_DATASET_CELLS
from tests.conftest import DATABASES, fresh_database

#: The scheduler's poll interval here: longer than any test session.
SCHEDULER_INTERVAL_S = 3600.0
#: The URL the in-process app is reached under (no socket is opened for it).
APP_URL = "http://control-plane.test"


@dataclass
class AppControlPlane:
    """The control plane app and clients that reach it in this process."""

    http: httpx.Client
    transport: AppTransport
    home: Path

    def sdk(self) -> Client:
        """An SDK client of this app, with the API key."""
        return Client(APP_URL, API_KEY, transport=self.transport)


@pytest.fixture(scope="session", params=DATABASES)
def app_control_plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppControlPlane]:
    home = tmp_path_factory.mktemp("api-app")
    with fresh_database(request.param, home, migrated=True) as url:
        settings = Settings(
            home=home,
            database_url=url,
            max_api_body_bytes=MAX_API_BODY_BYTES,
            max_dataset_cells=MAX_DATASET_CELLS,
            body_read_timeout_s=BODY_READ_TIMEOUT_S,
            scheduler_interval_s=SCHEDULER_INTERVAL_S,
        )
        write_admin_key(home)  # registered by the app's first start, as in a server process
        transport = AppTransport(create_app(settings))
        http = httpx.Client(
            transport=transport,
            base_url=f"{APP_URL}/api/v1",
            headers={"authorization": f"Bearer {API_KEY}"},
            timeout=60,
        )
        try:
            yield AppControlPlane(http=http, transport=transport, home=home)
        finally:
            http.close()
            transport.shutdown()
