"""Run the control plane with uvicorn."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from aiaas.api.app import create_app
from aiaas.config import Settings

__all__ = ["run"]


class _AnnouncingServer(uvicorn.Server):
    """Prints one line once the socket is bound, which is what ``aiaas up`` and users wait for."""

    def __init__(self, config: uvicorn.Config, banner: str) -> None:
        super().__init__(config)
        self.banner = banner

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self.banner, flush=True)


def run(settings: Settings, **uvicorn_options: Any) -> None:
    """Serve the REST API until SIGINT/SIGTERM."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        **uvicorn_options,
    )
    url = f"http://{settings.host}:{settings.port}"
    _AnnouncingServer(config, f"aiaas control plane listening on {url} (API docs: {url}/docs)").run()
