"""The inference server's ASGI app: KServe V2 (Open Inference Protocol) and KServe V1.

A version can be called by number in both: ``/v2/models/{name}/versions/{n}/infer`` and,
as TensorFlow Serving spells it, ``/v1/models/{name}/versions/{n}:predict``.

V2 also speaks Triton's binary tensor data extension: a request with the
``Inference-Header-Content-Length`` header goes through the binary codec, every other one
through the JSON codec as before.

Plain Starlette rather than FastAPI: the hot path is one route-table lookup in the
:class:`~aiaas.serving.pool.ModelPool`, a body read with a size cap, decoding and encoding
with the protocol codecs (orjson, numpy) and one run through the
:class:`~aiaas.serving.dispatch.Dispatcher`. No pydantic model and no DB query stands
between a request and the model. ``POST /v2/models/{name}/infer`` is recognised before
Starlette's middleware stack and routing (:class:`~aiaas.serving.asgi._InferenceApp`): the
app adds no middleware, and any added later would not see that route.

Decoding and encoding run on the event loop: they take microseconds for the requests this
server sees, less than a hop to a worker thread and back. The model runs where the
version's :class:`~aiaas.serving.runtime.Runtime` says: in replica processes, the loop
awaiting their socket; in this process, inline on the loop for a model measured to take
under ``INLINE_BELOW_S``, otherwise in the thread pool, so that ONNX Runtime (which releases
the GIL) uses every core and health checks keep answering while a large model runs. The
thread pool also resolves versions addressed by number (a DB read).

Errors use the Open Inference Protocol shape ``{"error": "<message>"}``, with the status
taken from :data:`aiaas.errors.HTTP_STATUS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
from prometheus_client import ProcessCollector
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aiaas._version import __version__
from aiaas.config import Settings
from aiaas.deployments import DeploymentService
from aiaas.errors import InvalidArgument, NotFound
from aiaas.gpus import GpuCollector, GpuSampler
from aiaas.httpserver import PROMETHEUS_CONTENT_TYPE
from aiaas.registry import ReferenceStore, Registry
from aiaas.serving.asgi import _JSON, _error, _guard, _http_exception, _InferenceApp, _read_body
from aiaas.serving.auth import InferenceAuth
from aiaas.serving.dispatch import Dispatcher
from aiaas.serving.drift_counter import DriftCollector, DriftCounter
from aiaas.serving.explanations import ExplainEndpoints
from aiaas.serving.generative import GenerativeModels, GenerativeSettings
from aiaas.serving.metric_sampler import MetricSampler
from aiaas.serving.openai_api import openai_routes
from aiaas.serving.openapi import openapi_document
from aiaas.serving.outlier_scorer import OutlierScorer
from aiaas.serving.parameters import serving_parameters
from aiaas.serving.pool import DeploymentRoutes, LoadedVersion, ModelPool, ServingConfig
from aiaas.serving.prediction_log import PredictionLog, PredictionLogCollector
from aiaas.serving.projects import callable_within, deployment_key, plain_name
from aiaas.serving.protocols import (
    BINARY_HEADER,
    BINARY_MEDIA_TYPE,
    V2Request,
    decode_binary_v2,
    decode_v1,
    decode_v2,
    encode_binary_v2,
    encode_v1,
    encode_v2,
    parse_header_length,
)
from aiaas.serving.replica_manager import ReplicaManager
from aiaas.serving.replica_set import ReplicaSet
from aiaas.serving.request_ids import REQUEST_ID_HEADER, REQUEST_ID_KEY
from aiaas.serving.scaling import ScalingRecorder
from aiaas.serving.stats import ServingMetrics
from aiaas.serving.usage import UsageCollector
from aiaas.store import Database, keyring_from_settings, open_artifact_store
from aiaas.store.scaling import ScalingEvents

__all__ = ["MODEL_VERSION_HEADER", "REQUEST_ID_HEADER", "create_app", "create_pool"]

logger = logging.getLogger("aiaas.serving.app")

#: Response header naming the model version that answered (V1 has no field for it).
MODEL_VERSION_HEADER = "x-aiaas-model-version"

_PLATFORM = "onnxruntime_onnx"
#: Extensions of the Open Inference Protocol this server speaks (in the /v2 metadata).
_EXTENSIONS = ["binary_tensor_data"]

_T = TypeVar("_T")


def create_pool(settings: Settings, executor: Executor | None = None) -> ModelPool:
    """A model pool reading the desired state from the settings' DB and artifact store: every
    project's deployments, by qualified name (:mod:`.projects`); versions loaded in this
    process run on ``executor``'s threads."""
    keyring = keyring_from_settings(settings)  # a bad key fails the start, naming the setting
    db = Database(settings.resolved_database_url())
    registry = Registry(db, open_artifact_store(settings.resolved_artifact_root(), keyring), project=None)
    replicas = None
    if settings.replica_processes:
        replicas = ReplicaManager(
            intra_op_threads=settings.ort_intra_op_threads,
            cpu_budget=settings.cpu_budget,
            on_scaling=ScalingRecorder(ScalingEvents(db)),
        )
    generative = GenerativeModels(
        registry.artifacts,
        GenerativeSettings(
            cache_dir=settings.resolved_model_cache_dir(),
            memory_budget_bytes=settings.model_memory_budget_bytes,
            device=settings.torch_device,
            threads=settings.torch_threads,
        ),
    )
    return ModelPool(
        DeploymentService(registry),
        interval_s=settings.reconcile_interval_s,
        intra_op_threads=settings.ort_intra_op_threads,
        replicas=replicas,
        generative=generative,
        executor=executor,
    )


