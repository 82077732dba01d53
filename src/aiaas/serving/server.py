"""The inference server process: migrate, start the model pool, serve HTTP until a signal.

It runs the DB migrations itself, so it can start before the control plane on an empty
``AIAAS_HOME``, and it needs nothing from the control plane afterwards: the desired state
is read from the DB, and inference goes on while the DB or the control plane is down.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from aiaas.config import Settings
from aiaas.httpserver import configure_logging, serve
from aiaas.serving.app import create_app, create_pool
from aiaas.store import Database
from aiaas.tls import server_tls

__all__ = ["run"]

logger = logging.getLogger("aiaas.serving")


def run(settings: Settings) -> None:
    """Run the inference server in this process until SIGINT or SIGTERM.

    Both signals stop it gracefully: the listening socket closes, in-flight requests get
    :data:`aiaas.httpserver.GRACEFUL_SHUTDOWN_S` to finish, the reconciler stops, and ``run`` returns.

    With ``AIAAS_TLS_CERT_FILE`` it serves HTTPS only.

    Raises:
        aiaas.errors.Unavailable: the metadata DB cannot be reached to run migrations.
        aiaas.errors.InvalidArgument: the TLS certificate or key cannot be used.
    """
    tls = server_tls(settings)  # before anything starts: a bad certificate is a message
    configure_logging()
    _return_large_buffers_to_the_os()
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
            tls=tls,
            loop="uvloop",
            http="httptools",
            ws="none",  # no WebSocket endpoints: skips importing the websockets package
            proxy_headers=False,  # nothing reads the client address: no per-request rewrite
        )
    finally:
        pool.stop()
        pool.deployments.db.dispose()
    logger.info("inference server stopped")


#: glibc's mallopt parameter for the size from which allocations get their own mapping.
_M_MMAP_THRESHOLD = -3
#: Request bodies, decoded tensors and batches at least this large are mapped and unmapped
#: on their own instead of living in the heap.
_MMAP_THRESHOLD_BYTES = 64 * 1024


def _return_large_buffers_to_the_os() -> None:
    """Make memory taken by a burst of large requests go back to the OS when they end.

    glibc raises its mmap threshold to the size of the largest block freed so far (up to
    32 MiB), after which request-sized buffers come from the heap, and a heap fragmented
    by a burst (thousands of bodies of refused requests, freed in any order) is never
    given back: measured +108 MB of RSS kept after 2,000 concurrent 80 kB requests
    (``tests/serving/test_overload.py``), against +4 to +19 MB with a fixed threshold. A
    mapping costs a system call or two per large buffer, nothing next to decoding it.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        if libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) != 1:
            logger.debug("mallopt(M_MMAP_THRESHOLD) was refused; large buffers stay on the heap")
    except (OSError, AttributeError):  # not glibc (musl, say): its allocator decides
        logger.debug("no glibc mallopt; large buffers stay on the heap")
