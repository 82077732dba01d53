"""The autoscaling policy, driven by a made-up clock through load steps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from aiaas.errors import NotFound
from aiaas.sdk import Client
from aiaas.serving.autoscaler import Autoscaler, ScalingDecision, ScalingPolicy
from tests._auth import AUTH
from tests._models import iris, iris_classifier
from tests._servers import free_port, wait_until
from tests.conftest import server_environment
from tests.e2e.conftest import Platform, start_api, start_inference
from tests.serving.test_reconcile import probabilities, v2_body
from tests.serving.test_replicas import Load

TICK_S = 0.1


class Simulation:
    """A deployment whose replica count follows the autoscaler's decisions, tick by tick."""

    def __init__(self, policy: ScalingPolicy, *, replicas: int = 1, budget: int = 64) -> None:
        self.now = 0.0
        self.replicas = replicas
        self.budget = budget
        self.requests = 0
        self.scaler = Autoscaler(policy, now=self.now)
        self.decisions: list[ScalingDecision] = []

    def run(self, seconds: float, in_flight: Callable[[int], float], arrivals: int = 10) -> None:
        """``in_flight(tick)`` requests in flight, ``arrivals`` new requests per tick."""
        for tick in range(round(seconds / TICK_S)):
            self.now += TICK_S
            load = in_flight(tick)
            self.requests += arrivals if load or arrivals else 0
            decision = self.scaler.step(
                self.now,
                in_flight=load,
                requests=self.requests,
                current=self.replicas,
                spare=self.budget - self.replicas,
            )
            if decision is not None:
                assert decision.current == self.replicas
                self.decisions.append(decision)
                self.replicas = decision.desired

    def counts(self) -> list[int]:
        return [d.desired for d in self.decisions]


def steady(value: float) -> Callable[[int], float]:
    return lambda tick: value


def noisy(mean: float, spread: float) -> Callable[[int], float]:
    """Load swinging around ``mean`` by up to ``spread``, deterministically."""
    pattern = (0.0, 1.0, -1.0, 0.5, -0.5, 1.0, -1.0, 0.0)
    return lambda tick: mean + spread * pattern[tick % len(pattern)]


POLICY = ScalingPolicy(min_replicas=1, max_replicas=8, target_in_flight=4, scale_down_delay_s=10.0)


def test_a_load_step_up_scales_up_within_the_window_and_steady_load_never_oscillates() -> None:
    sim = Simulation(POLICY)
    sim.run(5, steady(1))
    assert sim.decisions == []  # one replica carries 1 in flight

    sim.run(1, steady(20))  # 20 in flight, 4 per replica: 5 replicas within a second
    assert sim.replicas == 5
    assert all(d.desired > d.current for d in sim.decisions)
    assert "requests in flight on average" in sim.decisions[-1].reason

    before = len(sim.decisions)
    sim.run(120, noisy(20, 3))  # swings 17..23 for two minutes: 5 or 6 replicas, then stays
    assert len(sim.decisions) - before <= 1
    settled = sim.replicas
    sim.run(120, noisy(20, 3))
    assert sim.replicas == settled and len(sim.decisions) - before <= 1


def test_a_load_step_down_scales_down_only_after_the_delay_and_to_the_peak_with_headroom() -> None:
    sim = Simulation(POLICY)
    sim.run(2, steady(30))
    assert sim.replicas == 8  # capped at max_replicas
    sim.run(9, steady(6))
    assert sim.replicas == 8  # within scale_down_delay_s of the last change: no change yet
    sim.run(3, steady(6))
    # 6 in flight at 80 % of 4 per replica: 2 replicas (not 1, which would need 6 <= 3.2).
    assert sim.replicas == 2
    assert sim.decisions[-1].current == 8
    sim.run(60, steady(6))
    assert sim.replicas == 2 and len(sim.decisions) == 2


def test_min_replicas_zero_scales_to_zero_when_idle_and_a_waiting_request_gets_one() -> None:
    sim = Simulation(
        ScalingPolicy(min_replicas=0, max_replicas=4, target_in_flight=4, scale_down_delay_s=5.0)
    )
    sim.run(3, steady(0), arrivals=1)  # a trickle of quick requests: never idle
    sim.run(30, steady(0), arrivals=1)
    assert sim.replicas == 1
    sim.run(4, steady(0), arrivals=0)
    assert sim.replicas == 1  # idle for less than the delay
    sim.run(2, steady(0), arrivals=0)
    assert sim.replicas == 0 and "scale to zero" in sim.decisions[-1].reason

    sim.run(TICK_S, steady(1), arrivals=1)  # one request waits for a cold start
    assert sim.replicas == 1 and "cold start" in sim.decisions[-1].reason


def test_the_cpu_budget_caps_scaling_up_and_min_max_changes_apply_at_once() -> None:
    sim = Simulation(POLICY, budget=3)
    sim.run(2, steady(40))
    assert sim.replicas == 3  # 10 wanted, 3 allowed on this node

    sim.scaler.policy = ScalingPolicy(
        min_replicas=1, max_replicas=2, target_in_flight=4, scale_down_delay_s=10
    )
    sim.run(TICK_S, steady(40))
    assert sim.replicas == 2 and "max_replicas" in sim.decisions[-1].reason
    sim.scaler.policy = ScalingPolicy(
        min_replicas=2, max_replicas=2, target_in_flight=4, scale_down_delay_s=0
    )
    sim.run(5, steady(0), arrivals=0)
    assert sim.replicas == 2  # never below min_replicas


