"""The OpenAI-compatible API of the inference server, under ``/openai/v1``.

``GET /models``, ``POST /embeddings``, ``/completions`` and ``/chat/completions`` (with
``stream: true`` as server-sent events ending in ``data: [DONE]``). The prefix is KServe's:
``/v1/models`` already belongs to KServe V1 on this server.

A request's ``model`` is a deployment's name, so everything a deployment does applies:
its routes (a canary takes its share of requests), aliases (moving one switches the
model, moving it back rolls back), pinned versions. Errors are OpenAI's shape, and the
official ``openai`` client works against ``base_url=http://host:port/openai/v1``.

Streams start only once every choice has its first token, so a request the model refuses
(a prompt longer than the context) still gets its 4xx status. After that, a client that
disconnects cancels its sequences: the replica drops them from its batch at its next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from aiaas.errors import AiaasError, InvalidArgument, MethodNotAllowed, NotFound
from aiaas.formats import HF_CAUSAL_LM, HF_EMBEDDING
from aiaas.serving.auth import check_deployment, retry_after
from aiaas.serving.generative import GenerativeModel
from aiaas.serving.pool import DeploymentRoutes, LoadedVersion, ModelPool
from aiaas.serving.projects import callable_within, deployment_key, plain_name
from aiaas.serving.protocols import openai as oa

__all__ = ["OPENAI_PREFIX", "openai_routes"]

logger = logging.getLogger("aiaas.serving.openai")

#: Where the OpenAI-compatible API lives on the inference server.
OPENAI_PREFIX = "/openai/v1"
_VERSION_HEADER = "x-aiaas-model-version"
_TASKS = {HF_CAUSAL_LM: "text-generation", HF_EMBEDDING: "embedding"}

Endpoint = Callable[[Request], Awaitable[Response]]

_EVERY_METHOD = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]
#: The methods each OpenAI path takes: any other is a 405 naming them (``Allow``).
_ALLOWED = {
    f"{OPENAI_PREFIX}/models": "GET, HEAD",
    f"{OPENAI_PREFIX}/models/": "GET, HEAD",
    f"{OPENAI_PREFIX}/embeddings": "POST",
    f"{OPENAI_PREFIX}/completions": "POST",
    f"{OPENAI_PREFIX}/chat/completions": "POST",
}


def openai_routes(pool: ModelPool, read_body: Callable[[Request], Awaitable[bytes]]) -> list[Route]:
    """The routes of the OpenAI-compatible API, served from ``pool``'s deployments.

    Args:
        pool: the model pool; deployments of model folders are the OpenAI "models".
        read_body: reads a request body within the server's size limit (413 above it).
    """

    def route(request: Request, name: str) -> DeploymentRoutes:
        """Deployment ``name`` of the request's project (one holding '/' is none: not found)."""
        if "/" in name:
            raise NotFound(f"deployment {name!r} not found", details={"deployment": name})
        return pool.route(deployment_key(request, name))

    def resolve(request: Request, name: str, flavor: str) -> tuple[LoadedVersion, GenerativeModel]:
        check_deployment(request.scope, name)  # another deployment than an inference key's: 404
        try:
            served = route(request, name)
        except NotFound:
            raise NotFound(
                f"The model `{name}` does not exist: no deployment of that name; list them with "
                f"GET {OPENAI_PREFIX}/models",
                details={"field": "model", "openai_code": "model_not_found"},
            ) from None
        loaded = served.pick(random.random())
        handle = loaded.generative
        if handle is None or handle.flavor != flavor:
            what = (
                "an ONNX model served by the V1/V2 protocols"
                if handle is None
                else f"a {handle.flavor} model"
            )
            need = (
                "a language model (hf-causal-lm)"
                if flavor == HF_CAUSAL_LM
                else "an embedding model (hf-embedding)"
            )
            raise InvalidArgument(
                f"model {name!r} is {what}; this endpoint needs {need}",
                details={"field": "model", "value": name},
            )
        return loaded, handle

    async def body_of(request: Request) -> Any:
        data = await read_body(request)
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument(
                f"the request body is not valid JSON: {exc}", details={"field": "body"}
            ) from None

    # -- models --------------------------------------------------------------------------

    def model_card(name: str, loaded: LoadedVersion) -> dict[str, Any]:
        handle = loaded.generative
        assert handle is not None
        parameters = handle.signature.get("parameters") or {}
        return {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": "aiaas",
            "root": f"{handle.model}/{handle.version}",
            "max_model_len": handle.context_length,
            "aiaas": {
                "model": handle.model,
                "version": handle.version,
                "task": _TASKS.get(handle.flavor),
                "loaded": handle.loaded,
                "loads": handle.loads,
                "active_requests": handle.active,
                "cancelled_requests": handle.cancelled,
                "cancelled_tokens": handle.cancelled_tokens,
                "memory_bytes": handle.estimate_bytes or None,
                # What runs a loaded model: "onnxruntime" (embeddings on a CPU) or "pytorch".
                "engine": handle.info.get("engine"),
                "parameters": parameters.get("parameters"),
                "dimension": parameters.get("dimension"),
            },
        }

    async def list_models(request: Request) -> Response:
        if not pool.ready:
            pool.route("")  # raises the "still loading" 503
        table = pool.served
        cards = [
            model_card(plain_name(key), table[key].primary)
            for key in callable_within(request, table)
            if table[key].primary.generative is not None
        ]
        return _json({"object": "list", "data": cards})

    async def get_model(request: Request) -> Response:
        name: str = request.path_params["model"]
        try:
            served: DeploymentRoutes | None = route(request, name)
        except NotFound:
            served = None
        if served is None or served.primary.generative is None:
            raise NotFound(
                f"The model `{name}` does not exist",
                details={"field": "model", "openai_code": "model_not_found"},
            )
        return _json(model_card(name, served.primary))

    # -- embeddings ------------------------------------------------------------------------

    async def embeddings(request: Request) -> Response:
        parsed = oa.parse_embedding(await body_of(request))
        loaded, handle = resolve(request, parsed.model, HF_EMBEDDING)
        dimension = (handle.signature.get("parameters") or {}).get("dimension")
        if parsed.dimensions is not None and parsed.dimensions != dimension:
            raise InvalidArgument(
                f"dimensions must be {dimension}, this model's embedding size, or left out; "
                f"got {parsed.dimensions}",
                details={"field": "dimensions", "value": parsed.dimensions},
            )
        vectors, tokens = await handle.embed(parsed.texts)
        body = oa.embedding_response(parsed.model, vectors, int(tokens.sum()), as_base64=parsed.base64)
        return _json(body, loaded.version)

    # -- completions -----------------------------------------------------------------------

    async def completions(request: Request) -> Response:
        parsed = oa.parse_completion(await body_of(request))
        loaded, handle = resolve(request, parsed.model, HF_CAUSAL_LM)
        n = parsed.sampling.n
        runs = [
            {"prompt": prompt, **parsed.sampling.request(i * n + j)}
            for i, prompt in enumerate(parsed.prompts)
            for j in range(n)
        ]
        return await _generate(
            handle, loaded, runs, parsed.model, parsed.stream, parsed.include_usage, chat=False, per_prompt=n
        )

    async def chat_completions(request: Request) -> Response:
        parsed = oa.parse_chat(await body_of(request))
        loaded, handle = resolve(request, parsed.model, HF_CAUSAL_LM)
        runs = [{"messages": parsed.messages, **parsed.sampling.request(j)} for j in range(parsed.sampling.n)]
        return await _generate(
            handle,
            loaded,
            runs,
            parsed.model,
            parsed.stream,
            parsed.include_usage,
            chat=True,
            per_prompt=len(runs),
        )

    async def unknown(request: Request) -> Response:
        path = request.url.path
        allowed = _ALLOWED.get(path) or (
            _ALLOWED[f"{OPENAI_PREFIX}/models/"] if path.startswith(f"{OPENAI_PREFIX}/models/") else None
        )
        if allowed is not None:
            status, body = oa.error_body(
                MethodNotAllowed(f"{request.method} is not allowed on {path}; use {allowed}")
            )
            return Response(
                orjson.dumps(body),
                status_code=status,
                media_type="application/json",
                headers={"allow": allowed},
            )
        raise NotFound(f"no endpoint {request.method} {path}", details={"field": "path"})

    p = OPENAI_PREFIX
    return [
        Route(f"{p}/models", _guard(list_models), methods=["GET"]),
        Route(f"{p}/models/{{model:path}}", _guard(get_model), methods=["GET"]),
        Route(f"{p}/embeddings", _guard(embeddings), methods=["POST"]),
        Route(f"{p}/completions", _guard(completions), methods=["POST"]),
        Route(f"{p}/chat/completions", _guard(chat_completions), methods=["POST"]),
        # Every method, so that a wrong one on a known path is this 405 (with its own Allow).
        Route("/openai/{rest:path}", _guard(unknown), methods=_EVERY_METHOD),
    ]


