"""The embedding runtime in-process: how long it lingers for more requests before a batch.

Driven the way a replica drives it (EMBED frames in, ``linger``/``step``), with a tiny
sentence-transformers model built here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from aiaas.serving import ipc
from aiaas.serving.runtimes import create
from tests._hf_models import make_embedder


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_embedder(tmp_path_factory.mktemp("embedder") / "model")


def runtime_for(embedder: Path, delay_ms: float) -> Any:
    spec = {"runtime": "hf-embedding", "path": str(embedder), "device": "cpu", "max_batch_size": 8}
    return create(spec | {"max_queue_delay_ms": delay_ms})


def embed(runtime: Any, request_id: int) -> None:
    body = orjson.dumps({"texts": [f"hello world {request_id}"]})
    assert runtime.handle(ipc.EMBED, request_id, memoryview(body)) == []


def answered(frames: list[bytes]) -> list[int]:
    parsed, _ = ipc.split_frames(bytearray(b"".join(frames)))
    assert all(kind == ipc.RESULT for kind, _, _ in parsed)
    return [request_id for _, request_id, _ in parsed]


def test_an_idle_model_answers_a_lone_request_without_lingering(embedder: Path) -> None:
    runtime = runtime_for(embedder, 50.0)
    embed(runtime, 1)
    assert runtime.linger() == 0.0
    assert answered(runtime.step()) == [1]


def test_after_a_large_batch_a_few_requests_wait_for_the_rest_within_the_delay(embedder: Path) -> None:
    runtime = runtime_for(embedder, 50.0)
    for i in range(1, 6):
        embed(runtime, i)
    assert answered(runtime.step()) == [1, 2, 3, 4, 5]
    # The five clients come back one by one: two are here, the others not yet.
    embed(runtime, 6)
    embed(runtime, 7)
    assert 0.0 < runtime.linger() <= 0.05
    for i in range(8, 11):
        embed(runtime, i)
    assert runtime.linger() == 0.0  # as many as the last batch held: go
    assert answered(runtime.step()) == [6, 7, 8, 9, 10]


def test_without_a_queue_delay_the_runtime_never_lingers(embedder: Path) -> None:
    runtime = runtime_for(embedder, 0.0)
    for i in range(1, 6):
        embed(runtime, i)
    runtime.step()
    embed(runtime, 6)
    assert runtime.linger() == 0.0
