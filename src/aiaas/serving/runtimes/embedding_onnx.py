"""A sentence-transformers model run by ONNX Runtime on the CPU, exported once per model folder.

Why: on a CPU, ONNX Runtime runs a small BERT-like encoder several times faster than eager
PyTorch (fused attention and layer-norm kernels, no Python per layer). The graph is the
whole ``SentenceTransformer`` forward, traced from the loaded model itself (transformer,
pooling, normalisation, any dense layer), so it computes what ``encode`` computes; the
tokenizer stays sentence-transformers' own (:meth:`SentenceTransformer.preprocess`).

The export (PyTorch's TorchScript-based ``torch.onnx.export``, dynamic batch and sequence
axes) is written once into the export folder the front names, under a name made of the
model folder's name (its artifact digest) and the library versions that traced it, by a
temporary file renamed into place: two replicas exporting at once both end with a whole
file. Before it serves, the session's vectors for a few probe texts are compared with
``encode``'s; beyond :data:`TOLERANCE` (or any failure to export or load) the runtime
keeps PyTorch, and says why in its ``info``.
"""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PROBE_TEXTS", "RUN_COST_TOKENS", "TOLERANCE", "OnnxEncoder", "length_groups", "load_or_export"]

#: Largest absolute difference from ``encode`` that a served vector may have (the platform
#: promises sentence-transformers' vectors within 1e-5).
TOLERANCE = 1e-5

#: Texts whose vectors are compared with ``encode``'s before the session serves: one
#: alone, and a batch of unequal lengths (padding must not change any vector).
PROBE_TEXTS = (
    ["hello"],
    [
        "the quick brown fox jumps over the lazy dog",
        "a",
        "Ünïcödé text, numbers 12345 and punctuation: are they all embedded the same way?",
    ],
)

#: The ONNX operator set of the export (ONNX Runtime 1.17 and later run it).
OPSET = 17


class OnnxEncoder:
    """``encode`` for a list of texts, through an ONNX Runtime session of the exported model."""

    def __init__(self, model: Any, session: Any, names: list[str]) -> None:
        self.model = model
        self.session = session
        self.names = names
        # Right-padded features can be cut to a group's longest text; any other layout runs whole.
        self.groupable = "attention_mask" in names and getattr(model.tokenizer, "padding_side", "") == "right"

    def encode(self, texts: list[str]) -> np.ndarray[Any, Any]:
        """The sentence embeddings of ``texts``, float32, one row per text.

        The batch is tokenized in one call (padded to its longest text), then run in groups of
        similar length (:func:`length_groups`), each cut to its own longest text: a few long
        texts no longer make every short one pay for their padding.
        """
        features = self.model.preprocess(texts)
        feeds = {name: features[name].numpy() for name in self.names}
        if not self.groupable or len(texts) == 1:
            return self._run(feeds)
        lengths = feeds["attention_mask"].sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        groups = length_groups(lengths[order].tolist())
        if len(groups) == 1:
            return self._run(feeds)
        vectors: np.ndarray[Any, Any] | None = None
        for start, stop in groups:
            rows = order[start:stop]
            width = int(lengths[rows[-1]])
            part = self._run({name: array[rows, :width] for name, array in feeds.items()})
            if vectors is None:
                vectors = np.empty((len(texts), part.shape[1]), dtype=np.float32)
            vectors[rows] = part
        assert vectors is not None
        return vectors

    def _run(self, feeds: dict[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        vectors: np.ndarray[Any, Any] = self.session.run(None, feeds)[0]
        return vectors.astype(np.float32, copy=False)


#: What one more run of the model costs, in tokens of compute: each run streams every weight
#: from memory once, whatever its size (measured on the CPU with MiniLM under ONNX Runtime,
#: one thread: ~2 ms a run against ~0.155 ms a token; both scale with the parameter count,
#: so the ratio hardly depends on the model).
RUN_COST_TOKENS = 13


def length_groups(lengths: list[int]) -> list[tuple[int, int]]:
    """How to cut a batch, sorted by token length, into runs of the model: ``[start, stop)`` pairs.

    A run of rows ``i..j-1`` costs :data:`RUN_COST_TOKENS` plus ``(j - i) * lengths[j - 1]``
    (every row padded to the longest); the cuts minimise the sum, found by dynamic
    programming over the places where the length changes.
    """
    n = len(lengths)
    cuts = [i for i in range(1, n) if lengths[i] != lengths[i - 1]] + [n]
    best = {0: (0, 0)}  # end of a prefix -> (its cheapest cost, where its last run starts)
    for j in cuts:
        best[j] = min((best[i][0] + RUN_COST_TOKENS + (j - i) * lengths[j - 1], i) for i in best)
    groups: list[tuple[int, int]] = []
    j = n
    while j:
        i = best[j][1]
        groups.append((i, j))
        j = i
    return groups[::-1]


def load_or_export(model: Any, folder: Path, export_dir: Path, threads: int) -> tuple[OnnxEncoder, Path]:
    """The encoder of ``model`` (loaded from ``folder``), exporting it into ``export_dir`` if needed.

    A kept export that no longer loads or checks out (a damaged file, a changed library) is
    removed and exported again, once.

    Raises:
        ValueError: the exported graph's vectors differ from ``encode``'s by more than
            :data:`TOLERANCE` (the export is then removed, so a later load tries again).
        Exception: whatever the export or ONNX Runtime raised.
    """
    import sentence_transformers
    import torch

    features = model.preprocess(["an example"])
    names = [k for k, v in features.items() if isinstance(v, torch.Tensor)]
    constants = {k: v for k, v in features.items() if not isinstance(v, torch.Tensor)}
    tag = f"st{sentence_transformers.__version__}-torch{torch.__version__}-opset{OPSET}"
    path = export_dir / f"{folder.name}-{tag}.onnx"
    if path.is_file():
        try:
            return _checked(model, path, names, threads), path
        except Exception:
            path.unlink(missing_ok=True)
    _export(model, features, names, constants, path)
    try:
        return _checked(model, path, names, threads), path
    except Exception:
        path.unlink(missing_ok=True)
        raise


def _checked(model: Any, path: Path, names: list[str], threads: int) -> OnnxEncoder:
    """A session of the export at ``path``, once its vectors for :data:`PROBE_TEXTS` match ``encode``'s."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # No busy-waiting between operators: on a CPU shared with the server's own threads (and
    # other replicas), spinning workers take time the others need; measured faster here.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    encoder = OnnxEncoder(model, session, names)
    for texts in PROBE_TEXTS:
        expected = model.encode(texts, convert_to_numpy=True, show_progress_bar=False)
        got = encoder.encode(texts)
        if got.shape != expected.shape:
            raise ValueError(f"the ONNX export gives vectors of shape {got.shape}; encode {expected.shape}")
        difference = float(np.abs(got - expected).max())
        if difference > TOLERANCE:
            raise ValueError(
                f"the ONNX export's vectors differ from encode's by {difference:.2g} > {TOLERANCE:g}"
            )
    return encoder


def _export(
    model: Any, features: dict[str, Any], names: list[str], constants: dict[str, Any], path: Path
) -> None:
    import torch

    class Forward(torch.nn.Module):
        """The model's forward over positional tensors (what the exporter traces)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            out = self.model(dict(zip(names, tensors, strict=True)) | constants)
            return out["sentence_embedding"]  # type: ignore[no-any-return]

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's tracer and deprecation warnings
            torch.onnx.export(
                Forward().eval(),
                tuple(features[name] for name in names),
                str(tmp),
                input_names=names,
                output_names=["sentence_embedding"],
                dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
