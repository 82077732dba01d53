"""Dynamic batching for one loaded model version: many small requests, one model call.

ONNX Runtime runs 32 rows in little more time than one, so a server that runs each small
request alone spends most of its CPU on per-call overhead. A :class:`DynamicBatcher` sits
in front of one version's ``run``: a small request waits up to ``max_queue_delay_ms`` for
others to join it, the batch is concatenated along axis 0, run once, and each request gets
its own rows back.

The rules:

* **What may share a batch.** Requests share a batch only when their batch key is equal:
  the same input names, dtypes and non-batch dimensions, and the same requested outputs (in
  the same order). Others wait in their own group, so a batch never needs padding or casts.
* **When a batch leaves.** As soon as its group holds ``max_batch_size`` rows, or when its
  oldest request has waited ``max_queue_delay_ms``, whichever comes first, and only while
  fewer than ``max_concurrent_batches`` batches of this batcher are running (or as many as
  the ``concurrency`` callable says, asked before each batch: one per ready replica).
  Capping running batches makes a burst queue here, where it is batched, rather than
  oversubscribe the CPU with calls that each run a batch of one.
* **Requests that run at once, alone.** A request of ``max_batch_size`` rows or more fills
  a batch on its own: waiting could only delay it. It skips the queue and the cap on
  running batches and runs whole, in one model call, exactly as it would with batching
  off. (Cutting it into ``max_batch_size``-row chunks queued one after another made a
  1,000-row request four times slower than running it whole, in ``benchmarks/serving.py``.)
  So do requests whose inputs do not share one leading dimension (a 0-d input, inputs with
  different row counts, no inputs) or that have zero rows, and every request once batching
  stopped (below): they have no row axis, or nothing to share. A batch formed from several
  requests therefore never holds more than ``max_batch_size`` rows.
* **Models that are not batched.** Batching assumes a row-wise model: output row ``i``
  depends on input row ``i`` only, and every output has the batch axis first. The batcher
  stops batching (every request then runs alone, one model call each) when

  - the ``signature`` it was given has an input or output whose first dimension is not
    dynamic (``-1``), or one of unknown rank or rank 0 (see :func:`supports_batching`); or
  - a batched run of several requests returns an output whose first dimension is not the
    batch's row count. Those requests are then run again, each alone. Such a batch holds at
    least 2 rows, so an output reduced over rows is always caught; an output whose fixed
    size happens to equal the row count is not.

  Give the ``signature`` where there is one. A model that mixes rows but keeps their count
  (normalising over the batch, say) cannot be detected and must not be put behind a batcher.

Back-pressure counts *requests*, not rows: ``max_queue_size`` caps how many
:meth:`DynamicBatcher.submit` calls may be waiting at once, in the queue or running alone
(a request running alone may itself wait for a worker thread or a replica, which the
batcher cannot see). That is what an HTTP server has to bound (one waiting coroutine and
one body each), and it keeps a large request from being refused only because it is large.
A full queue raises :class:`~aiaas.errors.ResourceExhausted` (HTTP 429) at once, with
``retry_after_s``.

``run`` is a coroutine function, awaited on the event loop once per batch: the version's
:class:`~aiaas.serving.runtime.Runtime` decides where the model runs (a replica process,
the loop only waiting on a socket; this process's worker threads), so no thread is parked
here waiting for a batch. Concatenating and splitting run on the loop (microseconds for the
batches this batcher forms); everything else does too, and a batcher belongs to the loop of
its first ``submit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from aiaas.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted, Unavailable
from aiaas.formats import Signature
from aiaas.serving.batch_rows import (
    _batch_key,
    _Group,
    _Item,
    _joined,
    _leading_rows,
    _NotRowWise,
    _split,
    supports_batching,
)
from aiaas.serving.batch_settings import BatchingConfig, BatchRecord

__all__ = [
    "AsyncRunFunction",
    "BatchRecord",
    "BatchingConfig",
    "DynamicBatcher",
    "supports_batching",
]

logger = logging.getLogger("aiaas.serving.batcher")

_Array = np.ndarray[Any, Any]
_T = TypeVar("_T")

#: Clock readings this close to a batch's due time count as due (see ``_next_batch``).
_CLOCK_TOLERANCE_S = 1e-6

#: A model call awaited on the event loop, once per batch (a runtime's ``run``, bound to
#: the deployment's timeout).
AsyncRunFunction = Callable[[dict[str, _Array], list[str] | None], Awaitable[dict[str, _Array]]]


class DynamicBatcher:
    """Batches concurrent requests to one model version; see the module docs for the rules.

    Args:
        run: the model call, once per batch, awaited on the event loop.
        config: batch size, queue delay, queue size and concurrency.
        signature: the model's signature; when given and it does not pass
            :func:`supports_batching`, requests are never batched.
        on_batch: called on the event loop after each model call with a
            :class:`BatchRecord` (to feed metrics); what it raises is logged and ignored.
        concurrency: how many batches may run at once, asked before each batch leaves;
            replaces ``config.max_concurrent_batches`` (values below 1 count as 1; ``None``
            keeps it). A replica set gives its ready replica count, so each replica runs a
            batch.

    Example:
        >>> batcher = DynamicBatcher(  # doctest: +SKIP
        ...     run_on_replica, BatchingConfig(max_batch_size=16), signature=loaded.signature,
        ... )
        >>> outputs = await batcher.submit({"X": x}, ["probabilities"], timeout_s=1.0)  # doctest: +SKIP
        >>> await batcher.aclose()  # doctest: +SKIP
    """

    def __init__(
        self,
        run: AsyncRunFunction,
        config: BatchingConfig | None = None,
        *,
        signature: Signature | None = None,
        on_batch: Callable[[BatchRecord], None] | None = None,
        concurrency: Callable[[], int | None] | None = None,
    ) -> None:
        self.config = config if config is not None else BatchingConfig()
        if not inspect.iscoroutinefunction(run):
            raise TypeError(f"run must be a coroutine function (a runtime's run); got {run!r}")
        self._run = run
        self._on_batch = on_batch
        self._concurrency = concurrency
        self._batching = signature is None or supports_batching(signature)
        self._groups: dict[Hashable, _Group] = {}
        self._queued_requests = 0
        self._queued_rows = 0
        self._alone = 0  # requests running alone now
        self._wakeup = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False
        # Statistics: changed on the event loop thread only, so they need no lock.
        self._requests = 0
        self._rejected = 0
        self._timeouts = 0
        self._batches = 0
        self._failed_batches = 0
        self._rows = 0
        self._queue_s = 0.0
        self._compute_s = 0.0
        self._batch_size_counts: dict[int, int] = {}

    @property
    def batching(self) -> bool:
        """False once the model is known not to be row-wise; requests then run alone."""
        return self._batching

    @property
    def closed(self) -> bool:
        """True after :meth:`close`; ``submit`` then raises Unavailable."""
        return self._closed

    def max_concurrent_batches(self) -> int:
        """How many batches may run at once now."""
        now = None if self._concurrency is None else self._concurrency()
        return self.config.max_concurrent_batches if now is None else max(1, now)

    # -- the request path --------------------------------------------------------------

    async def submit(
        self,
        inputs: Mapping[str, _Array],
        output_names: Sequence[str] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> dict[str, _Array]:
        """Run one request as part of a batch and return its own outputs.

        The same as :meth:`submit_timed`, without the run time.
        """
        outputs, _ = await self.submit_timed(inputs, output_names, timeout_s=timeout_s)
        return outputs

    async def submit_timed(
        self,
        inputs: Mapping[str, _Array],
        output_names: Sequence[str] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> tuple[dict[str, _Array], float]:
        """Run one request, batched or alone; return its own outputs and its compute time.

        The compute time is what per-request statistics report as ``compute_infer`` (as
        Triton does): the full run time of the model call the request ran in. Everything
        else the request spent here is waiting for that call to start.

        Args:
            inputs: input name → array, already checked against the model's signature;
                axis 0 is the row axis.
            output_names: the outputs to compute; all of them when ``None``.
            timeout_s: the most seconds to wait for the result, queueing included;
                ``None`` waits as long as it takes.

        Returns:
            output name → array holding this request's rows only, as ``run`` names them,
            and the seconds its model call ran.

        Raises:
            ResourceExhausted: ``max_queue_size`` requests are already waiting; ``details``
                has ``retry_after_s``.
            DeadlineExceeded: no result within ``timeout_s``. The request is taken out of
                the queue if it has not started; a model call already running for it
                finishes and its result is dropped.
            Unavailable: the batcher is closed, or closed while the request waited.
            InvalidArgument: ``timeout_s`` is not a number > 0.
            Exception: whatever ``run`` raised for the call this request was in.
        """
        if timeout_s is not None and (
            isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s > 0
        ):
            raise InvalidArgument(
                f"timeout_s must be a number > 0 or None; got {timeout_s!r}",
                details={"field": "timeout_s", "value": repr(timeout_s)},
            )
        self._check_open()
        self._bind_loop()
        arrays = {str(name): np.asarray(value) for name, value in inputs.items()}
        names = list(output_names) if output_names is not None else None
        self._admit()
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                return await self._execute(arrays, names)
        except TimeoutError:
            if not deadline.expired():
                raise  # raised by the model itself, not our deadline
            self._timeouts += 1
            raise DeadlineExceeded(
                f"inference did not finish within timeout_s={timeout_s}; the server is busy "
                "or the model is slow: retry, or allow a longer timeout",
                details={"timeout_s": timeout_s},
            ) from None

    async def _execute(
        self, inputs: dict[str, _Array], names: list[str] | None
    ) -> tuple[dict[str, _Array], float]:
        rows = _leading_rows(inputs)
        if self._batching and rows and rows < self.config.max_batch_size:
            item = self._enqueue(_batch_key(inputs, names), inputs, names, rows)
            try:
                return await item.future, item.compute_s
            except _NotRowWise:
                pass  # the model turned out not to be row-wise: run this request again, alone
            finally:
                self._withdraw(item)
        return await self._run_alone(inputs, names, 1 if rows is None else rows)

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the model's batcher is closed (the version is being unloaded); retry")

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("a DynamicBatcher serves the event loop of its first submit() only")

    def _admit(self) -> None:
        limit = self.config.max_queue_size
        waiting = self._queued_requests + self._alone
        if waiting >= limit:
            self._rejected += 1
            retry_after_s = self._retry_after_s()
            raise ResourceExhausted(
                f"the model's queue is full ({waiting} requests waiting, "
                f"max_queue_size={limit}); retry after {retry_after_s:.3f}s, or add replicas",
                details={
                    "max_queue_size": limit,
                    "queued_requests": waiting,
                    "retry_after_s": retry_after_s,
                },
            )
        self._requests += 1

    def _retry_after_s(self) -> float:
        """How long the queue takes to drain, estimated from the mean model call so far."""
        config = self.config
        per_batch_s = self._compute_s / self._batches if self._batches else config.max_queue_delay_ms / 1000
        batches_ahead = max(1, math.ceil(self._queued_rows / config.max_batch_size)) + self._alone
        estimate = batches_ahead * per_batch_s / self.max_concurrent_batches()
        return round(max(0.001, config.max_queue_delay_ms / 1000, estimate), 3)

    def _enqueue(self, key: Hashable, inputs: dict[str, _Array], names: list[str] | None, rows: int) -> _Item:
        loop = asyncio.get_running_loop()
        item = _Item(key, inputs, names, rows, loop.create_future(), loop.time())
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        group.items.append(item)
        group.rows += rows
        self._queued_rows += rows
        self._queued_requests += 1
        self._wakeup.set()
        if self._dispatcher is None:
            self._dispatcher = loop.create_task(self._dispatch(), name="aiaas-batcher")
            self._dispatcher.add_done_callback(self._dispatcher_done)
        return item

    def _withdraw(self, item: _Item) -> None:
        """Take a finished, failed or abandoned request out of the queue."""
        if item.queued:
            self._dequeued(item, self._groups[item.key])
        future = item.future
        if not future.done():
            future.cancel()  # a running batch sees this and drops the result
        elif not future.cancelled():
            future.exception()  # marks the error as seen

    def _dequeued(self, item: _Item, group: _Group) -> None:
        if group.items[0] is item:
            group.items.popleft()
        else:
            group.items.remove(item)  # abandoned while others ahead of it still wait
        item.queued = False
        group.rows -= item.rows
        self._queued_rows -= item.rows
        self._queued_requests -= 1
        if not group.items:
            del self._groups[item.key]

    async def _run_alone(
        self, inputs: dict[str, _Array], names: list[str] | None, rows: int
    ) -> tuple[dict[str, _Array], float]:
        """One model call for this request alone, at once: no queue, no cap on running batches."""
        self._alone += 1
        start = time.perf_counter()
        timing: list[float] = []
        error: BaseException | None = None
        try:
            outputs = await self._run(inputs, names)
            timing.append(time.perf_counter() - start)
            return outputs, timing[0]
        except BaseException as exc:  # a timed-out caller too: its call is not counted as done
            error = exc
            raise
        finally:
            self._alone -= 1
            self._record(rows, (0.0,), timing[0] if timing else time.perf_counter() - start, error)

    # -- the dispatcher ----------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Form batches one at a time, each as soon as a slot is free and a batch is due."""
        loop = asyncio.get_running_loop()
        while True:
            while len(self._running) >= self.max_concurrent_batches():
                self._slot_freed.clear()
                await self._slot_freed.wait()
            batch = await self._next_batch()
            task = loop.create_task(self._run_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slot_freed.set()

    async def _next_batch(self) -> list[_Item]:
        loop = asyncio.get_running_loop()
        delay_s = self.config.max_queue_delay_ms / 1000
        # The timer that wakes this loop for a due batch may leave the clock a rounding error
        # short of the delay (uvloop's clock and timers count whole milliseconds): waiting
        # again for that hair cost a whole extra millisecond per batch.
        due_s = delay_s - _CLOCK_TOLERANCE_S
        while True:
            now = loop.time()
            due: tuple[float, Hashable, _Group] | None = None
            next_due_at: float | None = None
            for key, group in self._groups.items():
                oldest = group.items[0].enqueued_at
                if not self._batching or group.rows >= self.config.max_batch_size or now - oldest >= due_s:
                    if due is None or oldest < due[0]:
                        due = (oldest, key, group)  # the longest-waiting ready group first
                elif next_due_at is None or oldest + delay_s < next_due_at:
                    next_due_at = oldest + delay_s
            if due is not None:
                batch = self._take(due[2])
                if batch:
                    return batch
                continue  # every item it held had been abandoned
            self._wakeup.clear()
            if next_due_at is None:
                await self._wakeup.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(next_due_at - now):
                        await self._wakeup.wait()

    def _take(self, group: _Group) -> list[_Item]:
        """Pop the oldest items of a group that fit in one batch, in arrival order.

        Once batching stopped, a batch is one request (it runs alone, but in its turn: it
        was queued before batching stopped).
        """
        batch: list[_Item] = []
        rows = 0
        while group.items:
            item = group.items[0]
            if batch and (not self._batching or rows + item.rows > self.config.max_batch_size):
                break
            self._dequeued(item, group)
            if item.future.done():
                continue  # abandoned (timed out, cancelled) before it started
            batch.append(item)
            rows += item.rows
        return batch

    async def _run_batch(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        started_at = loop.time()
        start = time.perf_counter()
        timing: list[float] = []
        error: BaseException | None = None
        try:
            inputs, names = _joined(batch)
            outputs = await self._run(inputs, names)
            results, row_wise = _split(batch, outputs)
            timing.append(time.perf_counter() - start)
        except asyncio.CancelledError:
            error = Unavailable("the model's batcher stopped before this request finished; retry")
            _fail(batch, error)
            raise
        except _NotRowWise as exc:
            error = exc
            self._stop_batching(str(exc))
            _fail(batch, exc)
        except Exception as exc:
            error = exc
            _fail(batch, exc)
        else:
            if not row_wise:
                self._stop_batching("its outputs do not have the batch axis first")
            for item, result in zip(batch, results, strict=True):
                item.compute_s = timing[0]
                if not item.future.done():
                    item.future.set_result(result)
        finally:
            rows = sum(item.rows for item in batch)
            queue_s = tuple(started_at - item.enqueued_at for item in batch)
            self._record(rows, queue_s, timing[0] if timing else time.perf_counter() - start, error)

    def _stop_batching(self, reason: str) -> None:
        if self._batching:
            self._batching = False
            logger.warning("model outputs cannot be split by rows (%s); requests now run one by one", reason)

    def _record(
        self, rows: int, queue_s: tuple[float, ...], compute_s: float, error: BaseException | None
    ) -> None:
        self._batches += 1
        if error is not None:
            self._failed_batches += 1
        self._rows += rows
        self._queue_s += sum(queue_s)
        self._compute_s += compute_s
        self._batch_size_counts[rows] = self._batch_size_counts.get(rows, 0) + 1
        if self._on_batch is not None:
            record = BatchRecord(
                rows=rows, requests=len(queue_s), queue_s=queue_s, compute_s=compute_s, error=error
            )
            try:
                self._on_batch(record)
            except Exception:
                logger.exception("the on_batch hook failed; batching goes on")

    def _dispatcher_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("the batch dispatcher stopped unexpectedly", exc_info=task.exception())
            self.close()  # fail what waits rather than leave it hanging

    # -- statistics and lifecycle ------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters since creation, as plain data (a fresh dict each call).

        Returns:
            ``requests`` (admitted), ``rejected`` (queue full), ``timeouts``, ``batches``
            (model calls, requests run alone included), ``failed_batches``, ``rows`` (rows
            given to the model), ``queue_ms`` and ``compute_ms`` (totals over requests and
            model calls), ``batch_size_counts`` (rows per call → number of calls), and the
            current ``queued_requests``, ``queued_rows``, ``running_alone`` (requests),
            ``running_batches`` (model calls, those of requests run alone included) and
            ``batching``.
        """
        return {
            "requests": self._requests,
            "rejected": self._rejected,
            "timeouts": self._timeouts,
            "batches": self._batches,
            "failed_batches": self._failed_batches,
            "rows": self._rows,
            "queue_ms": self._queue_s * 1000,
            "compute_ms": self._compute_s * 1000,
            "batch_size_counts": dict(sorted(self._batch_size_counts.items())),
            "queued_requests": self._queued_requests,
            "queued_rows": self._queued_rows,
            "running_alone": self._alone,
            "running_batches": len(self._running) + self._alone,
            "batching": self._batching,
        }

    def close(self) -> None:
        """Refuse new requests, fail queued ones with Unavailable, stop the dispatcher.

        Model calls already running finish and deliver their results; :meth:`aclose` waits
        for the batches among them. Call it on the event loop thread. Closing twice does
        nothing.
        """
        if self._closed:
            return
        self._closed = True
        for group in list(self._groups.values()):
            while group.items:
                item = group.items[0]
                self._dequeued(item, group)
                if not item.future.done():
                    item.future.set_exception(
                        Unavailable("the model's batcher closed before this request ran; retry")
                    )
        if self._dispatcher is not None:
            self._dispatcher.cancel()

    async def aclose(self) -> None:
        """:meth:`close`, then wait for the dispatcher to stop and running batches to end."""
        self.close()
        tasks: list[asyncio.Task[None]] = [*self._running]
        if self._dispatcher is not None:
            tasks.append(self._dispatcher)
        if tasks:
            await asyncio.wait(tasks)


def _fail(batch: list[_Item], error: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(error)
