"""Training through the HTTP API: dataset → job → live metrics → registered version → deployed →
prediction; and jobs that survive a killed worker or a killed control plane.

The resumed jobs must end with the same final metrics as an uninterrupted run of the same spec
(same seed, same data): the checkpoint holds the weights, the optimizer, the epoch and every
random generator's state.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from sklearn.datasets import load_iris

from aiaas.sdk import Client
from tests._auth import AUTH
from tests._servers import free_port, wait_until
from tests.conftest import fresh_database, server_environment
from tests.e2e.conftest import Platform, start_api

IRIS_SPEC = """\
dataset: iris
model: {family: mlp, hidden_sizes: [32]}
optimizer: {name: adam, lr: 0.02}
epochs: 25
batch_size: 16
seed: 7
register_as: iris-trained
"""

#: Long enough per epoch (a few tenths of a second) to kill the job between two checkpoints.
SLOW_SPEC = """\
dataset: blobs
model: {family: mlp, hidden_sizes: [256, 256]}
optimizer: {name: momentum, lr: 0.05}
schedule: {name: cosine}
epochs: 8
batch_size: 32
seed: 3
register_as: REGISTER_AS
"""


def _blobs_csv(rows: int = 6000, features: int = 24) -> bytes:
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 2, size=(3, features))
    labels = rng.integers(0, 3, size=rows)
    x = centers[labels] + rng.normal(0, 2.5, size=(rows, features))
    header = ",".join([*(f"f{i}" for i in range(features)), "label"])
    lines = [
        header,
        *(",".join([*(f"{v:.5f}" for v in row), str(y)]) for row, y in zip(x, labels, strict=True)),
    ]
    return ("\n".join(lines) + "\n").encode()


def test_dataset_to_prediction_through_the_http_api(platform: Platform) -> None:
    c = platform.client
    dataset = c.create_dataset("iris", sample="iris")
    job = c.submit_job(IRIS_SPEC)
    assert (job.status, job.dataset, job.dataset_version) == ("queued", "iris", dataset.version)
    assert job.spec["target"] == "target" and job.spec["task"] == "classification"

    job = c.wait_for_job(job.id, timeout=300)
    assert job.status == "succeeded", job.error
    assert job.finished_at is not None

    # Live: every epoch was written as it ended, during the run, not all at once at the end.
    metrics = c.job_metrics(job.id)
    assert [m.epoch for m in metrics] == list(range(1, 26))
    assert all({"loss", "val_loss", "val_accuracy", "samples_per_s"} <= set(m.metrics) for m in metrics)
    assert metrics[0].created_at < metrics[-1].created_at <= job.finished_at
    log = [line.message for line in c.job_logs(job.id).lines]
    assert any(line.startswith("epoch 1/25") for line in log)
    assert log[-1] == f"succeeded: registered version {job.result_version}"

    version = c.get_version("iris-trained", job.result_version or 0)
    assert version.source == f"job:{job.id}"
    lineage = version.lineage or {}
    assert lineage["job"] == job.id
    assert (lineage["dataset"]["name"], lineage["dataset"]["version"]) == ("iris", dataset.version)
    assert lineage["spec"] == job.spec
    assert lineage["classes"] == [0, 1, 2]
    assert set(lineage["reference_statistics"]["columns"]) == {*lineage["feature_names"], "target"}
    assert {"accuracy", "precision", "recall", "f1", "roc_auc"} <= set(version.metrics)
    assert version.metrics["accuracy"] == pytest.approx(metrics[-1].metrics["val_accuracy"])

    c.deploy("iris-trained", model="iris-trained", version=version.version)
    c.wait_until_served("iris-trained", version.version, timeout=60)
    x, y = load_iris(return_X_y=True)
    predicted = c.predict("iris-trained", x.astype(np.float32))
    assert predicted["probabilities"].shape == (150, 3)
    assert float(np.mean(predicted["label"].reshape(-1) == y)) >= 0.9


def _points_csv(labels: list[str], rows: int = 240) -> bytes:
    """Two features and a target of ``labels`` (one band of x per label), as a user's CSV."""
    rng = np.random.default_rng(11)
    x = rng.uniform(0, len(labels), size=rows)
    lines = ["x,noise,target"] + [
        f"{v:.4f},{rng.normal():.4f},{labels[min(int(v), len(labels) - 1)]}" for v in x
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("labels", "family", "extra"),
    [
        (["east", "west"], "logistic", ""),
        (["3", "7", "9"], "mlp", "task: classification\nepochs: 40\noptimizer: {name: adam, lr: 0.05}\n"),
    ],
    ids=["text labels, scikit-learn", "integers 3/7/9, PyTorch"],
)
def test_a_trained_classifier_answers_with_the_labels_of_its_data(
    platform: Platform, labels: list[str], family: str, extra: str
) -> None:
    c = platform.client
    name = f"points-{family}"
    c.create_dataset(name, _points_csv(labels), target="target")
    job = c.wait_for_job(
        c.submit_job(
            f"dataset: {name}\nmodel: {{family: {family}}}\nregister_as: {name}\nseed: 2\n{extra}"
        ).id,
        timeout=300,
    )
    assert job.status == "succeeded", job.error
    version = c.get_version(name, job.result_version or 0)
    typed: list[Any] = labels if family == "logistic" else [int(v) for v in labels]
    assert version.signature["outputs"][1]["classes"] == typed
    assert version.metrics["accuracy"] >= 0.8

    c.deploy(name, model=name, version=version.version)
    c.wait_until_served(name, version.version, timeout=60)
    centres = np.asarray([[i + 0.5, 0.0] for i in range(len(labels))], np.float32)
    predicted = c.predict(name, centres)
    assert predicted["label"].tolist() == typed  # the user's labels, not 0/1
    v1 = c.infer_json(name, {"instances": centres.tolist()}, protocol="v1")
    assert [p["label"] for p in v1["predictions"]] == typed
    assert [list(p["probabilities"]) for p in v1["predictions"]] == [labels] * len(labels)


