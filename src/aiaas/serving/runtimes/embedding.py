"""The embedding runtime: a sentence-transformers model, batching requests dynamically.

Requests (EMBED from the OpenAI API, RUN from the V2 protocol) are queued as they arrive;
the replica calls :meth:`EmbeddingRuntime.step` only once no frame is waiting on its
socket, so every request that arrived while the previous batch ran is encoded together,
in one ``encode`` call of up to ``max_batch_size`` texts. There is no fixed wait: an idle
model answers a lone request at once, a busy one batches as deeply as the load allows.

The vectors are sentence-transformers' own ``encode`` output: the model is loaded by
``SentenceTransformer`` from its folder (modules, pooling, normalisation), offline and
without remote code. On the CPU, when the front names an export folder, the same model runs
through ONNX Runtime instead (:mod:`.embedding_onnx`: exported once per model folder and
checked against ``encode`` before it serves), several times faster than eager PyTorch; on a
GPU, PyTorch in half precision.

Each batch is tokenized in one call to count its tokens (too long an input is refused by
name, never truncated), then encoded: by PyTorch in one padded batch, by ONNX Runtime in
runs of similar token length, so short texts do not pay for a long one's padding.
"""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from . import device as _device

if __package__ == "runtimes":  # in a replica process: the sibling module
    import ipc  # type: ignore[import-not-found]
else:
    from aiaas.serving import ipc

__all__ = ["EmbeddingRuntime", "load"]


def _error(request_id: int, message: str, param: str | None) -> bytes:
    return ipc.encode_error(  # type: ignore[no-any-return]
        request_id, "INVALID_ARGUMENT", orjson.dumps({"message": message, "param": param}).decode()
    )


class EmbeddingRuntime:
    """A sentence-transformers model and the requests waiting for its next batch."""

    def __init__(self, spec: dict[str, Any]) -> None:
        _device.quiet_offline()
        import torch
        from sentence_transformers import SentenceTransformer

        device, dtype = _device.pick(str(spec.get("device", "auto")))
        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        self.model = SentenceTransformer(
            str(spec["path"]), device=str(device), local_files_only=True, trust_remote_code=False
        )
        if dtype == torch.float16:
            self.model.half()
        self.max_batch_size = int(spec.get("max_batch_size") or 32)
        self.max_tokens = int(self.model.max_seq_length or 512)
        self.onnx: Any = None
        engine, note, extra_bytes = "pytorch", "", 0
        if device.type == "cpu" and spec.get("export_dir"):
            try:
                from . import embedding_onnx

                self.onnx, exported = embedding_onnx.load_or_export(
                    self.model,
                    Path(str(spec["path"])),
                    Path(str(spec["export_dir"])),
                    int(spec.get("threads") or 0),
                )
                engine, extra_bytes = "onnxruntime", exported.stat().st_size
            except Exception as exc:  # any model ONNX cannot carry still serves, through PyTorch
                note = f"ONNX Runtime not used: {type(exc).__name__}: {exc}"
                print(f"embedding runtime: {note}", file=sys.stderr, flush=True)
        self.queue: deque[tuple[int, list[str], bool]] = deque()  # (request id, texts, from V2)
        self.info: dict[str, Any] = {
            "task": "embedding",
            "dimension": int(self.model.get_embedding_dimension() or 0),
            "context_length": self.max_tokens,
            "max_batch_size": self.max_batch_size,
            "device": str(device),
            "dtype": str(dtype).removeprefix("torch."),
            "engine": engine,
            "memory_bytes": _device.memory_bytes(self.model) + extra_bytes,
        }
        if note:
            self.info["engine_note"] = note

    def handle(self, kind: int, request_id: int, body: memoryview) -> list[bytes]:
        if kind == ipc.EMBED:
            texts = orjson.loads(bytes(body))["texts"]
            self.queue.append((request_id, [str(t) for t in texts], False))
            return []
        if kind == ipc.RUN:
            inputs, _ = ipc.decode_run(body)
            if set(inputs) != {"input"} or inputs["input"].ndim != 1:
                return [
                    _error(
                        request_id,
                        "this embedding model takes one input 'input': texts, shape [-1]",
                        "inputs",
                    )
                ]
            self.queue.append((request_id, [str(t) for t in inputs["input"]], True))
            return []
        if kind == ipc.CANCEL:
            return []
        return [ipc.encode_error(request_id, "INVALID_ARGUMENT", "this deployment makes embeddings only")]

    def busy(self) -> bool:
        return bool(self.queue)

    def step(self) -> list[bytes]:
        batch: list[tuple[int, list[str], bool]] = []
        count = 0
        while self.queue and (not batch or count + len(self.queue[0][1]) <= self.max_batch_size):
            item = self.queue.popleft()
            batch.append(item)
            count += len(item[1])
        frames: list[bytes] = []
        ready: list[tuple[int, list[str], bool, np.ndarray[Any, Any]]] = []
        counts = self._token_counts([t for _, ts, _ in batch for t in ts])
        at = 0
        for request_id, texts, v2 in batch:
            lengths = counts[at : at + len(texts)]
            at += len(texts)
            too_long = np.flatnonzero(lengths > self.max_tokens)
            if too_long.size:
                i = int(too_long[0])
                frames.append(
                    _error(
                        request_id,
                        f"input[{i}] has {lengths[i]} tokens; this model takes at most {self.max_tokens} "
                        "tokens per input; shorten it or split it",
                        "input",
                    )
                )
                continue
            ready.append((request_id, texts, v2, lengths))
        texts = [t for _, ts, _, _ in ready for t in ts]
        if not texts:
            return frames
        try:
            vectors = self._encode(texts)
        except Exception as exc:  # the model failed: every request of the batch gets the error
            message = f"embedding failed: {type(exc).__name__}: {exc}"
            return frames + [ipc.encode_error(r, "INTERNAL", message) for r, *_ in ready]
        at = 0
        for request_id, request_texts, v2, lengths in ready:
            part = vectors[at : at + len(request_texts)]
            at += len(request_texts)
            outputs = {"embedding": part} if v2 else {"embedding": part, "tokens": lengths}
            frames.append(ipc.encode_result(request_id, outputs, 0.0))
        return frames

    def _encode(self, texts: list[str]) -> np.ndarray[Any, Any]:
        if self.onnx is not None:
            return self.onnx.encode(texts)  # type: ignore[no-any-return]
        vectors = self.model.encode(
            texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False
        )
        return vectors.astype(np.float32, copy=False)

    def _token_counts(self, texts: list[str]) -> np.ndarray[Any, Any]:
        encoded = self.model.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        return np.array([len(ids) for ids in encoded], dtype=np.int64)


def load(spec: dict[str, Any]) -> EmbeddingRuntime:
    """The runtime for ``spec`` (``path``, ``device``, ``max_batch_size``, ``threads``, and
    ``export_dir``: where ONNX exports of models are kept; without it, PyTorch only)."""
    return EmbeddingRuntime(spec)
