"""Each method end to end on a small trained network, measured beside its parent."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aiaas.errors import InvalidArgument
from aiaas.optimize import Source, build_report, measure, run_method
from aiaas.schemas import JobSpec, OptimizeSpec
from aiaas.training import MemoryReporter, TrainingData, TrainingResult, train
from aiaas.training.torch_trainer import SoftTargets
from tests.optimize.conftest import NAMES


def _source(trained: tuple[JobSpec, TrainingResult], family: str) -> Source:
    spec, result = trained
    assert result.package is not None
    return Source(result.package.onnx, "input", family, result.state, spec.stored())


def _settings(method: str, **given: Any) -> dict[str, Any]:
    return OptimizeSpec.model_validate({"model": "m", "method": method, method: given}).settings(method)


def _report(source: Source, candidate: bytes, data: TrainingData, **extra: Any) -> dict[str, Any]:
    truth = [NAMES[i] for i in data.y_val]
    measured = measure(
        {"parent": source.onnx, "candidate": candidate}, data.x_val, truth, task=data.task, runs=10
    )
    return build_report(measured["candidate"], measured["parent"], truth=truth, task=data.task, **extra)


def test_structured_pruning_with_fine_tuning(
    cnn: tuple[JobSpec, TrainingResult], digits: TrainingData
) -> None:
    source = _source(cnn, "cnn")
    reporter = MemoryReporter()
    candidate = run_method("prune", _settings("prune", fine_tune_epochs=4), source, digits, reporter)
    assert candidate.notes == {"hidden_sizes": [16], "channels": [4, 8]}
    assert len(reporter.epochs) == 4  # fine-tuned through the training engine
    assert candidate.parameters is not None and candidate.parent_parameters is not None
    assert candidate.parameters < candidate.parent_parameters / 2.5
    assert candidate.spec is not None and candidate.spec["model"]["channels"] == [4, 8]
    r = _report(source, candidate.onnx, digits, parameters=candidate.parameters)
    assert r["size_ratio"] > 2.5
    assert r["metric_drop"] < 0.05 and r["agreement"] > 0.9


def test_unstructured_pruning_keeps_its_sparsity_after_fine_tuning(
    mlp: tuple[JobSpec, TrainingResult], digits: TrainingData
) -> None:
    settings = _settings("prune", structured=False, sparsity=0.6, fine_tune_epochs=1)
    candidate = run_method("prune", settings, _source(mlp, "mlp"), digits, MemoryReporter())
    assert candidate.notes["zero_fraction"] == pytest.approx(0.6, abs=0.005)
    assert candidate.parameters == candidate.parent_parameters


def test_distillation_trains_a_narrower_student_on_soft_targets(
    mlp: tuple[JobSpec, TrainingResult], digits: TrainingData
) -> None:
    source = _source(mlp, "mlp")
    candidate = run_method(
        "distill",
        _settings("distill", width_factor=0.25, epochs=10, learning_rate=0.01),
        source,
        digits,
        MemoryReporter(),
    )
    assert candidate.notes == {"hidden_sizes": [16, 8]}
    assert candidate.parameters is not None and candidate.parent_parameters is not None
    assert candidate.parameters <= 0.25 * candidate.parent_parameters
    r = _report(source, candidate.onnx, digits)
    assert r["value"] > 0.85 and r["agreement"] > 0.85


def test_soft_targets_pull_the_student_towards_the_teacher(digits: TrainingData) -> None:
    """With alpha = 1 only the teacher is learnt: a teacher that always says 'three' makes a
    student that says 'three', whatever the labels."""
    spec = JobSpec.parse(
        {
            "dataset": "digits",
            "model": {"family": "mlp", "hidden_sizes": [8]},
            "optimizer": {"name": "adam", "lr": 0.05},
            "epochs": 3,
        }
    )
    logits = np.zeros((len(digits.x_train), 10), dtype=np.float32)
    logits[:, 3] = 10.0
    result = train(spec, digits, MemoryReporter(), threads=1, teacher=SoftTargets(logits, 2.0, 1.0))
    assert result.package is not None
    from aiaas.formats import OnnxModel

    labels = OnnxModel(result.package.onnx).run({"input": digits.x_val})["label"]
    assert set(labels.tolist()) == {"three"}


def test_pruning_needs_a_network_trained_here(
    mlp: tuple[JobSpec, TrainingResult], digits: TrainingData
) -> None:
    source = Source(_source(mlp, "mlp").onnx, "input")  # an uploaded model: no state, no family
    with pytest.raises(InvalidArgument, match="trained here"):
        run_method("prune", _settings("prune"), source, digits, MemoryReporter())
    candidate = run_method("dynamic_int8", _settings("dynamic_int8"), source, digits, MemoryReporter())
    assert candidate.parameters is None and candidate.state is None