def create_app(settings: Settings, pool: ModelPool | None = None) -> Starlette:
    """Build the inference server app.

    Args:
        settings: limits (``max_request_bytes``) and, when ``pool`` is not given, where the
            DB and artifacts are.
        pool: the model pool to serve from; its owner starts and stops it. When ``None``,
            the app builds one from ``settings`` and runs it for its own lifespan.

    Example:
        >>> app = create_app(load_settings())  # doctest: +SKIP
        >>> uvicorn.run(app, port=8080)  # doctest: +SKIP
    """
    owns_pool = pool is None
    executor = ThreadPoolExecutor(max_workers=_usable_cpus(), thread_name_prefix="aiaas-infer")
    models = pool if pool is not None else create_pool(settings, executor)
    max_bytes = settings.max_request_bytes
    metrics = ServingMetrics()
    dispatcher = Dispatcher(metrics)
    gpus = GpuSampler()
    metrics.registry.register(UsageCollector(lambda: _replica_sets(models), dispatcher.load, gpus))
    metrics.registry.register(GpuCollector(gpus))
    ProcessCollector(registry=metrics.registry)  # the server's own CPU and memory
    log = PredictionLog(
        settings.resolved_prediction_log_dir(),
        max_queued=settings.prediction_log_max_queued,
        flush_interval_s=settings.prediction_log_flush_interval_s,
        retention=dt.timedelta(days=settings.prediction_log_retention_days),
        scorer=OutlierScorer(ReferenceStore(models.deployments.db, project=None)),
    )
    metrics.registry.register(PredictionLogCollector(log))
    drift = DriftCounter.of(settings, models.deployments.db)
    metrics.registry.register(DriftCollector(drift))
    sampler = MetricSampler.of(settings, models.deployments.db, metrics.registry.collect)
    auth = InferenceAuth(settings, models.deployments.db)
    explain = ExplainEndpoints(models, _read_body, max_bytes, _version_number, MODEL_VERSION_HEADER)

    async def in_worker(fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    # -- server ------------------------------------------------------------------------

    async def server_metadata(request: Request) -> Response:
        return _json({"name": "aiaas", "version": __version__, "extensions": _EXTENSIONS})

    async def live(request: Request) -> Response:
        return _json({"live": True})

    async def ready(request: Request) -> Response:
        if models.ready:
            return _json({"ready": True})
        return _error(503, "the inference server is still loading its deployments; retry shortly")

    # -- V2 model endpoints ------------------------------------------------------------

    async def resolve(request: Request) -> LoadedVersion:
        name = deployment_key(request, request.path_params["name"])
        version = request.path_params.get("version")
        if version is None:
            return models.get(name)
        return await in_worker(models.get_version, name, _version_number(version))

    async def model_metadata(request: Request) -> Response:
        body = _metadata(await resolve(request))
        served = models.served.get(deployment_key(request, request.path_params["name"]))
        if served is not None and "version" not in request.path_params:
            body["versions"] = _served_versions(served)
            body["parameters"] = serving_parameters(served)
        return _json(body)

    async def model_ready(request: Request) -> Response:
        loaded = await resolve(request)
        return _json({"name": plain_name(loaded.deployment), "ready": True}, loaded)

    async def infer_v2(request: Request) -> Response:
        started = time.perf_counter()
        request_id: str = request.scope[REQUEST_ID_KEY]
        json_length = _binary_header_length(request)
        name = deployment_key(request, request.path_params["name"])
        version = request.path_params.get("version")
        shadow: LoadedVersion | None = None
        if version is None:
            models.route(name)  # an unknown model is refused before its body is read
            body = await _read_body(request, max_bytes)
            # The route as it is now: the table may have moved on while the body arrived, and a
            # version it no longer routes to is drained and stopped once its counted requests end.
            served = models.route(name)
            loaded, config, shadow = served.pick(random.random()), served.config, served.shadow
        else:
            number = _version_number(version)
            body = await _read_body(request, max_bytes)
            loaded = await in_worker(models.get_version, name, number)
            config = _config_of(models, name)
        decoded = _decode_v2(loaded, body, json_length)
        results = await dispatcher.run(loaded, config, decoded.inputs, decoded.outputs)
        if shadow is not None:
            dispatcher.mirror(shadow, config, decoded.inputs)
        payload, binary_json_length = _encode_v2(loaded, decoded, results, decoded.id or request_id)
        latency_s = time.perf_counter() - started
        log.record(name, config.log_policy, loaded.version, request_id, latency_s, decoded.inputs, results)
        drift.record(name, loaded.model, loaded.version, loaded.signature, decoded.inputs, results)
        headers = {MODEL_VERSION_HEADER: str(loaded.version), REQUEST_ID_HEADER: request_id}
        if binary_json_length is None:
            return Response(payload, media_type=_JSON, headers=headers)
        headers[BINARY_HEADER] = str(binary_json_length)
        return Response(payload, media_type=BINARY_MEDIA_TYPE, headers=headers)

    # -- statistics ----------------------------------------------------------------------

    async def model_stats(request: Request) -> Response:
        given = request.path_params.get("name")
        version = request.path_params.get("version")
        if given is None:
            mine = callable_within(request, models.routes)
            return _json({"model_stats": [_plain(e) for d in mine for e in metrics.model_stats(d)]})
        name = deployment_key(request, given)
        number = _version_number(version) if version is not None else None
        entries = metrics.model_stats(name, number)
        if not entries:
            models.get(name)  # an unknown deployment is a 404; a known one has no requests yet
        return _json({"model_stats": [_plain(e) for e in entries]})

    async def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=PROMETHEUS_CONTENT_TYPE)

    document = orjson.dumps(openapi_document(__version__))

    async def openapi(request: Request) -> Response:
        return Response(document, media_type=_JSON)

    # -- V1 ----------------------------------------------------------------------------

    async def list_v1(request: Request) -> Response:
        return _json({"models": [plain_name(k) for k in callable_within(request, models.routes)]})

    async def model_v1(request: Request) -> Response:
        started = time.perf_counter()
        request_id: str = request.scope[REQUEST_ID_KEY]
        target: str = request.path_params["target"]
        given, _, verb = target.partition(":")
        name = deployment_key(request, given)
        if request.method == "GET":
            if verb:
                raise HTTPException(405)
            loaded = models.get(name)
            return _json({"name": given, "ready": True}, loaded)
        if verb != "predict":
            raise NotFound(
                f"unknown V1 verb {verb!r} in {target!r}; use POST /v1/models/{given}:predict",
                details={"field": "path", "value": target},
            )
        models.route(name)  # an unknown model is refused before its body is read
        body = await _read_body(request, max_bytes)
        served = models.route(name)  # as it is now (see infer_v2)
        loaded = served.pick(random.random())
        decoded = decode_v1(body, loaded.signature)
        results = await dispatcher.run(loaded, served.config, decoded.inputs, None)
        if served.shadow is not None:
            dispatcher.mirror(served.shadow, served.config, decoded.inputs)
        payload = encode_v1(results, row_format=decoded.row_format, classes=loaded.signature.output_classes)
        latency_s = time.perf_counter() - started
        log.record(
            name, served.config.log_policy, loaded.version, request_id, latency_s, decoded.inputs, results
        )
        drift.record(name, loaded.model, loaded.version, loaded.signature, decoded.inputs, results)
        headers = {MODEL_VERSION_HEADER: str(loaded.version), REQUEST_ID_HEADER: request_id}
        return Response(payload, media_type=_JSON, headers=headers)

    async def model_v1_version(request: Request) -> Response:
        """TensorFlow Serving's ``/v1/models/{name}/versions/{n}[:predict]``: one version, by number."""
        started = time.perf_counter()
        request_id: str = request.scope[REQUEST_ID_KEY]
        given: str = request.path_params["name"]
        name = deployment_key(request, given)
        target: str = request.path_params["target"]
        number_text, _, verb = target.partition(":")
        number = _version_number(number_text)
        if request.method == "GET":
            if verb:
                raise HTTPException(405)
            loaded = await in_worker(models.get_version, name, number)
            return _json({"name": given, "ready": True}, loaded)
        if verb != "predict":
            raise NotFound(
                f"unknown V1 verb {verb!r} in {target!r}; "
                f"use POST /v1/models/{given}/versions/{number}:predict",
                details={"field": "path", "value": target},
            )
        body = await _read_body(request, max_bytes)
        loaded = await in_worker(models.get_version, name, number)
        decoded = decode_v1(body, loaded.signature)
        config = _config_of(models, name)
        results = await dispatcher.run(loaded, config, decoded.inputs, None)
        payload = encode_v1(results, row_format=decoded.row_format)
        latency_s = time.perf_counter() - started
        log.record(name, config.log_policy, loaded.version, request_id, latency_s, decoded.inputs, results)
        drift.record(name, loaded.model, loaded.version, loaded.signature, decoded.inputs, results)
        headers = {MODEL_VERSION_HEADER: str(loaded.version), REQUEST_ID_HEADER: request_id}
        return Response(payload, media_type=_JSON, headers=headers)

    infer = _guard(infer_v2, request_ids=True)
    both = ["GET", "POST"]
    v1_version = _guard(model_v1_version, request_ids=True)
    v2_model = "/v2/models/{name}"
    v2_version = "/v2/models/{name}/versions/{version}"
    routes = [
        Route("/v2", _guard(server_metadata), methods=["GET"]),
        Route("/v2/health/live", _guard(live), methods=["GET"]),
        Route("/v2/health/ready", _guard(ready), methods=["GET"]),
        Route("/v2/models/stats", _guard(model_stats), methods=["GET"]),
        Route(v2_model, _guard(model_metadata), methods=["GET"]),
        Route(v2_model + "/stats", _guard(model_stats), methods=["GET"]),
        Route(v2_version + "/stats", _guard(model_stats), methods=["GET"]),
        Route("/metrics", _guard(prometheus), methods=["GET"]),
        Route("/openapi.json", _guard(openapi), methods=["GET"]),
        Route(v2_model + "/ready", _guard(model_ready), methods=["GET"]),
        Route(v2_model + "/infer", infer, methods=["POST"]),
        Route(v2_version, _guard(model_metadata), methods=["GET"]),
        Route(v2_version + "/ready", _guard(model_ready), methods=["GET"]),
        Route(v2_version + "/infer", infer, methods=["POST"]),
        *explain.routes(lambda endpoint: _guard(endpoint, request_ids=True)),  # before V1's {target}
        Route("/v1/models", _guard(list_v1), methods=["GET"]),
        # One route for both forms: Starlette's {target} also swallows the ":predict" suffix.
        Route("/v1/models/{target}", _guard(model_v1, request_ids=True), methods=both),
        Route("/v1/models/{name}/versions/{target}", v1_version, methods=both),
        # OpenAI-compatible API for language and embedding models (serving/openai_api.py).
        *openai_routes(models, lambda request: _read_body(request, max_bytes)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if models.replicas is not None:
            models.replicas.bind(asyncio.get_running_loop())
        if models.generative is not None:
            models.generative.bind(asyncio.get_running_loop())
        if owns_pool:
            models.start()
        await asyncio.to_thread(auth.start)  # a database read: off the event loop
        log.start()
        drift.start()
        sampler.start()
        try:
            yield
        finally:
            if owns_pool:
                models.stop()
            dispatcher.close()
            gpus.close()
            await asyncio.to_thread(log.close)  # every answered request's row, on disk
            await asyncio.to_thread(drift.close)  # every answered request counted, in the DB
            await asyncio.to_thread(sampler.close)  # the last interval's metric samples
            if models.replicas is not None:
                await models.replicas.close()
            if models.generative is not None:
                await models.generative.close()
            executor.shutdown(wait=False, cancel_futures=True)
            explain.close()  # the explanation workers
            auth.close()

    app = _InferenceApp(
        infer,
        auth,
        routes=routes,
        exception_handlers={HTTPException: _http_exception},
        lifespan=lifespan,
    )
    app.state.pool = models
    app.state.metrics = metrics
    app.state.prediction_log = log
    app.state.drift = drift
    app.state.auth = auth
    return app


# -- codecs and lookups ------------------------------------------------------------------


def _decode_v2(loaded: LoadedVersion, body: bytes, json_length: int | None) -> V2Request:
    """``json_length`` is the request's ``Inference-Header-Content-Length``: ``None`` for a
    JSON-only body, which then takes the JSON codec's path unchanged."""
    if json_length is None:
        return decode_v2(body, loaded.signature)
    return decode_binary_v2(body, json_length, loaded.signature)


def _encode_v2(
    loaded: LoadedVersion, request: V2Request, results: dict[str, Any], request_id: str
) -> tuple[bytes, int | None]:
    """The response body, and the size of its JSON object when binary outputs follow it.
    ``request_id`` is the body's ``id``: the client's own, else the request id."""
    if request.binary_outputs:
        return encode_binary_v2(
            plain_name(loaded.deployment),
            loaded.version,
            results,
            request_id,
            request.binary_outputs,
            loaded.signature.output_classes,
        )
    return encode_v2(
        plain_name(loaded.deployment), loaded.version, results, request_id, loaded.signature.output_classes
    ), None


def _replica_sets(pool: ModelPool) -> list[ReplicaSet]:
    """Every replica set the server runs now: ONNX versions' and language models' alike."""
    sets = list(pool.replicas.sets) if pool.replicas is not None else []
    if pool.generative is not None:
        sets += [h.replicas for h in pool.generative.loaded() if h.replicas is not None]
    return sets


def _config_of(pool: ModelPool, deployment: str) -> ServingConfig:
    """A pinned-version request runs under its deployment's config (defaults if it has none)."""
    served = pool.served.get(deployment)
    return served.config if served is not None else ServingConfig()


# -- helpers ---------------------------------------------------------------------------


def _plain(entry: dict[str, Any]) -> dict[str, Any]:
    """A statistics entry as a client of the deployment's project knows it: by plain name."""
    return {**entry, "name": plain_name(entry["name"])} if "name" in entry else entry


def _metadata(loaded: LoadedVersion) -> dict[str, Any]:
    signature = loaded.signature.to_dict()
    return {
        "name": plain_name(loaded.deployment),
        "versions": [str(loaded.version)],
        "platform": _PLATFORM,
        "inputs": signature["inputs"],
        "outputs": signature["outputs"],
    }


def _served_versions(served: DeploymentRoutes) -> list[str]:
    """Every version the deployment serves now, the primary first, then its canaries and its
    shadow: each may also be asked for by number (``/v2/models/{name}/versions/{v}``)."""
    versions: list[str] = []
    for loaded in (served.primary, *served.choices, served.shadow):
        if loaded is not None and str(loaded.version) not in versions:
            versions.append(str(loaded.version))
    return versions


def _usable_cpus() -> int:
    """CPUs this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _version_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise InvalidArgument(
            f"model version must be a positive integer; got {text!r}",
            details={"field": "version", "value": text},
        )
    return int(text)


def _binary_header_length(request: Request) -> int | None:
    """The JSON object's size in a binary tensor data body; ``None`` for a JSON-only body."""
    value = request.headers.get(BINARY_HEADER)
    return None if value is None else parse_header_length(value)


def _json(body: dict[str, Any], loaded: LoadedVersion | None = None) -> Response:
    headers = {MODEL_VERSION_HEADER: str(loaded.version)} if loaded is not None else None
    return Response(orjson.dumps(body), media_type=_JSON, headers=headers)
