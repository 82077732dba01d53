from __future__ import annotations

import io
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from aiaas.errors import InvalidArgument
from aiaas.training import MemoryReporter, TrainingData, TrainingResult, train
from aiaas.training.checkpoint import load_torch_state
from aiaas.training.metrics import classification_metrics
from tests.training.conftest import spec

EPOCH_KEYS = {"loss", "val_loss", "samples_per_s", "lr", "epoch_s"}


def _run_onnx(result: TrainingResult, x: np.ndarray) -> list[Any]:
    session = ort.InferenceSession(result.package.onnx, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.astype(np.float32)})


def _network_outputs(result: TrainingResult, data: TrainingData) -> Any:
    """The torch network of a result, rebuilt from its state, applied to the validation rows."""
    from aiaas.training.networks import build_network

    state = load_torch_state(result.state, field="state")
    net = build_network(state["family"], state["params"], data.n_features, data.n_classes, data.image_shape)
    net.load_state_dict(state["model"])
    net.eval()
    with torch.no_grad():
        return net, net(torch.from_numpy(data.x_val))


def test_mlp_learns_iris_and_reports_every_epoch(iris: TrainingData) -> None:
    reporter = MemoryReporter()
    result = train(
        spec(model={"family": "mlp", "hidden_sizes": [16]}, epochs=30, batch_size=16, optimizer={"lr": 0.01}),
        iris,
        reporter,
    )
    assert result.metrics["accuracy"] >= 0.9
    assert [e for e, _ in reporter.epochs] == list(range(1, 31))
    assert [e for e, _ in reporter.checkpoints] == list(range(1, 31))
    first, last = reporter.epochs[0][1], reporter.epochs[-1][1]
    assert EPOCH_KEYS | {"val_accuracy", "val_f1", "val_roc_auc"} <= set(first)
    assert last["loss"] < first["loss"] / 2
    assert result.history == [m for _, m in reporter.epochs]
    assert result.params["hidden_sizes"] == [16] and result.params["epochs_run"] == 30
    # The reported metrics are those of the returned model, by sklearn's definitions.
    _, logits = _network_outputs(result, iris)
    assert result.metrics == classification_metrics(iris.y_val, torch.softmax(logits, 1).numpy())


def test_onnx_package_matches_torch_for_classification(iris: TrainingData) -> None:
    result = train(spec(model={"family": "mlp"}, epochs=2), iris, MemoryReporter())
    _, logits = _network_outputs(result, iris)
    label, probabilities = _run_onnx(result, iris.x_val)
    np.testing.assert_allclose(probabilities, torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-7)
    # The labels are text: the graph looks each row's class index up among them.
    classes = ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(label, np.asarray(classes)[logits.argmax(1).numpy()])
    assert result.params["classes"] == classes
    assert result.package.signature.outputs[0].datatype == "BYTES"
    assert result.package.signature.outputs[1].classes == tuple(classes)


def test_non_contiguous_integer_classes_are_the_output_labels(iris: TrainingData) -> None:
    data = TrainingData(
        iris.x_train,
        iris.y_train,
        iris.x_val,
        iris.y_val,
        iris.feature_names,
        "classification",
        classes=[3, 7, 9],
    )
    result = train(spec(model={"family": "mlp"}, epochs=1), data, MemoryReporter())
    _, logits = _network_outputs(result, data)
    label, _ = _run_onnx(result, data.x_val)
    np.testing.assert_array_equal(label, np.asarray([3, 7, 9])[logits.argmax(1).numpy()])
    assert result.package.signature.outputs[0].datatype == "INT64"
    assert result.package.signature.outputs[1].classes == (3, 7, 9)


