"""The evaluator against a real database and a real local webhook receiver, in-process with a
clock the test moves: a rule on samples written as the inference server writes them goes
pending, fires after `for`, is delivered (signed, one delivery id across retries, backoff
doubling, given up after the bound), resolves; a silence records without sending; a second
evaluator waits for the lease; a restarted evaluator neither fires again nor resends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiaas.alerts import LEASE, Evaluator, verify
from aiaas.config import load_settings
from aiaas.entities.alerts import RuleSpec
from aiaas.entities.metrics import MetricSample, SampleKey
from aiaas.platform import Platform, open_platform
from aiaas.store.alerts import AlertStore
from aiaas.store.leases import LeaseStore
from aiaas.store.metric_samples import SampleStore
from tests._clock import DateClock
from tests._webhook import Receiver

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
def platform(home: Path, database_url: str) -> Iterator[Platform]:
    p = open_platform(load_settings(home=home, database_url=database_url))
    yield p
    p.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _evaluator(platform: Platform, clock: DateClock, **kwargs: float) -> Evaluator:
    options = {"retry_base_s": 2.0, "retry_max_s": 60.0, "max_attempts": 5, "timeout_s": 5.0, **kwargs}
    evaluator = Evaluator(
        AlertStore(platform.db),
        LeaseStore(platform.db),
        platform.metrics,
        clock=clock,
        lease_s=30,
        **options,  # type: ignore[arg-type]
    )
    platform.metrics.clock = clock
    return evaluator


def _traffic(platform: Platform, clock: DateClock, requests: int) -> None:
    """What the inference server writes for deployment d, version 1, in the last second."""
    started = clock.now - dt.timedelta(seconds=1)
    SampleStore(platform.db).add({SampleKey("d", 1, started): MetricSample(requests=requests)}, interval_s=1)


def _rule(platform: Platform, for_s: float = 5) -> None:
    AlertStore(platform.db).create_rule(
        RuleSpec(
            name="busy",
            metric="throughput",
            op=">",
            threshold=5,
            window_s=10,
            for_s=for_s,
            deployment="d",
            labels={"team": "ml"},
        )
    )


def test_fires_after_for_delivers_signed_with_retries_and_resolves(
    platform: Platform, receiver: Receiver
) -> None:
    clock = DateClock()
    receiver.failures = 2
    store = AlertStore(platform.db)
    store.create_webhook("hook", receiver.url, SECRET)
    _rule(platform)
    evaluator = _evaluator(platform, clock)

    _traffic(platform, clock, 100)  # 100 requests in a 10 s window: 10/s > 5
    assert evaluator.tick()
    assert store.get_rule("busy").state == "pending"
    clock.advance(3)
    evaluator.tick()
    assert store.get_rule("busy").state == "pending"
    clock.advance(3)
    evaluator.tick()  # true for 6 s >= 5: fires, and the first webhook attempt fails
    rule = store.get_rule("busy")
    assert (rule.state, rule.value) == ("firing", 10.0)
    assert [e.state for e in store.events()] == ["firing", "pending"]
    assert len(receiver.all()) == 1 and receiver.delivered() == []

    evaluator.deliver()  # not due yet: the backoff is 2 s
    assert len(receiver.all()) == 1
    clock.advance(2)
    evaluator.deliver()  # second attempt: 500 again, next in 4 s
    clock.advance(3)
    evaluator.deliver()
    assert len(receiver.all()) == 2
    clock.advance(1)
    evaluator.deliver()
    (firing,) = receiver.delivered()
    attempts = receiver.all()
    assert len({r.headers["x-aiaas-delivery"] for r in attempts}) == 1  # one id, three attempts
    assert verify(SECRET, firing.body, firing.headers["x-aiaas-signature"])
    assert not verify("another-secret-value", firing.body, firing.headers["x-aiaas-signature"])
    body = firing.json
    assert body["rule"] == "busy" and body["state"] == "firing" and body["value"] == 10.0
    assert body["labels"] == {"team": "ml"} and body["delivery_id"] == firing.headers["x-aiaas-delivery"]

    clock.advance(20)  # the window holds no traffic now: resolved
    evaluator.tick()
    assert store.get_rule("busy").state == "inactive"
    assert [r.json["state"] for r in receiver.delivered()] == ["firing", "resolved"]
    deliveries = store.deliveries(e.id for e in store.events())
    assert sorted((d.target, d.attempts, d.delivered_at is not None) for d in deliveries) == [
        ("log", 1, True),
        ("log", 1, True),
        ("webhook", 1, True),
        ("webhook", 3, True),
    ]


def test_a_restarted_evaluator_carries_on_without_repeats(platform: Platform, receiver: Receiver) -> None:
    clock = DateClock()
    receiver.failures = 1
    store = AlertStore(platform.db)
    store.create_webhook("hook", receiver.url, SECRET)
    _rule(platform, for_s=0)
    first = _evaluator(platform, clock)
    _traffic(platform, clock, 100)
    first.tick()  # fires; the delivery fails once and waits in the outbox
    first.stop()  # a clean stop gives the lease up
    second = _evaluator(platform, clock)
    clock.advance(2)
    assert second.tick()  # still firing: no new transition; the waiting row is sent
    assert [e.state for e in store.events()] == ["firing"]
    assert [r.json["state"] for r in receiver.delivered()] == ["firing"]
    second.tick()
    assert len(receiver.all()) == 2


def test_one_evaluator_holds_the_lease(platform: Platform) -> None:
    clock = DateClock()
    one, two = _evaluator(platform, clock), _evaluator(platform, clock)
    assert one.tick() and not two.tick()
    leases = LeaseStore(platform.db)
    leases.release(LEASE, one.holder)
    assert two.tick() and not one.tick()


def test_silenced_transitions_are_recorded_not_sent(platform: Platform, receiver: Receiver) -> None:
    clock = DateClock()
    store = AlertStore(platform.db)
    store.create_webhook("hook", receiver.url, SECRET)
    _rule(platform, for_s=0)
    silence = store.create_silence(
        rule=None, deployment="d", ends_at=T0 + dt.timedelta(seconds=30), comment="deploying"
    )
    evaluator = _evaluator(platform, clock)
    _traffic(platform, clock, 100)
    evaluator.tick()
    (event,) = store.events()
    assert (event.state, event.silenced_by) == ("firing", silence.id)
    assert store.deliveries([event.id]) == [] and receiver.all() == []
    clock.advance(40)  # the silence has ended, and the traffic too: resolved, and sent
    evaluator.tick()
    assert [r.json["state"] for r in receiver.delivered()] == ["resolved"]


def test_a_delivery_is_given_up_after_its_attempts(platform: Platform, receiver: Receiver) -> None:
    clock = DateClock()
    receiver.failures = 100
    store = AlertStore(platform.db)
    store.create_webhook("hook", receiver.url, SECRET)
    _rule(platform, for_s=0)
    evaluator = _evaluator(platform, clock, max_attempts=3)
    _traffic(platform, clock, 100)
    evaluator.tick()
    for _ in range(5):
        clock.advance(60)
        evaluator.deliver()
    assert len(receiver.all()) == 3
    (webhook,) = [d for d in store.deliveries(e.id for e in store.events()) if d.target == "webhook"]
    assert webhook.failed_at is not None and webhook.last_error is not None and "500" in webhook.last_error


def test_a_transition_from_a_stale_state_writes_nothing(platform: Platform) -> None:
    """Two evaluators that both read the rule inactive (one lost its lease mid-pass): the second
    write of the same transition is refused, so it is recorded and notified once."""
    store = AlertStore(platform.db)
    _rule(platform, for_s=0)
    seen = store.get_rule("busy")
    targets = [("log", None)]
    first = store.transition(seen, "firing", T0, "firing", 10.0, T0, {}, silenced_by=None, targets=targets)
    second = store.transition(seen, "firing", T0, "firing", 10.0, T0, {}, silenced_by=None, targets=targets)
    assert first is not None and second is None
    assert [e.state for e in store.events()] == ["firing"]
    assert len(store.due(T0)) == 1


def test_each_rule_is_evaluated_in_its_own_project(platform: Platform) -> None:
    """Two projects each have a rule on their deployment ``d``; only team-a's ``d`` has traffic
    (written under its qualified name, as the inference server writes it): only team-a's rule
    fires, and only team-a's webhook hears of it."""
    clock = DateClock()
    receivers = {"team-a": Receiver(), "team-b": Receiver()}
    try:
        for project, receiver in receivers.items():
            platform.projects.create(project)
            scoped = platform.for_project(project)
            scoped.alerts.store.create_webhook("hook", receiver.url, SECRET)
            scoped.alerts.store.create_rule(
                RuleSpec(name="busy", metric="throughput", op=">", threshold=5, window_s=10, deployment="d")
            )
            scoped.metrics.clock = clock
        started = clock.now - dt.timedelta(seconds=1)
        SampleStore(platform.db).add(
            {SampleKey("team-a/d", 1, started): MetricSample(requests=100)}, interval_s=1
        )
        evaluator = Evaluator(
            AlertStore(platform.db, project=None),
            LeaseStore(platform.db),
            platform.metrics,
            clock=clock,
            readers=lambda project: platform.for_project(project).metrics,
        )
        assert evaluator.tick()
        states = {p: platform.for_project(p).alerts.store.get_rule("busy").state for p in receivers}
        assert states == {"team-a": "firing", "team-b": "inactive"}
        assert [r.json["rule"] for r in receivers["team-a"].delivered()] == ["busy"]
        assert receivers["team-b"].all() == []
        assert platform.for_project("team-b").alerts.store.events() == []
    finally:
        for receiver in receivers.values():
            receiver.close()
