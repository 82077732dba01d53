"""The retraining loop in the alert evaluator's pass, against a real database, with a clock the
test moves and a trigger metric the test sets: a run starts when the trigger holds, submits a
warm-started job on the dataset's newest version, evaluates the version the job registered
against the served one on held-out rows, and starts a guarded canary that the rollout driver
promotes; a worse candidate is discarded (and archived) while the served version stays; the
cooldown keeps the loop from retraining again at once; a new evaluator carries on from the
stored run. Jobs run here, in this process, as a worker would run them."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from aiaas.alerts import Evaluator, MetricReader
from aiaas.alerts.series import Scope
from aiaas.config import load_settings
from aiaas.errors import InvalidArgument, NotFound
from aiaas.platform import Platform, open_platform
from aiaas.retraining import RetrainingDriver
from aiaas.rollouts import RolloutDriver
from aiaas.schemas.training import JobSpec
from aiaas.store.alerts import AlertStore
from aiaas.store.leases import LeaseStore
from aiaas.store.predictions import LoggedRequest, write_segment
from aiaas.store.retraining import RetrainingStore
from aiaas.store.rollouts import RolloutStore
from aiaas.training.worker import run_recorded
from tests._clock import DateClock

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
NAME = "iris-live"
POLICY: dict[str, Any] = {
    "trigger": {"metric": "drift_share", "threshold": 0.5, "window": "1m"},
    "data": {"dataset": "iris"},
    "training": {"model": {"family": "logistic", "max_iter": 500}},
    "rollout": {"steps": [{"weight": 50, "bake": 10}, {"weight": 100, "bake": 5}]},
    "cooldown": "1h",
}


class Metrics:
    """The trigger's metric as the test sets it (drift: the number of drifted features)."""

    def __init__(self) -> None:
        self.values: dict[str, float | None] = {}
        self.asked: list[tuple[str, Scope, dt.datetime, dt.datetime]] = []

    def value(self, metric: str, scope: Scope, start: dt.datetime, end: dt.datetime) -> float | None:
        self.asked.append((metric, scope, start, end))
        return self.values.get(metric)


def _csv(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> bytes:
    frame = pd.DataFrame(x, columns=["sl", "sw", "pl", "pw"])
    frame["species"] = y
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue().encode()


def _iris(shift: float = 0.0, *, shuffled: bool = False) -> bytes:
    x, y = load_iris(return_X_y=True)
    if shuffled:
        y = np.random.default_rng(0).permutation(y)
    return _csv(x + shift, y)


def _finish_jobs(platform: Platform) -> None:
    """Run every queued job here, as the scheduler's worker would."""
    for job in platform.jobs.list_jobs():
        if job.status == "queued":
            assert platform.jobs.claim(job.id)
            assert run_recorded(platform.training, job.id) == 0


def _served(p: Platform) -> None:
    """Dataset ``iris``, version 1 of ``NAME`` trained on it by a job, deployed as ``NAME``."""
    p.datasets.create_version("iris", _iris(), filename="iris.csv", target="species")
    spec = JobSpec.parse(
        {"dataset": "iris", "model": {"family": "logistic", "max_iter": 300}, "register_as": NAME}
    )
    p.training.submit(spec)
    _finish_jobs(p)
    p.deployments.create(NAME, model=NAME, version=1)


@pytest.fixture
def platform(home: Path, database_url: str) -> Iterator[Platform]:
    p = open_platform(load_settings(home=home, database_url=database_url))
    _served(p)
    yield p
    p.close()


@pytest.fixture
def clock() -> DateClock:
    return DateClock()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


class Services:
    """A project's services (Platform.for_project) with the test's trigger metric."""

    def __init__(self, platform: Platform, metrics: Metrics) -> None:
        self._platform, self.metrics = platform, metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._platform, name)


def _evaluator(
    platform: Platform, clock: DateClock, metrics: Metrics, others: dict[str, Metrics] | None = None
) -> Evaluator:
    """The control plane's composition (Platform.alert_evaluator) with the test's clock and
    metric (``others``: another project's)."""

    def reader(project: str) -> MetricReader:
        scoped = platform.for_project(project).metrics
        scoped.clock = clock
        return scoped

    def services(project: str) -> Services:
        return Services(platform.for_project(project), (others or {}).get(project, metrics))

    evaluator = Evaluator(
        AlertStore(platform.db, project=None),
        LeaseStore(platform.db),
        reader("default"),
        clock=clock,
        readers=reader,
    )
    rollouts = RolloutDriver(RolloutStore(platform.db, project=None), platform.for_project, clock=clock)
    retraining = RetrainingDriver(
        RetrainingStore(platform.db, project=None),
        services,  # type: ignore[arg-type]
        prediction_log_dir=platform.settings.resolved_prediction_log_dir(),
        clock=clock,
    )
    evaluator.passes += [rollouts.tick, retraining.tick]
    return evaluator


