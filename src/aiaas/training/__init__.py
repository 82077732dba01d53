"""Training: job specs become trained, registered model versions.

Two halves. The engine (:func:`train`, :class:`TrainingData` or, for language models,
:class:`TextData`, :class:`Reporter`, and the role the process plays: :class:`Alone`,
:class:`Coordinator` of local data-parallel ranks, or :class:`Member` of a group) trains a model
from a spec and arrays (or documents) and packages it for the registry; it knows no database, so it is tested
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
from aiaas.training.jobs import (
    CANCELLED,
    FAILED,
    JOB_STATUSES,
    RUNNING,
    Job,
    JobLogLine,
    JobMetrics,
    JobStore,
    NewJob,
)
from aiaas.training.reporter import MemoryReporter, NullReporter, Reporter
from aiaas.training.result import TrainingResult
from aiaas.training.scheduler import Scheduler
from aiaas.training.service import JobCancelled, TrainingService
from aiaas.training.text_data import TextData, TokenizedText

if TYPE_CHECKING:
    from aiaas.training.checkpoint import load_torch_state, save_torch_state
    from aiaas.training.export import export_network
    from aiaas.training.group import Alone, Coordinator, Member
    from aiaas.training.networks import Network, build_network
    from aiaas.training.torch_trainer import SoftTargets
    from aiaas.training.trainer import train
    from aiaas.training.worker import open_service, run_worker

__all__ = [
    "CANCELLED",
    "FAILED",
    "JOB_STATUSES",
    "RUNNING",
    "Alone",
    "Coordinator",
    "Job",
    "JobCancelled",
    "JobLogLine",
    "JobMetrics",
    "JobStore",
    "Member",
    "MemoryReporter",
    "Network",
    "NewJob",
    "NullReporter",
    "Reporter",
    "Scheduler",
    "SoftTargets",
    "TextData",
    "TokenizedText",
    "TrainingData",
    "TrainingResult",
    "TrainingService",
    "build_network",
    "export_network",
    "load_torch_state",
    "open_service",
    "run_worker",
    "save_torch_state",
    "train",
]

#: Names imported on first use: most pull in PyTorch (the control plane never needs them).
_ENGINE = {
    "train": "aiaas.training.trainer",
    "SoftTargets": "aiaas.training.torch_trainer",
    # The roles a process plays in a run (``train(..., role=...)``).
    "Alone": "aiaas.training.group",
    "Coordinator": "aiaas.training.group",
    "Member": "aiaas.training.group",
    "Network": "aiaas.training.networks",
    "build_network": "aiaas.training.networks",
    "export_network": "aiaas.training.export",
    "load_torch_state": "aiaas.training.checkpoint",
    "save_torch_state": "aiaas.training.checkpoint",
    # Not heavy, but the worker is also run as ``python -m``: imported by the package first,
    # it would be imported twice (runpy warns).
    "open_service": "aiaas.training.worker",
    "run_worker": "aiaas.training.worker",
}


def __getattr__(name: str) -> Any:
    if name in _ENGINE:
        import importlib

        return getattr(importlib.import_module(_ENGINE[name]), name)
    raise AttributeError(f"module 'aiaas.training' has no attribute {name!r}")
