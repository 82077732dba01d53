"""A deployment's drift thresholds (its ``drift`` setting) through real processes: they decide
its drift report and its gauges, a query overrides them, the CLI changes one key of them; and
batching on with one row per batch is a 400 naming the field."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.errors import NotFound
from tests._auth import AUTH
from tests._servers import wait_until
from tests.e2e.conftest import Platform, start_inference

pytestmark = pytest.mark.e2e

MODEL, STRICT, PLAIN = "set-drift", "set-drift-strict", "set-drift-plain"
ROWS = 200


def _rows(n: int, seed: int, *, shift: float = 0.0) -> np.ndarray[Any, Any]:
    x = np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)
    x[:, 0] += shift
    return x


def _send(platform: Platform, name: str, x: np.ndarray[Any, Any]) -> None:
    tensor = {"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}
    r = httpx.post(
        f"{platform.inference_url}/v2/models/{name}/infer",
        json={"inputs": [tensor]},
        timeout=30,
        headers=AUTH,
    )
    assert r.status_code == 200, r.text


def _cli(platform: Platform, *args: str) -> str:
    result = CliRunner().invoke(app, ["--url", platform.api_url, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _drifted(platform: Platform, name: str, **overrides: Any) -> list[str]:
    report = platform.client.drift(name, **overrides).versions[0].report
    assert report is not None
    return sorted(f.name for f in report.features if f.drifted and f.role == "input")


def _gauge(platform: Platform) -> dict[str, float]:
    text = httpx.get(f"{platform.api_url}/metrics", headers=AUTH).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return {s.labels["deployment"]: s.value for s in families["aiaas_drift_drifted_features"].samples}


def test_a_deployments_drift_thresholds_decide_its_report_and_gauges(platform: Platform) -> None:
    c = platform.client
    platform.inference.stop()  # counts written every 0.2 s: the test waits on counts, not the clock
    platform.env["AIAAS_DRIFT_FLUSH_INTERVAL_S"] = "0.2"
    port = int(platform.inference_url.rsplit(":", 1)[1])
    platform.inference = start_inference(platform.env, platform.home, port)

    reference = _rows(400, 0)
    y = (reference[:, 1] > 0).astype(np.int64)
    lines = ["a,b,c,y", *(f"{r[0]:.6g},{r[1]:.6g},{r[2]:.6g},{t}" for r, t in zip(reference, y, strict=True))]
    c.create_dataset("set-drift-ref", ("\n".join(lines) + "\n").encode(), target="y", filename="ref.csv")
    clf = LogisticRegression(max_iter=300).fit(reference, y)
    c.register_model(MODEL, clf, example=reference[:4], reference_dataset="set-drift-ref")
    strict = c.deploy(STRICT, model=MODEL, version=1, drift={"psi_threshold": 0.3, "min_rows": 50})
    assert strict.drift.psi_threshold == 0.3 and strict.drift.min_rows == 50
    assert strict.drift.ks_threshold == 0.1  # a key left out takes its default
    c.deploy(PLAIN, model=MODEL, version=1)
    for name in (STRICT, PLAIN):
        c.wait_until_served(name, 1)
        _send(platform, name, _rows(ROWS, 1, shift=2.0))  # feature a moves by two standard deviations
    for name in (STRICT, PLAIN):
        wait_until(
            lambda n=name: c.drift(n).versions[0].report.rows == ROWS, timeout=30, what=f"{name} counts"
        )

    # The deployment's thresholds are the report's; the defaults' min_rows (1000) flags nothing.
    result = c.drift(STRICT)
    assert (result.settings.psi_threshold, result.settings.min_rows) == (0.3, 50)
    assert "a" in _drifted(platform, STRICT)
    assert _drifted(platform, PLAIN) == [] and c.drift(PLAIN).settings.min_rows == 1000
    # A query overrides one of them and keeps the others.
    overridden = c.drift(STRICT, min_rows=1000)
    assert (overridden.settings.psi_threshold, overridden.settings.min_rows) == (0.3, 1000)
    assert _drifted(platform, STRICT, min_rows=1000) == []
    assert "a" in _drifted(platform, PLAIN, min_rows=50)
    flagged = _gauge(platform)
    assert flagged[STRICT] >= 1 and flagged[PLAIN] == 0

    # The CLI changes one key; the others keep their value.
    _cli(platform, "deploy", PLAIN, "--drift-min-rows", "50", "--no-wait")
    plain = c.get_deployment(PLAIN).drift
    assert (plain.min_rows, plain.psi_threshold) == (50, 0.2)
    _cli(platform, "deploy", PLAIN, "--drift-psi-threshold", "0.25", "--no-wait")
    plain = c.get_deployment(PLAIN).drift
    assert (plain.min_rows, plain.psi_threshold) == (50, 0.25)
    assert "a" in _drifted(platform, PLAIN) and _gauge(platform)[PLAIN] >= 1
    assert "min_rows=50" in _cli(platform, "deployments", "show", PLAIN)

    # Bad thresholds are a 400 naming the key, and change nothing.
    r = httpx.patch(
        f"{platform.api_url}/api/v1/deployments/{PLAIN}", json={"drift": {"min_rows": 0}}, headers=AUTH
    )
    assert r.status_code == 400 and "drift.min_rows" in r.text, r.text
    assert c.get_deployment(PLAIN).drift == plain


def test_batching_on_with_one_row_per_batch_is_a_400_naming_the_field(platform: Platform) -> None:
    c = platform.client
    x = _rows(20, 3)
    c.register_model("set-batch", LogisticRegression().fit(x, x[:, 0] > 0), example=x[:4])
    body = {"name": "set-batch", "model": "set-batch", "batching": {"enabled": True, "max_batch_size": 1}}
    r = httpx.post(f"{platform.api_url}/api/v1/deployments", json=body, headers=AUTH)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"]["field"] == "batching.max_batch_size"
    with pytest.raises(NotFound):
        c.get_deployment("set-batch")
    c.deploy("set-batch", model="set-batch", batching={"enabled": True, "max_batch_size": 2})
    r = httpx.patch(
        f"{platform.api_url}/api/v1/deployments/set-batch",
        json={"batching": {"enabled": True, "max_batch_size": 1}},
        headers=AUTH,
    )
    assert r.status_code == 400 and "max_batch_size must be at least 2" in r.text
    assert c.get_deployment("set-batch").batching.max_batch_size == 2


def test_a_request_over_max_rows_is_a_413_naming_it_and_the_limit_follows_an_update(
    platform: Platform,
) -> None:
    c = platform.client
    x = _rows(40, 4)
    c.register_model("set-rows", LogisticRegression().fit(x, x[:, 0] > 0), example=x[:4])
    c.deploy("set-rows", model="set-rows", max_rows=10)
    c.wait_until_served("set-rows", 1)

    def infer(rows: int) -> httpx.Response:
        tensor = {"name": "X", "datatype": "FP32", "shape": [rows, 3], "data": x[:rows].ravel().tolist()}
        return httpx.post(
            f"{platform.inference_url}/v2/models/set-rows/infer",
            json={"inputs": [tensor]},
            timeout=30,
            headers=AUTH,
        )

    assert infer(10).status_code == 200
    refused = infer(11)
    assert refused.status_code == 413 and "max_rows=10" in refused.text, refused.text
    assert c.get_deployment("set-rows").max_rows == 10
    c.update_deployment("set-rows", max_rows=40)
    wait_until(lambda: infer(11).status_code == 200, what="max_rows raised to 40 to reach the server")
    assert infer(40).status_code == 200