def _runs(platform: Platform) -> list[Any]:
    return platform.retraining.runs(NAME)


def test_drift_retrains_evaluates_rolls_out_and_promotes_then_cools_down(
    platform: Platform, clock: DateClock, metrics: Metrics
) -> None:
    platform.retraining.set(NAME, POLICY)
    evaluator = _evaluator(platform, clock, metrics)
    # The reference watches 5 columns (4 inputs, the prediction): 2 drifted is a share of 0.4.
    metrics.values["drift"] = 2.0
    evaluator.tick()
    assert _runs(platform) == []
    platform.datasets.create_version("iris", _iris(3.0), filename="iris.csv", target="species")  # the shift
    metrics.values["drift"] = 4.0
    evaluator.tick()
    [(run, events)] = _runs(platform)
    assert run.state == "training" and run.served_version == 1 and run.trigger["value"] == 0.8
    assert [e.kind for e in events] == ["triggered", "job"]
    assert "drift_share was 0.8 over 60s (> 0.5)" in events[0].message
    assert metrics.asked[-1][1] == Scope(NAME, None, None, None)
    assert metrics.asked[-1][3] - metrics.asked[-1][2] == dt.timedelta(seconds=60)
    job = platform.jobs.get(run.job_id)
    assert job.dataset_version == 2 and job.spec["warm_start"] == {"model": NAME, "version": 1}
    assert job.spec["model"]["max_iter"] == 500 and job.register_as == NAME
    evaluator.tick()  # the job is queued: nothing moves, no second run
    assert [r.state for r, _ in _runs(platform)] == ["training"]

    _finish_jobs(platform)
    evaluator.stop()  # a restart: the next evaluator reads the stored run
    evaluator = _evaluator(platform, clock, metrics)
    evaluator.tick()
    [(run, events)] = _runs(platform)
    assert run.state == "rolling_out" and run.version == 2 and run.rollout_id is not None
    figures = run.evaluation
    assert figures["metric"] == "accuracy" and figures["dataset"] == "iris:2" and figures["kept"]
    assert figures["candidate"] > figures["served"] + 0.2  # the served version does not know the shift
    assert [e.kind for e in events] == ["triggered", "job", "trained", "evaluated", "rollout"]
    evaluator.tick()
    assert [(r.version, r.weight) for r in platform.deployments.get(NAME).routes] == [(1, 50), (2, 50)]
    clock.advance(10)
    evaluator.tick()
    assert platform.deployments.get(NAME).serving_version == 2
    clock.advance(5)
    evaluator.tick()  # the rollout completes in this pass, the run sees it in the next
    evaluator.tick()
    [(run, events)] = _runs(platform)
    assert run.state == "promoted" and run.finished_at is not None
    assert [e.kind for e in events] == ["triggered", "job", "trained", "evaluated", "rollout", "promoted"]
    assert platform.rollouts.store.get(run.rollout_id).state == "completed"

    # The trigger still holds: the cooldown (1 h from the run's end) keeps the loop still.
    clock.advance(3000)
    evaluator.tick()
    assert len(_runs(platform)) == 1
    clock.advance(700)
    evaluator.tick()
    runs = _runs(platform)
    assert len(runs) == 2 and runs[0][0].served_version == 2
    evaluator.stop()


def test_a_worse_candidate_is_discarded_and_the_served_version_stays(
    platform: Platform, clock: DateClock, metrics: Metrics
) -> None:
    platform.datasets.create_version("iris", _iris(3.0), filename="iris.csv", target="species")
    platform.datasets.create_version("iris", _iris(3.0, shuffled=True), filename="iris.csv", target="species")
    policy = {
        **POLICY,
        "evaluation": {"tolerance": 0.05, "dataset": "iris:2"},
        "training": {"warm_start": False},
    }
    platform.retraining.set(NAME, policy)
    evaluator = _evaluator(platform, clock, metrics)
    metrics.values["drift"] = 4.0
    evaluator.tick()
    _finish_jobs(platform)
    evaluator.tick()
    [(run, events)] = _runs(platform)
    assert run.state == "discarded" and run.version == 2 and run.rollout_id is None
    assert "warm_start" not in platform.jobs.get(run.job_id).spec
    figures = run.evaluation
    assert figures["dataset"] == "iris:2" and not figures["kept"]
    assert figures["candidate"] < figures["served"] - 0.05
    assert [e.kind for e in events] == ["triggered", "job", "trained", "evaluated", "discarded"]
    assert run.reason.startswith("version 2 is worse than the served version 1: accuracy on 30 held-out rows")
    assert platform.deployments.get(NAME).serving_version == 1
    assert platform.registry.get_version(NAME, 2).status == "archived"
    assert platform.rollouts.list(NAME) == []


