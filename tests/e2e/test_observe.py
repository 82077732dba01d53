"""Observing a served model through real processes: request ids on its answers, the prediction
log read back through the control plane (JSON and Parquet), feedback by request id and live
performance equal to scikit-learn's on the same rows."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn import metrics
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.errors import InvalidArgument, NotFound
from tests._auth import AUTH
from tests._servers import wait_until
from tests.e2e.conftest import Platform, start_inference

NAME = "observed-iris"


def _classifier() -> tuple[Any, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    data = load_iris()
    x = np.asarray(data.data, dtype=np.float32)
    y = np.asarray(data.target_names)[data.target]  # string labels: setosa, versicolor, virginica
    return LogisticRegression(C=0.05, max_iter=500).fit(x, y), x, y


def _cli(platform: Platform, *args: str) -> str:
    result = CliRunner().invoke(app, ["--url", platform.api_url, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _tensor(row: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {"name": "X", "datatype": "FP32", "shape": [1, 4], "data": row.tolist()}


def test_ids_key_the_prediction_log_and_feedback_scores_like_sklearn(
    platform: Platform, tmp_path: Path
) -> None:
    clf, x, y = _classifier()
    c = platform.client
    with pytest.raises(InvalidArgument, match=r"prediction_log\.sample_rate"):
        c.deploy(NAME, model=NAME, prediction_log={"sample_rate": 2})
    c.register_model(NAME, clf, example=x[:5])
    with pytest.raises(NotFound):  # the refused deploy stored nothing
        c.get_deployment(NAME)
    deployment = c.deploy(NAME, model=NAME, version=1)
    assert deployment.prediction_log.model_dump() == {"sample_rate": 1.0, "max_rows_per_s": 100.0}
    c.wait_until_served(NAME, 1)

    rows = list(range(0, 150, 5))
    ids: list[str] = []
    with httpx.Client(base_url=platform.inference_url, headers=AUTH) as http:
        for i in rows:
            headers = {"x-request-id": f"client-{i}"} if i % 2 else {}
            r = http.post(f"/v2/models/{NAME}/infer", json={"inputs": [_tensor(x[i])]}, headers=headers)
            assert r.status_code == 200, r.text
            assert r.json()["id"] == r.headers["x-request-id"]
            ids.append(r.headers["x-request-id"])
    assert ids[1] == "client-5" and len(set(ids)) == len(ids)

    wait_until(lambda: len(c.predictions(NAME).predictions) == len(rows), timeout=30, what="the log")
    logged = c.predictions(NAME, limit=1000)
    assert not logged.truncated
    assert [p.request_id for p in logged.predictions] == ids
    first = logged.predictions[0]
    assert first.version == 1 and first.latency_ms > 0
    np.testing.assert_allclose(first.inputs["X"], x[:1], rtol=1e-6)
    assert first.outputs["label"] == clf.predict(x[:1]).tolist()
    assert [p.request_id for p in c.predictions(NAME, limit=3).predictions] == ids[:3]
    assert c.predictions(NAME, limit=3).truncated
    assert c.predictions(NAME, version=2).predictions == []
    assert c.predictions(NAME, window="1h").predictions[0].request_id == ids[0]

    exposed = httpx.get(f"{platform.inference_url}/metrics", headers=AUTH).text
    written = {
        s.labels["deployment"]: s.value
        for family in text_string_to_metric_families(exposed)
        if family.name == "aiaas_prediction_log_rows"
        for s in family.samples
    }
    assert written[NAME] == len(rows)
    table = pq.read_table(io.BytesIO(c.download_predictions(NAME, window="1d")))
    assert table.column("request_id").to_pylist() == ids

    with pytest.raises(InvalidArgument, match="window"):
        c.predictions(NAME, window="yesterday")
    with pytest.raises(NotFound):
        c.predictions("no-such-deployment")

    # Feedback: refused whole when one label does not fit (two labels for a one-row request).
    bad = [{"request_id": ids[0], "label": "setosa"}, {"request_id": ids[1], "label": ["a", "b"]}]
    with pytest.raises(InvalidArgument, match=r"feedback\[1\]\.label") as refused:
        c.feedback(NAME, bad)
    assert refused.value.details["field"] == "feedback[1].label"
    assert c.performance(NAME).versions == []  # nothing stored on refusal

    truth = {rid: str(y[i]) for rid, i in zip(ids, rows, strict=True)}
    one = httpx.post(
        f"{platform.api_url}/api/v1/deployments/{NAME}/feedback",
        json={"request_id": ids[0], "label": truth[ids[0]]},
        headers=AUTH,
    )
    assert one.status_code == 200 and one.json()["accepted"] == 1
    many = c.feedback(NAME, {rid: truth[rid] for rid in ids[1:20]} | {"never-answered": "setosa"})
    assert many.accepted == 19 and many.unknown_request_ids == ["never-answered"]
    csv_text = "request_id,label\n" + "".join(f"{rid},{truth[rid]}\n" for rid in ids[20:])
    assert c.feedback(NAME, csv_text).accepted == len(ids) - 20

    # Live performance equals scikit-learn's on the logged rows and their labels.
    (v1,) = c.performance(NAME, window="1h").versions
    t = [truth[p.request_id] for p in logged.predictions]
    pred = [p.outputs["label"][0] for p in logged.predictions]
    proba = np.asarray([p.outputs["probabilities"][0] for p in logged.predictions])
    assert pred == clf.predict(x[rows]).tolist()
    assert v1.version == 1 and v1.task == "classification" and v1.labelled_rows == len(ids)
    assert v1.metrics == {
        "accuracy": metrics.accuracy_score(t, pred),
        "precision": metrics.precision_score(t, pred, average="macro", zero_division=0),
        "recall": metrics.recall_score(t, pred, average="macro", zero_division=0),
        "f1": metrics.f1_score(t, pred, average="macro", zero_division=0),
        "roc_auc": metrics.roc_auc_score(t, proba, multi_class="ovr", labels=list(clf.classes_)),
    }
    assert v1.metrics["accuracy"] < 1.0  # a weak model: the metrics are not trivially perfect

    # The same through the CLI.
    labels = tmp_path / "labels.csv"
    labels.write_text(f"request_id,label\n{ids[0]},{truth[ids[0]]}\nnot-a-request,setosa\n")
    out = _cli(platform, "monitor", "feedback", NAME, str(labels))
    assert "1 label(s) stored" in out and "not-a-request" in out
    shown = json.loads(_cli(platform, "monitor", "performance", NAME, "--window", "1h", "--json"))
    assert shown["versions"][0]["metrics"] == v1.metrics
    assert ids[0] in _cli(platform, "monitor", "predictions", NAME, "--limit", "2")


def test_logged_rows_and_feedback_survive_a_restart_of_both_servers(platform: Platform) -> None:
    clf, x, y = _classifier()
    c = platform.client
    name = "observed-restart"
    c.register_model(name, clf, example=x[:5])
    c.deploy(name, model=name, version=1)
    c.wait_until_served(name, 1)
    answers = [c.infer_json(name, {"inputs": [_tensor(x[i])]}) for i in (0, 60, 120)]
    ids = [a["id"] for a in answers]
    # Stopped at once, before its writer's next flush: the shutdown writes the queued rows.
    platform.inference.stop()
    port = int(platform.inference_url.rsplit(":", 1)[1])
    platform.inference = start_inference(platform.env, platform.home, port)
    assert [p.request_id for p in c.predictions(name).predictions] == ids
    assert c.feedback(name, {rid: str(y[i]) for rid, i in zip(ids, (0, 60, 120), strict=True)}).accepted == 3
    platform.api.stop()
    platform.start_api()
    (v1,) = c.performance(name).versions
    assert v1.labelled_rows == 3
