"""The retraining loop through real processes (control plane with its scheduler and evaluator,
inference server): drift injected into live traffic (shifted inputs) starts a run that trains
on the dataset's newer version (which holds the shift), evaluates the new version against the
served one on held-out rows, rolls it out as a guarded canary and promotes it, every step in
the run's history; a run whose new data has shuffled labels yields a worse version, which is
discarded while the served version stays. Bad policies are refused naming the field."""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.errors import InvalidArgument, NotFound
from tests._auth import AUTH
from tests._servers import wait_until
from tests.e2e.conftest import Platform, start_inference

pytestmark = pytest.mark.e2e

MODEL = "retrained-iris"
SHIFT = 3.0
FAST = {
    "AIAAS_METRICS_INTERVAL_S": "1",
    "AIAAS_METRICS_FLUSH_INTERVAL_S": "0.2",
    "AIAAS_DRIFT_INTERVAL_S": "1",
    "AIAAS_DRIFT_FLUSH_INTERVAL_S": "0.2",
    "AIAAS_ALERTS_EVALUATION_INTERVAL_S": "0.2",
    "AIAAS_ALERTS_LEASE_S": "10",
}
TRIGGER = {"metric": "drift_share", "threshold": 0.3, "window": "30s"}
CANARY = {
    "steps": [{"weight": 50, "bake": "1s"}, {"weight": 100, "bake": "1s"}],
    "guards": [{"name": "errors", "metric": "error_rate", "op": ">", "threshold": 0.5, "window": "3s"}],
}