def test_a_failed_job_fails_the_run_with_its_reason(
    platform: Platform, clock: DateClock, metrics: Metrics
) -> None:
    platform.retraining.set(NAME, POLICY)
    evaluator = _evaluator(platform, clock, metrics)
    metrics.values["drift"] = 4.0
    evaluator.tick()
    [(run, _)] = _runs(platform)
    assert run.job_id is not None
    assert platform.jobs.claim(run.job_id)
    platform.jobs.finish(run.job_id, "failed", "failed: out of memory", error="out of memory")
    evaluator.tick()
    [(run, events)] = _runs(platform)
    assert run.state == "failed" and "out of memory" in run.reason
    assert [e.kind for e in events] == ["triggered", "job", "failed"]
    # A policy goes with its deployment (at the driver's next pass); the runs stay as history.
    platform.deployments.delete(NAME)
    evaluator.tick()
    assert platform.retraining.store.policies() == []
    assert [r.state for r in platform.retraining.store.runs(deployment=NAME)] == ["failed"]


def _field(platform: Platform, change: dict[str, Any], deployment: str = NAME) -> str:
    with pytest.raises(InvalidArgument) as refused:
        platform.retraining.set(deployment, {**POLICY, **change})
    return str(refused.value.details.get("field"))


def test_bad_policies_are_refused_naming_the_field(platform: Platform) -> None:
    trigger = POLICY["trigger"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"trigger": {**trigger, "metric": "latency_p99"}}, "trigger.metric"),
        ({"trigger": {**trigger, "threshold": 1.5}}, "trigger.threshold"),
        ({"trigger": {**trigger, "threshold": -0.1}}, "trigger.threshold"),
        ({"trigger": {**trigger, "threshold": True}}, "trigger.threshold"),
        ({"trigger": {**trigger, "window": "0s"}}, "trigger.window"),
        ({"trigger": {"metric": "drift_share", "threshold": 0.5}}, "trigger.window"),
        ({"trigger": {**trigger, "feature": "sl"}}, "trigger.feature"),
        ({"trigger": {**trigger, "op": ">"}}, "trigger.op"),
        ({"data": {"dataset": "nope"}}, "data.dataset"),
        ({"data": {"dataset": "iris:1"}}, "data.dataset"),
        ({"data": {"dataset": "iris", "feedback": True}}, "data"),
        ({"data": {}}, "data.dataset"),
        ({"training": {"epochs": 0}}, "training.epochs"),
        ({"training": {"warm_start": "yes"}}, "training.warm_start"),
        ({"training": {"dataset": "other"}}, "training.dataset"),
        ({"evaluation": {"tolerance": 2}}, "evaluation.tolerance"),
        ({"evaluation": {"dataset": "nope"}}, "evaluation.dataset"),
        ({"evaluation": {"dataset": "iris:9"}}, "evaluation.dataset"),
        ({"rollout": {"steps": [{"weight": 50}]}}, "rollout.steps[0].weight"),
        (
            {"rollout": {"guards": [{"metric": "error_rate", "op": ">", "threshold": 1}]}},
            "rollout.guards[0].window",
        ),
        (
            {
                "rollout": {
                    "guards": [
                        {"metric": "error_rate", "op": ">", "threshold": 1, "window": "1m", "version": 1}
                    ]
                }
            },
            "rollout.guards[0].version",
        ),
        (
            {
                "rollout": {
                    "guards": [
                        {
                            "metric": "error_rate",
                            "op": ">",
                            "threshold": 1,
                            "window": "1m",
                            "deployment": "other",
                        }
                    ]
                }
            },
            "rollout.guards[0].deployment",
        ),
        ({"cooldown": "soon"}, "cooldown"),
        ({"colldown": "1h"}, "colldown"),
    ]
    for change, field in cases:
        assert _field(platform, change) == field, change
    # Accuracy is read from feedback joined with the prediction log: none is kept here.
    platform.deployments.create("unlogged", model=NAME, version=1, prediction_log={"sample_rate": 0})
    assert _field(
        platform, {"trigger": {"metric": "accuracy", "threshold": 0.8, "window": "1h"}}, "unlogged"
    ) == ("trigger.metric")
    assert _field(platform, {"data": {"feedback": True}}, "unlogged") == "data.feedback"
    with pytest.raises(NotFound):
        platform.retraining.set("nowhere", POLICY)
    with pytest.raises(NotFound):
        platform.retraining.get(NAME)
    stored = platform.retraining.set(NAME, POLICY)
    assert stored.spec["trigger"] == {
        "metric": "drift_share",
        "op": ">",
        "threshold": 0.5,
        "window_s": 60.0,
        "feature": None,
    }
    assert stored.spec["cooldown_s"] == 3600.0 and stored.spec["evaluation"] == {
        "tolerance": 0.0,
        "dataset": None,
    }
    platform.retraining.delete(NAME)
    with pytest.raises(NotFound):
        platform.retraining.delete(NAME)


