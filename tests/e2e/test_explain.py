"""Explanations of served models through real processes: models trained on the platform, served
by the inference server, explained over HTTP (V2 and V1, SDK and CLI).

The linear model checks local accuracy (attributions add up to the prediction minus the base
value) and that the explained prediction is the served one; the MLP checks that a planted
informative feature ranks first. Permutation importance is stored with each trained version and
shown by compare.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.errors import Conflict, InvalidArgument, NotFound
from aiaas.explain import MAX_EXPLAIN_ROWS
from tests._auth import AUTH
from tests._servers import wait_until
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e

FEATURES = ["a", "b", "c", "d", "e", "f"]


def _csv(x: np.ndarray[Any, Any], y: list[Any]) -> bytes:
    lines = [",".join([*FEATURES, "target"])]
    lines += [",".join([*(f"{v:.5f}" for v in row), str(t)]) for row, t in zip(x, y, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def _linear_data(rows: int = 400) -> tuple[np.ndarray[Any, Any], bytes]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(rows, len(FEATURES)))
    y = 3 * x[:, 2] - 2 * x[:, 0] + 0.5 * x[:, 4] + 1 + rng.normal(scale=0.05, size=rows)
    return x.astype(np.float32), _csv(x, [f"{v:.5f}" for v in y])


def _planted_data(rows: int = 600) -> tuple[np.ndarray[Any, Any], bytes]:
    """Only ``d`` decides the class; the other features are noise of the same scale."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(rows, len(FEATURES)))
    labels = ["high" if v > 0 else "low" for v in x[:, 3]]
    return x.astype(np.float32), _csv(x, labels)


def _train(platform: Platform, name: str, spec: str) -> int:
    c = platform.client
    job = c.wait_for_job(c.submit_job(f"dataset: {name}\nregister_as: {name}\n{spec}").id, timeout=300)
    assert job.status == "succeeded", job.error
    assert job.result_version is not None
    return job.result_version


