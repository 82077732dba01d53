"""Guarded rollouts through real processes (control plane, inference server) and a real webhook
receiver.

A canary whose version fails on a slice of inputs (its graph gathers from a 10-entry table at
the first feature, so a first feature of 50 is an error) is rolled back by its error-rate
guard: after the rollback is recorded, plus a bounded delay for the inference server to pick
it up, no request reaches the bad version, and a steady stream of good inputs sent all along
never fails. A rollout of a good version steps through, survives a control-plane restart in
the middle, and promotes. Bad plans are refused naming the field; a second rollout is a 409.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.errors import Conflict, InvalidArgument
from aiaas.formats import package_model
from tests._auth import AUTH
from tests._servers import wait_until
from tests._webhook import Receiver
from tests.e2e.conftest import Platform, start_inference

pytestmark = pytest.mark.e2e

NAME = "rolled-iris"
#: How long after the rollback is recorded a request may still reach the bad version: the
#: inference server reads the deployments every AIAAS_RECONCILE_INTERVAL_S (0.25 s).
SWITCH_S = 3.0
GUARD = {"name": "errors", "metric": "error_rate", "op": ">", "threshold": 0.05, "window": "3s"}


@dataclass
class Sent:
    at: float
    status: int
    version: str | None


@dataclass
class Traffic:
    """Requests from a thread until stopped, each kept with its time, status and version."""

    url: str
    rows: np.ndarray[Any, Any]
    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30, headers=AUTH) as http:
            i = 0
            while not self._stop.is_set():
                row = self.rows[i % len(self.rows)]
                tensor = {"name": "X", "datatype": "FP32", "shape": [1, 4], "data": row.tolist()}
                at = time.time()
                r = http.post(f"/v2/models/{NAME}/infer", json={"inputs": [tensor]})
                version = r.json().get("model_version") if r.status_code == 200 else None
                self.sent.append(Sent(at, r.status_code, version))
                i += 1
                self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _restart_fast(platform: Platform) -> None:
    """Both servers again: 1 s sample rows written every 0.2 s, an evaluation every 0.2 s."""
    platform.inference.stop()
    platform.api.stop()
    platform.env.update(
        AIAAS_METRICS_INTERVAL_S="1",
        AIAAS_METRICS_FLUSH_INTERVAL_S="0.2",
        AIAAS_ALERTS_EVALUATION_INTERVAL_S="0.2",
        AIAAS_ALERTS_LEASE_S="10",
    )
    platform.start_api()
    port = int(platform.inference_url.rsplit(":", 1)[1])
    platform.inference = start_inference(platform.env, platform.home, port)


def _iris() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    data = load_iris()
    return np.asarray(data.data, dtype=np.float32), np.asarray(data.target)


def _failing_on_a_slice(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> bytes:
    """The iris classifier plus an output gathered from a 10-entry table at the first feature:
    any iris row answers, a first feature of 10 or more is an error of ONNX Runtime."""
    proto = onnx.load_model_from_string(package_model(LogisticRegression(max_iter=300).fit(x, y), x[:4]).onnx)
    graph = proto.graph
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([0], dtype=np.int64), "trip_starts"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "trip_ends"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "trip_axes"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "trip_shape"),
            numpy_helper.from_array(np.ones(10, dtype=np.float32), "trip_table"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Slice", ["X", "trip_starts", "trip_ends", "trip_axes"], ["trip_first"]),
            helper.make_node("Floor", ["trip_first"], ["trip_floor"]),
            helper.make_node("Cast", ["trip_floor"], ["trip_index"], to=TensorProto.INT64),
            helper.make_node("Reshape", ["trip_index", "trip_shape"], ["trip_flat"]),
            helper.make_node("Gather", ["trip_table", "trip_flat"], ["tripwire"]),
        ]
    )
    graph.output.append(helper.make_tensor_value_info("tripwire", TensorProto.FLOAT, [None]))
    return bytes(proto.SerializeToString())


def _deployed(platform: Platform) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Version 1 (good) deployed, version 2 (failing on a slice) and 3 (good) registered, with
    both servers timed for tests (whichever test runs first)."""
    if platform.env.get("AIAAS_ALERTS_EVALUATION_INTERVAL_S") != "0.2":
        _restart_fast(platform)
    c = platform.client
    x, y = _iris()
    if NAME not in [d.name for d in c.list_deployments()]:
        c.register_model(NAME, LogisticRegression(max_iter=300).fit(x, y), example=x[:4])
        c.register_model(NAME, _failing_on_a_slice(x, y), example=x[:4])
        c.register_model(NAME, LogisticRegression(C=0.5, max_iter=300).fit(x, y), example=x[:4])
        c.deploy(NAME, model=NAME, version=1)
        c.wait_until_served(NAME, 1)
    return x, y


