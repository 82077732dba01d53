"""Language and embedding models on the inference server: loaded on demand, evicted LRU.

A deployment of a model folder (flavors ``hf-causal-lm`` and ``hf-embedding``) is served
like any other: routes, canaries, aliases and rollback all come from the model pool. What
differs is where and when it runs:

- In a **replica process with a PyTorch runtime** (:mod:`.runtimes`): this server process
  never imports PyTorch or ``transformers``. The front materialises the version's verified
  files into ``<model cache>/<digest>`` and sends the replica the folder's path.
- **On demand**: a deployment's route table entry is a :class:`GenerativeModel` handle that
  costs nothing until its first request, which starts the replica (a cold start: the
  request waits, within its deployment's ``timeout_s``).
- Under a **memory budget** (``AIAAS_MODEL_MEMORY_BUDGET_BYTES``): each model is charged an
  estimate (weights, plus the KV cache of a full batch at full context for a language
  model), and loading one that does not fit first stops the least recently used *idle*
  models. When every loaded model is busy, the request waits for one to become idle (up to
  ``timeout_s``, then 503). A model larger than the whole budget is refused with a 503
  naming the setting.

Generation streams: the replica answers one GENERATE frame with CHUNK frames and one
FINISH, delivered to :meth:`GenerativeModel.generate`'s async iterator; frames that piled up
while its reader was busy (a loaded server) are handed over as one piece, so a reader that
falls behind catches up instead of paying per token. Leaving that
iterator early (a client that disconnected) sends CANCEL, and the replica frees the
request's slot in its batch at its next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from aiaas.deployments import ServedTarget
from aiaas.errors import AiaasError, DeadlineExceeded, InvalidArgument, ResourceExhausted, Unavailable
from aiaas.formats import HF_CAUSAL_LM, materialize
from aiaas.serving import ipc
from aiaas.serving.replica_set import ReplicaSet, ReplicaSettings
from aiaas.store import ArtifactStore

__all__ = ["GenerativeModel", "GenerativeModels", "GenerativeSettings", "estimate_memory"]

logger = logging.getLogger("aiaas.serving.generative")

Arrays = dict[str, np.ndarray[Any, Any]]
_Key = tuple[str, str, int, str, int]  # deployment, model, version, digest, max batch size
#: Multiplies the weights and cache estimate: allocator slack and activations.
_OVERHEAD = 1.1
#: Folder of the model cache where embedding models' ONNX exports are kept (one per digest).
EXPORTS_FOLDER = "onnx-exports"


@dataclass(frozen=True)
class GenerativeSettings:
    """Where and how PyTorch models run (from :class:`aiaas.config.Settings`).

    Args:
        cache_dir: where versions' folders are materialised (one folder per digest).
        memory_budget_bytes: what loaded models may take together (see the module docstring).
        device: ``auto`` (CUDA in half precision when PyTorch sees a GPU), ``cpu``, ``cuda[:N]``.
        threads: PyTorch intra-op threads per replica, and ONNX Runtime's for an embedding model
            on a CPU (0: the library's default, one per core).
    """

    cache_dir: Path
    memory_budget_bytes: int = 8 * 1024**3
    device: str = "auto"
    threads: int = 0


def estimate_memory(folder: Path, flavor: str, max_batch_size: int, device: str) -> int:
    """Bytes a model needs once loaded: its weights, and for a language model the KV cache
    of ``max_batch_size`` sequences at full context. Read from the folder's files alone.

    An embedding model off CUDA holds its weights twice: PyTorch's (its tokenizer and the
    check of the export) and ONNX Runtime's (which serves it).
    """
    half = device.startswith("cuda")
    weights = 0
    for shard in folder.glob("*.safetensors"):
        size = shard.stat().st_size
        weights += size // 2 if half and _stored_as_float32(shard) else size
    if flavor != HF_CAUSAL_LM:
        return int(weights * (1 if half else 2) * _OVERHEAD)
    config = orjson.loads((folder / "config.json").read_bytes())
    layers = _first_int(config, "num_hidden_layers", "n_layer", "num_layers") or 1
    hidden = _first_int(config, "hidden_size", "n_embd", "d_model") or 0
    heads = _first_int(config, "num_attention_heads", "n_head") or 1
    kv_heads = _first_int(config, "num_key_value_heads") or heads
    context = _first_int(config, "max_position_embeddings", "n_positions", "n_ctx") or 2048
    element = 2 if half else 4
    cache = 2 * layers * (hidden * kv_heads // heads) * context * max_batch_size * element
    return int((weights + cache) * _OVERHEAD)


def _first_int(config: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _stored_as_float32(shard: Path) -> bool:
    with shard.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = orjson.loads(f.read(min(size, 100 * 1024 * 1024)))
    return any(isinstance(v, dict) and v.get("dtype") == "F32" for v in header.values())


class GenerativeModel:
    """One served version of a model folder: its replica (when loaded) and its requests.

    Created by :meth:`GenerativeModels.handle` when the route table is built; loading waits
    for the first request.
    """

    def __init__(self, manager: GenerativeModels, target: ServedTarget) -> None:
        self.manager = manager
        self.deployment = target.deployment
        self.model = target.model
        self.version = target.version
        self.artifact_digest = target.artifact_digest
        self.flavor = target.flavor
        self.signature = target.signature
        self.max_batch_size = target.settings.batching.max_batch_size
        self.max_queue_size = target.settings.max_queue_size
        self.timeout_s = target.settings.timeout_s
        self.replicas: ReplicaSet | None = None
        self.estimate_bytes = 0
        self.last_used = 0.0
        self.active = 0
        self.loads = 0
        self.retired = False
        #: Requests whose client left early, and the tokens they had generated when the
        #: replica dropped them (what a freed batch slot looks like from outside).
        self.cancelled = 0
        self.cancelled_tokens = 0

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "not loaded"
        return f"<GenerativeModel {self.deployment!r} v{self.version} {state}, {self.active} active>"

    @property
    def loaded(self) -> bool:
        return self.replicas is not None and not self.replicas.closed

    @property
    def info(self) -> dict[str, Any]:
        """What the replica said about the model (empty until it is first loaded)."""
        return dict(self.replicas.info) if self.replicas is not None else {}

    @property
    def context_length(self) -> int | None:
        value = self.info.get("context_length") or (self.signature.get("parameters") or {}).get(
            "context_length"
        )
        return int(value) if value else None

    # -- requests -----------------------------------------------------------------------

    async def _acquire(self) -> ReplicaSet:
        if self.active >= self.max_queue_size:
            raise ResourceExhausted(
                f"deployment {self.deployment!r} already has {self.active} requests in flight "
                f"(max_queue_size {self.max_queue_size}); retry shortly",
                details={"max_queue_size": self.max_queue_size, "retry_after_s": 1},
            )
        self.active += 1
        self.last_used = time.monotonic()
        try:
            return await self.manager.ensure_loaded(self)
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        self.active -= 1
        self.last_used = time.monotonic()
        if self.active == 0:
            self.manager.idle_changed()

    async def generate(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Run one generation request; yields ``{"text", "tokens", "prompt_tokens"}`` pieces,
        the last with ``finish_reason`` and ``usage``.

        Raises:
            InvalidArgument: the replica refused the request (``details["field"]`` names the
                field: the prompt does not fit the context, ``max_tokens`` is too large).
            DeadlineExceeded: no first token within the deployment's ``timeout_s``.
            ResourceExhausted: ``max_queue_size`` requests are already in flight.
            Unavailable: the replica died, or the model cannot be loaded now.
        """
        replicas = await self._acquire()
        frames: deque[tuple[int, bytes]] = deque()
        arrived = asyncio.Event()

        async def next_frame() -> tuple[int, bytes]:
            while not frames:
                arrived.clear()
                await arrived.wait()
            return frames.popleft()

        left_early = False

        def on_frame(kind: int, body: memoryview) -> bool:
            if left_early:
                if kind == ipc.FINISH:
                    self.cancelled += 1
                    self.cancelled_tokens += int(orjson.loads(bytes(body))["usage"]["completion_tokens"])
            else:
                frames.append((kind, bytes(body)))
                arrived.set()
            return kind in (ipc.FINISH, ipc.ERROR, -1)

        done = False
        replica = None
        request_id = 0
        try:
            replica = _least_busy(replicas)
            payload = orjson.dumps(request)
            request_id = replica.stream(lambda rid: ipc.encode_frame(ipc.GENERATE, rid, payload), on_frame)
            first = True
            while True:
                if first:
                    try:
                        kind, body = await asyncio.wait_for(next_frame(), self.timeout_s)
                    except TimeoutError:
                        raise DeadlineExceeded(
                            f"deployment {self.deployment!r} did not start generating within "
                            f"timeout_s={self.timeout_s}",
                            details={"timeout_s": self.timeout_s},
                        ) from None
                    first = False
                else:
                    kind, body = await next_frame()
                if kind == ipc.CHUNK:
                    piece = orjson.loads(body)
                    # Frames that queued up while this reader was busy become one piece: a
                    # lagging reader catches up instead of falling further behind.
                    while frames and frames[0][0] in (ipc.CHUNK, ipc.FINISH) and kind == ipc.CHUNK:
                        kind, body = frames.popleft()
                        later = orjson.loads(body)
                        later["text"] = piece["text"] + later["text"]
                        piece = piece | later
                    yield piece
                    if kind == ipc.FINISH:
                        done = True
                        return
                elif kind == ipc.FINISH:
                    done = True
                    yield orjson.loads(body)
                    return
                elif kind == ipc.ERROR:
                    done = True
                    raise _replica_error(self, memoryview(body))
                else:
                    done = True
                    raise Unavailable(
                        f"{self.label}: the replica stopped while generating; retry",
                        details={"deployment": self.deployment, "retry_after_s": 1},
                    )
        finally:
            if not done and replica is not None and request_id:
                # Left early (the client went away, or a timeout): free the batch slot.
                left_early = True
                try:
                    replica.connection.write(ipc.encode_frame(ipc.CANCEL, request_id, b""))
                except Exception:  # the replica is gone already: nothing holds the slot
                    replica.connection.streams.pop(request_id, None)
            self._release()

    async def embed(self, texts: Sequence[str]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The embeddings of ``texts`` and their token counts, batched with concurrent requests.

        Raises:
            InvalidArgument: an input is longer than the model takes (``details["field"]``).
        """
        replicas = await self._acquire()
        payload = orjson.dumps({"texts": list(texts)})
        try:
            outputs, _ = await replicas.run(
                {}, None, self.timeout_s, frame_for=lambda rid: ipc.encode_frame(ipc.EMBED, rid, payload)
            )
        except AiaasError as exc:
            raise _parsed(self, exc) from None
        finally:
            self._release()
        return outputs["embedding"], outputs["tokens"]

    async def run(
        self,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        outputs: Sequence[str] | None,
        timeout_s: float,
        *,
        counted: bool = False,
    ) -> tuple[Arrays, float]:
        """A V2/V1 inference request (embedding models take ``input``, a list of texts): the
        :class:`~aiaas.serving.runtime.Runtime` interface. The deadline covers loading the
        model on its first request too; the time returned is the whole call's."""
        started = time.perf_counter()
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                replicas = await self._acquire()
                try:
                    result, _ = await replicas.run(inputs, outputs, timeout_s)
                except AiaasError as exc:
                    raise _parsed(self, exc) from None
                finally:
                    self._release()
        except TimeoutError:
            if not deadline.expired():
                raise
            raise DeadlineExceeded(
                f"deployment {self.deployment!r} did not answer within timeout_s={timeout_s}",
                details={"timeout_s": timeout_s},
            ) from None
        return result, time.perf_counter() - started

    @contextlib.contextmanager
    def request_in_flight(self) -> Iterator[None]:
        """Nothing to count here: a model folder's replica is started on demand, not scaled."""
        yield

    def concurrency(self) -> int | None:
        return None

    @property
    def label(self) -> str:
        return f"deployment {self.deployment!r} version {self.version}"


class GenerativeModels:
    """Every served model folder of this inference server, within one memory budget.

    Args:
        artifacts: the artifact store versions are materialised from.
        settings: cache folder, budget, device, threads.
        python: the interpreter replicas run with.

    Example:
        >>> models = GenerativeModels(store, GenerativeSettings(Path("/tmp/cache")))  # doctest: +SKIP
        >>> handle = models.handle(target)  # doctest: +SKIP
        >>> async for piece in handle.generate({"prompt": "hi", "max_tokens": 8}): ...  # doctest: +SKIP
    """

    def __init__(
        self, artifacts: ArtifactStore, settings: GenerativeSettings, *, python: str = sys.executable
    ):
        self.artifacts = artifacts
        self.settings = settings
        self.python = python
        self._handles: dict[_Key, GenerativeModel] = {}
        self._handles_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bound = threading.Event()
        self._load_lock: asyncio.Lock | None = None
        self._idle: asyncio.Event | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # -- the pool's side (its reconciler thread) ----------------------------------------------

    def handle(self, target: ServedTarget) -> GenerativeModel:
        """The handle serving ``target``'s version: the same one while nothing it depends on changes."""
        key = (
            target.deployment,
            target.model,
            target.version,
            target.artifact_digest,
            target.settings.batching.max_batch_size,
        )
        with self._handles_lock:
            handle = self._handles.get(key)
            if handle is None or handle.retired:
                handle = GenerativeModel(self, target)
                self._handles[key] = handle
            settings = target.settings
            handle.max_queue_size, handle.timeout_s = settings.max_queue_size, settings.timeout_s
            return handle

    def retain(self, used: Iterable[GenerativeModel]) -> None:
        """Stop the models no route uses any more, once their requests are done."""
        keep = {id(h) for h in used}
        with self._handles_lock:
            gone = [(k, h) for k, h in self._handles.items() if id(h) not in keep]
            for key, handle in gone:
                del self._handles[key]
                handle.retired = True
        if gone and self._loop is not None:
            for _, handle in gone:
                asyncio.run_coroutine_threadsafe(self._drain(handle), self._loop)

    # -- the loop's side ------------------------------------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run replicas on ``loop`` (the server's); call from that loop at startup."""
        self._loop = loop
        self._load_lock = asyncio.Lock()
        self._idle = asyncio.Event()
        self._bound.set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise Unavailable("the inference server's event loop is not running yet")
        return self._loop

    def loaded(self) -> list[GenerativeModel]:
        with self._handles_lock:
            return [h for h in self._handles.values() if h.loaded]

    def handles(self) -> list[GenerativeModel]:
        with self._handles_lock:
            return list(self._handles.values())

    @property
    def used_bytes(self) -> int:
        return sum(h.estimate_bytes for h in self.loaded())

    def idle_changed(self) -> None:
        if self._idle is not None:
            self._idle.set()

    async def ensure_loaded(self, handle: GenerativeModel) -> ReplicaSet:
        """The handle's running replica set, started now if needed, making room in the budget."""
        if handle.replicas is not None and not handle.replicas.closed:
            return handle.replicas
        if handle.retired:
            raise Unavailable(f"{handle.label} is no longer served; retry", details={"retry_after_s": 1})
        assert self._load_lock is not None and self._idle is not None
        deadline = asyncio.get_running_loop().time() + handle.timeout_s
        async with self._load_lock:
            if handle.replicas is not None and not handle.replicas.closed:
                return handle.replicas
            folder = await asyncio.to_thread(
                materialize, self.artifacts, handle.artifact_digest, self.settings.cache_dir
            )
            estimate = estimate_memory(folder, handle.flavor, handle.max_batch_size, self.settings.device)
            budget = self.settings.memory_budget_bytes
            if estimate > budget:
                raise Unavailable(
                    f"{handle.label} needs about {estimate:,} bytes (weights and KV cache for "
                    f"max_batch_size {handle.max_batch_size}), more than the whole model memory budget of "
                    f"{budget:,} bytes; raise AIAAS_MODEL_MEMORY_BUDGET_BYTES or lower the deployment's "
                    "batching.max_batch_size",
                    details={
                        "deployment": handle.deployment,
                        "needed_bytes": estimate,
                        "budget_bytes": budget,
                    },
                )
            await self._make_room(handle, estimate, deadline)
            replicas = ReplicaSet(
                handle.deployment,
                handle.model,
                handle.version,
                b"",
                ReplicaSettings(min_replicas=1, max_replicas=1),
                python=self.python,
                load_frame=ipc.encode_frame(ipc.LOAD_RUNTIME, 0, orjson.dumps(self._spec(handle, folder))),
            )
            replicas.timeout_s = handle.timeout_s
            started = time.monotonic()
            await replicas.start()
            handle.replicas = replicas
            handle.estimate_bytes = estimate
            handle.loads += 1
            logger.info(
                "%s loaded in %.1f s (%s, %s, about %d MiB of %d MiB budget in use)",
                handle.label,
                time.monotonic() - started,
                replicas.info.get("device", "?"),
                replicas.info.get("engine", "pytorch"),
                self.used_bytes // 2**20,
                budget // 2**20,
            )
            return replicas

    async def _make_room(self, handle: GenerativeModel, needed: int, deadline: float) -> None:
        assert self._idle is not None
        loop = asyncio.get_running_loop()
        while True:
            loaded = [h for h in self.loaded() if h is not handle]
            used = sum(h.estimate_bytes for h in loaded)
            if used + needed <= self.settings.memory_budget_bytes:
                return
            idle = sorted((h for h in loaded if h.active == 0), key=lambda h: h.last_used)
            if idle:
                victim = idle[0]
                logger.info(
                    "%s: unloading %s (least recently used, idle) to make room in the model memory budget",
                    handle.label,
                    victim.label,
                )
                await self._unload(victim)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Unavailable(
                    f"{handle.label} cannot be loaded now: the model memory budget "
                    f"({self.settings.memory_budget_bytes:,} bytes) is taken by models that are all "
                    "busy; retry shortly, or raise AIAAS_MODEL_MEMORY_BUDGET_BYTES",
                    details={"deployment": handle.deployment, "retry_after_s": 1},
                )
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), remaining)
            except TimeoutError:
                continue

    async def _unload(self, handle: GenerativeModel) -> None:
        replicas, handle.replicas = handle.replicas, None
        handle.estimate_bytes = 0
        if replicas is not None:
            await replicas.close()

    async def _drain(self, handle: GenerativeModel) -> None:
        """Stop a retired model once the requests it has in flight are done."""
        give_up = asyncio.get_running_loop().time() + handle.timeout_s + 1.0
        while handle.active and asyncio.get_running_loop().time() < give_up:
            await asyncio.sleep(0.02)
        if handle.replicas is not None:
            logger.info("%s is no longer routed to; stopping its replica", handle.label)
        await self._unload(handle)

    def _spec(self, handle: GenerativeModel, folder: Path) -> dict[str, Any]:
        return {
            "runtime": handle.flavor,
            # Absolute: replicas run in an empty folder of their own (aiaas.formats.isolated_folder),
            # where a relative AIAAS_HOME would name nothing.
            "path": str(folder.resolve()),
            "device": self.settings.device,
            "threads": self.settings.threads,
            "max_batch_size": handle.max_batch_size,
            # Embedding models on a CPU run through ONNX Runtime, exported once per digest here.
            "export_dir": str((self.settings.cache_dir / EXPORTS_FOLDER).resolve()),
        }

    async def close(self) -> None:
        """Stop every replica (the server is shutting down)."""
        handles = self.handles()
        await asyncio.gather(*(self._unload(h) for h in handles), return_exceptions=True)


def _least_busy(replicas: ReplicaSet) -> Any:
    ready = replicas.ready_replicas()
    if not ready:
        raise Unavailable(
            f"{replicas.label} has no ready replica; retry shortly", details={"retry_after_s": 1}
        )
    return min(ready, key=lambda r: r.in_flight)


def _replica_error(handle: GenerativeModel, body: memoryview) -> AiaasError:
    code, message = ipc.decode_error(body)
    return _error(handle, code, message)


def _parsed(handle: GenerativeModel, exc: AiaasError) -> AiaasError:
    return _error(handle, exc.code, exc.message) if exc.message.startswith("{") else exc


def _error(handle: GenerativeModel, code: str, message: str) -> AiaasError:
    """An error frame of a PyTorch runtime as a platform error; its JSON names the field."""
    param: str | None = None
    if message.startswith("{"):
        try:
            parsed = orjson.loads(message)
            message, param = str(parsed["message"]), parsed.get("param")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass
    details: dict[str, Any] = {"deployment": handle.deployment}
    if param:
        details["field"] = param
    if code == InvalidArgument.code:
        return InvalidArgument(message, details=details)
    from aiaas.errors import error_class

    return error_class(code)(message, details=details)
