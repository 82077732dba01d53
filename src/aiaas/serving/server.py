"""The inference server process: migrate, start the model pool, serve HTTP until a signal.

It runs the DB migrations itself, so it can start before the control plane on an empty
``AIAAS_HOME``, and it needs nothing from the control plane afterwards: the desired state
is read from the DB, and inference goes on while the DB or the control plane is down.
"""

from __future__ import annotations

import logging

from aiaas.config import Settings
from aiaas.httpserver import configure_logging, serve
from aiaas.serving.app import create_app, create_pool
from aiaas.store import Database

__all__ = ["run"]

logger = logging.getLogger("aiaas.serving")


def run(settings: Settings) -> None:
    """Run the inference server in this process until SIGINT or SIGTERM.

    Both signals stop it gracefully: the listening socket closes, in-flight requests get
    :data:`aiaas.httpserver.GRACEFUL_SHUTDOWN_S` to finish, the reconciler stops, and ``run`` returns.

    Raises:
        aiaas.errors.Unavailable: the metadata DB cannot be reached to run migrations.
    """
    configure_logging()
    Database(settings.resolved_database_url()).upgrade()
    pool = create_pool(settings)
    app = create_app(settings, pool)
    pool.start()
    try:
        serve(
            app,
            host=settings.host,
            port=settings.inference_port,
            banner="aiaas inference server listening on {url}",
            loop="uvloop",
            http="httptools",
        )
    finally:
        pool.stop()
        pool.deployments.db.dispose()
    logger.info("inference server stopped")