# -- the policy at work in a real inference server -------------------------------------------


@pytest.fixture
def elastic_platform(migrated_database_url: str, home: Path) -> Iterator[Platform]:
    """Control plane and inference server with room for 4 replicas on this node."""
    env = {**server_environment(home, migrated_database_url), "AIAAS_CPU_BUDGET": "4"}
    api = start_api(env, home, free_port())
    inference = start_inference(env, home, free_port())
    client = Client(api.url, inference_url=inference.url)
    try:
        yield Platform(home=home, env=env, api=api, inference=inference, client=client)
    finally:
        client.close()
        inference.stop()
        api.stop()


@pytest.mark.slow
def test_load_grows_replicas_idle_shrinks_them_to_zero_and_the_next_request_still_succeeds(
    elastic_platform: Platform,
) -> None:
    p = elastic_platform
    x, _ = iris()
    model = iris_classifier(C=0.5)
    p.client.register_model("elastic", model, example=x[:3])
    p.client.deploy(
        "elastic", model="elastic", min_replicas=0, max_replicas=2, target_in_flight=1, scale_down_delay_s=1.0
    )
    p.client.wait_until_served("elastic", 1)
    http = httpx.Client(base_url=p.inference_url, timeout=30, headers=AUTH)

    def running() -> int:
        replicas: dict[str, Any] = http.get("/v2/models/elastic").json()["parameters"]["replicas"]
        return int(replicas["running"])

    try:
        with Load(p.inference_url, "elastic", x[::5].astype(np.float32), clients=8) as load:
            wait_until(lambda: running() == 2 or bool(load.failures), timeout=30, what="a second replica")
            load.wait_for_more(50, "traffic on two replicas")
        assert load.failures == []

        wait_until(lambda: running() == 0, timeout=30, what="scale to zero once idle")
        assert http.get("/v2/models/elastic").json()["parameters"]["replicas"]["desired"] == 0

        # The first request after scaling to zero waits for a cold start instead of failing.
        body = v2_body(x[:4].astype(np.float32))
        r = http.post("/v2/models/elastic/infer", json=body)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(probabilities(r), model.predict_proba(x[:4]), rtol=1e-4, atol=1e-6)
        assert running() == 1
    finally:
        http.close()

    def recorded() -> list[str]:
        return [f"{e.from_replicas}->{e.to_replicas}" for e in reversed(p.client.scaling_events("elastic"))]

    wait_until(lambda: recorded()[-1:] == ["0->1"], timeout=10, what="the cold start to be recorded")
    steps = recorded()
    # Load grew the set to two replicas: from one, or, when the idle second between deploying
    # and the first request already scaled it to zero (a slow machine), from zero at once.
    assert any(s in ("1->2", "0->2") for s in steps), steps
    assert steps[-2].endswith("->0") and steps[-1] == "0->1", steps
    events = p.client.scaling_events("elastic")
    assert "cold start" in events[0].reason and events[0].version == 1
    with pytest.raises(NotFound):
        p.client.scaling_events("no-such-deployment")


@pytest.mark.slow
def test_batched_load_counts_every_queued_request_and_scales_up(elastic_platform: Platform) -> None:
    # Regression: with batching on, the replicas saw one call per batch, so 16 clients looked
    # like one request in flight and the deployment never left its first replica.
    p = elastic_platform
    x, _ = iris()
    model = iris_classifier(C=0.8)
    p.client.register_model("batched-elastic", model, example=x[:3])
    p.client.deploy(
        "batched-elastic",
        model="batched-elastic",
        batching={"enabled": True, "max_batch_size": 32, "max_queue_delay_ms": 2.0},
        min_replicas=1,
        max_replicas=2,
        target_in_flight=4,
    )
    p.client.wait_until_served("batched-elastic", 1)
    http = httpx.Client(base_url=p.inference_url, timeout=30, headers=AUTH)

    def running() -> int:
        replicas: dict[str, Any] = http.get("/v2/models/batched-elastic").json()["parameters"]["replicas"]
        return int(replicas["running"])

    try:
        with Load(p.inference_url, "batched-elastic", x[7:8].astype(np.float32), clients=16) as load:
            wait_until(lambda: running() == 2 or bool(load.failures), timeout=30, what="a second replica")
            load.wait_for_more(50, "traffic on two replicas")
        assert load.failures == []
        stats = http.get("/v2/models/batched-elastic/stats").json()["model_stats"][0]
        assert stats["execution_count"] < stats["inference_stats"]["success"]["count"], "requests batched"
    finally:
        http.close()
    np.testing.assert_allclose(load.answers[-1][1], model.predict_proba(x[7:8]), rtol=1e-4, atol=1e-6)

    def recorded() -> list[str]:
        return [f"{e.from_replicas}->{e.to_replicas}" for e in p.client.scaling_events("batched-elastic")]

    wait_until(lambda: "1->2" in recorded(), timeout=10, what="the scale-up to be recorded")
