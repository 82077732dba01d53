"""Running requests on loaded versions: batched or alone, bounded and counted.

The HTTP layer decodes a request and hands its arrays here; this module decides whether a
request waits for others to share a model call, and keeps the books (statistics,
back-pressure, timeouts). Where the model runs is the version's
:class:`~aiaas.serving.runtime.Runtime` (this process, replica processes or a PyTorch
replica): every path below awaits its one ``run``.

- **Batched**, when the deployment turns batching on: a :class:`DynamicBatcher` per served
  version groups concurrent small requests into one model call (one replica call, with
  replicas; one batch per ready replica at a time). A request of ``max_batch_size`` rows or
  more runs at once, whole, as it would unbatched. Every request counts for the autoscaler
  from the moment it is queued, not only its batch's one call.
- **Alone** otherwise: one ``run`` per request.

Every path is bounded: at most ``max_queue_size`` requests wait or run per version (429
with Retry-After above that), and each request gets ``timeout_s`` (504 after it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aiaas.errors import PayloadTooLarge, ResourceExhausted
from aiaas.serving.batcher import BatchingConfig, BatchRecord, DynamicBatcher, supports_batching
from aiaas.serving.projects import plain_name
from aiaas.serving.routes import LoadedVersion, ServingConfig
from aiaas.serving.runtime import Arrays
from aiaas.serving.stats import ServingMetrics, VersionStats

__all__ = ["Dispatcher"]

logger = logging.getLogger("aiaas.serving.dispatch")


class _Runner:
    """How one served version runs, with its statistics and in-flight count."""

    def __init__(self, loaded: LoadedVersion, config: ServingConfig, stats: VersionStats) -> None:
        self.loaded = loaded
        self.runtime = loaded.runtime
        self.config = config
        self.stats = stats
        self.in_flight = 0
        #: Requests in :meth:`run` now, batched or not (what ``/metrics`` reports).
        self.active = 0
        self.batcher: DynamicBatcher | None = None
        if config.batching and config.max_batch_size >= 2 and supports_batching(loaded.signature):
            self.batcher = DynamicBatcher(
                self._run_batch,
                BatchingConfig(
                    max_batch_size=config.max_batch_size,
                    max_queue_delay_ms=config.max_queue_delay_ms,
                    max_queue_size=config.max_queue_size,
                ),
                signature=loaded.signature,
                on_batch=self._on_batch,
                concurrency=self.runtime.concurrency,
            )

    def _on_batch(self, record: BatchRecord) -> None:
        if record.error is None:
            self.stats.record_execution(batch_rows=record.rows, compute_s=record.compute_s)

    async def _run_batch(self, inputs: Arrays, outputs: list[str] | None) -> Arrays:
        """A batch (or a request the batcher runs alone): its requests were counted when queued."""
        result, _ = await self.runtime.run(inputs, outputs, self.config.timeout_s, counted=True)
        return result

    async def run(self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None) -> Arrays:
        started = time.perf_counter()
        self.active += 1
        try:
            if self.batcher is not None:
                # The runtime sees one call per batch; the autoscaler must see every request,
                # those still waiting in the batcher's queue included.
                with self.runtime.request_in_flight():
                    result, compute_s = await self.batcher.submit_timed(
                        inputs, outputs, timeout_s=self.config.timeout_s
                    )
            else:
                result, compute_s = await self._run_alone(inputs, outputs)
        except BaseException:
            self.stats.record_failure(total_s=time.perf_counter() - started)
            raise
        finally:
            self.active -= 1
        total_s = time.perf_counter() - started
        self.stats.record_success(
            rows=_rows(inputs), total_s=total_s, queue_s=max(total_s - compute_s, 0.0), compute_s=compute_s
        )
        return result

    async def _run_alone(
        self, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None
    ) -> tuple[Arrays, float]:
        if self.in_flight >= self.config.max_queue_size:
            raise ResourceExhausted(
                f"deployment {plain_name(self.loaded.deployment)!r} already has {self.in_flight} requests in "
                f"flight (max_queue_size {self.config.max_queue_size}); retry shortly",
                details={"max_queue_size": self.config.max_queue_size, "retry_after_s": 1},
            )
        self.in_flight += 1
        try:
            result, compute_s = await self.runtime.run(inputs, outputs, self.config.timeout_s)
        finally:
            self.in_flight -= 1
        self.stats.record_execution(batch_rows=_rows(inputs), compute_s=compute_s)
        return result, compute_s

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()


class Dispatcher:
    """Runs requests for every served version of one inference server.

    Runners are created on first use and replaced when a version's serving config changes;
    the replaced one finishes the requests it already queued before it is closed.

    Example:
        >>> dispatcher = Dispatcher(ServingMetrics())  # doctest: +SKIP
        >>> await dispatcher.run(loaded, config, {"X": x}, None)  # doctest: +SKIP
    """

    def __init__(self, metrics: ServingMetrics) -> None:
        self.metrics = metrics
        self._runners: dict[tuple[str, int, str], _Runner] = {}
        self._background: set[asyncio.Task[Any]] = set()

    async def run(
        self,
        loaded: LoadedVersion,
        config: ServingConfig,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        outputs: Sequence[str] | None,
    ) -> Arrays:
        """Run one request on ``loaded`` under ``config``; raises 413/429/504 errors when bounded out."""
        rows, limit = _rows(inputs), config.settings.max_rows
        if rows > limit:
            raise PayloadTooLarge(
                f"request of {rows} rows exceeds deployment {plain_name(loaded.deployment)!r}'s "
                f"max_rows={limit}; send fewer rows per request, or raise the deployment's max_rows",
                details={"field": "max_rows", "limit": limit, "rows": rows},
            )
        return await self._runner(loaded, config).run(inputs, outputs)

    def load(self) -> dict[tuple[str, str, int], tuple[int, int]]:
        """``(deployment, model, version) → (requests running, requests queued)`` now."""
        load: dict[tuple[str, str, int], tuple[int, int]] = {}
        for runner in list(self._runners.values()):
            queued = runner.batcher.stats()["queued_requests"] if runner.batcher is not None else 0
            key = (runner.loaded.deployment, runner.loaded.model, runner.loaded.version)
            running, waiting = load.get(key, (0, 0))
            load[key] = (running + max(runner.active - queued, 0), waiting + queued)
        return load

    def mirror(
        self, loaded: LoadedVersion, config: ServingConfig, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> None:
        """Send a copy of a request to a shadow version; its answer and errors are only counted."""
        task = asyncio.get_running_loop().create_task(self._shadow(loaded, config, inputs))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _shadow(
        self, loaded: LoadedVersion, config: ServingConfig, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> None:
        try:
            await self.run(loaded, config, inputs, None)
        except Exception as exc:  # a shadow must never affect the real answer
            logger.debug("shadow request to %s v%d failed: %s", loaded.deployment, loaded.version, exc)

    def _runner(self, loaded: LoadedVersion, config: ServingConfig) -> _Runner:
        key = (loaded.deployment, loaded.version, loaded.artifact_digest)
        runner = self._runners.get(key)
        # A version served again after a switch away and back has new replica processes.
        if runner is None or runner.config != config or runner.runtime is not loaded.runtime:
            if runner is not None:
                self._retire(runner)
            stats = self.metrics.for_version(loaded.deployment, loaded.model, loaded.version)
            runner = _Runner(loaded, config, stats)
            self._runners[key] = runner
        return runner

    def _retire(self, runner: _Runner) -> None:
        """Let a replaced runner finish what it queued, then close it: a config change
        under load fails no request."""
        if runner.batcher is None:
            return
        task = asyncio.get_running_loop().create_task(_drain_then_close(runner))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()


async def _drain_then_close(runner: _Runner) -> None:
    assert runner.batcher is not None
    while True:
        stats = runner.batcher.stats()
        if not stats["queued_requests"] and not stats["running_batches"]:
            break
        await asyncio.sleep(runner.config.max_queue_delay_ms / 1000 + 0.001)
    runner.close()


def _rows(inputs: Mapping[str, np.ndarray[Any, Any]]) -> int:
    for array in inputs.values():
        return int(array.shape[0]) if array.ndim else 1
    return 0
