"""A job folder: everything a rank process needs to train without the platform's database.

A coordinator writes one for the ranks it starts; a person writes one (the same folder on every
machine) to run the engine under ``torchrun`` without the platform. ``job.json`` holds the spec
and the data's description (or a language model's tokenizer), ``data.npz`` plain arrays (no
pickle), ``resume.bin``/``warm_start.bin`` the optional states. Rank 0 of a folder run reports
into it (:class:`FolderReporter`) and leaves its result there (:func:`write_result`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from aiaas.formats import ModelPackage
from aiaas.schemas.training import JobSpec
from aiaas.training.data import TrainingData
from aiaas.training.result import TrainingResult
from aiaas.training.text_data import TokenizedText

__all__ = ["FolderReporter", "read_job_folder", "write_atomic", "write_job_folder", "write_result"]


def write_job_folder(
    folder: Path,
    spec: JobSpec,
    data: TrainingData | TokenizedText,
    resume: bytes | None = None,
    warm_start: bytes | None = None,
    threads: int | None = None,
) -> None:
    """Write what ``python -m aiaas.training.distributed FOLDER`` needs: ``job.json`` (spec,
    names, classes, threads; or the tokenizer of a language model), ``data.npz`` (plain arrays:
    features and labels, or token ids), ``resume.bin``/``warm_start.bin``."""
    meta: dict[str, Any] = {"spec": spec.model_dump(mode="json"), "threads": threads}
    if isinstance(data, TokenizedText):
        np.savez(folder / "data.npz", train_ids=data.train_ids, validation_ids=data.validation_ids)
        meta["text"] = {
            "tokenizer": data.tokenizer,
            "tokenizer_files": data.tokenizer_files,
            "eos_id": data.eos_id,
            "vocab_size": data.vocab_size,
            "documents": list(data.documents),
            "chat": data.chat,
        }
    else:
        np.savez(
            folder / "data.npz",
            x_train=data.x_train,
            y_train=data.y_train,
            x_val=data.x_val,
            y_val=data.y_val,
        )
        meta |= {
            "feature_names": data.feature_names,
            "task": data.task,
            "classes": data.classes,
            "image_shape": list(data.image_shape) if data.image_shape else None,
        }
    (folder / "job.json").write_text(json.dumps(meta))
    if resume is not None:
        (folder / "resume.bin").write_bytes(resume)
    if warm_start is not None:
        (folder / "warm_start.bin").write_bytes(warm_start)


def read_job_folder(
    folder: Path,
) -> tuple[JobSpec, TrainingData | TokenizedText, bytes | None, bytes | None, int | None]:
    """Read a folder of :func:`write_job_folder` (arrays without pickle; the spec read back
    through :meth:`JobSpec.from_stored`, as a job row's is)."""
    meta = json.loads((folder / "job.json").read_text())
    data: TrainingData | TokenizedText
    with np.load(folder / "data.npz", allow_pickle=False) as arrays:
        text = meta.get("text")
        if text is not None:
            data = TokenizedText(
                train_ids=arrays["train_ids"],
                validation_ids=arrays["validation_ids"],
                tokenizer=text["tokenizer"],
                tokenizer_files=text["tokenizer_files"],
                eos_id=text["eos_id"],
                vocab_size=text["vocab_size"],
                documents=tuple(text["documents"]),
                chat=text["chat"],
            )
        else:
            data = TrainingData(
                arrays["x_train"],
                arrays["y_train"],
                arrays["x_val"],
                arrays["y_val"],
                meta["feature_names"],
                meta["task"],
                classes=meta["classes"],
                image_shape=tuple(meta["image_shape"]) if meta["image_shape"] else None,
            )
    resume = (folder / "resume.bin").read_bytes() if (folder / "resume.bin").exists() else None
    warm = (folder / "warm_start.bin").read_bytes() if (folder / "warm_start.bin").exists() else None
    return JobSpec.from_stored(meta["spec"]), data, resume, warm, meta["threads"]


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file, fsync, rename: a killed writer leaves the previous file whole."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class FolderReporter:
    """Rank 0's reporter of a job run from a folder: JSON lines on stdout and in
    ``metrics.jsonl``, the last checkpoint in ``checkpoint.bin`` (written atomically, so a
    killed run leaves the previous one whole)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _line(self, record: dict[str, Any]) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        with (self.folder / "metrics.jsonl").open("a") as f:
            f.write(line + "\n")

    def log(self, message: str) -> None:
        self._line({"log": message})

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self._line({"epoch": epoch, **metrics})

    def checkpoint(self, epoch: int, state: bytes) -> None:
        write_atomic(self.folder / "checkpoint.bin", state)


def write_result(folder: Path, result: TrainingResult) -> None:
    """Rank 0's result: ``model.onnx`` (a language model: the folder ``model/``), ``state.bin``
    and ``result.json`` (metrics, params, history)."""
    if isinstance(result.package, ModelPackage):
        write_atomic(folder / "model.onnx", result.package.onnx)
    elif result.package is not None:
        for name, content in result.package.files.items():
            (folder / "model" / name).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(folder / "model" / name, content)
    write_atomic(folder / "state.bin", result.state)
    summary = {"metrics": result.metrics, "params": result.params, "history": result.history}
    write_atomic(folder / "result.json", json.dumps(summary).encode())
