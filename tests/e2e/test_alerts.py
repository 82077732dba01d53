"""Alerts through real processes (control plane, inference server) and a real local webhook
receiver that fails its first two deliveries: traffic makes a throughput rule fire; the first
delivery fails, the control plane is stopped with the firing notification undelivered and
started again, the retries go on and it arrives once; the traffic stops, the rule resolves and
that arrives once; a further restart sends nothing again. Also: the metric series the inference
server wrote, bad rules refused naming their field, the CLI."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from aiaas.alerts import verify
from aiaas.cli import app
from aiaas.errors import AlreadyExists, InvalidArgument
from tests._auth import AUTH
from tests._servers import wait_until
from tests._webhook import Receiver
from tests.e2e.conftest import Platform, start_inference

pytestmark = pytest.mark.e2e

NAME = "alerted-iris"
SECRET = "a-webhook-secret-of-some-length"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.close()


def _cli(platform: Platform, *args: str) -> str:
    result = CliRunner().invoke(app, ["--url", platform.api_url, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


class Traffic:
    """Requests to the deployment from a thread, one every few milliseconds, until stopped."""

    def __init__(self, platform: Platform, x: np.ndarray[Any, Any]) -> None:
        self._stop = threading.Event()
        self.sent = 0

        def run() -> None:
            with httpx.Client(base_url=platform.inference_url, timeout=10, headers=AUTH) as http:
                while not self._stop.is_set():
                    row = x[self.sent % len(x)]
                    tensor = {"name": "X", "datatype": "FP32", "shape": [1, 4], "data": row.tolist()}
                    http.post(f"/v2/models/{NAME}/infer", json={"inputs": [tensor]})
                    self.sent += 1
                    self._stop.wait(0.02)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _restart_fast(platform: Platform) -> None:
    """Both servers again, sampling metrics every 0.2 s into 1 s rows and evaluating every 0.2 s."""
    platform.inference.stop()
    platform.api.stop()
    platform.env.update(
        AIAAS_METRICS_INTERVAL_S="1",
        AIAAS_METRICS_FLUSH_INTERVAL_S="0.2",
        AIAAS_ALERTS_EVALUATION_INTERVAL_S="0.2",
        AIAAS_ALERTS_RETRY_BASE_S="0.5",
        AIAAS_ALERTS_LEASE_S="10",
    )
    platform.start_api()
    port = int(platform.inference_url.rsplit(":", 1)[1])
    platform.inference = start_inference(platform.env, platform.home, port)


def _states(platform: Platform, rule: str) -> list[str]:
    return [e.state for e in reversed(platform.client.list_alerts(rule=rule))]


def test_a_rule_fires_and_resolves_and_each_transition_arrives_once_across_restarts(
    platform: Platform, receiver: Receiver
) -> None:
    _restart_fast(platform)
    c = platform.client
    x, _ = _deployed(platform)
    hook = c.add_webhook("receiver", receiver.url, secret=SECRET)
    assert hook.secret == SECRET and all(w.secret is None for w in c.list_webhooks())
    rule = c.create_alert_rule(
        "busy", metric="throughput", op=">", threshold=2, window="3s", for_="1s", deployment=NAME
    )
    assert rule.state == "inactive" and rule.window_s == 3 and rule.for_s == 1

    traffic = Traffic(platform, x)
    try:
        wait_until(lambda: len(receiver.all()) >= 1, timeout=60, what="the first delivery attempt")
        # The firing notification failed once and waits in the outbox: stop the control plane.
        platform.api.stop()
        assert receiver.delivered() == []
        platform.start_api()
        wait_until(lambda: receiver.delivered(), timeout=60, what="the firing delivery")
        assert c.get_alert_rule("busy").state == "firing"

        series = c.metric_series("throughput", deployment=NAME, window="1m")
        assert series.unit == "requests/s" and max(p.value or 0 for p in series.points) > 2
        p50 = c.metric_series("latency_p50", deployment=NAME, version=1, window="1m")
        assert any(p.value is not None and 0 < p.value < 5 for p in p50.points)
        errors = c.metric_series("error_rate", deployment=NAME, window="1m")
        assert all(p.value in (0.0, None) for p in errors.points)
    finally:
        traffic.stop()
    wait_until(lambda: len(receiver.delivered()) == 2, timeout=60, what="the resolved delivery")

    firing, resolved = receiver.delivered()
    assert firing.json["state"] == "firing" and resolved.json["state"] == "resolved"
    attempts = [r for r in receiver.all() if r.json["state"] == "firing"]
    assert [r.status for r in attempts] == [500, 500, 200]  # retried, across the restart
    assert {r.headers["x-aiaas-delivery"] for r in attempts} == {firing.json["delivery_id"]}
    for delivered in (firing, resolved):
        assert verify(SECRET, delivered.body, delivered.headers["x-aiaas-signature"])
    assert firing.json["rule"] == "busy" and firing.json["deployment"] == NAME

    # Restarted once more: nothing is sent again and the rule stays resolved.
    platform.api.stop()
    platform.start_api()
    before = c.get_alert_rule("busy").evaluated_at
    wait_until(lambda: c.get_alert_rule("busy").evaluated_at != before, timeout=30, what="an evaluation")
    assert len(receiver.all()) == 4 and c.get_alert_rule("busy").state == "inactive"
    states = _states(platform, "busy")
    assert states.count("firing") == 1 and states[-1] == "resolved"
    history = c.list_alerts(rule="busy")
    firing_event = next(e for e in history if e.state == "firing")
    webhook_delivery = next(d for d in firing_event.deliveries if d.target == "webhook")
    assert webhook_delivery.attempts == 3 and webhook_delivery.delivered_at is not None

    out = _cli(platform, "alerts", "list", "--rule", "busy")
    assert "firing" in out and "resolved" in out and "webhook:ok(3)" in out
    assert "busy" in _cli(platform, "alerts", "rules")


def _deployed(platform: Platform) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The iris deployment (made by the first test that needs it), and its data."""
    c = platform.client
    data = load_iris()
    x = np.asarray(data.data, dtype=np.float32)
    if NAME not in [d.name for d in c.list_deployments()]:
        c.register_model(NAME, LogisticRegression(max_iter=300).fit(x, data.target), example=x[:4])
        c.deploy(NAME, model=NAME, version=1)
        c.wait_until_served(NAME, 1)
    return x, np.asarray(data.target)


