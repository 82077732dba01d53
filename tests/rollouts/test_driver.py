"""The rollout driver in the alert evaluator's pass, against a real database, with a clock the
test moves: steps wait for their bake, a guard on the new version fires from samples written as
the inference server writes them and the same pass puts the routing back (a canary, a promoted
version, a moved alias); a new evaluator carries on from the stored step; an abort restores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from aiaas.alerts import Evaluator, MetricReader
from aiaas.config import load_settings
from aiaas.entities.metrics import MetricSample, SampleKey
from aiaas.errors import Conflict, InvalidArgument, NotFound
from aiaas.formats import package_model
from aiaas.platform import Platform, open_platform
from aiaas.rollouts import RolloutDriver
from aiaas.store.alerts import AlertStore
from aiaas.store.leases import LeaseStore
from aiaas.store.metric_samples import SampleStore
from aiaas.store.rollouts import RolloutStore
from tests._clock import DateClock

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
GUARD = {"name": "errors", "metric": "error_rate", "op": ">", "threshold": 0.05, "window": "5s"}


@pytest.fixture
def platform(home: Path, database_url: str) -> Iterator[Platform]:
    p = open_platform(load_settings(home=home, database_url=database_url))
    x, y = load_iris(return_X_y=True)
    x = np.asarray(x, dtype=np.float32)
    package = package_model(LogisticRegression(max_iter=300).fit(x, y), x[:4])
    for _ in range(3):
        p.registry.register_version("iris", package)
    yield p
    p.close()


@pytest.fixture
def clock() -> DateClock:
    return DateClock()


def _evaluator(platform: Platform, clock: DateClock) -> Evaluator:
    """The control plane's composition (Platform.alert_evaluator) with the test's clock: every
    project's rules, each read with its project's metrics, and every project's rollouts."""

    def reader(project: str) -> MetricReader:
        metrics = platform.for_project(project).metrics
        metrics.clock = clock
        return metrics

    evaluator = Evaluator(
        AlertStore(platform.db, project=None),
        LeaseStore(platform.db),
        reader("default"),
        clock=clock,
        readers=reader,
    )
    driver = RolloutDriver(RolloutStore(platform.db, project=None), platform.for_project, clock=clock)
    evaluator.passes.append(driver.tick)
    return evaluator


def _errors(platform: Platform, clock: DateClock, version: int, requests: int, errors: int) -> None:
    started = clock.now - dt.timedelta(seconds=1)
    sample = MetricSample(requests=requests, errors=errors)
    SampleStore(platform.db).add({SampleKey("iris", version, started): sample}, interval_s=1)


def _routes(platform: Platform) -> list[tuple[int, int]]:
    return [(r.version, r.weight) for r in platform.deployments.get("iris").routes]


def test_steps_bake_then_promote_and_a_new_evaluator_carries_on(platform: Platform, clock: DateClock) -> None:
    platform.deployments.create("iris", model="iris", version=1)
    r = platform.rollouts.start(
        "iris", version=2, steps=[{"weight": 10, "bake": 10}, {"weight": 100, "bake": 5}], guards=[GUARD]
    )
    evaluator = _evaluator(platform, clock)
    assert evaluator.tick()
    assert _routes(platform) == [(1, 90), (2, 10)]
    clock.advance(9)
    evaluator.tick()
    assert _routes(platform) == [(1, 90), (2, 10)]  # still baking
    evaluator.stop()  # a restart: the next evaluator reads the stored step and when it began
    evaluator = _evaluator(platform, clock)
    clock.advance(1)
    evaluator.tick()
    d = platform.deployments.get("iris")
    assert (d.version, _routes(platform)) == (2, [(2, 100)])
    clock.advance(5)
    evaluator.tick()
    done, events = platform.rollouts.get("iris", r.id)
    assert done.state == "completed"
    assert [e.kind for e in events] == ["started", "step", "baked", "promoted", "baked", "completed"]
    assert [rule.name for rule in platform.alerts.list_rules()] == []  # the guards held: gone
    evaluator.stop()