# -- generation: several choices, streamed or not ---------------------------------------------


class _Choices:
    """The sequences of one request, each pumped into one queue of ``(index, event, error)``."""

    def __init__(self, handle: GenerativeModel, runs: list[dict[str, Any]]) -> None:
        self.count = len(runs)
        self.queue: asyncio.Queue[tuple[int, dict[str, Any] | None, BaseException | None]] = asyncio.Queue()
        self.tasks = [
            asyncio.get_running_loop().create_task(self._pump(i, handle, r)) for i, r in enumerate(runs)
        ]
        self.buffered: list[tuple[int, dict[str, Any]]] = []

    async def _pump(self, index: int, handle: GenerativeModel, run: dict[str, Any]) -> None:
        generator = handle.generate(run)
        try:
            try:
                async for event in generator:
                    self.queue.put_nowait((index, event, None))
            finally:
                await generator.aclose()  # type: ignore[attr-defined]
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.queue.put_nowait((index, None, exc))

    async def first(self) -> None:
        """Wait until every choice has its first event; raise the first error instead."""
        started: set[int] = set()
        while len(started) < self.count:
            index, event, error = await self.queue.get()
            if error is not None:
                self.cancel()
                raise error
            assert event is not None
            self.buffered.append((index, event))
            started.add(index)

    async def events(self) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """Every event in arrival order (the buffered first ones first), until all finished."""
        finished = 0
        pending, self.buffered = self.buffered, []
        while finished < self.count:
            if pending:
                index, event = pending.pop(0)
            else:
                index, maybe, error = await self.queue.get()
                if error is not None:
                    self.cancel()
                    raise error
                assert maybe is not None
                event = maybe
            if event.get("finish_reason") is not None:
                finished += 1
            yield index, event

    def waiting(self) -> bool:
        """True when more events are already here (so a reader need not write yet)."""
        return bool(self.buffered) or not self.queue.empty()

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()