def test_a_bad_spec_is_refused_naming_the_field(platform: Platform) -> None:
    c = platform.client
    c.create_dataset("iris-bad", sample="iris")
    cases = {
        "dataset: nope\nmodel: {family: mlp}\n": "dataset",
        "dataset: iris-bad\ntarget: colour\nmodel: {family: mlp}\n": "target",
        "dataset: iris-bad\nmodel: {family: linear}\n": "model.family",
        "dataset: iris-bad\nmodel: {family: cnn}\n": "model.family",
        "dataset: iris-bad\nmodel: {family: mlp}\nworkers: 64\n": "workers",
        "dataset: iris-bad\nmodel: {family: mlp}\nwarm_start: {model: ghost, version: 1}\n": "warm_start",
    }
    for text, field in cases.items():
        response = httpx.post(f"{platform.api_url}/api/v1/jobs", json=_yaml(text), timeout=30, headers=AUTH)
        assert response.status_code == 400, (text, response.text)
        error = response.json()["error"]
        assert error["details"]["field"] == field, (text, error)
        assert field.split(".")[0] in error["message"], (text, error)
    assert c.list_jobs() == [] or all(j.dataset != "iris-bad" for j in c.list_jobs())


def _yaml(text: str) -> dict[str, object]:
    import yaml

    value = yaml.safe_load(text)
    assert isinstance(value, dict)
    return value


# -- kill and resume ----------------------------------------------------------------------------


