"""The control plane's FastAPI application."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse

from aiaas import schemas
from aiaas._version import __version__
from aiaas.api.audit import AuditMiddleware
from aiaas.api.auth import Authenticator
from aiaas.api.deps import Services
from aiaas.api.docs import install_docs
from aiaas.api.errors import install_error_handlers
from aiaas.api.guards import RequestGuard
from aiaas.api.metrics import metrics_registry
from aiaas.api.metrics import router as metrics_router
from aiaas.api.openapi import install_openapi
from aiaas.api.routers import (
    alerts,
    audit,
    datasets,
    deployments,
    drift,
    jobs,
    keys,
    models,
    monitoring,
    optimize,
    projects,
)
from aiaas.api.routers import retraining as retraining_routes
from aiaas.api.routers import rollouts as rollout_routes
from aiaas.config import Settings
from aiaas.optimize import worker_command as optimize_worker_command
from aiaas.platform import open_platform
from aiaas.security import KeyCache, ensure_admin_key
from aiaas.store import DEFAULT_GC_GRACE_S, collect_garbage
from aiaas.store.keys import KeyStore
from aiaas.training import JobStore, Scheduler

__all__ = ["create_app"]

log = logging.getLogger("aiaas.api")
#: Hosts that mean "every interface": a server bound there is reached under another name.
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})

_DESCRIPTION = """\
The aiaas control plane: register datasets (CSV/Parquet or bundled samples) and models and
their versions, move aliases (promote, roll back), compare versions and deploy them.
Predictions are served by the separate inference server (KServe V2 at `/v2/...`, V1 at
`/v1/...`), which follows the deployments made here.

