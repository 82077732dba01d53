"""Optimization: quantization, pruning and distillation of registered versions, as jobs.

Two halves, like :mod:`aiaas.training`. The engine (:func:`run_method` and the modules it uses:
:mod:`~aiaas.optimize.quantize`, :mod:`~aiaas.optimize.networks`, :mod:`~aiaas.optimize.report`)
turns a source model and a dataset's arrays into a candidate model and measures it beside its
parent; it knows no database. The orchestration (:class:`OptimizationService`, the ``worker``
entry point) validates a request against the registry and the datasets, queues it as a job in
the training scheduler's slots, runs it, and registers each result as a new version whose
parent is the source and whose lineage records the method, its settings and the report.

PyTorch and ONNX Runtime's quantizer are imported on first use: the control plane, which only
validates and queues, starts without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiaas.optimize.service import OptimizationService, worker_command

if TYPE_CHECKING:
    from aiaas.optimize.methods import Candidate, Source, run_method
    from aiaas.optimize.report import Measured, build_report, measure

__all__ = [
    "Candidate",
    "Measured",
    "OptimizationService",
    "Source",
    "build_report",
    "measure",
    "run_method",
    "worker_command",
]

_ENGINE = {
    "Candidate": "aiaas.optimize.methods",
    "Source": "aiaas.optimize.methods",
    "run_method": "aiaas.optimize.methods",
    "Measured": "aiaas.optimize.report",
    "measure": "aiaas.optimize.report",
    "build_report": "aiaas.optimize.report",
}


def __getattr__(name: str) -> Any:
    if name in _ENGINE:
        import importlib

        return getattr(importlib.import_module(_ENGINE[name]), name)
    raise AttributeError(f"module 'aiaas.optimize' has no attribute {name!r}")