class Training:
    """A control plane on SQLite (and no inference server) with the blobs dataset registered."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.port = free_port()
        self.api = start_api(env, home, self.port)
        self.client = Client(self.api.url)
        self.client.create_dataset("blobs", _blobs_csv(), filename="blobs.csv", target="label")

    def restart(self) -> None:
        self.api = start_api(self.env, self.home, self.port)

    def submit(self, register_as: str) -> int:
        return self.client.submit_job(SLOW_SPEC.replace("REGISTER_AS", register_as)).id

    def worker_pids(self) -> list[int]:
        try:
            children = psutil.Process(self.api.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [p.pid for p in children if "aiaas.training.worker" in " ".join(_cmdline(p))]

    def final_metrics(self, job_id: int) -> dict[str, float]:
        job = self.client.wait_for_job(job_id, timeout=300)
        assert job.status == "succeeded", job.error
        return self.client.get_version(job.register_as, job.result_version or 0).metrics


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Training]:
    home = tmp_path_factory.mktemp("training")
    with fresh_database("sqlite", home) as url:
        t = Training(home, server_environment(home, url))
        try:
            yield t
        finally:
            t.client.close()
            t.api.stop()


@pytest.fixture(scope="module")
def uninterrupted(training: Training) -> dict[str, float]:
    return training.final_metrics(training.submit("blobs-reference"))


def _wait_for_checkpoint(training: Training, job_id: int, epoch: int) -> None:
    def reached() -> bool:
        job = training.client.get_job(job_id)
        assert job.status in ("queued", "running"), job
        return (job.checkpoint_epoch or 0) >= epoch

    wait_until(reached, timeout=240, what=f"job {job_id} to checkpoint epoch {epoch}")


@pytest.mark.slow
def test_a_killed_job_process_resumes_and_ends_like_an_uninterrupted_run(
    training: Training, uninterrupted: dict[str, float]
) -> None:
    job_id = training.submit("blobs-killed-worker")
    _wait_for_checkpoint(training, job_id, 2)
    (pid,) = training.worker_pids()
    os.kill(pid, signal.SIGKILL)

    resumed = training.final_metrics(job_id)
    job = training.client.get_job(job_id)
    assert job.attempts == 2
    log = "\n".join(line.message for line in training.client.job_logs(job_id).lines)
    assert "worker killed by signal 9 (SIGKILL)" in log
    assert "attempt 2 started; resuming after epoch" in log
    assert resumed == pytest.approx(uninterrupted, rel=1e-6, abs=1e-9)
    assert [m.epoch for m in training.client.job_metrics(job_id)] == list(range(1, 9))


@pytest.mark.slow
def test_a_job_survives_a_killed_control_plane(training: Training, uninterrupted: dict[str, float]) -> None:
    job_id = training.submit("blobs-killed-control-plane")
    _wait_for_checkpoint(training, job_id, 2)
    workers = training.worker_pids()
    assert len(workers) == 1
    training.api.kill()
    # The worker dies with its control plane (it would otherwise keep training unsupervised).
    wait_until(lambda: not psutil.pid_exists(workers[0]) or _zombie(workers[0]), what="the worker to die")

    training.restart()
    resumed = training.final_metrics(job_id)
    job = training.client.get_job(job_id)
    assert job.attempts == 2
    log = "\n".join(line.message for line in training.client.job_logs(job_id).lines)
    assert "control plane restarted; the job resumes from its last checkpoint" in log
    assert resumed == pytest.approx(uninterrupted, rel=1e-6, abs=1e-9)


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_continue_training_a_version_on_a_new_dataset_version(training: Training) -> None:
    """Online update: warm start from a registered version's weights; the result's parent is it."""
    c = training.client
    c.create_dataset("iris-online", sample="iris")
    first = c.wait_for_job(c.submit_job(_online_spec(epochs=15)).id, timeout=300)
    assert first.status == "succeeded", first.error
    x, y = load_iris(return_X_y=True)
    fresh = _iris_csv(x, y).encode()
    update = c.create_dataset("iris-online", fresh, filename="more-iris.csv", target="target", seed=1)
    assert update.version == 2

    spec = _online_spec(epochs=3, dataset="iris-online:2") + (
        f"warm_start: {{model: iris-online-mlp, version: {first.result_version}}}\n"
    )
    warm = c.wait_for_job(c.submit_job(spec).id, timeout=300)
    cold = c.wait_for_job(c.submit_job(_online_spec(epochs=3, dataset="iris-online:2")).id, timeout=300)
    assert warm.status == cold.status == "succeeded", (warm.error, cold.error)

    version = c.get_version("iris-online-mlp", warm.result_version or 0)
    assert version.parent_version == first.result_version
    assert (version.lineage or {})["parent"] == {"model": "iris-online-mlp", "version": first.result_version}
    assert (version.lineage or {})["dataset"]["version"] == 2
    # It really started from the old weights: far better after one epoch than a cold start.
    warm_first = c.job_metrics(warm.id)[0].metrics["val_loss"]
    cold_first = c.job_metrics(cold.id)[0].metrics["val_loss"]
    assert warm_first < 0.5 * cold_first


def _online_spec(*, epochs: int, dataset: str = "iris-online:1") -> str:
    return (
        f"dataset: {dataset}\nmodel: {{family: mlp, hidden_sizes: [16]}}\n"
        f"optimizer: {{name: adam, lr: 0.02}}\nepochs: {epochs}\nbatch_size: 16\nseed: 5\n"
        "register_as: iris-online-mlp\n"
    )


def _iris_csv(x: np.ndarray, y: np.ndarray) -> str:
    names = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
    rows = [",".join([*(f"{v:.1f}" for v in row), str(int(label))]) for row, label in zip(x, y, strict=True)]
    return "\n".join([",".join([*names, "target"]), *rows]) + "\n"


@pytest.mark.slow
def test_a_data_parallel_job_runs_through_the_scheduler(training: Training) -> None:
    spec = SLOW_SPEC.replace("REGISTER_AS", "blobs-ddp").replace("epochs: 8", "epochs: 2") + "workers: 2\n"
    job = training.client.wait_for_job(training.client.submit_job(spec).id, timeout=300)
    assert job.status == "succeeded", job.error
    assert job.workers == 2
    log = "\n".join(line.message for line in training.client.job_logs(job.id).lines)
    assert "data-parallel training over 2 processes" in log
    version = training.client.get_version("blobs-ddp", job.result_version or 0)
    assert version.metrics["accuracy"] > 0.5


@pytest.mark.slow
def test_cancel_stops_a_running_job_and_frees_its_slot(training: Training) -> None:
    job_id = training.submit("blobs-cancelled")
    _wait_for_checkpoint(training, job_id, 1)
    (pid,) = training.worker_pids()
    job = training.client.cancel_job(job_id)
    assert job.cancel_requested
    job = training.client.wait_for_job(job_id, timeout=60)
    assert job.status == "cancelled"
    assert job.result_version is None
    wait_until(lambda: not psutil.pid_exists(pid) or _zombie(pid), what="the worker to stop")
    # The slot is free again: the next job starts and finishes.
    follow_up = training.client.submit_job(
        SLOW_SPEC.replace("REGISTER_AS", "blobs-after-cancel").replace("epochs: 8", "epochs: 1")
    )
    assert training.client.wait_for_job(follow_up.id, timeout=300).status == "succeeded"
