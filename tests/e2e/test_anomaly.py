"""Anomaly rules through real processes (control plane, inference server) and a real local
webhook receiver: a deployment answers steady traffic from a fast ONNX version and an Isolation
Forest rule, with no threshold set, stays quiet; a slow version of the same model is put behind
the same name and the rule fires, its notification naming the latency metrics that deviated
against their history; the fast version back, it resolves. Also: bad anomaly rules refused
naming their field, the CLI.

Why the steady phase runs under pulses of CPU contention: on a shared machine, contention is
part of a deployment's normal latency. With every core busy the fast version's median latency
went from 0.4 ms to 9 ms (measured on two cores), a change as large as a slow version's; a
detector that has only seen a quiet machine rightly calls it an anomaly, and a test process
beside this one once made the steady phase fire that way. So the history the rule learns holds
both quiet and contended windows, as a production history of hours would, and the slow version
is slow enough (about 150 ms a request against 9 ms contended) to stand out from both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.errors import InvalidArgument
from tests._auth import AUTH
from tests._servers import wait_until
from tests._webhook import Receiver
from tests.e2e._anomaly_load import FAST_EVALUATION, RULE, SLOW, Contention, Traffic, matmuls
from tests.e2e.conftest import Platform, start_inference

pytestmark = pytest.mark.e2e

NAME = "steady"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _restart_fast(platform: Platform) -> None:
    """Both servers again, sampling metrics every 0.2 s into 1 s rows and evaluating every 0.2 s."""
    platform.inference.stop()
    platform.api.stop()
    platform.env.update(FAST_EVALUATION)
    platform.start_api()
    port = int(platform.inference_url.rsplit(":", 1)[1])
    platform.inference = start_inference(platform.env, platform.home, port)


def _states(platform: Platform, rule: str) -> list[str]:
    return [e.state for e in reversed(platform.client.list_alerts(rule=rule, limit=1000))]


def test_a_slow_version_behind_the_same_name_is_flagged_by_the_isolation_forest(
    platform: Platform, receiver: Receiver
) -> None:
    _restart_fast(platform)
    c = platform.client
    c.register_model(NAME, matmuls(1))
    c.register_model(NAME, matmuls(SLOW))
    c.deploy(NAME, model=NAME, version=1)
    c.wait_until_served(NAME, 1)
    c.add_webhook("anomalies", receiver.url, secret="a-webhook-secret-of-some-length")
    rule = c.create_anomaly_rule("odd-latency", deployment=NAME, **RULE)  # no threshold: see RULE
    assert (rule.kind, rule.metric, rule.op, rule.threshold) == ("anomaly", "anomaly", ">", 0.0)
    assert rule.anomaly is not None and rule.anomaly.detector == "isolation_forest"
    assert rule.anomaly.metrics == ["latency_p50", "latency_p99", "error_rate", "throughput"]

    traffic = Traffic(platform.inference_url, NAME)
    contention = Contention()
    try:
        # Steady: once the history is long enough the rule has a value; for a minute of steady
        # traffic after that it never fires (every transition is in its history), the machine
        # busy and quiet by turns all along (see the module's docstring).
        wait_until(lambda: c.get_alert_rule("odd-latency").value is not None, timeout=90, what="a verdict")
        first = c.get_alert_rule("odd-latency").evaluated_at
        assert first is not None

        def judged_for_a_minute() -> bool:
            at = c.get_alert_rule("odd-latency").evaluated_at
            return at is not None and (at - first).total_seconds() >= 60

        wait_until(judged_for_a_minute, timeout=120, what="a minute of verdicts")
        contention.close()
        assert "firing" not in _states(platform, "odd-latency") and receiver.all() == []

        c.update_deployment(NAME, version=2)
        c.wait_until_served(NAME, 2)
        wait_until(
            lambda: c.get_alert_rule("odd-latency").state == "firing", timeout=60, what="the anomaly to fire"
        )
        wait_until(lambda: receiver.delivered(), timeout=30, what="the firing notification")
        firing = receiver.delivered()[0].json
        assert firing["state"] == "firing" and firing["kind"] == "anomaly"
        assert firing["detector"] == "isolation_forest" and firing["value"] > 0
        deviated = {d["metric"] for d in firing["anomaly"]["deviations"] if d["outside"]}
        assert "latency_p50" in deviated, firing["reason"]
        p50 = next(d for d in firing["anomaly"]["deviations"] if d["metric"] == "latency_p50")
        assert p50["value"] > p50["high"] >= p50["median"]
        assert "latency_p50" in firing["reason"] and "history median" in firing["reason"]
        event = next(e for e in c.list_alerts(rule="odd-latency") if e.state == "firing")
        assert event.reason == firing["reason"] and event.anomaly is not None

        c.update_deployment(NAME, version=1)
        c.wait_until_served(NAME, 1)
        wait_until(
            lambda: c.get_alert_rule("odd-latency").state == "inactive",
            timeout=90,
            what="the anomaly to resolve",
        )
    finally:
        contention.close()
        traffic.stop()
    assert traffic.failed == 0
    states = _states(platform, "odd-latency")
    assert states.count("firing") == 1 and states[-1] == "resolved", states
    wait_until(lambda: len(receiver.delivered()) == 2, timeout=30, what="the resolved notification")

    out = CliRunner().invoke(app, ["--url", platform.api_url, "alerts", "rules"], env={"COLUMNS": "250"})
    assert out.exit_code == 0 and "anomaly isolation_forest(" in out.output, out.output
    c.delete_alert_rule("odd-latency")


def test_bad_anomaly_rules_are_refused_naming_the_field(platform: Platform) -> None:
    c = platform.client
    if NAME not in [d.name for d in c.list_deployments()]:
        c.register_model(NAME, matmuls(1))
        c.deploy(NAME, model=NAME, version=1)
    good: dict[str, Any] = {"deployment": NAME, "window": "1m", "training_window": "1h", "min_history": 20}
    bad: list[tuple[dict[str, Any], str]] = [
        ({"metrics": ["p95_latency"]}, "metrics"),
        ({"metrics": ["accuracy"]}, "metrics"),
        ({"metrics": []}, "metrics"),
        ({"metrics": ["cpu", "cpu"]}, "metrics"),
        ({"window": "0s"}, "window"),
        ({"window": ""}, "window"),
        ({"training_window": "10m"}, "training_window"),  # 10 windows of 1 m: fewer than min_history
        ({"training_window": "later"}, "training_window"),
        ({"min_history": 3}, "min_history"),
        ({"detector": "svm"}, "detector"),
        ({"contamination": 0.9}, "contamination"),
        ({"deployment": "no-such-deployment"}, "deployment"),
        ({"version": 99}, "version"),
        ({"feature": "x"}, "feature"),
    ]
    for change, field in bad:
        with pytest.raises(InvalidArgument) as refused:
            c.create_anomaly_rule("bad", **{**good, **change})
        assert refused.value.details.get("field") == field, (change, refused.value)
    body = {"name": "bad", "kind": "anomaly", "deployment": NAME, "window": "1m"}
    with httpx.Client(base_url=platform.api_url, headers=AUTH) as http:
        refusals: list[tuple[dict[str, Any], str]] = [
            ({"op": ">"}, "op"),
            ({"threshold": 1}, "threshold"),
            ({"metric": "cpu"}, "metric"),
            ({"kind": "fuzzy"}, "kind"),
            (
                {"kind": "threshold", "metric": "cpu", "op": ">", "threshold": 1, "metrics": ["cpu"]},
                "metrics",
            ),
            ({"kind": "threshold", "metric": "cpu", "op": ">"}, "threshold"),
        ]
        for extra, field in refusals:
            r = http.post("/api/v1/alerts/rules", json={**body, **extra})
            assert r.status_code == 400, r.text
            assert r.json()["error"]["details"]["field"] == field, (extra, r.text)
    assert all(r.name != "bad" for r in c.list_alert_rules())
    made = c.create_anomaly_rule("lof-cpu", metrics=["cpu", "memory"], detector="lof", **good)
    assert made.for_s == 60 and made.anomaly is not None and made.anomaly.detector == "lof"
    c.delete_alert_rule("lof-cpu")
    out = CliRunner().invoke(
        app,
        [
            "--url",
            platform.api_url,
            "alerts",
            "anomaly",
            "cli-odd",
            "--deployment",
            NAME,
            "--metrics",
            "cpu,nope",
        ],
    )
    assert isinstance(out.exception, InvalidArgument) and out.exception.details["field"] == "metrics"


def test_the_anomaly_command_has_help() -> None:
    result = CliRunner().invoke(app, ["alerts", "anomaly", "--help"])
    assert result.exit_code == 0 and "--training-window" in result.stdout
