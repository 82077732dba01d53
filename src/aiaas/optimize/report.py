"""The optimization report: size, latency, task metric and agreement, parent beside candidates.

Latency is only comparable when measured on the same machine in the same run, so the parent and
every candidate are timed together, *interleaved*: each round runs every model once on one row
and once on a batch of 32 rows, and the figure is the median over the rounds. A slow spell of
the machine (another process, a frequency change) then lands on all models alike instead of on
whichever was being measured at the time. Each model gets one ONNX Runtime session with one
intra-op thread: a job holds one CPU slot, and one thread is how a replica under load runs
(concurrency comes from replicas and batches, not threads).

The task metric is measured on the validation split through the ONNX models themselves, on what
a client receives: the ``label`` output (the user's labels) against the true labels, or the
``variable`` output of a regressor (r2). Agreement is the fraction of validation rows the
candidate predicts as the parent does (the same label; for a regressor, within 1% of the
validation target's standard deviation).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Measured", "build_report", "measure"]

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Measured:
    """One model's figures from :func:`measure`."""

    size_bytes: int
    latency_1_ms: float
    latency_32_ms: float
    metric: str
    value: float
    predictions: Array


def _session(onnx_bytes: bytes) -> Any:
    """One thread, errors-only logging: each model measured as one in-process session runs."""
    from aiaas.formats import isolated_folder, new_session

    return new_session(
        onnx_bytes, external_data_folder=isolated_folder(), intra_op_threads=1, log_severity_level=3
    )


def _labels(values: Array) -> list[Any]:
    return [v.decode() if isinstance(v, bytes) else v for v in values.tolist()]


def measure(
    models: Mapping[str, bytes],
    x_val: Array,
    truth: Sequence[Any] | Array,
    *,
    task: str,
    runs: int = 300,
) -> dict[str, Measured]:
    """Time and evaluate every model in one run (see the module docstring).

    Args:
        models: name → ONNX bytes; all take one FP32 input of the validation rows' width.
        x_val: the validation rows.
        truth: the true label of each row (the user's labels), or the true values (regression).
        task: "classification" or "regression".
        runs: rounds; each gives every model one single-row and one batch-32 timing.
    """
    x_val = np.ascontiguousarray(x_val, dtype=np.float32)
    sessions = {name: _session(data) for name, data in models.items()}
    inputs = {name: s.get_inputs()[0].name for name, s in sessions.items()}
    batch = x_val[np.arange(32) % len(x_val)]
    one = x_val[:1]
    output = "label" if task == "classification" else None
    results: dict[str, tuple[str, float, Array]] = {}
    for name, session in sessions.items():
        names = [o.name for o in session.get_outputs()]
        wanted = output if output in names else names[0]
        predictions = session.run([wanted], {inputs[name]: x_val})[0]
        if task == "classification":
            got = _labels(np.asarray(predictions).reshape(-1))
            value = float(np.mean([a == b for a, b in zip(got, list(truth), strict=True)]))
            results[name] = ("accuracy", value, np.asarray(got, dtype=object))
        else:
            pred = np.asarray(predictions, dtype=np.float64).reshape(-1)
            y = np.asarray(truth, dtype=np.float64)
            denom = float(np.sum((y - y.mean()) ** 2)) or 1.0
            results[name] = ("r2", 1.0 - float(np.sum((y - pred) ** 2)) / denom, pred)
    single: dict[str, list[float]] = {name: [] for name in sessions}
    batched: dict[str, list[float]] = {name: [] for name in sessions}
    for name, session in sessions.items():  # warm up: first runs allocate
        for _ in range(5):
            session.run(None, {inputs[name]: batch})
            session.run(None, {inputs[name]: one})
    for _ in range(runs):
        for name, session in sessions.items():
            feed = inputs[name]
            began = time.perf_counter()
            session.run(None, {feed: one})
            middle = time.perf_counter()
            session.run(None, {feed: batch})
            single[name].append(middle - began)
            batched[name].append(time.perf_counter() - middle)
    return {
        name: Measured(
            size_bytes=len(models[name]),
            latency_1_ms=statistics.median(single[name]) * 1e3,
            latency_32_ms=statistics.median(batched[name]) * 1e3,
            metric=results[name][0],
            value=results[name][1],
            predictions=results[name][2],
        )
        for name in sessions
    }


def build_report(
    candidate: Measured,
    parent: Measured,
    *,
    truth: Sequence[Any] | Array,
    task: str,
    parameters: int | None = None,
    parent_parameters: int | None = None,
) -> dict[str, Any]:
    """The report of one candidate against its parent (the fields of
    :class:`aiaas.schemas.OptimizationReport`)."""
    if task == "classification":
        agreement = float(np.mean(candidate.predictions == parent.predictions))
    else:
        tolerance = 0.01 * (float(np.std(np.asarray(truth, dtype=np.float64))) or 1.0)
        agreement = float(np.mean(np.abs(candidate.predictions - parent.predictions) <= tolerance))
    return {
        "size_bytes": candidate.size_bytes,
        "parent_size_bytes": parent.size_bytes,
        "size_ratio": parent.size_bytes / max(candidate.size_bytes, 1),
        "latency_1_ms": candidate.latency_1_ms,
        "latency_32_ms": candidate.latency_32_ms,
        "parent_latency_1_ms": parent.latency_1_ms,
        "parent_latency_32_ms": parent.latency_32_ms,
        "speedup_32": parent.latency_32_ms / max(candidate.latency_32_ms, 1e-9),
        "metric": candidate.metric,
        "value": candidate.value,
        "parent_value": parent.value,
        "metric_drop": parent.value - candidate.value,
        "agreement": agreement,
        "parameters": parameters,
        "parent_parameters": parent_parameters,
        "validation_rows": len(candidate.predictions),
    }
