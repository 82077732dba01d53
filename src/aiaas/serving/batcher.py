"""Dynamic batching for one loaded model version: many small requests, one model call.

ONNX Runtime runs 32 rows in little more time than one, so a server that runs each small
request alone spends most of its CPU on per-call overhead. A :class:`DynamicBatcher` sits
in front of one version's ``run``: a request waits up to ``max_queue_delay_ms`` for others
to join it, the batch is concatenated along axis 0, run once in the executor, and each
request gets its own rows back.

The rules:

* **What may share a batch.** Requests share a batch only when their batch key is equal:
  the same input names, dtypes and non-batch dimensions, and the same requested outputs (in
  the same order). Others wait in their own group, so a batch never needs padding or casts.
* **When a batch leaves.** As soon as its group holds ``max_batch_size`` rows, or when its
  oldest request has waited ``max_queue_delay_ms``, whichever comes first, and only while
  fewer than ``max_concurrent_batches`` batches of this batcher are running. Capping
  running batches makes a burst queue here, where it is batched, rather than oversubscribe
  the CPU with threads that each run a batch of one.
* **Oversized requests.** A request with more rows than ``max_batch_size`` is cut into
  chunks of at most ``max_batch_size`` rows, which are queued and batched like any other
  request; their results are concatenated back. Nothing is rejected for its size and no
  batch ever exceeds ``max_batch_size`` rows.
* **Requests that run alone.** A request whose inputs do not share one leading dimension
  (a 0-d input, inputs with different row counts, no inputs) or that has zero rows runs on
  its own, exactly as sent: it has no known row axis, or no rows to share.
* **Models that are not batched.** Batching assumes a row-wise model: output row ``i``
  depends on input row ``i`` only, and every output has the batch axis first. The batcher
  stops batching (every request then runs alone and whole, one model call each) when

  - the ``signature`` it was given has an input or output whose first dimension is not
    dynamic (``-1``), or one of unknown rank or rank 0 (see :func:`supports_batching`); or
  - a batched run returns an output whose first dimension is not the batch's row count.
    The requests of that batch (whole, when it held a chunk of theirs) are then run again
    alone. A batch of several requests, and the first chunk of a split request, holds at
    least 2 rows (``max_batch_size >= 2``), so an output reduced over rows is always
    caught; an output whose fixed size happens to equal the row count is not.

  Give the ``signature`` where there is one. A model that mixes rows but keeps their count
  (normalising over the batch, say) cannot be detected and must not be put behind a batcher.

Back-pressure counts *requests*, not rows: ``max_queue_size`` caps how many
:meth:`DynamicBatcher.submit` calls may wait at once for their rows to start running. That
is what an HTTP server has to bound (one waiting coroutine and one body each), and it keeps
a large request from being refused only because it is large. A full queue raises
:class:`~aiaas.errors.ResourceExhausted` (HTTP 429) at once, with ``retry_after_s``.

Everything except the model call (and the concatenation and splitting around it) runs on
the event loop thread; a batcher belongs to the loop of its first ``submit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aiaas.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted, Unavailable
from aiaas.formats import Signature

__all__ = ["BatchRecord", "BatchingConfig", "DynamicBatcher", "RunFunction", "supports_batching"]

logger = logging.getLogger("aiaas.serving.batcher")

_Array = np.ndarray[Any, Any]

#: What a batcher calls, in the executor, once per batch: ``LoadedVersion.run`` fits.
RunFunction = Callable[[dict[str, _Array], list[str] | None], dict[str, _Array]]


@dataclass(frozen=True)
class BatchingConfig:
    """How a :class:`DynamicBatcher` trades latency for throughput.

    Args:
        max_batch_size: the most rows one model call receives; larger requests are split.
            At least 2: one row per call is no batching, and a 1-row chunk is the one case
            where an output without a row axis (a sum over rows) cannot be told apart.
        max_queue_delay_ms: how long the oldest waiting request may wait for others to join
            before its batch leaves anyway. ``0`` batches only what is already waiting.
        max_queue_size: the most requests (``submit`` calls, whatever their row count)
            that may wait for their rows to start running; one more is refused with
            :class:`~aiaas.errors.ResourceExhausted`.
        max_concurrent_batches: the most batches of one batcher running at once.

    Raises:
        InvalidArgument: a value is out of range, naming the field, the rule and the value.

    Example:
        >>> BatchingConfig(max_batch_size=16, max_queue_delay_ms=1.0).max_queue_size
        1024
    """

    max_batch_size: int = 32
    max_queue_delay_ms: float = 2.0
    max_queue_size: int = 1024
    max_concurrent_batches: int = 1

    def __post_init__(self) -> None:
        _check_count("max_batch_size", self.max_batch_size, minimum=2)
        _check_count("max_queue_size", self.max_queue_size, minimum=1)
        _check_count("max_concurrent_batches", self.max_concurrent_batches, minimum=1)
        delay = self.max_queue_delay_ms
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or delay < 0
        ):
            raise InvalidArgument(
                f"max_queue_delay_ms must be a finite number >= 0; got {delay!r} "
                "(use 0 to batch only requests that are already waiting)",
                details={"field": "max_queue_delay_ms", "value": repr(delay)},
            )


def _check_count(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(
            f"{name} must be an integer >= {minimum}; got {value!r}",
            details={"field": name, "value": repr(value)},
        )


@dataclass(frozen=True)
class BatchRecord:
    """What one model call did; handed to the ``on_batch`` hook (for metrics) as plain data.

    Attributes:
        rows: rows in the batch (the model's batch size).
        requests: requests in the batch; each chunk of a split request counts as one.
        queue_s: how long each of those requests waited in the queue, in batch order.
        compute_s: time in the executor: concatenating, running the model and splitting.
        error: what the model raised, or ``None``.
    """

    rows: int
    requests: int
    queue_s: tuple[float, ...]
    compute_s: float
    error: BaseException | None = None


def supports_batching(signature: Signature) -> bool:
    """Whether a signature allows batching: every input and output has a dynamic first dim.

    A fixed first dimension (``(1, 3)``), rank 0 or unknown rank (shape ``()``) means the
    model's tensors may have no row axis, so concatenating requests could change or break
    what the model computes.
    """
    specs = (*signature.inputs, *signature.outputs)
    return bool(specs) and all(len(spec.shape) >= 1 and spec.shape[0] < 0 for spec in specs)


class _NotRowWise(Exception):
    """A batched run returned an output without the batch axis first; rerun alone."""


@dataclass(eq=False, slots=True)
class _Request:
    """One ``submit`` call: its queued items and whether it still counts as waiting."""

    items: list[_Item] = field(default_factory=list)
    unstarted: int = 0
    waiting: bool = True
    compute_s: float = 0.0  # run time of the batches its rows ran in


@dataclass(eq=False, slots=True)
class _Item:
    """A request, or one chunk of a split request, as it waits in the queue."""

    request: _Request
    key: Hashable
    inputs: dict[str, _Array]
    output_names: list[str] | None
    rows: int
    whole: bool  # the request itself, not a chunk of it
    solo: bool  # never shares a model call
    future: asyncio.Future[dict[str, _Array]]
    enqueued_at: float
    queued: bool = True


@dataclass(eq=False, slots=True)
class _Group:
    """Waiting items with one batch key, oldest first."""

    items: deque[_Item] = field(default_factory=deque)
    rows: int = 0


class DynamicBatcher:
    """Batches concurrent requests to one model version; see the module docs for the rules.

    Args:
        run: the model call, run once per batch in ``executor``; ``LoadedVersion.run`` fits.
        config: batch size, queue delay, queue size and concurrency.
        executor: where the model runs; ``None`` means the event loop's default executor.
        signature: the model's signature; when given and it does not pass
            :func:`supports_batching`, requests are never batched.
        on_batch: called on the event loop after each model call with a
            :class:`BatchRecord` (to feed metrics); what it raises is logged and ignored.

    Example:
        >>> batcher = DynamicBatcher(  # doctest: +SKIP
        ...     loaded.run, BatchingConfig(max_batch_size=16), executor=pool,
        ...     signature=loaded.signature,
        ... )
        >>> outputs = await batcher.submit({"X": x}, ["probabilities"], timeout_s=1.0)  # doctest: +SKIP
        >>> await batcher.aclose()  # doctest: +SKIP
    """

    def __init__(
        self,
        run: RunFunction,
        config: BatchingConfig | None = None,
        *,
        executor: Executor | None = None,
        signature: Signature | None = None,
        on_batch: Callable[[BatchRecord], None] | None = None,
    ) -> None:
        self.config = config if config is not None else BatchingConfig()
        self._run = run
        self._executor = executor
        self._on_batch = on_batch
        self._batching = signature is None or supports_batching(signature)
        self._groups: dict[Hashable, _Group] = {}
        self._queued_requests = 0
        self._queued_rows = 0
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(self.config.max_concurrent_batches)
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
        """Run one request as part of a batch; return its own outputs and its compute time.

        The compute time is what per-request statistics report as ``compute_infer`` (as
        Triton does): the full run time of the batch the request ran in, or the sum over
        the batches its chunks ran in when it was split. Everything else the request spent
        here is waiting for its batch to start.

        Args:
            inputs: input name → array, already checked against the model's signature;
                axis 0 is the row axis.
            output_names: the outputs to compute; all of them when ``None``.
            timeout_s: the most seconds to wait for the result, queueing included;
                ``None`` waits as long as it takes.

        Returns:
            output name → array holding this request's rows only, as ``run`` names them,
            and the seconds its batches ran.

        Raises:
            ResourceExhausted: ``max_queue_size`` requests are already waiting; ``details``
                has ``retry_after_s``.
            DeadlineExceeded: no result within ``timeout_s``. The request is taken out of
                the queue if it has not started; a model call already running for it
                finishes and its result is dropped.
            Unavailable: the batcher is closed, or closed while the request waited.
            InvalidArgument: ``timeout_s`` is not a number > 0.
            Exception: whatever ``run`` raised for the batch this request was in.
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
        request = _Request()
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                outputs = await self._execute(request, arrays, names)
            return outputs, request.compute_s
        except TimeoutError:
            if not deadline.expired():
                raise  # raised by the model itself, not our deadline
            self._timeouts += 1
            raise DeadlineExceeded(
                f"inference did not finish within timeout_s={timeout_s}; the server is busy "
                "or the model is slow: retry, or allow a longer timeout",
                details={"timeout_s": timeout_s},
            ) from None
        finally:
            self._withdraw(request)

    async def _execute(
        self, request: _Request, inputs: dict[str, _Array], names: list[str] | None
    ) -> dict[str, _Array]:
        rows = _leading_rows(inputs)
        if self._batching and rows:
            key = _batch_key(inputs, names)
            size = self.config.max_batch_size
            items = [
                self._enqueue(
                    request,
                    key,
                    {name: array[start : start + size] for name, array in inputs.items()},
                    names,
                    min(size, rows - start),
                    whole=rows <= size,
                    solo=False,
                )
                for start in range(0, rows, size)
            ]
            try:
                parts = await asyncio.gather(*(item.future for item in items))
            except _NotRowWise:
                # The model turned out not to be row-wise: what already ran is useless,
                # so run the request again, alone and whole.
                self._withdraw(request)
            else:
                if len(parts) == 1:
                    return parts[0]
                return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        # A key no other item has: this request shares its model call with nobody.
        # Without a row axis it counts as one row, for the queue and the batch size statistics.
        item = self._enqueue(
            request, object(), inputs, names, 1 if rows is None else rows, whole=True, solo=True
        )
        return await item.future

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
        if self._queued_requests >= limit:
            self._rejected += 1
            retry_after_s = self._retry_after_s()
            raise ResourceExhausted(
                f"the model's queue is full ({self._queued_requests} requests waiting, "
                f"max_queue_size={limit}); retry after {retry_after_s:.3f}s, or add replicas",
                details={
                    "max_queue_size": limit,
                    "queued_requests": self._queued_requests,
                    "retry_after_s": retry_after_s,
                },
            )
        self._queued_requests += 1
        self._requests += 1

    def _retry_after_s(self) -> float:
        """How long the queue takes to drain, estimated from the mean model call so far."""
        config = self.config
        per_batch_s = self._compute_s / self._batches if self._batches else config.max_queue_delay_ms / 1000
        batches_ahead = max(1, math.ceil(self._queued_rows / config.max_batch_size))
        estimate = batches_ahead * per_batch_s / config.max_concurrent_batches
        return round(max(0.001, config.max_queue_delay_ms / 1000, estimate), 3)

    def _enqueue(
        self,
        request: _Request,
        key: Hashable,
        inputs: dict[str, _Array],
        names: list[str] | None,
        rows: int,
        *,
        whole: bool,
        solo: bool,
    ) -> _Item:
        self._check_open()
        loop = asyncio.get_running_loop()
        item = _Item(request, key, inputs, names, rows, whole, solo, loop.create_future(), loop.time())
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        group.items.append(item)
        group.rows += rows
        self._queued_rows += rows
        request.items.append(item)
        request.unstarted += 1
        self._wakeup.set()
        if self._dispatcher is None:
            self._dispatcher = loop.create_task(self._dispatch(), name="aiaas-batcher")
            self._dispatcher.add_done_callback(self._dispatcher_done)
        return item

    def _withdraw(self, request: _Request) -> None:
        """Take a finished, failed or abandoned request's items out of the queue."""
        for item in request.items:
            if item.queued:
                group = self._groups[item.key]
                group.items.remove(item)
                self._dequeued(item, group)
            future = item.future
            if not future.done():
                future.cancel()  # a running batch sees this and drops the result
            elif not future.cancelled():
                future.exception()  # marks a sibling chunk's error as seen
        request.items.clear()
        self._release(request)

    def _dequeued(self, item: _Item, group: _Group) -> None:
        item.queued = False
        group.rows -= item.rows
        self._queued_rows -= item.rows
        if not group.items:
            del self._groups[item.key]
        request = item.request
        request.unstarted -= 1
        if request.unstarted == 0:
            self._release(request)

    def _release(self, request: _Request) -> None:
        if request.waiting:
            request.waiting = False
            self._queued_requests -= 1

    # -- the dispatcher ----------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Form batches one at a time, each as soon as a slot is free and a batch is due."""
        while True:
            await self._slots.acquire()
            try:
                batch = await self._next_batch()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.get_running_loop().create_task(self._run_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _next_batch(self) -> list[_Item]:
        loop = asyncio.get_running_loop()
        delay_s = self.config.max_queue_delay_ms / 1000
        while True:
            now = loop.time()
            due: tuple[float, Hashable, _Group] | None = None
            next_due_at: float | None = None
            for key, group in self._groups.items():
                oldest = group.items[0].enqueued_at
                if self._is_full(group) or now - oldest >= delay_s:
                    if due is None or oldest < due[0]:
                        due = (oldest, key, group)  # the longest-waiting ready group first
                elif next_due_at is None or oldest + delay_s < next_due_at:
                    next_due_at = oldest + delay_s
            if due is not None:
                batch = self._take(due[1], due[2])
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

    def _is_full(self, group: _Group) -> bool:
        head = group.items[0]
        return head.solo or not self._batching or group.rows >= self.config.max_batch_size

    def _take(self, key: Hashable, group: _Group) -> list[_Item]:
        """Pop the oldest items of a group that fit in one batch, in arrival order."""
        batch: list[_Item] = []
        rows = 0
        while group.items:
            item = group.items[0]
            if batch and (item.solo or not self._batching or rows + item.rows > self.config.max_batch_size):
                break
            group.items.popleft()
            self._dequeued(item, group)
            if item.future.done():
                continue  # abandoned (timed out, cancelled) before it started
            batch.append(item)
            rows += item.rows
            if item.solo:
                break
        return batch

    async def _run_batch(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        started_at = loop.time()
        timing: list[float] = []
        error: BaseException | None = None
        try:
            results, row_wise = await loop.run_in_executor(self._executor, self._compute, batch, timing)
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
                item.request.compute_s += timing[0]
                if not item.future.done():
                    item.future.set_result(result)
        finally:
            self._slots.release()
            self._record(batch, started_at, timing[0] if timing else 0.0, error)

    def _compute(self, batch: list[_Item], timing: list[float]) -> tuple[list[dict[str, _Array]], bool]:
        """Concatenate, run and split: the one part that runs in the executor.

        Returns:
            each item's outputs, and whether the outputs had the batch axis first.

        Raises:
            _NotRowWise: several items (or a chunk) ran and the outputs cannot be split.
        """
        start = time.perf_counter()
        try:
            first = batch[0]
            if len(batch) == 1:
                inputs = dict(first.inputs)
            else:
                inputs = {
                    name: np.concatenate([item.inputs[name] for item in batch]) for name in first.inputs
                }
            names = list(first.output_names) if first.output_names is not None else None
            outputs = self._run(inputs, names)
            if first.solo:
                return [outputs], True  # nothing to split, and nothing learnt about rows
            rows = sum(item.rows for item in batch)
            bad = next(
                (
                    f"output {name!r} has shape {list(value.shape)} for a batch of {rows} rows"
                    for name, value in outputs.items()
                    if np.ndim(value) == 0 or np.shape(value)[0] != rows
                ),
                None,
            )
            if bad is not None:
                if len(batch) == 1 and first.whole:
                    return [outputs], False  # it ran alone, so its result is right as it is
                raise _NotRowWise(bad)
            results = []
            offset = 0
            for item in batch:
                results.append({name: value[offset : offset + item.rows] for name, value in outputs.items()})
                offset += item.rows
            return results, True
        finally:
            timing.append(time.perf_counter() - start)

    def _stop_batching(self, reason: str) -> None:
        if self._batching:
            self._batching = False
            logger.warning("model outputs cannot be split by rows (%s); requests now run one by one", reason)

    def _record(
        self, batch: list[_Item], started_at: float, compute_s: float, error: BaseException | None
    ) -> None:
        rows = sum(item.rows for item in batch)
        queue_s = tuple(started_at - item.enqueued_at for item in batch)
        self._batches += 1
        if error is not None:
            self._failed_batches += 1
        self._rows += rows
        self._queue_s += sum(queue_s)
        self._compute_s += compute_s
        self._batch_size_counts[rows] = self._batch_size_counts.get(rows, 0) + 1
        if self._on_batch is not None:
            record = BatchRecord(
                rows=rows, requests=len(batch), queue_s=queue_s, compute_s=compute_s, error=error
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
            (model calls), ``failed_batches``, ``rows`` (rows given to the model),
            ``queue_ms`` and ``compute_ms`` (totals over batched items and model calls),
            ``batch_size_counts`` (rows per call → number of calls), and the current
            ``queued_requests``, ``queued_rows``, ``running_batches`` and ``batching``.
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
            "running_batches": len(self._running),
            "batching": self._batching,
        }

    def close(self) -> None:
        """Refuse new requests, fail waiting ones with Unavailable, stop the dispatcher.

        Batches already running finish and deliver their results; :meth:`aclose` waits for
        them. Call it on the event loop thread. Closing twice does nothing.
        """
        if self._closed:
            return
        self._closed = True
        for group in list(self._groups.values()):
            while group.items:
                item = group.items.popleft()
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


def _leading_rows(inputs: Mapping[str, _Array]) -> int | None:
    """The row count all inputs share, or ``None`` when they do not share one."""
    rows = {array.shape[0] if array.ndim else None for array in inputs.values()}
    if len(rows) != 1:
        return None
    return rows.pop()


def _batch_key(inputs: Mapping[str, _Array], names: list[str] | None) -> Hashable:
    """Equal for requests that can be concatenated and asked for the same outputs."""
    tensors = tuple(
        sorted(
            # Strings of different widths concatenate fine, so their width stays out of it.
            (name, array.dtype.kind if array.dtype.kind in "SU" else array.dtype.str, array.shape[1:])
            for name, array in inputs.items()
        )
    )
    return (tensors, None if names is None else tuple(names))