Errors are `{"error": {"code", "message", "details"}}` with the matching HTTP status.
Request bodies are limited in size (`AIAAS_MAX_API_BODY_BYTES`, and the upload limits for
the two upload endpoints: 413) and must keep arriving (`AIAAS_BODY_READ_TIMEOUT_S`: 408).
"""


def _inference_url(settings: Settings, requested_host: str | None) -> str:
    """The inference server's URL as a client of this control plane should use it.

    ``AIAAS_INFERENCE_URL`` when set; otherwise ``AIAAS_HOST`` and ``AIAAS_INFERENCE_PORT``
    (``aiaas up`` passes both servers' ports). A wildcard host such as ``0.0.0.0`` is no
    address to connect to, so the host name the client reached this control plane under
    (``requested_host``) takes its place: both servers run on the same machine.
    """
    if settings.inference_url or settings.host not in _WILDCARD_HOSTS or not requested_host:
        return settings.resolved_inference_url()
    host = f"[{requested_host}]" if ":" in requested_host else requested_host
    return f"{settings.scheme}://{host}:{settings.inference_port}"


def build_services(settings: Settings) -> Services:
    """Open (and migrate) the metadata DB and the artifact store, through the composition root."""
    return open_platform(settings)


def start_artifact_maintenance(services: Services) -> None:
    """Sweep temporary files of uploads killed midway, then collect old unreferenced blobs,
    in a background thread: a large store must not delay the control plane's start, and a
    failure is logged, never fatal (``aiaas gc`` does the same on demand)."""

    def run() -> None:
        try:
            collect_garbage(services.db, services.artifacts, grace_s=DEFAULT_GC_GRACE_S)
        except Exception as exc:
            log.warning("artifact garbage collection at start failed: %s", exc)

    threading.Thread(target=run, name="aiaas-artifact-gc", daemon=True).start()


def start_key_cache(settings: Settings, services: Services) -> KeyCache | None:
    """With authentication on: make the first admin key when there is none (printed once,
    written to ``<home>/admin.key``), and start the cache of keys requests are checked against.
    With it off, say so loudly: this process serves anyone."""
    if not settings.auth:
        log.warning(
            "AUTHENTICATION IS OFF (AIAAS_AUTH=off, aiaas up --dev): the control plane answers anyone "
            "who reaches %s:%s, with full rights",
            settings.host,
            settings.port,
        )
        return None
    store = KeyStore(services.db)
    path = settings.admin_key_path()
    created = ensure_admin_key(store, path)
    if created is not None:
        # Printed, not logged: the one time the key is shown, on the terminal that started the server.
        print(
            f"\naiaas: made the platform admin API key (shown this once; also in {path}, mode 0600):\n"
            f"    {created}\n"
            "The CLI and SDK on this machine read that file; elsewhere, set AIAAS_API_KEY.\n",
            flush=True,
        )
    cache = KeyCache(store.usable, refresh_s=settings.auth_refresh_s)
    cache.start()
    return cache


def build_scheduler(settings: Settings, jobs: JobStore) -> Scheduler:
    """The training scheduler; its workers get this app's database and artifact store."""
    env = dict(os.environ)
    env.update(
        AIAAS_HOME=str(settings.home),
        AIAAS_DATABASE_URL=settings.resolved_database_url(),
        AIAAS_ARTIFACT_ROOT=settings.resolved_artifact_root(),
        AIAAS_TRAINING_SLOTS=str(settings.training_slots),
    )
    # The workers seal and open blobs with this app's key, however it was given.
    for variable in ("AIAAS_ENCRYPTION_KEY", "AIAAS_ENCRYPTION_KEY_FILE"):
        env.pop(variable, None)
    if settings.encryption_key is not None:
        env["AIAAS_ENCRYPTION_KEY"] = settings.encryption_key.get_secret_value()
    if settings.encryption_key_file is not None:
        env["AIAAS_ENCRYPTION_KEY_FILE"] = str(settings.encryption_key_file)
    return Scheduler(
        jobs,
        slots=settings.training_slots,
        env=env,
        log_dir=settings.home / "jobs",
        interval_s=settings.scheduler_interval_s,
        max_attempts=settings.training_max_attempts,
        commands={"optimize": optimize_worker_command()},
    )


def create_app(settings: Settings) -> FastAPI:
    """The app, with its database migrated when it starts serving."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = app.state.services = build_services(settings)
        app.state.metrics = metrics_registry(services)
        key_cache = app.state.key_cache = start_key_cache(settings, services)
        start_artifact_maintenance(services)
        scheduler = build_scheduler(settings, services.all_jobs)
        scheduler.start()
        evaluator = services.alert_evaluator()
        evaluator.start()
        try:
            yield
        finally:
            evaluator.stop()  # its lease given up: another worker, or the next start, carries on
            scheduler.stop()  # running jobs go back to the queue and resume on the next start
            if key_cache is not None:
                key_cache.close()
            services.close()

    app = FastAPI(
        title="aiaas control plane",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(RequestGuard, settings=settings)
    # Added last, so they run first. Authentication before the guard: a request without a
    # valid key never reaches the guard's body reading, FastAPI's validation or routing.
    app.add_middleware(Authenticator, settings=settings, cache=lambda: getattr(app.state, "key_cache", None))
    # Outermost, so that what authentication or the guard refuses is appended too.
    app.add_middleware(AuditMiddleware)
    install_openapi(app, api_key=settings.auth)
    install_docs(app)

    api = APIRouter(prefix="/api/v1")

    @api.get(
        "/health", tags=["health"], summary="Liveness of the control plane, and its inference server's URL"
    )
    def health(request: Request) -> schemas.Health:
        url = _inference_url(settings, request.url.hostname)
        return schemas.Health(status="ok", version=__version__, inference_url=url)

    secured = APIRouter()  # every route needs a key: aiaas.api.auth.Authenticator
    secured.include_router(models.router)
    secured.include_router(deployments.router)
    secured.include_router(rollout_routes.router)
    secured.include_router(retraining_routes.router)
    secured.include_router(monitoring.router)
    secured.include_router(drift.router)
    secured.include_router(datasets.router)
    secured.include_router(optimize.router)
    secured.include_router(jobs.router)
    secured.include_router(alerts.router)
    secured.include_router(audit.router)
    secured.include_router(projects.router)
    secured.include_router(keys.router)
    api.include_router(secured)
    app.include_router(api)
    app.include_router(metrics_router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