def _tensor(x: np.ndarray[Any, Any]) -> dict[str, Any]:
    """A V2 tensor for the linear model (a scikit-learn export: its input is ``X``)."""
    return {"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.reshape(-1).tolist()}


def test_linear_attributions_add_up_to_the_served_prediction(platform: Platform) -> None:
    c = platform.client
    name = "explain-linear"
    x, csv = _linear_data()
    c.create_dataset(name, csv, target="target")
    v1 = _train(platform, name, "task: regression\nmodel: {family: linear}\nseed: 1\n")

    version = c.get_version(name, v1)
    lineage = version.lineage or {}
    assert lineage["background"]["rows"] == 100 and lineage["background"]["seed"] == 0
    importance = lineage["feature_importance"]
    assert (importance["method"], importance["scoring"]) == ("permutation", "r2")
    ranked = sorted(importance["importances"], key=lambda f: -importance["importances"][f])
    assert ranked[:3] == ["c", "a", "e"]  # |3| > |-2| > |0.5|, the others near 0

    c.deploy(name, model=name, version=v1)
    c.wait_until_served(name, v1)
    rows = x[:8]
    explanation = c.explain(name, rows)
    assert explanation.feature_names == FEATURES
    assert (explanation.explainer, explanation.background_rows) == ("permutation", 100)
    assert explanation.output_columns == ["variable"] and len(explanation.explanations) == len(rows)
    served = c.predict(name, rows)["variable"].reshape(-1)
    for row, prediction in zip(explanation.explanations, served, strict=True):
        assert abs(sum(row.attributions[0]) - (row.prediction[0] - row.base_value[0])) < 1e-4
        assert row.prediction[0] == pytest.approx(float(prediction), abs=1e-5)
    # A linear model's exact Shapley values: the biggest share goes to the biggest coefficient.
    assert explanation.top_features(0, 1)[0][0] == max(
        ("a", "c", "e"), key=lambda f: abs({"a": -2, "c": 3, "e": 0.5}[f] * x[0, FEATURES.index(f)])
    )

    # V1, and the same seed, give the same attributions as V2.
    with httpx.Client(base_url=platform.inference_url, timeout=60, headers=AUTH) as http:
        r = http.post(f"/v1/models/{name}:explain", json={"instances": rows.tolist()})
        assert r.status_code == 200, r.text
        assert r.headers["x-aiaas-model-version"] == str(v1) and r.headers["x-request-id"]
        v1_rows = r.json()["explanations"]
        np.testing.assert_allclose(
            [e["attributions"] for e in v1_rows],
            [e.attributions for e in explanation.explanations],
            atol=1e-6,
        )

        # Bad inputs are 400s naming what was wrong; nothing is explained.
        too_many = np.zeros((MAX_EXPLAIN_ROWS + 1, len(FEATURES)), np.float32)
        r = http.post(f"/v2/models/{name}/explain", json={"inputs": [_tensor(too_many)]})
        assert r.status_code == 400 and "MAX_EXPLAIN_ROWS" in r.json()["error"], r.text
        assert str(MAX_EXPLAIN_ROWS) in r.json()["error"]
        r = http.post(f"/v2/models/{name}/explain", json={"inputs": [_tensor(rows[:, :5])]})
        assert r.status_code == 400 and "shape" in r.json()["error"], r.text
        r = http.post(f"/v1/models/{name}:explain", json={"instances": [[1, 2]]})
        assert r.status_code == 400, r.text
        r = http.post(
            f"/v2/models/{name}/explain", json={"inputs": [_tensor(rows)], "parameters": {"max_evals": 3}}
        )
        assert r.status_code == 400 and "parameters.max_evals" in r.json()["error"], r.text
        r = http.post(f"/v1/models/{name}:explain", json={"instances": rows.tolist(), "parameters": [1]})
        assert r.status_code == 400 and "parameters" in r.json()["error"], r.text
        r = http.post("/v2/models/no-such-deployment/explain", json={"inputs": [_tensor(rows)]})
        assert r.status_code == 404, r.text

    # A second version: compare shows both versions' importance side by side.
    v2 = _train(platform, name, "task: regression\nmodel: {family: linear, alpha: 50.0}\nseed: 1\n")
    cmp = c.compare(name, v1, v2)
    assert set(cmp.feature_importance) == set(FEATURES)
    entry = cmp.feature_importance["c"]
    assert entry["a"] == importance["importances"]["c"] and entry["delta"] == entry["b"] - entry["a"]
    out = CliRunner().invoke(
        app, ["--url", platform.api_url, "models", "compare", name, str(v1), str(v2)], env={"COLUMNS": "200"}
    )
    assert out.exit_code == 0, out.output
    assert "Feature importance" in out.output

    # An archived version is refused for explanations exactly as for inference; so is a deleted one.
    c.update_deployment(name, version=v2)
    c.wait_until_served(name, v2)
    c.archive_version(name, v1)
    with httpx.Client(base_url=platform.inference_url, timeout=60, headers=AUTH) as http:
        for path in (f"/v2/models/{name}/versions/{v1}/explain", f"/v2/models/{name}/versions/{v1}/infer"):
            r = http.post(path, json={"inputs": [_tensor(rows)]})
            assert r.status_code == 409 and "archived" in r.json()["error"], (path, r.text)
    c.delete_version(name, v1)
    with pytest.raises(NotFound):
        c.explain(name, rows, version=v1)
    assert c.explain(name, rows[:1], version=v2).model_version == str(v2)


def test_mlp_attributions_rank_the_planted_feature_first(platform: Platform) -> None:
    c = platform.client
    name = "explain-mlp"
    x, csv = _planted_data()
    c.create_dataset(name, csv, target="target")
    spec = (
        "task: classification\nmodel: {family: mlp, hidden_sizes: [16]}\n"
        "optimizer: {name: adam, lr: 0.05}\nepochs: 30\nseed: 3\n"
    )
    version = _train(platform, name, spec)
    importance = (c.get_version(name, version).lineage or {})["feature_importance"]
    assert max(importance["importances"], key=importance["importances"].get) == "d"

    c.deploy(name, model=name, version=version)
    c.wait_until_served(name, version)
    rows = x[:16]
    explanation = c.explain(name, rows, max_evals=300, seed=4)
    assert explanation.output_columns == ["high", "low"] and explanation.max_evals == 300
    for i, row in enumerate(explanation.explanations):
        assert row.predicted_class == ("high" if x[i, 3] > 0 else "low")
        for k in range(2):  # every class column adds up
            assert abs(sum(row.attributions[k]) - (row.prediction[k] - row.base_value[k])) < 1e-4
    share = np.abs([row.attributions[0] for row in explanation.explanations]).mean(axis=0)
    assert FEATURES[int(np.argmax(share))] == "d"
    assert [f for f, _ in explanation.top_features(0, 1)] == ["d"]

    # The CLI shows the same ranking.
    body = json.dumps({"instances": rows[:2].tolist()})
    out = CliRunner().invoke(
        app,
        ["--url", platform.api_url, "explain", name, body, "--max-evals", "300", "--top", "1"],
        env={"COLUMNS": "200"},
    )
    assert out.exit_code == 0, out.output
    assert "d +" in out.output or "d -" in out.output

    # A long explanation runs in its worker process: the server keeps answering meanwhile.
    done: list[float] = []
    long = threading.Thread(
        target=lambda: done.append(len(c.explain(name, x[:32], max_evals=2000).explanations))
    )
    long.start()
    answered_meanwhile = 0
    with httpx.Client(base_url=platform.inference_url, timeout=60, headers=AUTH) as http:
        while long.is_alive():
            assert http.get("/v2/health/live").status_code == 200
            r = http.post(f"/v2/models/{name}/infer", json={"inputs": [_input(x[:1])]})
            assert r.status_code == 200, r.text
            answered_meanwhile += long.is_alive()
    long.join()
    assert done == [32] and answered_meanwhile >= 3, answered_meanwhile

    # A killed explanation worker is replaced: at most the request it was running fails, with 503.
    server = psutil.Process(platform.inference.proc.pid)
    workers = [p for p in server.children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 1, workers
    workers[0].kill()
    workers[0].wait(timeout=10)
    statuses: list[int] = []
    tensor = _input(rows[:1])
    with httpx.Client(base_url=platform.inference_url, timeout=120, headers=AUTH) as http:

        def explained() -> bool:
            r = http.post(f"/v2/models/{name}/explain", json={"inputs": [tensor]})
            statuses.append(r.status_code)
            return r.status_code == 200

        wait_until(explained, timeout=120, what="explanations after the worker was killed")
    assert set(statuses) <= {200, 503}, statuses


def _input(x: np.ndarray[Any, Any]) -> dict[str, Any]:
    """A V2 tensor for the MLP (a PyTorch export: its input is ``input``)."""
    return {"name": "input", "datatype": "FP32", "shape": list(x.shape), "data": x.reshape(-1).tolist()}


def test_a_model_without_background_says_how_to_get_explanations(platform: Platform) -> None:
    c = platform.client
    name = "explain-uploaded"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    c.register_model(name, LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), example=x[:2])
    c.deploy(name, model=name, version=1)
    c.wait_until_served(name, 1)
    with pytest.raises(Conflict, match="no background sample") as refused:
        c.explain(name, x[:2])
    assert "training job" in refused.value.message and "reference_dataset" in refused.value.message
    with pytest.raises(InvalidArgument, match="protocol"):
        c.explain_json(name, {}, protocol="v3")

    # Naming the rows it is meant to see as its reference (here at registration) gives it one.
    columns = ["w", "x", "y", "z"]
    table = "\n".join(
        [",".join([*columns, "label"])]
        + [",".join([*(f"{v:.5f}" for v in row), str(int(row[0] > 0))]) for row in x]
    )
    c.create_dataset(f"{name}-rows", (table + "\n").encode(), target="label")
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    c.register_model(name, model, example=x[:2], reference_dataset=f"{name}-rows")
    c.update_deployment(name, version=2)
    c.wait_until_served(name, 2)
    explanation = c.explain(name, x[:3])
    assert explanation.feature_names == columns and explanation.background_rows == 60
    for row in explanation.explanations:
        for k in range(len(explanation.output_columns)):
            assert abs(sum(row.attributions[k]) - (row.prediction[k] - row.base_value[k])) < 1e-4
    assert explanation.top_features(0, 1)[0][0] == "w"  # the only feature the labels depend on