def test_a_guard_that_fires_rolls_the_canary_back_in_the_same_pass(
    platform: Platform, clock: DateClock
) -> None:
    platform.deployments.create("iris", model="iris", version=1, traffic=[{"version": 3, "weight": 5}])
    r = platform.rollouts.start(
        "iris", version=2, steps=[{"weight": 40, "bake": "1m"}, {"weight": 100}], guards=[GUARD]
    )
    evaluator = _evaluator(platform, clock)
    evaluator.tick()
    assert _routes(platform) == [(1, 55), (3, 5), (2, 40)]
    clock.advance(2)
    _errors(platform, clock, 1, requests=100, errors=0)
    _errors(platform, clock, 2, requests=40, errors=1)  # 2.5 %: holds
    evaluator.tick()
    assert platform.rollouts.get("iris", r.id)[0].state == "running"
    clock.advance(1)
    _errors(platform, clock, 2, requests=40, errors=20)
    evaluator.tick()
    assert _routes(platform) == [(1, 95), (3, 5)]  # the other canary kept, none to version 2
    done, events = platform.rollouts.get("iris", r.id)
    assert done.state == "rolled_back" and events[-1].kind == "rolled_back"
    assert events[-1].guard == "errors" and events[-1].value == pytest.approx(
        21 / 101
    )  # failed / (answered + failed)
    assert "rolled back because guard errors fired with value 0.2079" in events[-1].message
    rule = platform.alerts.get_rule(done.guards[0].rule)
    assert rule.state == "firing" and rule.version == 2 and rule.labels["rollout"] == str(r.id)
    assert platform.alerts.history(rule=rule.name)[0][0].state == "firing"
    evaluator.stop()


def test_a_promotion_through_an_alias_has_the_same_guard_window(platform: Platform, clock: DateClock) -> None:
    platform.registry.set_alias("iris", "production", 1)
    platform.deployments.create("iris", model="iris", alias="production")
    r = platform.rollouts.start("iris", version=2, steps=[{"weight": 100, "bake": "1m"}], guards=[GUARD])
    assert r.via == "alias"
    evaluator = _evaluator(platform, clock)
    evaluator.tick()
    assert platform.registry.get_version("iris", "production").version == 2
    d = platform.deployments.get("iris")
    assert (d.alias, d.serving_version) == ("production", 2)
    clock.advance(2)
    _errors(platform, clock, 2, requests=10, errors=5)
    evaluator.tick()
    assert platform.registry.get_version("iris", "production").version == 1
    assert platform.rollouts.get("iris", r.id)[0].state == "rolled_back"
    assert _routes(platform) == [(1, 100)]
    evaluator.stop()


def test_abort_restores_and_frees_the_deployment(platform: Platform, clock: DateClock) -> None:
    platform.deployments.create("iris", model="iris", version=1)
    r = platform.rollouts.start("iris", version=2, steps=[{"weight": 50, "bake": "1h"}, {"weight": 100}])
    with pytest.raises(Conflict):
        platform.rollouts.start("iris", version=3, steps=[{"weight": 100}])
    evaluator = _evaluator(platform, clock)
    evaluator.tick()
    assert _routes(platform) == [(1, 50), (2, 50)]
    assert platform.rollouts.abort("iris", r.id).state == "aborting"
    evaluator.tick()
    assert platform.rollouts.get("iris", r.id)[0].state == "aborted" and _routes(platform) == [(1, 100)]
    with pytest.raises(Conflict):
        platform.rollouts.abort("iris", r.id)
    assert platform.rollouts.start("iris", version=3, steps=[{"weight": 100}]).state == "running"
    evaluator.stop()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": [{"weight": 10}, {"weight": 10}, {"weight": 100}]}, "steps[1].weight"),
        ({"steps": [{"weight": 10, "bake": -1}, {"weight": 100}]}, "steps[0].bake"),
        ({"steps": [{"weight": 10, "pause": 1}, {"weight": 100}]}, "steps[0].pause"),
        ({"steps": "10,100"}, "steps"),
        ({"guards": [{**GUARD, "op": "=>"}]}, "guards[0].op"),
        ({"guards": [{**GUARD, "threshold": "high"}]}, "guards[0].threshold"),
        ({"guards": [{k: v for k, v in GUARD.items() if k != "window"}]}, "guards[0].window"),
        ({"guards": [{**GUARD, "feature": "x"}]}, "guards[0].feature"),
        ({"version": "2"}, "version"),
    ],
)
def test_bad_plans_name_their_field(platform: Platform, change: dict[str, object], field: str) -> None:
    platform.deployments.create("iris", model="iris", version=1)
    args: dict[str, object] = {"version": 2, "steps": [{"weight": 100}], "guards": [GUARD], **change}
    with pytest.raises(InvalidArgument) as refused:
        platform.rollouts.start("iris", **args)  # type: ignore[arg-type]
    assert refused.value.details["field"] == field
    assert platform.rollouts.list("iris") == []