async def _generate(
    handle: GenerativeModel,
    loaded: LoadedVersion,
    runs: list[dict[str, Any]],
    model: str,
    stream: bool,
    include_usage: bool,
    *,
    chat: bool,
    per_prompt: int,
) -> Response:
    choices = _Choices(handle, runs)
    created, id_ = oa.now(), oa.new_id("chatcmpl" if chat else "cmpl")
    try:
        await choices.first()
    except BaseException:
        choices.cancel()
        raise
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}

    def count(index: int, event: dict[str, Any]) -> None:
        if event.get("usage"):
            final = event["usage"]
            if index % per_prompt == 0:  # a prompt's tokens count once, whatever n is
                usage["prompt_tokens"] += final["prompt_tokens"]
            usage["completion_tokens"] += final["completion_tokens"]
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]

    if not stream:
        texts = [""] * len(runs)
        reasons = [""] * len(runs)
        try:
            async for index, event in choices.events():
                texts[index] += event["text"]
                if event.get("finish_reason"):
                    reasons[index] = event["finish_reason"]
                count(index, event)
        finally:
            choices.cancel()
        build = oa.chat_response if chat else oa.completion_response
        return _json(
            build(id_, model, created, list(zip(texts, reasons, strict=True)), usage), loaded.version
        )

    async def body() -> AsyncIterator[bytes]:
        if chat:
            for index in range(len(runs)):
                yield _sse(
                    oa.chat_chunk(id_, model, created, index, {"role": "assistant", "content": ""}, None)
                )
        # Events already waiting go out in one write (n > 1, or a reader that fell behind).
        out: list[bytes] = []
        try:
            async for index, event in choices.events():
                count(index, event)
                reason = event.get("finish_reason")
                if event["text"] or reason is not None:
                    if chat:
                        delta = {"content": event["text"]} if event["text"] else {}
                        out.append(_sse(oa.chat_chunk(id_, model, created, index, delta, reason)))
                    else:
                        out.append(
                            _sse(oa.completion_chunk(id_, model, created, index, event["text"], reason))
                        )
                if out and not choices.waiting():
                    yield b"".join(out)
                    out.clear()
        except AiaasError as exc:  # mid-stream: the status is sent, so the error is an event
            out.append(_sse(oa.error_body(exc)[1]))
        if out:
            yield b"".join(out)
        if include_usage:
            obj = "chat.completion.chunk" if chat else "text_completion"
            yield _sse(oa.usage_chunk(id_, model, created, obj, usage))
        yield b"data: [DONE]\n\n"

    return _EventStream(body(), choices, {_VERSION_HEADER: str(loaded.version)})  # type: ignore[return-value]


