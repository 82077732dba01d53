"""Observing a served model through real processes: request ids on its answers, the prediction
log read back through the control plane (JSON and Parquet), feedback by request id and live
performance equal to scikit-learn's on the same rows."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from aiaas.errors import InvalidArgument, NotFound
from tests._servers import wait_until
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e

NAME = "observed-iris"


def _classifier() -> tuple[Any, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    data = load_iris()
    x = np.asarray(data.data, dtype=np.float32)
    y = np.asarray(data.target_names)[data.target]  # string labels: setosa, versicolor, virginica
    return LogisticRegression(C=0.05, max_iter=500).fit(x, y), x, y


def test_answers_carry_ids_that_key_the_prediction_log(platform: Platform) -> None:
    clf, x, _ = _classifier()
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
    with httpx.Client(base_url=platform.inference_url) as http:
        for i in rows:
            tensor = {"name": "X", "datatype": "FP32", "shape": [1, 4], "data": x[i].tolist()}
            headers = {"x-request-id": f"client-{i}"} if i % 2 else {}
            r = http.post(f"/v2/models/{NAME}/infer", json={"inputs": [tensor]}, headers=headers)
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

    table = pq.read_table(io.BytesIO(c.download_predictions(NAME, window="1d")))
    assert table.column("request_id").to_pylist() == ids

    with pytest.raises(InvalidArgument, match="window"):
        c.predictions(NAME, window="yesterday")
    with pytest.raises(NotFound):
        c.predictions("no-such-deployment")