def _cli(platform: Platform, *args: str) -> str:
    result = CliRunner().invoke(app, ["--url", platform.api_url, *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_a_failing_canary_is_rolled_back_by_its_guard_and_no_good_request_fails(
    platform: Platform, receiver: Receiver
) -> None:
    c = platform.client
    x, _ = _deployed(platform)
    c.add_webhook("rollouts-receiver", receiver.url)
    bad = x[:20].copy()
    bad[:, 0] = 50.0  # the slice version 2 fails on (version 1 answers it)
    good = Traffic(platform.inference_url, x)
    mixed = Traffic(platform.inference_url, np.concatenate([x[:60], bad]))
    try:
        wait_until(lambda: len(good.sent) > 20, timeout=30, what="steady traffic")
        rollout = c.start_rollout(NAME, 2, steps=[(50, "10m"), (100, "10m")], guards=[GUARD])
        assert rollout.state == "running" and rollout.guards[0].rule == f"rollout-{rollout.id}-errors"
        wait_until(
            lambda: c.get_rollout(NAME, rollout.id).state == "rolled_back", timeout=90, what="the rollback"
        )
        done = c.get_rollout(NAME, rollout.id)
        back = next(e for e in done.events if e.kind == "rolled_back")
        cutoff = back.at.timestamp() + SWITCH_S
        wait_until(
            lambda: len(good.sent) > 0 and good.sent[-1].at > cutoff + 3, timeout=30, what="traffic after"
        )
    finally:
        good.stop()
        mixed.stop()

    # Traffic reached version 2 before the rollback and failed there on the slice only.
    assert any(s.version == "2" for s in good.sent if s.at < back.at.timestamp())
    assert any(s.status != 200 for s in mixed.sent if s.at < back.at.timestamp())
    # No good input failed, before, during or after the switch.
    assert [s for s in good.sent if s.status != 200] == []
    # After the rollback plus the bounded delay: nothing reaches version 2, nothing fails.
    after = [s for s in good.sent + mixed.sent if s.at > cutoff]
    assert after and {s.version for s in after} == {"1"} and {s.status for s in after} == {200}

    assert back.guard == "errors" and back.value is not None and back.value > 0.05
    assert "guard errors fired with value" in back.message
    assert done.reason.startswith("guard errors fired") and done.weight == 50
    d = c.get_deployment(NAME)
    assert d.version == 1 and [(r.version, r.weight) for r in d.routes] == [(1, 100)] and d.traffic == []
    # The guard's firing is an alert: in the history and delivered to the webhook.
    rule = done.guards[0].rule
    assert "firing" in [e.state for e in c.list_alerts(rule=rule)]
    wait_until(
        lambda: any(r.json["rule"] == rule and r.json["state"] == "firing" for r in receiver.delivered()),
        timeout=30,
        what="the guard's firing notification",
    )
    out = _cli(platform, "rollouts", "show", NAME)
    assert "started" in out and "step" in out and "rolled_back" in out
    assert "rolled back because guard errors fired with value" in out
    c.delete_webhook("rollouts-receiver")


def test_a_rollout_whose_guards_hold_steps_through_a_restart_and_promotes(platform: Platform) -> None:
    c = platform.client
    x, _ = _deployed(platform)
    start = c.get_deployment(NAME).serving_version
    assert start == 1
    traffic = Traffic(platform.inference_url, x)
    try:
        rollout = c.start_rollout(NAME, 3, steps=[(20, "2s"), (60, "2s"), (100, "2s")], guards=[GUARD])
        wait_until(lambda: c.get_rollout(NAME, rollout.id).step >= 1, timeout=60, what="the second step")
        platform.api.stop()  # the rollout is stored: a new control plane carries on from its step
        platform.start_api()
        wait_until(lambda: c.get_rollout(NAME, rollout.id).state == "completed", timeout=90, what="promotion")
    finally:
        traffic.stop()
    assert [s for s in traffic.sent if s.status != 200] == []
    assert {s.version for s in traffic.sent} == {"1", "3"}
    done = c.get_rollout(NAME, rollout.id)
    kinds = [e.kind for e in done.events]
    assert kinds == ["started", "step", "baked", "step", "baked", "promoted", "baked", "completed"]
    assert [e.weight for e in done.events if e.kind in ("step", "promoted")] == [20, 60, 100]
    d = c.get_deployment(NAME)
    assert d.version == 3 and [(r.version, r.weight) for r in d.routes] == [(3, 100)]
    # The guards held: their rules are gone with the rollout.
    assert all(not r.name.startswith(f"rollout-{rollout.id}-") for r in c.list_alert_rules())
    out = _cli(platform, "rollouts", "show", NAME)
    assert "promoted" in out and "completed" in out
    # Back to version 1 for the next test, without a rollout.
    c.update_deployment(NAME, version=1)
    c.wait_until_served(NAME, 1)


def test_bad_plans_are_refused_naming_the_field_and_one_rollout_at_a_time(platform: Platform) -> None:
    c = platform.client
    _deployed(platform)
    c.deploy("other-iris", model=NAME, version=1)
    steps: list[Any] = [(10, "1m"), (100, "1m")]
    bad: list[tuple[dict[str, Any], str]] = [
        ({"guards": [{**GUARD, "metric": "p95_latency"}]}, "guards[0].metric"),
        ({"guards": [{**GUARD, "metric": "job_failed"}]}, "guards[0].metric"),
        ({"guards": [{**GUARD, "window": "0s"}]}, "guards[0].window"),
        ({"guards": [{**GUARD, "window": ""}]}, "guards[0].window"),
        ({"guards": [{**GUARD, "deployment": "other-iris"}]}, "guards[0].deployment"),
        ({"guards": [{**GUARD, "version": 1}]}, "guards[0].version"),
        ({"guards": [GUARD, GUARD]}, "guards[1].name"),
        ({"steps": [(50, "1m"), (10, "1m"), (100, "1m")]}, "steps[1].weight"),
        ({"steps": [(50, "1m"), (50, "1m"), (100, "1m")]}, "steps[1].weight"),
        ({"steps": [(0, "1m"), (100, "1m")]}, "steps[0].weight"),
        ({"steps": [(10, "1m"), (101, "1m")]}, "steps[1].weight"),
        ({"steps": [(10, "1m"), (50, "1m")]}, "steps[1].weight"),
        ({"steps": []}, "steps"),
        ({"steps": [(10, "soon"), (100, "1m")]}, "steps[0].bake"),
        ({"version": 9}, "version"),
        ({"version": 1}, "version"),  # already served
    ]
    for change, where in bad:
        args: dict[str, Any] = {"version": 3, "steps": steps, "guards": [GUARD], **change}
        with pytest.raises(InvalidArgument) as refused:
            c.start_rollout(NAME, args.pop("version"), **args)
        assert refused.value.details.get("field") == where, (change, refused.value)
    assert c.list_rollouts("other-iris") == []
    with httpx.Client(base_url=platform.api_url, headers=AUTH) as http:
        promote = {"version": 3, "steps": [{"weight": 100, "bake": "10m"}]}
        r = http.post(f"/api/v1/deployments/{NAME}/rollouts", json=promote)
        assert r.status_code == 201, r.text
        first = r.json()["id"]
        r = http.post(f"/api/v1/deployments/{NAME}/rollouts", json={"version": 2, "steps": [{"weight": 100}]})
        assert r.status_code == 409 and r.json()["error"]["details"]["field"] == "deployment"
    with pytest.raises(Conflict):
        c.start_rollout(NAME, 2, steps=[(100, "1m")])
    # Started through the CLI on the other deployment, aborted, traffic back on version 1.
    _cli(
        platform,
        "rollouts",
        "start",
        "other-iris",
        "--version",
        "3",
        "--steps",
        "50:10m,100:10m",
        "--guard",
        "error_rate > 0.05 window=30s name=errs",
    )
    wait_until(lambda: c.get_rollout("other-iris").step == 0, timeout=60, what="the first step")
    assert [(r.version, r.weight) for r in c.get_deployment("other-iris").routes] == [(1, 50), (3, 50)]
    assert "aborting" in _cli(platform, "rollouts", "abort", "other-iris")
    wait_until(lambda: c.get_rollout("other-iris").state == "aborted", timeout=60, what="the abort")
    assert [(r.version, r.weight) for r in c.get_deployment("other-iris").routes] == [(1, 100)]
    with pytest.raises(Conflict):
        c.abort_rollout("other-iris")
    # Aborted after its promotion (in its guard window): the primary goes back to version 1.
    wait_until(lambda: c.get_deployment(NAME).version == 3, timeout=60, what="the promotion")
    assert c.abort_rollout(NAME, first).state == "aborting"
    wait_until(lambda: c.get_rollout(NAME, first).state == "aborted", timeout=60, what="the abort")
    assert c.get_deployment(NAME).version == 1
    c.delete_deployment("other-iris")


@pytest.mark.parametrize(
    "command", [["rollouts"], ["rollouts", "start"], ["rollouts", "show"], ["rollouts", "abort"]]
)
def test_every_rollouts_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
