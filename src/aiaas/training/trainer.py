"""``train``: the one entry point the orchestrator calls, whatever the family."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from aiaas.errors import InvalidArgument
from aiaas.schemas.training import (
    CLASSIFICATION_METRICS,
    LANGUAGE_MODEL_FAMILIES,
    REGRESSION_METRICS,
    SKLEARN_FAMILIES,
    JobSpec,
)
from aiaas.training.checkpoint import SKLEARN_FORMAT, TORCH_FORMAT, state_format
from aiaas.training.data import TrainingData
from aiaas.training.distributed import external_env, joined_group, launch_local
from aiaas.training.reporter import NullReporter, Reporter
from aiaas.training.result import TrainingResult
from aiaas.training.sklearn_trainer import train_sklearn
from aiaas.training.text_data import TextData, TokenizedText
from aiaas.training.torch_trainer import Group, SoftTargets, train_torch

__all__ = ["train"]


def train(
    spec: JobSpec,
    data: TrainingData | TextData | TokenizedText,
    reporter: Reporter,
    *,
    resume: bytes | None = None,
    warm_start: bytes | None = None,
    threads: int | None = None,
    teacher: SoftTargets | None = None,
) -> TrainingResult:
    """Train the model a spec asks for on the given split, and package it for the registry.

    Args:
        spec: the validated job spec (``dataset``, ``target``, ``register_as`` are the
            orchestrator's business; the rest is used here).
        data: the arrays of the dataset version's split; for the ``transformer`` family, its
            documents (:class:`TextData`: the tokenizer is trained or inherited here) or
            already tokenized text.
        reporter: receives logs, per-epoch metrics and a checkpoint after every epoch.
        resume: the bytes of the last checkpoint of an interrupted run of the same spec and
            data: PyTorch families continue after that epoch and end exactly as an
            uninterrupted run would; scikit-learn families fit again from the start.
        warm_start: the ``state`` of an earlier result, to continue training from its
            weights (PyTorch families and logistic regression; the others refuse it). A
            PyTorch network keeps the input/target standardisation it was trained with.
            Ignored when ``resume`` is given (the checkpoint already holds it).
        threads: intra-op threads (``torch.set_num_threads``; ``n_jobs`` of random forests),
            restored afterwards. Default: torch's current setting; a local data-parallel run
            gives each rank ``cpu_count // workers``.
        teacher: a teacher's outputs on the training rows: the PyTorch families then learn
            from them as well as from the labels (knowledge distillation; one process only).

    Returns:
        the packaged model, its validation metrics, effective parameters, history and state.

    Raises:
        InvalidArgument: the spec does not fit the data (task, family, early-stopping
            metric, CNN without image shape, text for a tabular family or arrays for a
            language model), or ``resume``/``warm_start`` are not states of this kind of
            model. Nothing is reported or checkpointed before these checks.
    """
    if spec.model.family in LANGUAGE_MODEL_FAMILIES:
        return _train_text(spec, data, reporter, resume=resume, warm_start=warm_start, threads=threads)
    if not isinstance(data, TrainingData):
        raise InvalidArgument(
            f"model.family {spec.model.family!r} learns from numeric features, and this dataset is text; "
            "train a 'transformer' on it, or give a tabular dataset",
            details={"field": "model.family"},
        )
    data.check()
    _check_fit(spec, data)
    family = spec.model.family
    for name, blob in (("resume", resume), ("warm_start", warm_start)):
        if blob is not None:
            expected = SKLEARN_FORMAT if family in SKLEARN_FAMILIES else TORCH_FORMAT
            if state_format(blob) != expected:
                raise InvalidArgument(
                    f"{name} is not a saved state of a {family!r} model "
                    f"(expected {expected}, got {state_format(blob) or 'unknown bytes'})",
                    details={"field": name},
                )
    if teacher is not None and (family in SKLEARN_FAMILIES or spec.workers > 1 or external_env()):
        raise InvalidArgument(
            f"distillation trains a PyTorch family in one process; got {family!r} with "
            f"{spec.workers} worker(s)",
            details={"field": "model.family"},
        )
    if family in SKLEARN_FAMILIES:
        with _threads(threads):
            # A fit is one step: a resume simply fits again (seeded, so identically).
            return train_sklearn(
                spec, data, reporter, warm_start=warm_start, threads=threads or torch.get_num_threads()
            )

    env = external_env()
    if env is not None:
        rank, world_size = int(env["RANK"]), int(env["WORLD_SIZE"])
        if rank != 0:
            reporter = NullReporter()
        with _threads(threads), joined_group(rank, world_size, "env://") as group:
            reporter.log(f"joined a data-parallel group as rank {rank} of {world_size}")
            return train_torch(spec, data, reporter, resume=resume, warm_start=warm_start, group=group)
    if spec.workers > 1:
        per_rank = threads or max(1, (os.cpu_count() or 1) // spec.workers)

        def run(group: Group) -> TrainingResult:
            reporter.log(f"data-parallel training over {group.world_size} processes ({group.device})")
            return train_torch(spec, data, reporter, resume=resume, warm_start=warm_start, group=group)

        with _threads(per_rank):
            result: TrainingResult = launch_local(
                spec, data, run, resume=resume, warm_start=warm_start, threads=per_rank
            )
            return result
    with _threads(threads):
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return train_torch(
            spec,
            data,
            reporter,
            resume=resume,
            warm_start=warm_start,
            group=Group(device=device),
            teacher=teacher,
        )


def _train_text(
    spec: JobSpec,
    data: TrainingData | TextData | TokenizedText,
    reporter: Reporter,
    *,
    resume: bytes | None,
    warm_start: bytes | None,
    threads: int | None,
) -> TrainingResult:
    """The language model path: tokenize once here, then train alone or over ranks."""
    from aiaas.training.language_model import prepare_text, train_language_model

    if isinstance(data, TrainingData):
        raise InvalidArgument(
            f"model.family {spec.model.family!r} learns text, and this dataset holds numeric features; "
            "register a text dataset (a .txt corpus, or name its text column)",
            details={"field": "model.family"},
        )
    for name, blob in (("resume", resume), ("warm_start", warm_start)):
        if blob is not None and state_format(blob) != TORCH_FORMAT:
            raise InvalidArgument(f"{name} is not a saved state of a language model", details={"field": name})
    with _threads(threads):
        tokens = (
            data
            if isinstance(data, TokenizedText)
            else prepare_text(spec, data, resume=resume, warm_start=warm_start)
        )
    env = external_env()
    if env is not None:
        rank, world_size = int(env["RANK"]), int(env["WORLD_SIZE"])
        if rank != 0:
            reporter = NullReporter()
        with _threads(threads), joined_group(rank, world_size, "env://") as group:
            reporter.log(f"joined a data-parallel group as rank {rank} of {world_size}")
            return train_language_model(
                spec, tokens, reporter, resume=resume, warm_start=warm_start, group=group
            )
    if spec.workers > 1:
        per_rank = threads or max(1, (os.cpu_count() or 1) // spec.workers)

        def run(group: Group) -> TrainingResult:
            reporter.log(f"data-parallel training over {group.world_size} processes ({group.device})")
            return train_language_model(
                spec, tokens, reporter, resume=resume, warm_start=warm_start, group=group
            )

        with _threads(per_rank):
            result: TrainingResult = launch_local(
                spec, tokens, run, resume=resume, warm_start=warm_start, threads=per_rank
            )
            return result
    with _threads(threads):
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return train_language_model(
            spec, tokens, reporter, resume=resume, warm_start=warm_start, group=Group(device=device)
        )


def _check_fit(spec: JobSpec, data: TrainingData) -> None:
    """Rules that need the data: the task, the family's task, the early-stopping metric."""
    if spec.task is not None and spec.task != data.task:
        raise InvalidArgument(
            f"task is {spec.task!r}, but the data was prepared for {data.task!r}",
            details={"field": "task"},
        )
    fits = {"logistic": "classification", "linear": "regression"}
    family = spec.model.family
    if fits.get(family, data.task) != data.task:
        raise InvalidArgument(
            f"model.family {family!r} is for {fits[family]}, but the task is {data.task!r}; "
            f"use {'linear' if family == 'logistic' else 'logistic'} or another family",
            details={"field": "model.family"},
        )
    if family == "cnn" and data.image_shape is None:
        raise InvalidArgument(
            "model.family 'cnn' needs image-shaped data (such as digits, 1x8x8); "
            "this dataset has no image shape: use 'mlp'",
            details={"field": "model.family"},
        )
    es = spec.early_stopping
    if es is not None and es.metric not in ("loss", "val_loss"):
        names = CLASSIFICATION_METRICS if data.task == "classification" else REGRESSION_METRICS
        if es.metric[len("val_") :] not in names:
            raise InvalidArgument(
                f"early_stopping.metric {es.metric!r} is not a {data.task} metric; use 'val_loss' or "
                f"one of {[f'val_{n}' for n in names]}",
                details={"field": "early_stopping.metric"},
            )


@contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    if threads < 1:
        raise InvalidArgument(f"threads must be at least 1; got {threads}", details={"field": "threads"})
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
