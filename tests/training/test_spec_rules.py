"""The spec's cross-field rules have one definition: the wire schema (at submission), the
service's resolution and the trainer (against the arrays it is handed) say the same thing."""

from __future__ import annotations

import pytest

from aiaas.errors import InvalidArgument
from aiaas.schemas import JobSpec
from aiaas.training import MemoryReporter, TrainingData, train
from tests.training.conftest import spec


def _schema_rule(fields: dict[str, object]) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as info:
        JobSpec.parse({"dataset": "d", **fields})
    (error,) = info.value.details["errors"]
    return {"field": error["field"], "message": error["message"]}


def _trainer_rule(job: JobSpec, data: TrainingData) -> dict[str, str]:
    reporter = MemoryReporter()
    with pytest.raises(InvalidArgument) as info:
        train(job, data, reporter)
    assert reporter.epochs == [] and reporter.checkpoints == []
    field = info.value.details["field"]
    prefix = f"{field}: "
    assert info.value.message.startswith(prefix), info.value.message
    return {"field": field, "message": info.value.message[len(prefix) :]}


def test_a_family_that_cannot_do_the_task_is_refused_alike_before_and_after_the_data(
    diabetes: TrainingData,
) -> None:
    submitted = _schema_rule({"task": "regression", "model": {"family": "logistic"}})
    trained = _trainer_rule(spec(model={"family": "logistic"}), diabetes)
    assert submitted == trained
    assert submitted["field"] == "model.family" and "'linear'" in submitted["message"]


def test_an_early_stopping_metric_of_another_task_is_refused_alike(diabetes: TrainingData) -> None:
    early = {"metric": "val_accuracy"}
    submitted = _schema_rule(
        {"task": "regression", "model": {"family": "mlp"}, "epochs": 3, "early_stopping": early}
    )
    trained = _trainer_rule(spec(model={"family": "mlp"}, early_stopping=early), diabetes)
    assert submitted == trained
    assert submitted["field"] == "early_stopping.metric" and "'val_mse'" in submitted["message"]


def test_resolving_the_task_applies_the_task_rules_once_more() -> None:
    job = JobSpec.parse({"dataset": "d", "model": {"family": "logistic"}})
    with pytest.raises(InvalidArgument) as info:
        job.resolved(task="regression")
    assert info.value.details["field"] == "model.family"
    assert info.value.message.startswith("invalid job spec: model.family: 'logistic' is for classification")
    settled = job.resolved(dataset="d:2", task="classification", register_as="d-logistic")
    assert (settled.dataset, settled.task, settled.register_as) == ("d:2", "classification", "d-logistic")
    assert job.task is None  # the submitted spec is left as it was