def test_a_step_that_cannot_be_applied_fails_the_rollout_and_restores(
    platform: Platform, clock: DateClock
) -> None:
    platform.deployments.create("iris", model="iris", version=1)
    r = platform.rollouts.start("iris", version=2, steps=[{"weight": 50}, {"weight": 100}])
    platform.registry.archive_version("iris", 2)  # before the driver's first pass
    evaluator = _evaluator(platform, clock)
    evaluator.tick()
    done, events = platform.rollouts.get("iris", r.id)
    assert done.state == "failed" and "archived" in done.reason
    assert events[-1].kind == "failed" and _routes(platform) == [(1, 100)]
    evaluator.stop()


def test_rollouts_of_two_projects_on_deployments_of_one_name_move_apart(
    platform: Platform, clock: DateClock
) -> None:
    platform.projects.create("team-a")
    team = platform.for_project("team-a")
    x, y = load_iris(return_X_y=True)
    x = np.asarray(x, dtype=np.float32)
    package = package_model(LogisticRegression(max_iter=300).fit(x, y), x[:4])
    for _ in range(3):
        team.registry.register_version("iris", package)
    platform.deployments.create("iris", model="iris", version=1)
    team.deployments.create("iris", model="iris", version=1)
    mine = platform.rollouts.start(
        "iris", version=2, steps=[{"weight": 10, "bake": "1h"}, {"weight": 100}], guards=[GUARD]
    )
    theirs = team.rollouts.start(
        "iris", version=3, steps=[{"weight": 50, "bake": "1h"}, {"weight": 100}], guards=[GUARD]
    )  # a rollout per deployment: the other project's in progress does not count
    evaluator = _evaluator(platform, clock)
    evaluator.tick()
    assert _routes(platform) == [(1, 90), (2, 10)]
    assert [(r.version, r.weight) for r in team.deployments.get("iris").routes] == [(1, 50), (3, 50)]

    # Version 3 of team-a's iris fails: its guard (a rule of team-a) fires on team-a's samples.
    clock.advance(2)
    key = team.deployment_key("iris")
    SampleStore(platform.db).add(
        {SampleKey(key, 3, clock.now - dt.timedelta(seconds=1)): MetricSample(requests=10, errors=10)},
        interval_s=1,
    )
    _errors(platform, clock, 2, requests=10, errors=0)
    evaluator.tick()
    assert team.rollouts.get("iris", theirs.id)[0].state == "rolled_back"
    assert [(r.version, r.weight) for r in team.deployments.get("iris").routes] == [(1, 100)]
    assert platform.rollouts.get("iris", mine.id)[0].state == "running"
    assert _routes(platform) == [(1, 90), (2, 10)]
    assert team.alerts.get_rule(theirs.guards[0].rule).state == "firing"
    assert [r.name for r in platform.alerts.list_rules()] == [mine.guards[0].rule]

    # Each project sees its own rollouts only: another project's is not found.
    assert [r.id for r in platform.rollouts.list("iris")] == [mine.id]
    assert [r.id for r in team.rollouts.list("iris")] == [theirs.id]
    with pytest.raises(NotFound):
        platform.rollouts.get("iris", theirs.id)
    with pytest.raises(NotFound):
        team.rollouts.abort("iris", mine.id)
    assert platform.rollouts.get("iris", mine.id)[0].state == "running"
    evaluator.stop()


def test_a_rollout_of_a_project_whose_name_the_default_project_lacks_is_driven(
    platform: Platform, clock: DateClock
) -> None:
    platform.projects.create("team-b")
    team = platform.for_project("team-b")
    x, y = load_iris(return_X_y=True)
    x = np.asarray(x, dtype=np.float32)
    package = package_model(LogisticRegression(max_iter=300).fit(x, y), x[:4])
    for _ in range(2):
        team.registry.register_version("flowers", package)
    team.deployments.create("flowers", model="flowers", version=1)
    r = team.rollouts.start("flowers", version=2, steps=[{"weight": 100, "bake": 5}])
    evaluator = _evaluator(platform, clock)
    evaluator.tick()
    assert team.deployments.get("flowers").serving_version == 2
    clock.advance(5)
    evaluator.tick()
    assert team.rollouts.get("flowers", r.id)[0].state == "completed"
    evaluator.stop()
