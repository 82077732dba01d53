"""Anomaly rules in-process, deterministic: the detectors on synthetic metric windows (steady
noise window after window never makes a rule fire; a latency spike is flagged, with the metric
that deviated named; the same input gives the same verdict), and the evaluator on samples
written as the inference server writes them, with a clock the test moves: a steady deployment's
anomaly rule stays inactive, slow windows make it fire with the reason in the notification, and
it resolves when the latency is back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aiaas.alerts import DEFAULT_METRICS, DETECTORS, Evaluator, detect, step
from aiaas.alerts.anomaly import AnomalyJudge
from aiaas.config import load_settings
from aiaas.entities.alerts import AnomalySpec, RuleSpec, RuleState
from aiaas.entities.metrics import MetricSample, SampleKey
from aiaas.platform import Platform, open_platform
from aiaas.store.alerts import AlertStore
from aiaas.store.leases import LeaseStore
from aiaas.store.metric_samples import SampleStore
from tests._clock import DateClock

METRICS = DEFAULT_METRICS  # latency_p50, latency_p99, error_rate, throughput
HISTORY = 60


def _steady(rng: np.random.Generator, n: int) -> np.ndarray[Any, Any]:
    """Windows of a steady deployment: ~10 ms median, ~30 ms p99, no errors, ~50 requests/s."""
    return np.column_stack(
        [
            0.010 + 0.001 * rng.standard_normal(n),
            0.030 + 0.004 * rng.standard_normal(n),
            np.zeros(n),
            50 + 3 * rng.standard_normal(n),
        ]
    )


@pytest.mark.parametrize("detector", DETECTORS)
def test_steady_noise_window_after_window_never_fires(detector: str) -> None:
    rng = np.random.default_rng(7)
    windows = _steady(rng, HISTORY + 120)
    state: RuleState = "inactive"
    since: dt.datetime | None = None
    t0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    flagged, events = 0, []
    for i in range(HISTORY, len(windows)):
        verdict = detect(windows[i - HISTORY : i], windows[i], METRICS, detector=detector)
        flagged += verdict.anomalous
        # The rule's default `for` is one window: an odd window alone goes pending, never firing.
        move = step(state, since, verdict.anomalous, 60, t0 + dt.timedelta(minutes=i))
        state, since = move.state, move.since
        events.append(move.event)
    assert "firing" not in events
    # The boundary is the history's most outlying window: a steady window exceeds it with a
    # chance near 1/(n+1), about 2 of these 120.
    assert flagged <= 120 / (HISTORY + 1) * 3, flagged


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({0: 3.0, 1: 3.0}, {"latency_p50", "latency_p99"}),  # a slow version: both quantiles
        ({0: 5.0, 1: 3.0, 3: 0.5}, {"latency_p50", "latency_p99", "throughput"}),  # and fewer answers
        ({1: 4.0}, {"latency_p99"}),  # only the tail
    ],
)
def test_a_latency_spike_is_flagged_naming_the_metric(
    detector: str, change: dict[int, float], named: set[str]
) -> None:
    rng = np.random.default_rng(1)
    history = _steady(rng, HISTORY)
    window = _steady(rng, 1)[0]
    for column, factor in change.items():
        window[column] *= factor
    verdict = detect(history, window, METRICS, detector=detector)
    assert verdict.anomalous and verdict.score is not None and verdict.score > 0, verdict.reason
    assert {d.metric for d in verdict.deviations if d.outside} == named
    top = verdict.deviations[0]
    assert top.metric in named and top.value > top.high
    for metric in named:
        assert metric in verdict.reason
    assert verdict.history == HISTORY and verdict.threshold is not None


@pytest.mark.parametrize("detector", DETECTORS)
def test_the_same_windows_give_the_same_verdict(detector: str) -> None:
    history = _steady(np.random.default_rng(3), HISTORY)
    window = history[5] * np.array([2.0, 2.0, 1.0, 1.0])
    first = detect(history, window, METRICS, detector=detector)
    again = detect(history.copy(), window.copy(), METRICS, detector=detector)
    assert (first.score, first.threshold, first.reason) == (again.score, again.threshold, again.reason)


@pytest.mark.parametrize("detector", DETECTORS)
def test_contamination_moves_the_boundary_to_that_quantile_of_the_history(detector: str) -> None:
    history = _steady(np.random.default_rng(4), HISTORY)
    window = _steady(np.random.default_rng(5), 1)[0]
    auto = detect(history, window, METRICS, detector=detector)
    loose = detect(history, window, METRICS, detector=detector, contamination=0.5)
    assert loose.threshold is not None and auto.threshold is not None
    assert loose.threshold < auto.threshold  # the median of the history's scores, not its maximum


# -- the evaluator on samples ------------------------------------------------------------------

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def platform(home: Path, database_url: str) -> Iterator[Platform]:
    p = open_platform(load_settings(home=home, database_url=database_url))
    yield p
    p.close()


def _second(platform: Platform, at: dt.datetime, rng: np.random.Generator, slow: bool) -> None:
    """One second of what the inference server writes for deployment d: ~50 requests, most
    between 5 and 10 ms (or, slow, between 200 and 500 ms)."""
    requests = int(50 + rng.integers(-3, 4))
    fast_share = rng.uniform(0.85, 0.95)
    fast = int(requests * fast_share)
    buckets = {"0.5": fast, "1.0": requests - fast} if slow else {"0.01": fast, "0.02": requests - fast}
    sample = MetricSample(requests=requests, latency_buckets=buckets)
    SampleStore(platform.db).add({SampleKey("d", 1, at): sample}, interval_s=1)


def test_the_evaluator_fires_on_slow_windows_with_the_reason_and_resolves(platform: Platform) -> None:
    clock = DateClock()
    store = AlertStore(platform.db)
    store.create_rule(
        RuleSpec(
            name="odd",
            metric="anomaly",
            op=">",
            threshold=0.0,
            window_s=2,
            for_s=2,
            deployment="d",
            kind="anomaly",
            anomaly=AnomalySpec(metrics=METRICS, training_window_s=60, min_history=20),
        )
    )
    evaluator = Evaluator(
        AlertStore(platform.db),
        LeaseStore(platform.db),
        platform.metrics,
        clock=clock,
        sample_interval_s=1,
        sample_lag_s=0,
    )
    rng = np.random.default_rng(0)

    def run(seconds: int, slow: bool = False) -> list[str]:
        states: list[str] = []
        for _ in range(seconds):
            _second(platform, clock.now, rng, slow)
            clock.now += dt.timedelta(seconds=1)
            assert evaluator.tick()
            states.append(store.get_rule("odd").state)
        return states

    # Too little history: no verdict, and no value.
    assert set(run(20)) == {"inactive"} and store.get_rule("odd").value is None
    steady = run(60)
    # An odd steady window may go pending (history only, never sent); none fires.
    assert "firing" not in steady and store.get_rule("odd").value is not None
    assert all(d.target != "log" for e in store.events() for d in store.deliveries([e.id]))

    states = run(6, slow=True)
    assert states[-1] == "firing", (states, [e.payload.get("reason") for e in store.events()])
    firing = next(e for e in store.events() if e.state == "firing")
    assert firing.payload["kind"] == "anomaly" and firing.payload["detector"] == "isolation_forest"
    assert "latency_p50" in firing.payload["reason"] and "history median" in firing.payload["reason"]
    deviated = {d["metric"] for d in firing.payload["anomaly"]["deviations"] if d["outside"]}
    assert {"latency_p50", "latency_p99"} <= deviated
    assert firing.value is not None and firing.value > 0
    assert [d.target for d in store.deliveries([firing.id])] == ["log"]  # notified, as a rule is

    run(10)
    assert store.get_rule("odd").state == "inactive"
    assert store.events()[0].state == "resolved"


def test_windows_end_at_the_last_written_interval() -> None:
    judge = AnomalyJudge(None, interval_s=60, lag_s=10)  # type: ignore[arg-type]
    at = dt.datetime(2026, 12, 1, 12, 5, 5, tzinfo=dt.UTC)
    assert judge.end_of_windows(at) == dt.datetime(2026, 12, 1, 12, 4, tzinfo=dt.UTC)
    later = at + dt.timedelta(seconds=10)
    assert judge.end_of_windows(later) == dt.datetime(2026, 12, 1, 12, 5, tzinfo=dt.UTC)
