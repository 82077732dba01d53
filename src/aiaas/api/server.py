"""Run the control plane with uvicorn."""

from __future__ import annotations

from aiaas.api.app import create_app
from aiaas.config import Settings
from aiaas.httpserver import configure_logging, serve
from aiaas.tls import server_tls

__all__ = ["run"]


def run(settings: Settings) -> None:
    """Serve the REST API until SIGINT/SIGTERM (HTTPS with ``AIAAS_TLS_CERT_FILE``).

    Raises:
        aiaas.errors.InvalidArgument: the TLS certificate or key cannot be used.
    """
    tls = server_tls(settings)  # before anything starts: a bad certificate is a message
    configure_logging()
    serve(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        banner="aiaas control plane listening on {url} (API docs: {url}/docs)",
        tls=tls,
    )