def test_accuracy_is_read_from_feedback_like_the_performance_endpoint(platform: Platform) -> None:
    c = platform.client
    x, y = _deployed(platform)
    ids = [f"acc-{i}" for i in range(0, 150, 5)]
    answers: dict[str, int] = {}
    with httpx.Client(base_url=platform.inference_url, headers=AUTH) as http:
        for request_id, i in zip(ids, range(0, 150, 5), strict=True):
            tensor = {"name": "X", "datatype": "FP32", "shape": [1, 4], "data": x[i].tolist()}
            r = http.post(
                f"/v2/models/{NAME}/infer", json={"inputs": [tensor]}, headers={"x-request-id": request_id}
            )
            assert r.status_code == 200, r.text
            answers[request_id] = int(y[i])
    wait_until(
        lambda: set(ids) <= {p.request_id for p in c.predictions(NAME, limit=10_000).predictions},
        timeout=60,
        what="the prediction log",
    )
    # Every third label is wrong: accuracy well below the rule's 0.9.
    labels = {rid: (label + 1) % 3 if k % 3 == 0 else label for k, (rid, label) in enumerate(answers.items())}
    assert c.feedback(NAME, labels).accepted == len(ids)
    expected = c.performance(NAME, window="1h").versions[0].metrics["accuracy"]
    assert expected is not None and expected < 0.9
    series = c.metric_series("accuracy", deployment=NAME, version=1, window="1h", step=3600)
    assert [p.value for p in series.points] == [pytest.approx(expected)]
    c.create_alert_rule("accurate", metric="accuracy", op="<", threshold=0.9, window="1h", deployment=NAME)
    wait_until(lambda: c.get_alert_rule("accurate").state == "firing", timeout=60, what="the accuracy rule")
    assert c.get_alert_rule("accurate").value == pytest.approx(expected)
    c.delete_alert_rule("accurate")


def test_bad_rules_are_refused_naming_the_field(platform: Platform) -> None:
    c = platform.client
    _deployed(platform)
    good = {"metric": "error_rate", "op": ">", "threshold": 0.1, "window": "5m", "deployment": NAME}
    bad: list[tuple[dict[str, Any], str]] = [
        ({"metric": "p95_latency"}, "metric"),
        ({"window": "0s"}, "window"),
        ({"window": ""}, "window"),
        ({"window": 0}, "window"),
        ({"for_": -5}, "for"),
        ({"op": "=>"}, "op"),
        ({"version": 7}, "version"),
        ({"deployment": "no-such-deployment"}, "deployment"),
        ({"deployment": None}, "deployment"),
        ({"metric": "job_failed", "deployment": None, "job": 999}, "job"),
        ({"feature": "x"}, "feature"),
    ]
    for change, field in bad:
        with pytest.raises(InvalidArgument) as refused:
            c.create_alert_rule("bad", **{**good, **change})
        assert refused.value.details.get("field") == field, (change, refused.value)
    with httpx.Client(base_url=platform.api_url, headers=AUTH) as http:
        r = http.post("/api/v1/alerts/rules", json={"name": "bad", **good, "window": "soon"})
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "window"
        r = http.post("/api/v1/alerts/rules", json={"name": "bad", **good, "for": -1})
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "for"
        r = http.post("/api/v1/alerts/silences", json={"rule": "bad"})
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "ends_at"
        r = http.get("/api/v1/alerts/series", params={"metric": "nope", "deployment": NAME})
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "metric"
        r = http.post("/api/v1/alerts/webhooks", json={"name": "w", "url": "ftp://x"})
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "url"
    assert all(r.name != "bad" for r in c.list_alert_rules())  # nothing refused was stored
    c.create_alert_rule("ok", **good)
    with pytest.raises(AlreadyExists):
        c.create_alert_rule("ok", **good)
    silence = c.silence(deployment=NAME, duration="1h", comment="maintenance")
    assert [s.id for s in c.list_silences()] == [silence.id]
    assert "maintenance" in _cli(platform, "alerts", "silences")
    c.delete_silence(silence.id)
    assert c.list_silences() == []
    c.delete_alert_rule("ok")


@pytest.mark.parametrize(
    "command",
    [
        ["alerts"],
        ["alerts", "rules"],
        ["alerts", "create"],
        ["alerts", "delete"],
        ["alerts", "list"],
        ["alerts", "silence"],
        ["alerts", "silences"],
        ["alerts", "webhook"],
        ["alerts", "webhooks"],
        ["alerts", "series"],
    ],
)
def test_every_alerts_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout and "--help" in result.stdout
