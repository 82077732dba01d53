"""Running an ASGI app with uvicorn the way both aiaas servers need it.

Both announce the address they really bound (``aiaas up`` and users wait for that line,
and port 0 works), and both stop on SIGINT or SIGTERM by draining in-flight requests and
returning normally, so the caller's clean-up runs.
"""

from __future__ import annotations

import logging
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

__all__ = ["GRACEFUL_SHUTDOWN_S", "PROMETHEUS_CONTENT_TYPE", "allowed_methods", "configure_logging", "serve"]

#: How long in-flight requests get to finish once a shutdown signal arrived.
GRACEFUL_SHUTDOWN_S = 10
#: The media type of both servers' ``/metrics`` (Prometheus text format 0.0.4).
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, printing one line with the address it really bound."""

    def __init__(self, config: uvicorn.Config, banner: str) -> None:
        super().__init__(config)
        self.banner = banner

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
        scheme = "https" if self.config.is_ssl else "http"
        print(self.banner.format(url=f"{scheme}://{shown}:{port}"), flush=True)


def serve(
    app: Any, *, host: str, port: int, banner: str, tls: ssl.SSLContext | None = None, **options: Any
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; ``banner`` is printed with ``{url}`` filled in.

    With ``tls`` (see :func:`aiaas.tls.server_context`, built and checked beforehand so that a
    bad certificate is a message, not a traceback from inside uvicorn) it serves HTTPS only.
    """
    if tls is not None:
        options["ssl_context_factory"] = lambda config, default: tls
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **options,
    )
    with _signals_return_quietly():
        _AnnouncingServer(config, banner).run()


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route takes on the request's path, for a 405's ``Allow``.

    A path is often served by several routes, one per method, so the route that matched
    first (whose methods Starlette puts in ``Allow``) does not know them all.
    """
    allowed = []
    for method in _METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed


@contextmanager
def _signals_return_quietly() -> Iterator[None]:
    """Make uvicorn's re-raise of SIGINT/SIGTERM after its graceful shutdown a no-op.

    uvicorn handles the signals itself and, once drained, raises them again for the
    handlers that were there before it; with the defaults that is a KeyboardInterrupt
    traceback, or an abrupt kill that would skip the caller's clean-up.
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


def configure_logging() -> None:
    """Send the ``aiaas`` loggers to stderr at INFO (once), so a server's decisions show in its log."""
    root = logging.getLogger("aiaas")
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
