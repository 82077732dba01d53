"""The inference server process: migrate, start the model pool, serve HTTP until a signal.

It runs the DB migrations itself, so it can start before the control plane on an empty
``AIAAS_HOME``, and it needs nothing from the control plane afterwards: the desired state
is read from the DB, and inference goes on while the DB or the control plane is down.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn

from aiaas.config import Settings
from aiaas.serving.app import create_app, create_pool
from aiaas.store import Database

__all__ = ["run"]

logger = logging.getLogger("aiaas.serving")

#: How long in-flight requests get to finish once a shutdown signal arrived.
GRACEFUL_SHUTDOWN_S = 10


class _Server(uvicorn.Server):
    """uvicorn's server, announcing the address it really bound (port 0 included)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        host, port = self.config.host, self.config.port
        for server in self.servers:
            for sock in server.sockets:
                port = int(sock.getsockname()[1])
                break
        shown = f"[{host}]" if ":" in host else host
        print(f"aiaas inference server listening on http://{shown}:{port}", flush=True)


def run(settings: Settings) -> None:
    """Run the inference server in this process until SIGINT or SIGTERM.

    Both signals stop it gracefully: the listening socket closes, in-flight requests get
    :data:`GRACEFUL_SHUTDOWN_S` to finish, the reconciler stops, and ``run`` returns.

    Raises:
        aiaas.errors.Unavailable: the metadata DB cannot be reached to run migrations.
    """
    _configure_logging()
    Database(settings.resolved_database_url()).upgrade()
    pool = create_pool(settings)
    app = create_app(settings, pool)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.inference_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    pool.start()
    try:
        with _signals_return_quietly():
            _Server(config).run()
    finally:
        pool.stop()
        pool.deployments.db.dispose()
    logger.info("inference server stopped")


@contextmanager
def _signals_return_quietly() -> Iterator[None]:
    """Make uvicorn's re-raise of SIGINT/SIGTERM after its graceful shutdown a no-op.

    uvicorn handles the signals itself and, once drained, raises them again for the
    handlers that were there before it; with the defaults that is a KeyboardInterrupt
    or an abrupt kill that would skip stopping the pool.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ignore(signum: int, frame: FrameType | None) -> None:
        return None

    previous = {sig: signal.signal(sig, ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _configure_logging() -> None:
    root = logging.getLogger("aiaas")
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