def _sse(body: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(body) + b"\n\n"


class _EventStream:
    """A server-sent events response that stops its choices when the client disconnects.

    Starlette's ``StreamingResponse`` only notices a gone client when it next writes, and
    leaves the body iterator to be closed by the garbage collector; here a second task
    waits for the disconnect message, and the choices are cancelled however the response
    ends, which frees their slots in the replica's batch at once.
    """

    def __init__(self, body: AsyncIterator[bytes], choices: _Choices, headers: dict[str, str]) -> None:
        self.body = body
        self.choices = choices
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            *((k.encode(), v.encode()) for k, v in self.headers.items()),
        ]

        async def produce() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async for chunk in self.body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        loop = asyncio.get_running_loop()
        producer, watcher = loop.create_task(produce()), loop.create_task(watch())
        try:
            await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (producer, watcher):
                task.cancel()
            self.choices.cancel()
            await asyncio.gather(producer, watcher, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.body.aclose()  # type: ignore[attr-defined]


# -- responses and errors ------------------------------------------------------------------


def _json(body: dict[str, Any], version: int | None = None) -> Response:
    headers = {_VERSION_HEADER: str(version)} if version is not None else None
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


def _guard(endpoint: Endpoint) -> Endpoint:
    """Errors in OpenAI's shape: platform errors with their status, anything else a logged 500."""

    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except AiaasError as exc:
            status, body = oa.error_body(exc)
            if status >= 500 and status != 503:
                logger.error("%s %s failed: %s", request.method, request.url.path, exc.message)
            headers = {"retry-after": retry_after(exc)} if status in (429, 503) else None
            return Response(
                orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
            )
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as exc:
            logger.exception("%s %s failed unexpectedly", request.method, request.url.path)
            body = {
                "error": {
                    "message": f"internal error ({type(exc).__name__}); the server log has the details",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            return Response(orjson.dumps(body), status_code=500, media_type="application/json")

    guarded.__name__ = endpoint.__name__
    return guarded
