"""Optimization jobs against a real registry and dataset store: what is registered, and what
is refused before anything is queued."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from aiaas.errors import InvalidArgument
from aiaas.formats import OnnxModel
from aiaas.schemas import OptimizeSpec
from aiaas.training import JobCancelled
from tests.optimize.conftest import NAMES, Services, digits_csv


@pytest.fixture
def trained(services: Services) -> Services:
    services.datasets.create_version("digits", digits_csv(600), filename="digits.csv", target="digit")
    services.run_training(
        {
            "dataset": "digits",
            "model": {"family": "mlp", "hidden_sizes": [32]},
            "epochs": 4,
            "register_as": "d",
        }
    )
    return services


def _run(services: Services, request: dict[str, object]) -> tuple[int, object]:
    job = services.optimization.submit(OptimizeSpec.parse(request))
    assert services.jobs.claim(job.id)
    return job.id, services.optimization.run(job.id)


def test_an_optimization_is_a_new_version_with_lineage_and_report(trained: Services) -> None:
    job_id, version = _run(
        trained, {"model": "d", "version": 1, "method": "prune", "prune": {"fine_tune_epochs": 1}}
    )
    assert version is not None and version.version == 2 and version.parent_version == 1
    job = trained.jobs.get(job_id)
    assert (job.status, job.kind, job.result_version) == ("succeeded", "optimize", 2)
    opt = version.lineage["optimization"]
    assert opt["method"] == "prune" and opt["settings"]["sparsity"] == 0.5 and opt["settings"]["structured"]
    report = opt["report"]
    assert report["parameters"] < report["parent_parameters"]
    assert report["size_bytes"] == version.artifact_size_bytes < report["parent_size_bytes"]
    assert report["metric"] == "accuracy" and 0 <= report["agreement"] <= 1
    assert version.metrics["accuracy"] == report["value"]
    assert version.lineage["spec"]["model"]["hidden_sizes"] == [16]
    # The user's labels, from the registered artifact itself.
    x, y = load_digits(return_X_y=True)
    out = OnnxModel(trained.registry.load_artifact(version)).run({"input": x[:20].astype(np.float32)})
    assert set(out["label"].tolist()) <= set(NAMES)
    assert np.mean(out["label"] == np.array(NAMES)[y[:20]]) > 0.5
    # A pruned version can be optimized again (its state and spec are in its lineage).
    _, again = _run(trained, {"model": "d", "version": 2, "method": "dynamic_int8"})
    assert again.parent_version == 2 and again.lineage["optimization"]["report"]["size_ratio"] > 1


def test_auto_keeps_the_fastest_within_budget_and_points_the_alias(trained: Services) -> None:
    job_id, version = _run(
        trained,
        {
            "model": "d",
            "method": "auto",
            "max_metric_drop": 1.0,
            "candidates": ["dynamic_int8", "fp16", "prune"],
            "prune": {"fine_tune_epochs": 0},
            "alias": "fast",
            "latency_runs": 20,
        },
    )
    rows = trained.jobs.metrics(job_id)[-1].metrics["candidates"]
    assert [r["method"] for r in rows] == ["dynamic_int8", "fp16", "prune"]
    assert all(r["within_budget"] and r["report"] for r in rows)
    chosen = [r for r in rows if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["method"] == version.params["method"]
    assert chosen[0]["report"]["latency_32_ms"] == min(r["report"]["latency_32_ms"] for r in rows)
    assert trained.registry.get_version("d", "fast").version == version.version
    assert version.lineage["optimization"]["candidates"] == rows


def _refused(services: Services, request: dict[str, object], field: str) -> InvalidArgument:
    before = len(services.jobs.list_jobs())
    with pytest.raises(InvalidArgument) as info:
        services.optimization.submit(OptimizeSpec.parse(request))
    assert info.value.details["field"] == field, info.value.message
    assert len(services.jobs.list_jobs()) == before  # nothing queued
    return info.value


def test_requests_that_cannot_work_are_refused_naming_the_field(trained: Services) -> None:
    trained.run_training(
        {
            "dataset": "digits",
            "model": {"family": "random_forest", "n_estimators": 3},
            "register_as": "forest",
        }
    )
    error = _refused(trained, {"model": "forest", "method": "prune"}, "method")
    assert "random_forest" in error.message
    error = _refused(trained, {"model": "forest", "method": "dynamic_int8"}, "method")
    assert "Conv, MatMul and Gemm" in error.message
    _refused(trained, {"model": "nope", "method": "fp16"}, "model")
    _refused(trained, {"model": "d", "version": 9, "method": "fp16"}, "version")
    # A calibration dataset whose columns are not the model's features.
    trained.datasets.create_version("other", b"a,b,c\n1,2,3\n4,5,6\n7,8,9\n", filename="o.csv")
    error = _refused(
        trained,
        {"model": "d", "method": "static_int8", "static_int8": {"calibration_dataset": "other"}},
        "static_int8.calibration_dataset",
    )
    assert "pixel_0" in error.message
    _refused(trained, {"model": "d", "method": "fp16", "dataset": "other"}, "dataset")
    with pytest.raises(InvalidArgument, match="method"):
        OptimizeSpec.parse({"model": "d", "method": "sparsify"})
    with pytest.raises(InvalidArgument, match="max_metric_drop"):
        OptimizeSpec.parse({"model": "d", "method": "auto", "max_metric_drop": 1.5})
    with pytest.raises(InvalidArgument, match=r"prune: are settings of method 'prune'"):
        OptimizeSpec.parse({"model": "d", "method": "fp16", "prune": {"sparsity": 0.5}})
    with pytest.raises(InvalidArgument, match=r"prune\.sparsity"):
        OptimizeSpec.parse({"model": "d", "method": "prune", "prune": {"sparsity": 1.0}})
    assert [v.version for v in trained.registry.list_versions("d")] == [1]  # nothing registered


def test_a_cancelled_job_stops_at_the_next_step_and_registers_nothing(trained: Services) -> None:
    job = trained.optimization.submit(
        OptimizeSpec.parse({"model": "d", "method": "auto", "candidates": ["fp16", "dynamic_int8"]})
    )
    assert trained.jobs.claim(job.id)
    assert trained.jobs.cancel(job.id).cancel_requested
    with pytest.raises(JobCancelled, match="cancelled after fp16"):
        trained.optimization.run(job.id)
    assert [v.version for v in trained.registry.list_versions("d")] == [1]


def test_static_int8_calibrates_on_the_dataset_named(trained: Services) -> None:
    trained.datasets.create_version("calib", digits_csv(100), filename="calib.csv")  # no target
    _, version = _run(
        trained, {"model": "d", "method": "static_int8", "static_int8": {"calibration_dataset": "calib"}}
    )
    settings = version.lineage["optimization"]["settings"]
    assert settings["calibration_dataset"] == "calib:1" and settings["calibration_rows"] == 256
    log = [line.message for line in trained.jobs.logs(trained.jobs.list_jobs()[0].id)]
    assert "static_int8: calibrating on 100 rows" in log


def test_an_uploaded_classifier_is_quantized_and_measured_on_a_named_dataset(trained: Services) -> None:
    from sklearn.neural_network import MLPClassifier

    from aiaas.formats import package_model

    x, y = load_digits(return_X_y=True)
    labels = np.array(NAMES)[y]
    with warnings.catch_warnings():  # a few iterations are enough here
        warnings.simplefilter("ignore")
        net = MLPClassifier(hidden_layer_sizes=(64,), max_iter=60, random_state=0).fit(x[:600], labels[:600])
    trained.registry.register_version("uploaded", package_model(net, x[:3].astype(np.float32)))
    with pytest.raises(InvalidArgument, match="name the dataset") as info:
        trained.optimization.submit(OptimizeSpec.parse({"model": "uploaded", "method": "dynamic_int8"}))
    assert info.value.details["field"] == "dataset"
    with pytest.raises(InvalidArgument, match="PyTorch families"):
        trained.optimization.submit(
            OptimizeSpec.parse({"model": "uploaded", "method": "prune", "dataset": "digits"})
        )
    _, version = _run(trained, {"model": "uploaded", "method": "dynamic_int8", "dataset": "digits"})
    report = version.lineage["optimization"]["report"]
    assert report["size_ratio"] > 2 and report["metric_drop"] < 0.02 and report["value"] > 0.8
    assert version.lineage["dataset"] == {"name": "digits", "version": 1}
    out = OnnxModel(trained.registry.load_artifact(version)).run({"X": x[:5].astype(np.float32)})
    assert set(out["label"].tolist()) <= set(NAMES)