def test_the_prediction_log_joined_with_feedback_is_the_training_data(
    platform: Platform, clock: DateClock, metrics: Metrics
) -> None:
    x, y = load_iris(return_X_y=True)
    rows = [
        LoggedRequest(f"r{i}", 1, 1_764_590_400_000_000 + i, 1.0, json.dumps({"X": [list(row + 3.0)]}), "{}")
        for i, row in enumerate(x)
    ]
    rows.append(
        LoggedRequest("two-rows", 1, 1_764_590_500_000_000, 1.0, json.dumps({"X": [[1, 2, 3, 4]] * 2}), "{}")
    )
    write_segment(platform.settings.resolved_prediction_log_dir(), NAME, rows)
    labels = {f"r{i}": int(label) for i, label in enumerate(y) if i != 7}
    platform.feedback.record(NAME, {**labels, "two-rows": 1})
    platform.retraining.set(
        NAME,
        {
            **POLICY,
            "trigger": {"metric": "accuracy", "threshold": 0.9, "window": "1h"},
            "data": {"feedback": True},
        },
    )
    evaluator = _evaluator(platform, clock, metrics)
    metrics.values["accuracy"] = 0.95
    evaluator.tick()
    assert _runs(platform) == []
    metrics.values["accuracy"] = 0.4
    evaluator.tick()
    [(run, events)] = _runs(platform)
    assert "accuracy was 0.4 over 3600s (< 0.9)" in events[0].message
    built = platform.datasets.get_version(f"{NAME}-feedback")
    assert built.version == 1 and built.statistics["row_count"] == 149  # one unlabelled, one of two rows
    assert platform.jobs.get(run.job_id).dataset == f"{NAME}-feedback"
    _finish_jobs(platform)
    evaluator.tick()
    [(run, events)] = _runs(platform)
    assert run.state == "rolling_out" and run.evaluation["dataset"] == f"{NAME}-feedback:1"
    assert run.evaluation["candidate"] > run.evaluation["served"]


def test_loops_of_two_projects_on_deployments_of_one_name_run_apart(
    platform: Platform, clock: DateClock, metrics: Metrics
) -> None:
    platform.projects.create("team-a")
    team = platform.for_project("team-a")
    _served(team)
    platform.retraining.set(NAME, POLICY)
    team.retraining.set(NAME, POLICY)
    drifting = Metrics()
    evaluator = _evaluator(platform, clock, metrics, {"team-a": drifting})
    metrics.values["drift"] = 0.0
    drifting.values["drift"] = 4.0  # only team-a's deployment drifts
    team.datasets.create_version("iris", _iris(3.0), filename="iris.csv", target="species")
    evaluator.tick()
    assert _runs(platform) == []
    [(run, events)] = _runs(team)
    assert run.project == "team-a" and [e.kind for e in events] == ["triggered", "job"]
    assert team.jobs.get(run.job_id).dataset_version == 2  # team-a's dataset, team-a's job
    with pytest.raises(NotFound):
        platform.jobs.get(run.job_id)
    _finish_jobs(team)
    evaluator.tick()
    [(run, _)] = _runs(team)
    assert run.state == "rolling_out" and run.version == 2
    assert platform.rollouts.list(NAME) == [] and [r.id for r in team.rollouts.list(NAME)] == [run.rollout_id]
    evaluator.tick()
    assert [(r.version, r.weight) for r in team.deployments.get(NAME).routes] == [(1, 50), (2, 50)]
    assert [(r.version, r.weight) for r in platform.deployments.get(NAME).routes] == [(1, 100)]
    assert [v.version for v in platform.registry.list_versions(NAME)] == [1]

    # Another project's policy and runs are not found, as if they did not exist.
    platform.retraining.delete(NAME)
    with pytest.raises(NotFound):
        platform.retraining.get(NAME)
    assert team.retraining.get(NAME).project == "team-a"
    with pytest.raises(NotFound):
        platform.retraining.store.get_run(run.id)
    with pytest.raises(NotFound):
        platform.rollouts.get(NAME, run.rollout_id)
    evaluator.stop()
