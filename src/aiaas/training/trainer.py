"""``train``: the one entry point the orchestrator calls, whatever the family and the role.

The caller names the process' role (:mod:`aiaas.training.group`): alone, the coordinator of a
local data-parallel run, or a member of a group formed elsewhere. Left out, it follows the spec
(:func:`~aiaas.training.group.default_role`): a process handed a whole job trains alone, or
coordinates ``workers`` local ranks. Nothing here reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from aiaas.errors import InvalidArgument
from aiaas.schemas.spec_rules import (
    LANGUAGE_MODEL_FAMILIES,
    SKLEARN_FAMILIES,
    RuleBroken,
    check_early_stopping,
    check_image_shape,
    check_task,
    invalid,
)
from aiaas.schemas.training import JobSpec
from aiaas.training.checkpoint import SKLEARN_FORMAT, TORCH_FORMAT, state_format
from aiaas.training.coordinator import launch_local
from aiaas.training.data import TrainingData
from aiaas.training.group import Alone, Coordinator, Group, Member, Role, default_role, joined_group
from aiaas.training.reporter import NullReporter, Reporter
from aiaas.training.result import TrainingResult
from aiaas.training.sklearn_trainer import train_sklearn
from aiaas.training.text_data import TextData, TokenizedText
from aiaas.training.torch_trainer import SoftTargets, train_torch

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
    role: Role | None = None,
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
        role: this process' part in the run (:class:`Alone`, :class:`Coordinator`, or a
            :class:`Member` of a group); default :func:`default_role` of the spec. A member
            other than rank 0 reports nothing.

    Returns:
        the packaged model, its validation metrics, effective parameters, history and state.

    Raises:
        InvalidArgument: the spec does not fit the data (task, family, early-stopping
            metric, CNN without image shape, text for a tabular family or arrays for a
            language model), or ``resume``/``warm_start`` are not states of this kind of
            model. Nothing is reported or checkpointed before these checks.
    """
    role = default_role(spec) if role is None else role
    if spec.model.family in LANGUAGE_MODEL_FAMILIES:
        return _train_text(
            spec, data, reporter, resume=resume, warm_start=warm_start, threads=threads, role=role
        )
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
    if teacher is not None and (
        family in SKLEARN_FAMILIES or spec.workers > 1 or not isinstance(role, Alone)
    ):
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

    if isinstance(role, Alone):
        with _threads(threads):
            return train_torch(
                spec, data, reporter, resume=resume, warm_start=warm_start, group=_alone(), teacher=teacher
            )

    def body(group: Group, reporter: Reporter) -> TrainingResult:
        return train_torch(spec, data, reporter, resume=resume, warm_start=warm_start, group=group)

    return _in_group(role, spec, data, reporter, body, resume=resume, warm_start=warm_start, threads=threads)


def _train_text(
    spec: JobSpec,
    data: TrainingData | TextData | TokenizedText,
    reporter: Reporter,
    *,
    resume: bytes | None,
    warm_start: bytes | None,
    threads: int | None,
    role: Role,
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

    def body(group: Group, reporter: Reporter) -> TrainingResult:
        return train_language_model(spec, tokens, reporter, resume=resume, warm_start=warm_start, group=group)

    if isinstance(role, Alone):
        with _threads(threads):
            return body(_alone(), reporter)
    return _in_group(
        role, spec, tokens, reporter, body, resume=resume, warm_start=warm_start, threads=threads
    )


def _alone() -> Group:
    return Group(device="cuda" if torch.cuda.is_available() else "cpu")


def _in_group(
    role: Coordinator | Member,
    spec: JobSpec,
    data: TrainingData | TokenizedText,
    reporter: Reporter,
    body: Callable[[Group, Reporter], TrainingResult],
    *,
    resume: bytes | None,
    warm_start: bytes | None,
    threads: int | None,
) -> TrainingResult:
    """Run ``body`` as a member of a group, or as the coordinator of local ranks (each rank gets
    ``cpu_count // workers`` threads unless ``threads`` says otherwise)."""
    if isinstance(role, Member):
        if role.rank != 0:
            reporter = NullReporter()
        with _threads(threads), joined_group(role) as group:
            reporter.log(f"joined a data-parallel group as rank {role.rank} of {role.world_size}")
            return body(group, reporter)
    per_rank = threads or max(1, (os.cpu_count() or 1) // spec.workers)

    def run(group: Group) -> TrainingResult:
        reporter.log(f"data-parallel training over {group.world_size} processes ({group.device})")
        return body(group, reporter)

    with _threads(per_rank):
        return launch_local(spec, data, run, resume=resume, warm_start=warm_start, threads=per_rank)


def _check_fit(spec: JobSpec, data: TrainingData) -> None:
    """The spec's rules that need the data (:mod:`aiaas.schemas.spec_rules`), against the task
    and shape of the arrays handed over: the family's task, a CNN's images, the early-stopping
    metric."""
    if spec.task is not None and spec.task != data.task:
        raise InvalidArgument(
            f"task is {spec.task!r}, but the data was prepared for {data.task!r}",
            details={"field": "task"},
        )
    family = spec.model.family
    try:
        check_task(family, data.task)
        check_image_shape(family, data.image_shape)
        if spec.early_stopping is not None:
            check_early_stopping(spec.early_stopping.metric, data.task)
    except RuleBroken as exc:
        raise invalid(exc) from None


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
