"""The dynamic batcher, on real ONNX models (scikit-learn and PyTorch) and a few stand-ins.

Every test runs its own event loop (``asyncio.run``) and its own executor, where the model
functions run (:func:`_threaded`, as an in-process runtime runs its session). Tests that need
requests to wait hold the executor with :class:`Gated`, a run function that blocks on a
``threading.Event`` and reports each call to the loop, so the order of events is fixed by
the test and no test depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import pytest

from aiaas.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted, Unavailable
from aiaas.formats import OnnxModel, Signature, TensorSpec
from aiaas.serving.batcher import BatchingConfig, BatchRecord, DynamicBatcher, supports_batching
from tests.serving.conftest import IrisModel, TorchModel

_T = TypeVar("_T")
Array = np.ndarray[Any, Any]
Run = Callable[[dict[str, Array], list[str] | None], dict[str, Array]]
AsyncRun = Callable[[dict[str, Array], list[str] | None], Awaitable[dict[str, Array]]]

#: Long enough that a batch in these tests only leaves when it is full.
ONLY_FULL_BATCHES_MS = 60_000.0


def run(main: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    return asyncio.run(main())


async def _let_ready_tasks_run() -> None:
    """Return once every task already scheduled has taken its first step (tasks run FIFO)."""

    async def nothing() -> None:
        return None

    await asyncio.create_task(nothing())


class Gated:
    """A run function that holds its executor thread until :attr:`gate` is set.

    Each call puts its row count on :attr:`started` (through the loop, thread-safely)
    before it blocks, so a test can wait until a batch is really running.
    """

    def __init__(self, inner: Run) -> None:
        self.inner = inner
        self.loop = asyncio.get_running_loop()
        self.gate = threading.Event()
        self.started: asyncio.Queue[int] = asyncio.Queue()
        self.calls: list[int] = []

    def __call__(self, inputs: dict[str, Array], output_names: list[str] | None) -> dict[str, Array]:
        rows = len(next(iter(inputs.values())))
        self.calls.append(rows)
        self.loop.call_soon_threadsafe(self.started.put_nowait, rows)
        # A safety net: a broken test fails instead of hanging the executor forever.
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        return self.inner(inputs, output_names)


def _threaded(model: Run, executor: ThreadPoolExecutor) -> AsyncRun:
    """A plain model function as the batcher's async ``run``: called on ``executor``'s
    threads, as a runtime in this process runs its session."""

    async def call(inputs: dict[str, Array], output_names: list[str] | None) -> dict[str, Array]:
        return await asyncio.get_running_loop().run_in_executor(executor, model, inputs, output_names)

    return call


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-batcher")
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def iris(iris_model: Callable[[float], IrisModel]) -> OnnxModel:
    """The scikit-learn iris pipeline (scaler + logistic regression) as ONNX, FP32 input."""
    return OnnxModel(iris_model(1.0).package.onnx)


@pytest.fixture(scope="module")
def mlp(torch_model: TorchModel) -> OnnxModel:
    return OnnxModel(torch_model.package.onnx)


def _requests(x: Array, sizes: list[int]) -> list[Array]:
    """Slices of ``x`` with the given row counts, wrapping around, each a different part."""
    out, start = [], 0
    for n in sizes:
        idx = np.arange(start, start + n) % len(x)
        out.append(np.ascontiguousarray(x[idx]))
        start += 7 * n + 1
    return out


def _assert_same(got: dict[str, Array], alone: dict[str, Array]) -> None:
    assert list(got) == list(alone)
    for name, value in alone.items():
        assert got[name].shape == value.shape, name
        if value.dtype.kind == "f":  # a batched GEMM may round differently, by a few ulps
            np.testing.assert_allclose(got[name], value, rtol=1e-6, atol=1e-7, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], value, err_msg=name)


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("max_batch_size", 1, "an integer >= 2"),
        ("max_batch_size", 2.5, "an integer >= 2"),
        ("max_batch_size", True, "an integer >= 2"),
        ("max_queue_size", -1, "an integer >= 1"),
        ("max_concurrent_batches", 0, "an integer >= 1"),
        ("max_queue_delay_ms", -0.5, "a finite number >= 0"),
        ("max_queue_delay_ms", float("inf"), "a finite number >= 0"),
        ("max_queue_delay_ms", float("nan"), "a finite number >= 0"),
    ],
)
def test_config_rejects_out_of_range_values_naming_the_field(field: str, value: Any, rule: str) -> None:
    with pytest.raises(InvalidArgument, match=f"{field} must be {rule}; got {value!r}") as info:
        BatchingConfig(**{field: value})
    assert info.value.code == "INVALID_ARGUMENT"
    assert info.value.details["field"] == field


def test_config_defaults() -> None:
    config = BatchingConfig()
    assert (config.max_batch_size, config.max_queue_delay_ms) == (32, 2.0)
    assert (config.max_queue_size, config.max_concurrent_batches) == (1024, 1)
    assert BatchingConfig(max_queue_delay_ms=0).max_queue_delay_ms == 0


def test_supports_batching_needs_a_dynamic_first_dim_everywhere(iris: OnnxModel, mlp: OnnxModel) -> None:
    assert supports_batching(iris.signature) and supports_batching(mlp.signature)
    x = TensorSpec("x", "FP32", (-1, 4))
    assert not supports_batching(Signature(inputs=(x,), outputs=(TensorSpec("y", "FP32", (1, 3)),)))
    assert not supports_batching(Signature(inputs=(x,), outputs=(TensorSpec("y", "FP32", ()),)))
    assert not supports_batching(Signature(inputs=(TensorSpec("x", "FP32", (2, 4)),), outputs=()))


# -- batching real models -----------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["iris", "mlp"])
def test_mixed_row_counts_match_running_each_request_alone(
    model_name: str, iris: OnnxModel, mlp: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    model = iris if model_name == "iris" else mlp
    name = model.signature.inputs[0].name
    requests = _requests(iris_x, [1, 3, 7, 40] * 8)
    alone = [model.run({name: x}) for x in requests]

    async def main() -> tuple[list[dict[str, Array]], dict[str, Any]]:
        batcher = DynamicBatcher(
            _threaded(model.run, executor), BatchingConfig(max_batch_size=16), signature=model.signature
        )
        results = await asyncio.gather(*(batcher.submit({name: x}) for x in requests))
        await batcher.aclose()
        return results, batcher.stats()

    results, stats = run(main)
    for got, want in zip(results, alone, strict=True):
        _assert_same(got, want)
    assert stats["requests"] == len(requests)
    assert stats["rows"] == sum(len(x) for x in requests), "every row ran exactly once"
    sizes = dict(stats["batch_size_counts"])
    assert sizes.pop(40) == 8, "each 40-row request ran whole, in a call of its own"
    assert max(sizes) <= 16, "batches of small requests stay within max_batch_size"
    assert sum(sizes.values()) < 24, "the 24 small requests shared model calls"
    assert sum(size * n for size, n in stats["batch_size_counts"].items()) == stats["rows"]
    assert stats["failed_batches"] == 0 and stats["batching"] is True


def test_concurrent_requests_form_batches_in_the_executor(
    iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    requests = _requests(iris_x, [1] * 50)
    threads: list[str] = []
    records: list[BatchRecord] = []

    def recording(inputs: dict[str, Array], names: list[str] | None) -> dict[str, Array]:
        threads.append(threading.current_thread().name)
        return iris.run(inputs, names)

    async def main() -> tuple[list[dict[str, Array]], dict[str, Any]]:
        batcher = DynamicBatcher(_threaded(recording, executor), BatchingConfig(), on_batch=records.append)
        results = await asyncio.gather(*(batcher.submit({"X": x}) for x in requests))
        await batcher.aclose()
        return results, batcher.stats()

    results, stats = run(main)
    for got, x in zip(results, requests, strict=True):
        _assert_same(got, iris.run({"X": x}))
    assert stats["requests"] == 50 and stats["rows"] == 50
    assert stats["batches"] < 50
    assert max(stats["batch_size_counts"]) > 1
    assert len(threads) == stats["batches"], "the model runs once per batch"
    assert all(t.startswith("test-batcher") for t in threads), "never on the event loop"
    assert sum(r.rows for r in records) == 50 and sum(r.requests for r in records) == 50
    assert all(r.error is None and len(r.queue_s) == r.requests for r in records)
    # The totals are the sums of what each batch reported: the time its requests waited and
    # its model call took (a total stuck at zero, or counting only some batches, differs).
    assert stats["queue_ms"] == pytest.approx(1000 * sum(sum(r.queue_s) for r in records))
    assert stats["compute_ms"] == pytest.approx(1000 * sum(r.compute_s for r in records))
    assert all(r.compute_s > 0 for r in records)
    assert stats["queue_ms"] > 0, "requests that formed a batch waited for it"


def test_a_request_of_max_batch_size_rows_or_more_runs_at_once_alone_and_whole(
    iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    # Regression: such a request was cut into max_batch_size-row chunks queued behind the
    # running batch, one model call after another: 4x slower than with batching off.
    (big,) = _requests(iris_x, [40])
    exact = iris_x[40:56]

    async def main() -> tuple[list[dict[str, Array]], dict[str, Any]]:
        gated = Gated(iris.run)
        config = BatchingConfig(max_batch_size=16, max_queue_delay_ms=ONLY_FULL_BATCHES_MS)
        batcher = DynamicBatcher(_threaded(gated, executor), config)
        # 16 one-row requests fill a batch, which starts and holds the only batch slot.
        small = [asyncio.create_task(batcher.submit({"X": iris_x[i : i + 1]})) for i in range(16)]
        assert await gated.started.get() == 16
        alone = [asyncio.create_task(batcher.submit({"X": x})) for x in (big, exact)]
        # Both start while that batch still runs: no queue, no wait for its slot, no chunks.
        started = [await asyncio.wait_for(gated.started.get(), timeout=10) for _ in alone]
        assert sorted(started) == [16, 40]
        stats = batcher.stats()
        assert stats["queued_requests"] == 0 and stats["running_alone"] == 2
        assert stats["running_batches"] == 3
        gated.gate.set()
        results = await asyncio.gather(*small, *alone)
        await batcher.aclose()
        return results, batcher.stats()

    results, stats = run(main)
    for got, x in zip(results, [iris_x[i : i + 1] for i in range(16)] + [big, exact], strict=True):
        _assert_same(got, iris.run({"X": x}))
    assert stats["batch_size_counts"] == {16: 2, 40: 1}
    assert stats["requests"] == 18 and stats["rows"] == 72 and stats["running_alone"] == 0


def test_output_selection_batches_only_requests_asking_for_the_same_outputs(
    iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    choices: list[list[str] | None] = [None, ["label"], ["probabilities"], ["probabilities", "label"]]
    asks = [(x, choices[i % len(choices)]) for i, x in enumerate(_requests(iris_x, [1, 2, 3] * 8))]

    async def main() -> tuple[list[dict[str, Array]], dict[str, Any]]:
        batcher = DynamicBatcher(_threaded(iris.run, executor), BatchingConfig(max_batch_size=8))
        results = await asyncio.gather(*(batcher.submit({"X": x}, names) for x, names in asks))
        await batcher.aclose()
        return results, batcher.stats()

    results, stats = run(main)
    for got, (x, names) in zip(results, asks, strict=True):
        _assert_same(got, iris.run({"X": x}, names))
    assert stats["batches"] >= len(choices), "one group per output set"
    assert stats["batches"] < len(asks)


def test_requests_without_a_shared_row_axis_run_alone(executor: ThreadPoolExecutor) -> None:
    def scale(inputs: dict[str, Array], names: list[str] | None) -> dict[str, Array]:
        return {"y": inputs["x"] * inputs["k"][0]}

    x = np.arange(6, dtype=np.float32).reshape(3, 2)

    async def main() -> tuple[list[dict[str, Array]], dict[str, Any]]:
        batcher = DynamicBatcher(_threaded(scale, executor), BatchingConfig())
        results = await asyncio.gather(
            *(batcher.submit({"x": x, "k": np.array([k], np.float32)}) for k in (1.0, 2.0, 3.0))
        )
        await batcher.aclose()
        return results, batcher.stats()

    results, stats = run(main)
    for got, k in zip(results, (1.0, 2.0, 3.0), strict=True):
        np.testing.assert_array_equal(got["y"], x * k)
    assert stats["batches"] == 3


# -- models that must not be batched ------------------------------------------------------


def _column_sums(calls: list[int]) -> Run:
    """A model with no row axis in its output: one row of sums, whatever the batch."""

    def model(inputs: dict[str, Array], names: list[str] | None) -> dict[str, Array]:
        calls.append(len(inputs["x"]))
        return {"total": inputs["x"].sum(axis=0, keepdims=True)}

    return model


def test_outputs_without_the_batch_axis_switch_batching_off_and_rerun_alone(
    executor: ThreadPoolExecutor,
) -> None:
    # Requests of 16 rows or more run alone and whole; the small ones share batches until the
    # first batch of several shows one row of sums where there should be one row per input row.
    requests = [np.full((2, 3), i, np.float64) for i in range(5)] + [np.ones((40, 3)), np.ones((17, 3))]
    calls: list[int] = []

    async def main() -> tuple[list[dict[str, Array]], dict[str, Any], dict[str, Array]]:
        batcher = DynamicBatcher(_threaded(_column_sums(calls), executor), BatchingConfig(max_batch_size=16))
        results = await asyncio.gather(*(batcher.submit({"x": x}) for x in requests))
        later = await batcher.submit({"x": np.ones((40, 3))})
        await batcher.aclose()
        return results, batcher.stats(), later

    results, stats, later = run(main)
    for got, x in zip(results, requests, strict=True):
        np.testing.assert_array_equal(got["total"], x.sum(axis=0, keepdims=True))
    np.testing.assert_array_equal(later["total"], [[40.0, 40.0, 40.0]])
    assert stats["batching"] is False
    assert calls[-1] == 40, "once batching is off, a large request runs whole"


def test_a_signature_without_a_dynamic_first_dim_runs_requests_one_by_one(
    executor: ThreadPoolExecutor,
) -> None:
    signature = Signature(
        inputs=(TensorSpec("x", "FP64", (-1, 3)),), outputs=(TensorSpec("total", "FP64", (1, 3)),)
    )
    calls: list[int] = []
    requests = [np.full((n, 3), n, np.float64) for n in (1, 3, 7, 40)]

    async def main() -> tuple[list[dict[str, Array]], dict[str, Any]]:
        batcher = DynamicBatcher(
            _threaded(_column_sums(calls), executor), BatchingConfig(max_batch_size=16), signature=signature
        )
        assert batcher.batching is False
        results = await asyncio.gather(*(batcher.submit({"x": x}) for x in requests))
        await batcher.aclose()
        return results, batcher.stats()

    results, stats = run(main)
    for got, x in zip(results, requests, strict=True):
        np.testing.assert_array_equal(got["total"], x.sum(axis=0, keepdims=True))
    assert sorted(calls) == [1, 3, 7, 40], "one call per request, the 40 rows not split"
    assert stats["batch_size_counts"] == {1: 1, 3: 1, 7: 1, 40: 1}


# -- back-pressure, timeouts, errors, closing ---------------------------------------------


def test_full_queue_refuses_at_once_while_queued_requests_succeed(
    iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    async def main() -> None:
        gated = Gated(iris.run)
        batcher = DynamicBatcher(_threaded(gated, executor), BatchingConfig(max_queue_size=2))
        first = asyncio.create_task(batcher.submit({"X": iris_x[:1]}))
        await gated.started.get()  # running, so no longer queued
        queued = [asyncio.create_task(batcher.submit({"X": iris_x[i : i + 1]})) for i in (1, 2)]
        refused = asyncio.create_task(batcher.submit({"X": iris_x[3:4]}))
        with pytest.raises(
            ResourceExhausted, match=r"queue is full \(2 requests waiting, max_queue_size=2\)"
        ) as info:
            await refused
        assert info.value.code == "RESOURCE_EXHAUSTED" and info.value.details["retry_after_s"] > 0
        assert batcher.stats()["queued_requests"] == 2 and batcher.stats()["rejected"] == 1
        gated.gate.set()
        results = await asyncio.gather(first, *queued)
        for got, i in zip(results, (0, 1, 2), strict=True):
            _assert_same(got, iris.run({"X": iris_x[i : i + 1]}))
        assert batcher.stats()["queued_requests"] == 0
        await batcher.aclose()

    run(main)


def test_timeout_while_queued_raises_and_removes_the_request(
    iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    async def main() -> None:
        gated = Gated(iris.run)
        batcher = DynamicBatcher(_threaded(gated, executor), BatchingConfig())
        first = asyncio.create_task(batcher.submit({"X": iris_x[:1]}))
        await gated.started.get()
        with pytest.raises(DeadlineExceeded, match=r"within timeout_s=0\.05") as info:
            await batcher.submit({"X": iris_x[1:3]}, timeout_s=0.05)
        assert info.value.code == "DEADLINE_EXCEEDED"
        stats = batcher.stats()
        assert stats["queued_requests"] == 0 and stats["queued_rows"] == 0 and stats["timeouts"] == 1
        gated.gate.set()
        _assert_same(await first, iris.run({"X": iris_x[:1]}))
        _assert_same(await batcher.submit({"X": iris_x[5:6]}), iris.run({"X": iris_x[5:6]}))
        assert gated.calls == [1, 1], "the timed-out request never reached the model"
        await batcher.aclose()

    run(main)


def test_a_cancelled_caller_leaves_the_queue(
    iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    async def main() -> None:
        gated = Gated(iris.run)
        batcher = DynamicBatcher(_threaded(gated, executor), BatchingConfig(max_batch_size=16))
        first = asyncio.create_task(batcher.submit({"X": iris_x[:1]}))
        await gated.started.get()
        abandoned = asyncio.create_task(batcher.submit({"X": iris_x[:10]}))
        await _let_ready_tasks_run()
        assert batcher.stats()["queued_rows"] == 10
        abandoned.cancel()
        with pytest.raises(asyncio.CancelledError):
            await abandoned
        assert batcher.stats()["queued_requests"] == 0 and batcher.stats()["queued_rows"] == 0
        gated.gate.set()
        await first
        await batcher.aclose()
        assert gated.calls == [1]

    run(main)


def test_timeout_while_running_raises_and_the_batcher_goes_on(
    iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    async def main() -> None:
        gated = Gated(iris.run)
        batcher = DynamicBatcher(_threaded(gated, executor), BatchingConfig(max_queue_delay_ms=0))
        with pytest.raises(DeadlineExceeded):
            await batcher.submit({"X": iris_x[:1]}, timeout_s=0.5)
        assert gated.calls == [1], "it timed out while the model was running it"
        gated.gate.set()
        _assert_same(await batcher.submit({"X": iris_x[1:2]}), iris.run({"X": iris_x[1:2]}))
        await batcher.aclose()
        assert batcher.stats()["batches"] == 2

    run(main)


def test_invalid_timeout_is_refused(iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor) -> None:
    async def main() -> None:
        batcher = DynamicBatcher(_threaded(iris.run, executor))
        for bad in (0, -1.0, float("nan")):
            with pytest.raises(InvalidArgument, match="timeout_s must be a number > 0"):
                await batcher.submit({"X": iris_x[:1]}, timeout_s=bad)
        assert batcher.stats()["requests"] == 0
        await batcher.aclose()

    run(main)


def test_a_model_error_fails_only_its_batch(
    iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    def picky(inputs: dict[str, Array], names: list[str] | None) -> dict[str, Array]:
        if np.isnan(inputs["X"]).any():
            raise ValueError("NaN in input")
        return iris.run(inputs, names)

    poisoned = iris_x[1:2].copy()
    poisoned[0, 0] = np.nan
    requests = [iris_x[0:1], poisoned, iris_x[2:3], iris_x[3:4]]

    async def main() -> None:
        config = BatchingConfig(max_batch_size=2, max_queue_delay_ms=ONLY_FULL_BATCHES_MS)
        batcher = DynamicBatcher(_threaded(picky, executor), config)
        outcomes = await asyncio.gather(*(batcher.submit({"X": x}) for x in requests), return_exceptions=True)
        assert isinstance(outcomes[0], ValueError) and outcomes[1] is outcomes[0], "same error, same batch"
        for got, x in zip(outcomes[2:], requests[2:], strict=True):
            assert isinstance(got, dict)
            _assert_same(got, iris.run({"X": x}))
        again = await asyncio.gather(*(batcher.submit({"X": iris_x[i : i + 1]}) for i in (4, 5)))
        _assert_same(again[0], iris.run({"X": iris_x[4:5]}))
        stats = batcher.stats()
        assert (stats["batches"], stats["failed_batches"]) == (3, 1)
        await batcher.aclose()

    run(main)


def test_close_fails_queued_requests_and_lets_the_running_batch_finish(
    iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    async def main() -> None:
        gated = Gated(iris.run)
        batcher = DynamicBatcher(_threaded(gated, executor), BatchingConfig())
        running = asyncio.create_task(batcher.submit({"X": iris_x[:1]}))
        await gated.started.get()
        queued = [asyncio.create_task(batcher.submit({"X": iris_x[i : i + 1]})) for i in (1, 2)]
        await _let_ready_tasks_run()
        assert batcher.stats()["queued_requests"] == 2
        batcher.close()
        for task in queued:
            with pytest.raises(Unavailable, match="closed"):
                await task
        with pytest.raises(Unavailable, match="closed"):
            await batcher.submit({"X": iris_x[:1]})
        gated.gate.set()
        await batcher.aclose()
        _assert_same(await running, iris.run({"X": iris_x[:1]}))
        assert batcher.closed and batcher.stats()["queued_requests"] == 0

    run(main)


def test_max_concurrent_batches_caps_the_batches_running_at_once(
    iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    async def main() -> None:
        gated = Gated(iris.run)
        config = BatchingConfig(
            max_batch_size=4, max_queue_delay_ms=ONLY_FULL_BATCHES_MS, max_concurrent_batches=2
        )
        batcher = DynamicBatcher(_threaded(gated, executor), config)
        # Two rows each: every two requests fill a batch.
        tasks = [asyncio.create_task(batcher.submit({"X": iris_x[i : i + 2]})) for i in range(0, 12, 2)]
        assert [await gated.started.get(), await gated.started.get()] == [4, 4]
        await _let_ready_tasks_run()
        stats = batcher.stats()
        assert stats["running_batches"] == 2 and stats["queued_requests"] == 2
        gated.gate.set()
        for got, i in zip(await asyncio.gather(*tasks), range(0, 12, 2), strict=True):
            _assert_same(got, iris.run({"X": iris_x[i : i + 2]}))
        assert gated.calls == [4, 4, 4]
        await batcher.aclose()

    run(main)


def test_a_concurrency_callable_sets_the_running_batches_as_it_changes(
    iris: OnnxModel, iris_x: Array, executor: ThreadPoolExecutor
) -> None:
    ready = [1]  # as a replica set's ready replica count would change

    async def main() -> None:
        gated = Gated(iris.run)
        config = BatchingConfig(max_batch_size=2, max_queue_delay_ms=ONLY_FULL_BATCHES_MS)
        batcher = DynamicBatcher(_threaded(gated, executor), config, concurrency=lambda: ready[0])
        tasks = [asyncio.create_task(batcher.submit({"X": iris_x[i : i + 1]})) for i in range(6)]
        assert await gated.started.get() == 2
        await _let_ready_tasks_run()
        assert batcher.stats()["running_batches"] == 1, "one slot while one replica is ready"
        ready[0] = 0  # scaled to zero: still one batch, which waits for the cold start
        assert batcher.max_concurrent_batches() == 1
        ready[0] = 3
        gated.gate.set()
        await asyncio.gather(*tasks)
        assert gated.calls == [2, 2, 2]
        await batcher.aclose()

    run(main)


def test_a_coroutine_run_is_awaited_on_the_event_loop(iris: OnnxModel, iris_x: Array) -> None:
    """A replica set's run: batches are joined, awaited and split on the loop, no thread."""
    calls: list[tuple[int, str]] = []

    async def remote(inputs: dict[str, Array], names: list[str] | None) -> dict[str, Array]:
        calls.append((len(inputs["X"]), threading.current_thread().name))
        await asyncio.sleep(0)  # as a socket round trip would yield
        return iris.run(inputs, names)

    requests = _requests(iris_x, [1, 2, 3] * 6 + [40])

    async def main() -> tuple[list[dict[str, Array]], dict[str, Any]]:
        batcher = DynamicBatcher(remote, BatchingConfig(max_batch_size=16), signature=iris.signature)
        results = await asyncio.gather(*(batcher.submit({"X": x}, ["probabilities"]) for x in requests))
        await batcher.aclose()
        return results, batcher.stats()

    results, stats = run(main)
    for got, x in zip(results, requests, strict=True):
        _assert_same(got, iris.run({"X": x}, ["probabilities"]))
    loop_thread = threading.current_thread().name
    assert {thread for _, thread in calls} == {loop_thread}, "never in a worker thread"
    assert (40, loop_thread) in calls, "the large request ran whole"
    assert len(calls) < len(requests) and max(rows for rows, _ in calls if rows != 40) <= 16
    assert stats["rows"] == sum(len(x) for x in requests) and stats["compute_ms"] > 0
