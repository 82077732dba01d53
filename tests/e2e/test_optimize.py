"""Optimization through the real platform: a trained model is optimized by a job of the
control plane's scheduler (CLI and SDK), the result is a new version with its report, it
serves through V2 with the user's labels, and a bad request is a 400 that registers nothing."""

from __future__ import annotations

import httpx
import numpy as np
from sklearn.datasets import load_digits

from tests._auth import AUTH
from tests.e2e._cli import console_script
from tests.e2e.conftest import Platform
from tests.optimize.conftest import NAMES, digits_csv


def test_optimize_a_trained_model_and_serve_the_result(platform: Platform) -> None:
    c = platform.client
    c.create_dataset("digits-named", digits_csv(600), target="digit", filename="digits.csv")
    trained = c.wait_for_job(
        c.submit_job(
            {
                "dataset": "digits-named",
                "model": {"family": "mlp", "hidden_sizes": [32]},
                "epochs": 4,
                "register_as": "digits-opt",
            }
        ).id,
        timeout=120,
    )
    assert trained.status == "succeeded", trained.error

    # Refused before anything is queued: 400 naming the field; nothing registered.
    jobs_before = len(c.list_jobs())
    for ref, body, field in [
        ("1", {"method": "sparsify"}, "method"),
        ("1", {"method": "auto", "max_metric_drop": 2}, "max_metric_drop"),
        (
            "1",
            {"method": "static_int8", "static_int8": {"calibration_dataset": "nope"}},
            "static_int8.calibration_dataset",
        ),
        ("7", {"method": "fp16"}, "version"),
    ]:
        url = f"{platform.api_url}/api/v1/models/digits-opt/versions/{ref}/optimize"
        response = httpx.post(url, json=body, timeout=30, headers=AUTH)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["details"]["field"] == field
    assert len(c.list_jobs()) == jobs_before

    # The CLI: a budgeted search, its candidates in a table, the alias pointed at the result.
    out = console_script(
        platform,
        "optimize",
        "digits-opt:1",
        "--auto",
        "--max-metric-drop",
        "0.05",
        "--candidate",
        "dynamic_int8",
        "--candidate",
        "prune",
        "--set",
        "prune.fine_tune_epochs=1",
        "--alias",
        "fast",
        columns=120,
    )
    assert "Candidates of job" in out and "dynamic_int8" in out and "prune" in out, out
    assert "succeeded: registered digits-opt version 2" in out, out
    result = c.get_version("digits-opt", "fast")
    assert result.version == 2 and result.parent_version == 1
    opt = result.lineage["optimization"]
    assert opt["method"] in ("dynamic_int8", "prune") and opt["budget"] == 0.05
    assert {row["method"] for row in opt["candidates"]} == {"dynamic_int8", "prune"}
    job = c.get_job(c.list_jobs()[0].id)
    assert (job.kind, job.status, job.result_version) == ("optimize", "succeeded", 2)

    listed = console_script(platform, "jobs", "list", columns=120)
    assert "optimize:auto" in listed and "mlp" in listed, listed

    # The SDK: one method, then the report through `aiaas models compare`.
    job = c.wait_for_job(c.optimize("digits-opt", 1, "dynamic_int8").id, timeout=120)
    assert job.status == "succeeded", job.error
    assert job.result_version == 3
    compared = console_script(platform, "models", "compare", "digits-opt", "1", "3", columns=120)
    assert "dynamic_int8 of v1" in compared and "smaller" in compared, compared

    # Served through V2 with the user's labels.
    c.deploy("digits-opt", model="digits-opt", version=3)
    c.wait_until_served("digits-opt", 3)
    x, y = load_digits(return_X_y=True)
    reply = httpx.post(
        f"{platform.inference_url}/v2/models/digits-opt/infer",
        json={
            "inputs": [
                {"name": "input", "datatype": "FP32", "shape": [8, 64], "data": x[:8].ravel().tolist()}
            ]
        },
        timeout=30,
        headers=AUTH,
    ).json()
    labels = next(o["data"] for o in reply["outputs"] if o["name"] == "label")
    assert set(labels) <= set(NAMES)
    assert np.mean(np.array(labels) == np.array(NAMES)[y[:8]]) >= 0.5