def _csv(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> bytes:
    frame = pd.DataFrame(x, columns=["sl", "sw", "pl", "pw"])
    frame["species"] = y
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue().encode()


def _iris() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x, y = load_iris(return_X_y=True)
    return np.asarray(x, dtype=np.float32), np.asarray(y)


def _served(platform: Platform, deployment: str) -> None:
    """Both servers timed for tests; version 1 of MODEL trained by a job on iris-rt:1 and
    served by ``deployment``."""
    if any(platform.env.get(k) != v for k, v in FAST.items()):
        platform.inference.stop()
        platform.api.stop()
        platform.env.update(FAST)
        platform.start_api()
        port = int(platform.inference_url.rsplit(":", 1)[1])
        platform.inference = start_inference(platform.env, platform.home, port)
    c = platform.client
    if MODEL not in [m.name for m in c.list_models()]:
        x, y = _iris()
        c.create_dataset("iris-rt", _csv(x, y), target="species", filename="iris.csv")
        job = c.submit_job({"dataset": "iris-rt:1", "model": {"family": "logistic"}, "register_as": MODEL})
        assert c.wait_for_job(job.id, timeout=120).status == "succeeded"
    c.deploy(deployment, model=MODEL, version=1)
    c.wait_until_served(deployment, 1)


def _send_until(
    platform: Platform, deployment: str, rows: np.ndarray[Any, Any], done: Any, what: str
) -> None:
    """Send ``rows`` to ``deployment`` again and again until ``done()``, within a deadline."""
    deadline = time.monotonic() + 90
    with httpx.Client(base_url=platform.inference_url, timeout=30, headers=AUTH) as http:
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            for row in rows[::3]:
                tensor = {"name": "X", "datatype": "FP32", "shape": [1, 4], "data": row.tolist()}
                r = http.post(f"/v2/models/{deployment}/infer", json={"inputs": [tensor]})
                assert r.status_code == 200, r.text


def _runs(platform: Platform, deployment: str) -> list[Any]:
    return platform.client.list_retraining_runs(deployment)


def _finished(platform: Platform, deployment: str) -> Any:
    wait_until(
        lambda: _runs(platform, deployment)[0].finished_at is not None, timeout=120, what="the run's end"
    )
    return _runs(platform, deployment)[0]


def _cli(platform: Platform, *args: str) -> str:
    result = CliRunner().invoke(app, ["--url", platform.api_url, *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_drift_in_live_traffic_retrains_and_the_canary_is_promoted(platform: Platform) -> None:
    c = platform.client
    _served(platform, "rt-drift")
    x, y = _iris()
    c.create_dataset("iris-rt", _csv(x + SHIFT, y), target="species", filename="iris.csv")  # the shift
    policy = {
        "trigger": TRIGGER,
        "data": {"dataset": "iris-rt"},
        "training": {"model": {"family": "logistic", "max_iter": 500}},
        "rollout": CANARY,
        "cooldown": "1h",
    }
    stored = c.set_retraining("rt-drift", policy)
    assert stored.trigger["op"] == ">" and stored.cooldown_s == 3600
    assert "drift_share > 0.3 over 30s" in _cli(platform, "retraining", "show", "rt-drift")
    assert _runs(platform, "rt-drift") == []

    _send_until(platform, "rt-drift", x + SHIFT, lambda: _runs(platform, "rt-drift"), "the trigger")
    run = _finished(platform, "rt-drift")
    assert run.state == "promoted", run
    kinds = [e.kind for e in run.events]
    assert kinds == ["triggered", "job", "trained", "evaluated", "rollout", "promoted"]
    assert run.trigger["value"] > 0.3 and run.served_version == 1 and run.version is not None
    job = c.get_job(run.job_id)
    assert job.dataset_version == 2 and job.spec["warm_start"] == {"model": MODEL, "version": 1}
    assert run.evaluation["dataset"] == "iris-rt:2" and run.evaluation["kept"]
    assert run.evaluation["candidate"] > run.evaluation["served"]
    rollout = c.get_rollout("rt-drift", run.rollout_id)
    assert rollout.state == "completed" and rollout.version == run.version
    d = c.get_deployment("rt-drift")
    assert d.version == run.version and [(r.version, r.weight) for r in d.routes] == [(run.version, 100)]
    times = [e.at for e in run.events]
    assert times == sorted(times)
    out = _cli(platform, "retraining", "runs", "rt-drift")
    for word in ("triggered", "submitted", "held-out", "rollout", "promoted"):
        assert word in out, out


def test_a_worse_retrained_version_is_discarded_and_the_served_version_stays(platform: Platform) -> None:
    c = platform.client
    _served(platform, "rt-worse")
    x, y = _iris()
    shuffled = np.random.default_rng(0).permutation(y)
    c.create_dataset("iris-noisy", _csv(x, shuffled), target="species", filename="iris.csv")
    _cli(
        platform,
        "retraining",
        "set",
        "rt-worse",
        "--trigger",
        "drift_share > 0.3 window=30s",
        "--dataset",
        "iris-noisy",
        "--eval-dataset",
        "iris-rt:1",
        "--tolerance",
        "0.05",
        "--steps",
        "50:1s,100:1s",
        "--cooldown",
        "1h",
    )
    _send_until(platform, "rt-worse", x + SHIFT, lambda: _runs(platform, "rt-worse"), "the trigger")
    run = _finished(platform, "rt-worse")
    assert run.state == "discarded", run
    assert [e.kind for e in run.events] == ["triggered", "job", "trained", "evaluated", "discarded"]
    figures = run.evaluation
    assert figures["dataset"] == "iris-rt:1" and not figures["kept"]
    assert figures["candidate"] < figures["served"] - 0.05
    assert run.reason.startswith(f"version {run.version} is worse than the served version 1")
    assert run.rollout_id is None and c.list_rollouts("rt-worse") == []
    d = c.get_deployment("rt-worse")
    assert d.version == 1 and [(r.version, r.weight) for r in d.routes] == [(1, 100)]
    assert c.get_version(MODEL, run.version).status == "archived"
    assert "discarded" in _cli(platform, "retraining", "runs", "rt-worse")
    _cli(platform, "retraining", "delete", "rt-worse")
    with pytest.raises(NotFound):
        c.get_retraining("rt-worse")


def test_bad_policies_are_refused_naming_the_field(platform: Platform) -> None:
    c = platform.client
    _served(platform, "rt-bad")
    good: dict[str, Any] = {"trigger": TRIGGER, "data": {"dataset": "iris-rt"}}
    bad: list[tuple[dict[str, Any], str]] = [
        ({"data": {"dataset": "no-such-dataset"}}, "data.dataset"),
        ({"trigger": {**TRIGGER, "threshold": 2}}, "trigger.threshold"),
        ({"trigger": {**TRIGGER, "metric": "latency"}}, "trigger.metric"),
        ({"trigger": {**TRIGGER, "window": "0s"}}, "trigger.window"),
        ({"evaluation": {"tolerance": -1}}, "evaluation.tolerance"),
        ({"rollout": {"steps": [{"weight": 10}]}}, "rollout.steps[0].weight"),
        ({"training": {"optimizer": {"name": "adam"}}}, "training.optimizer"),
    ]
    for change, field in bad:
        with pytest.raises(InvalidArgument) as refused:
            c.set_retraining("rt-bad", {**good, **change})
        assert refused.value.details.get("field") == field, (change, refused.value)
    c.deploy("rt-unlogged", model=MODEL, version=1, prediction_log={"sample_rate": 0})
    with pytest.raises(InvalidArgument) as refused:
        c.set_retraining(
            "rt-unlogged", {**good, "trigger": {"metric": "accuracy", "threshold": 0.9, "window": "1h"}}
        )
    assert refused.value.details.get("field") == "trigger.metric"
    with httpx.Client(base_url=platform.api_url, headers=AUTH) as http:
        r = http.put("/api/v1/deployments/rt-bad/retraining", json={**good, "trigger": "drift"})
        assert r.status_code == 400 and "trigger" in r.text
        assert http.get("/api/v1/deployments/nowhere/retraining/runs").status_code == 404
    with pytest.raises(NotFound):
        c.get_retraining("rt-bad")


@pytest.mark.parametrize(
    "command",
    [
        ["retraining"],
        ["retraining", "set"],
        ["retraining", "show"],
        ["retraining", "runs"],
        ["retraining", "delete"],
    ],
)
def test_every_retraining_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
