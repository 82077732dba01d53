"""Per-request outlier scores through real processes: an iris classifier registered with its
reference dataset, deployed twice (``outlier_scores`` on and off); rows from the iris table and
rows fifty times past its range sent to both; the prediction log of the first scores every far
row as an outlier and few iris rows as one, the second's has no scores; the scores in the SDK,
the Parquet download, the CLI and the inference server's counters; a bad value is a 400
naming the setting."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.errors import InvalidArgument
from aiaas.schemas import Prediction
from tests._auth import AUTH
from tests._servers import wait_until
from tests.e2e.conftest import Platform, start_inference

pytestmark = pytest.mark.e2e

MODEL, SCORED, PLAIN = "outlier-iris", "outlier-iris-scored", "outlier-iris-plain"
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _iris() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x, y = load_iris(return_X_y=True)
    return np.asarray(x, dtype=np.float32), np.asarray(y)


def _csv(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> bytes:
    lines = [",".join([*NAMES, "species"])]
    lines += [",".join([*(f"{v:g}" for v in row), str(int(label))]) for row, label in zip(x, y, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def _send(http: httpx.Client, name: str, rows: np.ndarray[Any, Any]) -> str:
    tensor = {"name": "X", "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}
    r = http.post(f"/v2/models/{name}/infer", json={"inputs": [tensor]})
    assert r.status_code == 200, r.text
    return r.headers["x-request-id"]


def _logged(platform: Platform, name: str) -> dict[str, Prediction]:
    return {p.request_id: p for p in platform.client.predictions(name, limit=10_000).predictions}


def _counter(platform: Platform, family_name: str, deployment: str) -> float:
    exposed = httpx.get(f"{platform.inference_url}/metrics", headers=AUTH).text
    return sum(
        s.value
        for family in text_string_to_metric_families(exposed)
        if family.name == family_name
        for s in family.samples
        if s.labels.get("deployment") == deployment and s.name.endswith("_total")
    )


def test_requests_far_outside_the_reference_are_scored_as_outliers(platform: Platform) -> None:
    c = platform.client
    # The log is written every 0.2 s, so the test waits on rows, not on the clock.
    platform.inference.stop()
    platform.env["AIAAS_PREDICTION_LOG_FLUSH_INTERVAL_S"] = "0.2"
    port = int(platform.inference_url.rsplit(":", 1)[1])
    platform.inference = start_inference(platform.env, platform.home, port)

    x, y = _iris()
    c.create_dataset("outlier-iris-data", _csv(x, y), target="species", filename="iris.csv")
    clf = LogisticRegression(max_iter=500).fit(x, y)
    c.register_model(MODEL, clf, example=x[:4], reference_dataset="outlier-iris-data")

    # A value that is not true or false is refused, naming the setting, and nothing is stored.
    refused = httpx.post(
        f"{platform.api_url}/api/v1/deployments",
        json={"name": SCORED, "model": MODEL, "outlier_scores": "yes"},
        headers=AUTH,
    )
    assert refused.status_code == 400, refused.text
    assert "outlier_scores" in refused.text
    with pytest.raises(InvalidArgument, match="outlier_scores"):
        c.deploy(SCORED, model=MODEL, version=1, outlier_scores=1)  # type: ignore[arg-type]
    assert SCORED not in {d.name for d in c.list_deployments()}

    assert c.deploy(SCORED, model=MODEL, version=1, outlier_scores=True).outlier_scores is True
    assert c.deploy(PLAIN, model=MODEL, version=1).outlier_scores is False
    for name in (SCORED, PLAIN):
        c.wait_until_served(name, 1)
    (v1,) = c.drift(SCORED).versions
    assert v1.reference is not None and v1.reference.outlier_sample_rows == len(x)

    far = x[::15] * 50  # ten rows fifty times past the iris measurements
    with httpx.Client(base_url=platform.inference_url, headers=AUTH, timeout=30) as http:
        # The forest is fitted in the background on the version's first logged request: the
        # requests logged before it is ready have no score. Wait for a scored one.
        probes: list[str] = []

        def scored_once() -> bool:
            probes.append(_send(http, SCORED, x[:1]))
            logged = _logged(platform, SCORED)
            return any(logged[p].outlier_score is not None for p in probes if p in logged)

        wait_until(scored_once, timeout=60, poll=0.5, what="the first scored request")
        near_ids = [_send(http, SCORED, x[i : i + 1]) for i in range(0, 150, 3)]  # 50 iris rows
        far_ids = [_send(http, SCORED, row[None, :]) for row in far]
        mixed_id = _send(http, SCORED, np.stack([x[0], far[0]]))  # one iris row, one far row
        plain_ids = [_send(http, PLAIN, rows) for rows in (x[:1], far[:1], x[10:12])]

    sent = [*near_ids, *far_ids, mixed_id]
    wait_until(lambda: set(sent) <= set(_logged(platform, SCORED)), timeout=30, what="the scored log")
    wait_until(lambda: set(plain_ids) <= set(_logged(platform, PLAIN)), timeout=30, what="the plain log")
    logged = _logged(platform, SCORED)

    for rid in far_ids:
        far_row = logged[rid]
        assert far_row.outlier is True and far_row.outlier_score is not None and far_row.outlier_score > 0.5
    near = [logged[rid] for rid in near_ids]
    assert all(p.outlier_score is not None and 0 < p.outlier_score <= 1 for p in near)
    flagged = sum(bool(p.outlier) for p in near)
    # The threshold lets about 1 in 76 iris-like rows through (see aiaas.monitoring.outliers).
    assert flagged <= len(near) // 10, f"{flagged} of {len(near)} iris rows called outliers"
    assert min(logged[rid].outlier_score or 0 for rid in far_ids) > max(p.outlier_score or 0 for p in near)
    assert logged[mixed_id].outlier is True  # a request is as odd as its oddest row

    plain = _logged(platform, PLAIN)
    assert all(plain[rid].outlier_score is None and plain[rid].outlier is None for rid in plain_ids)

    table = pq.read_table(io.BytesIO(c.download_predictions(SCORED, window="1d")))
    by_id = dict(
        zip(table.column("request_id").to_pylist(), table.column("outlier").to_pylist(), strict=True)
    )
    assert all(by_id[rid] is True for rid in far_ids)

    assert _counter(platform, "aiaas_prediction_log_outliers", SCORED) >= len(far_ids) + 1
    assert _counter(platform, "aiaas_prediction_log_scored", SCORED) >= len(sent)
    assert _counter(platform, "aiaas_prediction_log_scored", PLAIN) == 0

    out = CliRunner().invoke(
        app,
        ["--url", platform.api_url, "monitor", "predictions", SCORED, "--limit", "10000"],
        env={"COLUMNS": "250"},
    )
    assert out.exit_code == 0, out.output
    assert "outlier" in out.output and f"{logged[far_ids[0]].outlier_score:.2f} outlier" in out.output

    # Turned off (here through the CLI's switch), new requests are logged without scores.
    off = CliRunner().invoke(
        app, ["--url", platform.api_url, "deploy", SCORED, "--version", "1", "--no-outlier-scores"]
    )
    assert off.exit_code == 0, off.output
    assert c.get_deployment(SCORED).outlier_scores is False
    wait_until(
        lambda: (
            httpx.get(f"{platform.inference_url}/v2/models/{SCORED}", headers=AUTH)
            .json()["parameters"]
            .get("outlier_scores")
            is False
        ),
        timeout=30,
        what="the setting to reach the inference server",
    )
    with httpx.Client(base_url=platform.inference_url, headers=AUTH, timeout=30) as http:
        after = _send(http, SCORED, far[:1])
    wait_until(lambda: after in _logged(platform, SCORED), timeout=30, what="the unscored row")
    assert _logged(platform, SCORED)[after].outlier_score is None