def test_cnn_learns_digits_and_exports_the_flat_signature(digits: TrainingData) -> None:
    result = train(
        spec(
            model={"family": "cnn", "channels": [8, 16], "hidden_sizes": [32]},
            epochs=3,
            batch_size=64,
            optimizer={"name": "adamw", "lr": 0.005, "weight_decay": 0.01},
        ),
        digits,
        MemoryReporter(),
    )
    assert result.metrics["accuracy"] >= 0.85
    assert result.package.signature.inputs[0].shape == (-1, 64)
    net, logits = _network_outputs(result, digits)
    assert any(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    label, probabilities = _run_onnx(result, digits.x_val)
    np.testing.assert_allclose(probabilities, torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(label, logits.argmax(1).numpy())  # labels 0..9 are the classes


def test_mlp_regression_on_diabetes_in_target_units(diabetes: TrainingData) -> None:
    reporter = MemoryReporter()
    result = train(
        spec(
            model={"family": "mlp", "hidden_sizes": [32]},
            epochs=40,
            batch_size=32,
            optimizer={"name": "momentum", "lr": 0.01},
            schedule={"name": "cosine"},
        ),
        diabetes,
        reporter,
    )
    assert result.metrics["r2"] > 0.3
    assert {"val_mse", "val_mae", "val_r2"} <= set(reporter.epochs[0][1])
    assert reporter.epochs[-1][1]["lr"] < reporter.epochs[0][1]["lr"] / 10  # cosine annealed
    net, out = _network_outputs(result, diabetes)
    (variable,) = _run_onnx(result, diabetes.x_val)
    expected = (out * net.y_scale + net.y_mean).numpy()
    np.testing.assert_allclose(variable, expected, rtol=1e-5)
    mse = float(np.mean((variable[:, 0].astype(np.float64) - diabetes.y_val) ** 2))
    assert mse == pytest.approx(result.metrics["mse"], rel=1e-4)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
def test_every_optimizer_and_schedule_steps_the_learning_rate(iris: TrainingData, optimizer: str) -> None:
    schedule = {
        "sgd": {"name": "step", "step_size": 1, "gamma": 0.5},
        "momentum": {"name": "exponential"},
        "adam": {"name": "cosine"},
        "adamw": {"name": "constant"},
    }[optimizer]
    reporter = MemoryReporter()
    train(
        spec(model={"family": "mlp"}, optimizer={"name": optimizer, "lr": 0.1}, schedule=schedule),
        iris,
        reporter,
    )
    lrs = [m["lr"] for _, m in reporter.epochs]
    expected = {
        "sgd": [0.1, 0.05, 0.025],
        "momentum": [0.1, 0.095, 0.09025],
        "adam": [0.1, 0.075, 0.025],
        "adamw": [0.1, 0.1, 0.1],
    }[optimizer]
    assert lrs == pytest.approx(expected)


class _Crash(Exception):
    pass


class _StopAfter(MemoryReporter):
    """Raises right after checkpoint ``epoch`` was made durable, like a killed job."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.stop_after = epoch

    def checkpoint(self, epoch: int, state: bytes) -> None:
        super().checkpoint(epoch, state)
        if epoch == self.stop_after:
            raise _Crash


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_resume_from_a_checkpoint_ends_exactly_like_an_uninterrupted_run(
    digits: TrainingData, family: str
) -> None:
    small = TrainingData(
        digits.x_train[:400],
        digits.y_train[:400],
        digits.x_val,
        digits.y_val,
        digits.feature_names,
        "classification",
        digits.classes,
        digits.image_shape,
    )
    model: dict[str, Any] = {"family": family, "hidden_sizes": [32], "dropout": 0.2}
    if family == "cnn":
        model["channels"] = [4]
    job = spec(
        model=model,
        epochs=5,
        batch_size=32,
        seed=3,
        optimizer={"name": "adam", "lr": 0.01},
        schedule={"name": "step", "step_size": 2, "gamma": 0.5},
        early_stopping={"metric": "val_loss", "patience": 10, "restore_best": False},
    )
    full = train(job, small, MemoryReporter())

    interrupted = _StopAfter(2)
    with pytest.raises(_Crash):
        train(job, small, interrupted)
    resumed_reporter = MemoryReporter()
    resumed = train(job, small, resumed_reporter, resume=interrupted.checkpoints[-1][1])

    assert [e for e, _ in resumed_reporter.epochs] == [3, 4, 5]
    assert resumed.metrics == full.metrics
    final_full = load_torch_state(full.state, field="state")
    final_resumed = load_torch_state(resumed.state, field="state")
    for name, tensor in final_full["model"].items():
        assert torch.equal(tensor, final_resumed["model"][name]), name
    drop_time = [{k: v for k, v in h.items() if k not in ("samples_per_s", "epoch_s")} for h in full.history]
    assert drop_time == [
        {k: v for k, v in h.items() if k not in ("samples_per_s", "epoch_s")} for h in resumed.history
    ]


def test_early_stopping_stops_and_restores_the_best_epoch(iris: TrainingData) -> None:
    reporter = MemoryReporter()
    # A learning rate this high makes validation loss bounce, so it stops early.
    result = train(
        spec(
            model={"family": "mlp"},
            epochs=60,
            optimizer={"name": "sgd", "lr": 3.0},
            early_stopping={"metric": "val_loss", "patience": 2},
        ),
        iris,
        reporter,
    )
    losses = [m["val_loss"] for _, m in reporter.epochs]
    best = int(np.argmin(losses)) + 1
    assert len(losses) < 60
    assert len(losses) == best + 2
    assert result.params["best_epoch"] == best
    assert result.metrics["accuracy"] == pytest.approx(reporter.epochs[best - 1][1]["val_accuracy"])
    assert any("restored the weights of epoch" in line for line in reporter.logs)


def test_warm_start_begins_from_the_old_weights(iris: TrainingData) -> None:
    job = spec(model={"family": "mlp"}, epochs=25, optimizer={"lr": 0.01})
    first = train(job, iris, MemoryReporter())
    cold, warm = MemoryReporter(), MemoryReporter()
    train(spec(model={"family": "mlp"}, epochs=1, optimizer={"lr": 0.01}, seed=5), iris, cold)
    train(
        spec(model={"family": "mlp"}, epochs=1, optimizer={"lr": 0.01}, seed=5),
        iris,
        warm,
        warm_start=first.state,
    )
    assert warm.epochs[0][1]["loss"] < cold.epochs[0][1]["loss"] / 3
    assert warm.epochs[0][1]["val_accuracy"] >= 0.9


def test_warm_start_of_another_architecture_is_refused(iris: TrainingData) -> None:
    first = train(spec(model={"family": "mlp", "hidden_sizes": [8]}, epochs=1), iris, MemoryReporter())
    with pytest.raises(InvalidArgument, match="warm_start") as info:
        train(
            spec(model={"family": "mlp", "hidden_sizes": [16]}, epochs=1),
            iris,
            MemoryReporter(),
            warm_start=first.state,
        )
    assert info.value.details["field"] == "warm_start"


def test_checkpoints_load_with_weights_only_and_refuse_pickled_objects(iris: TrainingData) -> None:
    reporter = MemoryReporter()
    train(spec(model={"family": "mlp"}, epochs=1), iris, reporter)
    state = torch.load(io.BytesIO(reporter.checkpoints[0][1]), weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "early_stopping", "history", "rng"} <= set(state)
    evil = io.BytesIO()
    torch.save({"format": "aiaas.torch/1", "model": _Crash()}, evil)
    with pytest.raises(InvalidArgument, match="resume"):
        train(spec(model={"family": "mlp"}, epochs=1), iris, MemoryReporter(), resume=evil.getvalue())


def test_spec_that_does_not_fit_the_data_is_refused_before_any_report(
    iris: TrainingData, diabetes: TrainingData
) -> None:
    cases = [
        (spec(model={"family": "cnn"}), iris, "model.family"),
        (spec(model={"family": "mlp"}, task="regression"), iris, "task"),
        (spec(model={"family": "logistic"}), diabetes, "model.family"),
        (
            spec(model={"family": "mlp"}, early_stopping={"metric": "val_accuracy"}),
            diabetes,
            "early_stopping.metric",
        ),
    ]
    for job, data, field in cases:
        reporter = MemoryReporter()
        with pytest.raises(InvalidArgument) as info:
            train(job, data, reporter)
        assert info.value.details["field"] == field
        assert reporter.epochs == [] and reporter.checkpoints == []


def test_threads_argument_is_applied_and_restored(iris: TrainingData) -> None:
    before = torch.get_num_threads()
    seen: list[int] = []

    class Spy(MemoryReporter):
        def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
            seen.append(torch.get_num_threads())

    train(spec(model={"family": "mlp"}, epochs=1), iris, Spy(), threads=1)
    assert seen == [1]
    assert torch.get_num_threads() == before
