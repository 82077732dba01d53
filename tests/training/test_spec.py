from __future__ import annotations

import json
from typing import Any

import pytest

from aiaas.errors import InvalidArgument
from aiaas.schemas import JobSpec

YAML = """
dataset: digits:2
target: label
task: classification
model: {family: cnn, channels: [8, 16], hidden_sizes: [32], dropout: 0.1}
optimizer: {name: momentum, lr: 0.05, momentum: 0.8, weight_decay: 0.0001}
schedule: {name: step, step_size: 3, gamma: 0.5}
epochs: 12
batch_size: 64
early_stopping: {metric: val_accuracy, patience: 3}
seed: 7
workers: 2
register_as: digits-cnn
warm_start: {model: digits-cnn, version: 3}
"""


def test_yaml_and_json_give_the_same_spec() -> None:
    from_yaml = JobSpec.from_text(YAML)
    from_json = JobSpec.from_text(json.dumps(from_yaml.model_dump(mode="json")))
    assert from_yaml == from_json
    assert from_yaml.model.channels == [8, 16]
    assert from_yaml.optimizer.momentum == 0.8
    assert from_yaml.early_stopping is not None and from_yaml.early_stopping.effective_mode() == "max"
    assert from_yaml.warm_start is not None and from_yaml.warm_start.version == 3


def test_defaults_fill_a_minimal_spec() -> None:
    spec = JobSpec.from_text('{"dataset": "iris", "model": {"family": "mlp"}}')
    assert (spec.optimizer.name, spec.optimizer.lr, spec.epochs, spec.batch_size) == ("adam", 1e-3, 10, 32)
    assert (spec.seed, spec.workers, spec.schedule, spec.early_stopping) == (0, 1, None, None)


def _base() -> dict[str, Any]:
    return {"dataset": "iris", "model": {"family": "mlp"}}


BAD: list[tuple[dict[str, Any], str]] = [
    ({"dataset": "bad name!"}, "dataset"),
    ({"dataset": "iris:0"}, "dataset"),
    ({"target": ""}, "target"),
    ({"task": "clustering"}, "task"),
    ({"model": {"family": "svm"}}, "model.family"),
    ({"model": {"family": "mlp", "hidden_sizes": [8, 0]}}, "model.hidden_sizes.1"),
    ({"model": {"family": "mlp", "dropout": 1.0}}, "model.dropout"),
    ({"model": {"family": "mlp", "n_estimators": 10}}, "model.n_estimators"),
    ({"model": {"family": "random_forest", "n_estimators": 0}}, "model.n_estimators"),
    ({"model": {"family": "random_forest", "max_depth": -1}}, "model.max_depth"),
    ({"model": {"family": "logistic", "C": 0}}, "model.C"),
    ({"model": {"family": "cnn", "channels": []}}, "model.channels"),
    ({"model": {"family": "mlp", "activation": "swish"}}, "model.activation"),
    ({"model": {"family": "mlp", "colour": "red"}}, "model.colour"),
    ({"optimizer": {"name": "lbfgs"}}, "optimizer.name"),
    ({"optimizer": {"lr": 0}}, "optimizer.lr"),
    ({"optimizer": {"weight_decay": -1}}, "optimizer.weight_decay"),
    ({"optimizer": {"name": "adam", "momentum": 0.9}}, "optimizer.momentum"),
    ({"schedule": {"name": "cyclic"}}, "schedule.name"),
    ({"schedule": {"name": "cosine", "step_size": 2}}, "schedule.step_size"),
    ({"schedule": {"name": "step", "gamma": 2}}, "schedule.gamma"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": "many"}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"early_stopping": {"metric": "val_speed"}}, "early_stopping.metric"),
    ({"early_stopping": {"patience": 0}}, "early_stopping.patience"),
    ({"early_stopping": {"mode": "up"}}, "early_stopping.mode"),
    ({"seed": -1}, "seed"),
    ({"workers": 0}, "workers"),
    ({"model": {"family": "random_forest"}, "workers": 2}, "workers"),
    ({"register_as": "has space"}, "register_as"),
    ({"warm_start": {"model": "m"}}, "warm_start.version"),
    ({"warm_start": {"model": "m", "version": 0}}, "warm_start.version"),
    ({"task": "regression", "model": {"family": "logistic"}}, "model.family"),
    ({"task": "regression", "early_stopping": {"metric": "val_accuracy"}}, "early_stopping.metric"),
    ({"epoch": 3}, "epoch"),
]


@pytest.mark.parametrize(("change", "field"), BAD, ids=[f for _, f in BAD])
def test_each_bad_field_is_named(change: dict[str, Any], field: str) -> None:
    body = {**_base(), **change}
    with pytest.raises(InvalidArgument) as info:
        JobSpec.from_text(json.dumps(body))
    assert info.value.message.startswith("invalid job spec: ")
    assert field in [e["field"] for e in info.value.details["errors"]], info.value.message
    assert f"{field}: " in info.value.message


def test_missing_required_fields_are_named_together() -> None:
    with pytest.raises(InvalidArgument) as info:
        JobSpec.from_text("epochs: 3\n")
    fields = {e["field"] for e in info.value.details["errors"]}
    assert fields == {"dataset", "model"}
    assert "dataset: is required" in info.value.message


def test_several_bad_fields_are_all_reported() -> None:
    with pytest.raises(InvalidArgument) as info:
        JobSpec.from_text("dataset: iris\nmodel: {family: mlp}\nepochs: -1\nbatch_size: 0\nseed: x\n")
    assert {e["field"] for e in info.value.details["errors"]} == {"epochs", "batch_size", "seed"}


@pytest.mark.parametrize("text", ["[1, 2]", "just words", "a: [unclosed", ""])
def test_text_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match="job spec"):
        JobSpec.from_text(text)


