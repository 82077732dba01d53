"""The embedding runtime in-process: ONNX Runtime on the CPU, against sentence-transformers' ``encode``.

The runtime is driven the way a replica drives it (EMBED frames in, one ``step``, RESULT
frames out). A tiny model is built here; its ONNX export goes into a folder of the test.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from aiaas.serving import ipc
from aiaas.serving.runtimes import create, embedding_onnx
from tests._hf_models import encode, make_embedder

TEXTS = [
    "hello world",
    "the quick brown fox jumps over the lazy dog and keeps running far away",
    "a",
    "Ünïcödé text, emoji 🙂 and numbers 12345",
]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_embedder(tmp_path_factory.mktemp("embedder") / "model")


def load(embedder: Path, exports: Path | None) -> Any:
    spec: dict[str, Any] = {"runtime": "hf-embedding", "path": str(embedder), "device": "cpu", "threads": 1}
    if exports is not None:
        spec["export_dir"] = str(exports)
    return create(spec)


def embed_each(runtime: Any, texts: list[str]) -> np.ndarray[Any, Any]:
    """One EMBED frame per text, all answered by one ``step`` (one batch), in order."""
    for i, text in enumerate(texts):
        assert runtime.handle(ipc.EMBED, i, memoryview(orjson.dumps({"texts": [text]}))) == []
    frames, _ = ipc.split_frames(bytearray(b"".join(runtime.step())))
    assert not runtime.busy()
    rows: dict[int, Any] = {}
    for kind, request_id, body in frames:
        assert kind == ipc.RESULT, bytes(body)
        outputs, _ = ipc.decode_result(body)
        rows[request_id] = outputs["embedding"][0]
    return np.array([rows[i] for i in range(len(texts))])


def test_on_a_cpu_the_export_serves_vectors_equal_to_encode(embedder: Path, tmp_path: Path) -> None:
    runtime = load(embedder, tmp_path)
    assert runtime.info["engine"] == "onnxruntime"
    (export,) = tmp_path.glob("*.onnx")
    assert export.name.startswith(f"{embedder.name}-")
    # One padded batch of unequal lengths: each vector is still the one encode gives alone.
    np.testing.assert_allclose(embed_each(runtime, TEXTS), encode(embedder, TEXTS), atol=1e-5)


def test_the_export_is_kept_and_reused_and_a_damaged_one_made_again(embedder: Path, tmp_path: Path) -> None:
    load(embedder, tmp_path)
    (export,) = tmp_path.glob("*.onnx")
    made = export.stat().st_mtime_ns
    assert load(embedder, tmp_path).info["engine"] == "onnxruntime"
    assert export.stat().st_mtime_ns == made  # reused, not exported again

    export.write_bytes(b"not a model")
    runtime = load(embedder, tmp_path)
    assert runtime.info["engine"] == "onnxruntime"
    assert export.stat().st_size > 1000
    np.testing.assert_allclose(embed_each(runtime, TEXTS[:2]), encode(embedder, TEXTS[:2]), atol=1e-5)


def test_without_an_export_folder_pytorch_serves(embedder: Path) -> None:
    runtime = load(embedder, None)
    assert runtime.info["engine"] == "pytorch"
    np.testing.assert_allclose(embed_each(runtime, TEXTS), encode(embedder, TEXTS), atol=1e-5)


def test_an_export_that_cannot_be_made_leaves_pytorch_serving_and_says_why(
    embedder: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "exports"
    blocked.write_text("a file where the export folder should be")
    runtime = load(embedder, blocked)
    assert runtime.info["engine"] == "pytorch"
    assert "ONNX Runtime not used" in runtime.info["engine_note"]
    np.testing.assert_allclose(embed_each(runtime, TEXTS[:1]), encode(embedder, TEXTS[:1]), atol=1e-5)


def test_a_too_long_input_is_refused_by_name_and_the_rest_of_the_batch_served(
    embedder: Path, tmp_path: Path
) -> None:
    runtime = load(embedder, tmp_path)
    runtime.handle(ipc.EMBED, 1, memoryview(orjson.dumps({"texts": ["fine", "word " * 200]})))
    runtime.handle(ipc.EMBED, 2, memoryview(orjson.dumps({"texts": ["hello world"]})))
    frames, _ = ipc.split_frames(bytearray(b"".join(runtime.step())))
    by_id = {request_id: (kind, body) for kind, request_id, body in frames}
    kind, body = by_id[1]
    assert kind == ipc.ERROR
    assert "input[1] has" in bytes(body).decode()
    kind, body = by_id[2]
    assert kind == ipc.RESULT
    outputs, _ = ipc.decode_result(body)
    np.testing.assert_allclose(outputs["embedding"], encode(embedder, ["hello world"]), atol=1e-5)


def test_a_batch_of_very_unequal_lengths_runs_in_groups_and_answers_in_order(
    embedder: Path, tmp_path: Path
) -> None:
    runtime = load(embedder, tmp_path)
    runs: list[tuple[int, ...]] = []
    session = runtime.onnx.session

    class Counting:
        """The real session, noting the shape of each run."""

        def run(self, outputs: Any, feeds: dict[str, Any]) -> Any:
            runs.append(feeds["input_ids"].shape)
            return session.run(outputs, feeds)

    runtime.onnx.session = Counting()
    long = "the quick brown fox jumps over the lazy dog " * 3
    texts = ["hi", long, "a", "hello there", "ok", long + "again", "yes"]
    np.testing.assert_allclose(embed_each(runtime, texts), encode(embedder, texts), atol=1e-5)
    # The short texts ran without the long ones' padding.
    assert len(runs) == 2
    assert sorted(rows for rows, _ in runs) == [2, 5]
    assert min(width for _, width in runs) < max(width for _, width in runs) / 4


def _cost(lengths: list[int], groups: list[tuple[int, int]]) -> int:
    return sum(embedding_onnx.RUN_COST_TOKENS + (j - i) * lengths[j - 1] for i, j in groups)


def test_length_groups_cover_the_batch_at_the_least_cost() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        lengths = sorted(rng.integers(1, 80, size=int(rng.integers(1, 9))).tolist())
        groups = embedding_onnx.length_groups(lengths)
        assert [i for i, _ in groups] == [0] + [j for _, j in groups[:-1]]  # contiguous
        assert groups[-1][1] == len(lengths)
        # Every way to cut the sorted batch costs at least as much.
        n = len(lengths)
        for mask in range(1 << (n - 1)):
            cuts = [0] + [k + 1 for k in range(n - 1) if mask >> k & 1] + [n]
            other = list(itertools.pairwise(cuts))
            assert _cost(lengths, groups) <= _cost(lengths, other)
    assert embedding_onnx.length_groups([16] * 20) == [(0, 20)]
    assert embedding_onnx.length_groups([3] * 15 + [200]) == [(0, 15), (15, 16)]
