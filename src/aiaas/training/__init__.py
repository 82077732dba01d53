"""Training: job specs become trained, registered model versions.

Two halves. The engine (:func:`train`, :class:`TrainingData` or, for language models,
:class:`TextData`, :class:`Reporter`) trains a model from a spec and arrays (or documents) and
packages it for the registry; it knows no database, so it is tested
on plain numpy arrays. The orchestration (:class:`JobStore`, :class:`Scheduler`,
:class:`TrainingService`, the ``worker`` and ``launch`` entry points) turns a dataset version into
those arrays, runs jobs as child processes within CPU slots, persists progress and checkpoints,
resumes killed jobs, and registers the result with its lineage.

The engine pulls in PyTorch and scikit-learn; they are imported on first use of :func:`train`,
so the control plane, which only queues and schedules, starts without them.

Example::

    from aiaas.schemas import JobSpec
    from aiaas.training import MemoryReporter, TrainingData, train

    spec = JobSpec.from_text("dataset: iris\\nmodel: {family: mlp}\\nepochs: 20")
    result = train(spec, TrainingData(x, y, xv, yv, names, "classification"), MemoryReporter())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiaas.training.data import TrainingData
from aiaas.training.jobs import JOB_STATUSES, Job, JobLogLine, JobMetrics, JobStore, NewJob
from aiaas.training.reporter import MemoryReporter, NullReporter, Reporter
from aiaas.training.result import TrainingResult
from aiaas.training.scheduler import Scheduler
from aiaas.training.service import TrainingService
from aiaas.training.text_data import TextData, TokenizedText

if TYPE_CHECKING:
    from aiaas.training.trainer import train

__all__ = [
    "JOB_STATUSES",
    "Job",
    "JobLogLine",
    "JobMetrics",
    "JobStore",
    "MemoryReporter",
    "NewJob",
    "NullReporter",
    "Reporter",
    "Scheduler",
    "TextData",
    "TokenizedText",
    "TrainingData",
    "TrainingResult",
    "TrainingService",
    "train",
]


def __getattr__(name: str) -> Any:
    if name == "train":
        from aiaas.training.trainer import train

        return train
    raise AttributeError(f"module 'aiaas.training' has no attribute {name!r}")