@pytest.mark.parametrize("family", ["logistic", "linear", "random_forest", "gradient_boosting"])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("optimizer", {"name": "adam"}),
        ("schedule", {"name": "cosine"}),
        ("epochs", 3),
        ("batch_size", 64),
        ("early_stopping", {"metric": "val_loss"}),
    ],
)
def test_a_field_the_family_ignores_is_refused_naming_it(family: str, field: str, value: Any) -> None:
    body = {"dataset": "iris", "model": {"family": family}, field: value}
    with pytest.raises(InvalidArgument) as info:
        JobSpec.from_text(json.dumps(body))
    assert info.value.details["field"] == field
    message = info.value.message
    assert f"{field}: is not used by {family!r}" in message
    assert "['mlp', 'cnn', 'transformer']" in message, "says which families use it"


def test_every_ignored_field_is_named_at_once() -> None:
    text = "dataset: iris\nmodel: {family: random_forest}\noptimizer: {name: adam}\nepochs: 3\n"
    with pytest.raises(
        InvalidArgument, match=r"optimizer: is not used by 'random_forest' \(nor are epochs\)"
    ):
        JobSpec.from_text(text)


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_the_torch_families_take_those_fields(family: str) -> None:
    body = {
        "dataset": "digits",
        "model": {"family": family},
        "optimizer": {"name": "sgd"},
        "schedule": {"name": "step"},
        "epochs": 3,
        "batch_size": 8,
        "early_stopping": {"patience": 2},
    }
    spec = JobSpec.from_text(json.dumps(body))
    assert (spec.optimizer.name, spec.epochs, spec.batch_size) == ("sgd", 3, 8)


def test_a_scikit_learn_spec_is_stored_without_the_fields_it_ignores() -> None:
    spec = JobSpec.from_text("dataset: iris\nmodel: {family: random_forest}\n")
    stored = spec.stored()
    assert not {"optimizer", "schedule", "epochs", "batch_size", "early_stopping"} & set(stored)
    assert JobSpec.from_stored(stored) == spec
    # A row written before the check, with the ignored defaults in it, still runs.
    old_row = spec.model_dump(mode="json")
    assert old_row["optimizer"]["name"] == "adam"
    assert JobSpec.from_stored(old_row).model.family == "random_forest"
    torch_spec = JobSpec.from_text("dataset: iris\nmodel: {family: mlp}\n")
    assert torch_spec.stored()["epochs"] == 10 and torch_spec.stored()["optimizer"]["name"] == "adam"


def test_a_yaml_error_names_the_file_and_the_line() -> None:
    text = "dataset: iris\nmodel: {family: mlp\nepochs: 3\n"
    with pytest.raises(InvalidArgument) as info:
        JobSpec.from_text(text, source="specs/iris.yaml")
    message = info.value.message
    assert message.startswith("specs/iris.yaml is neither JSON nor YAML: line ")
    assert "<unicode string>" not in message
    assert info.value.details == {"field": "spec", "source": "specs/iris.yaml"}
    with pytest.raises(InvalidArgument, match=r"^job spec is neither JSON nor YAML: line 2, column 4"):
        JobSpec.from_text("a: b\n  c: d\n")


# -- the transformer family ------------------------------------------------------------------


def test_a_transformer_spec_takes_its_own_hyper_parameters() -> None:
    spec = JobSpec.from_text(
        "dataset: poems\nmodel: {family: transformer, n_layer: 3, n_head: 4, n_embd: 96, context_length: 64,"
        " vocab_size: 2000, dropout: 0.1}\nearly_stopping: {metric: val_perplexity}\nworkers: 2\n"
    )
    assert (spec.model.n_layer, spec.model.n_head, spec.model.n_embd) == (3, 4, 96)
    assert (spec.model.context_length, spec.model.vocab_size, spec.model.dropout) == (64, 2000, 0.1)
    assert spec.early_stopping is not None and spec.early_stopping.effective_mode() == "min"
    assert JobSpec.parse({"dataset": "d", "model": {"family": "transformer"}, "task": "text-generation"})


TRANSFORMER_BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"model": {"family": "transformer", "n_embd": 100, "n_head": 3}}, "model.n_embd", "multiple of n_head"),
    ({"model": {"family": "transformer", "n_embd": 90}}, "model.n_embd", "multiple of n_head (4)"),
    ({"model": {"family": "transformer", "n_layer": 0}}, "model.n_layer", "greater than or equal to 1"),
    ({"model": {"family": "transformer", "vocab_size": 256}}, "model.vocab_size", "257"),
    ({"model": {"family": "transformer", "context_length": 100_000}}, "model.context_length", "8192"),
    (
        {"model": {"family": "transformer", "hidden_sizes": [8]}},
        "model.hidden_sizes",
        "not a hyper-parameter",
    ),
    ({"model": {"family": "mlp", "n_layer": 2}}, "model.n_layer", "not a hyper-parameter of 'mlp'"),
    ({"model": {"family": "transformer"}, "target": "label"}, "target", "has no target"),
    ({"model": {"family": "transformer"}, "task": "classification"}, "task", "does 'text-generation'"),
    ({"model": {"family": "mlp"}, "task": "text-generation"}, "task", "task of the 'transformer' family"),
    (
        {"model": {"family": "transformer"}, "early_stopping": {"metric": "val_accuracy"}},
        "early_stopping.metric",
        "not a language model metric",
    ),
]


@pytest.mark.parametrize(("fields", "field", "message"), TRANSFORMER_BAD)
def test_bad_transformer_specs_name_the_field(fields: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        JobSpec.parse({"dataset": "poems", **fields})
    assert raised.value.details["field"] == field
    assert message in raised.value.message
