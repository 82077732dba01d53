"""The training engine: trains a model from a job spec and arrays, packages it for the registry.

No database here: the orchestrator (jobs, scheduler, workers) builds :class:`TrainingData`
from a dataset version, passes a :class:`Reporter` that persists progress, and registers
the :class:`TrainingResult`.

Example::

    from aiaas.schemas import JobSpec
    from aiaas.training import MemoryReporter, TrainingData, train

    spec = JobSpec.from_text("dataset: iris\\nmodel: {family: mlp}\\nepochs: 20")
    result = train(spec, TrainingData(x, y, xv, yv, names, "classification"), MemoryReporter())
"""

from __future__ import annotations

from aiaas.training.data import TrainingData
from aiaas.training.distributed import FolderReporter, read_job_folder, write_job_folder
from aiaas.training.reporter import MemoryReporter, NullReporter, Reporter
from aiaas.training.result import TrainingResult
from aiaas.training.trainer import train

__all__ = [
    "FolderReporter",
    "MemoryReporter",
    "NullReporter",
    "Reporter",
    "TrainingData",
    "TrainingResult",
    "read_job_folder",
    "train",
    "write_job_folder",
]
