"""Drift through real processes: an uploaded model on a 100-feature table (70 numeric, 30 coded
categorical) with its reference built from a dataset named at registration, two deployments of
it, one fed rows from the reference's distribution and one with exactly 20 features shifted;
the control plane flags exactly those 20, the unshifted one nothing; the counts survive a
restart of the inference server; gauges, SDK, CLI and bad input. A version trained by a job
gets its reference from its training dataset."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.errors import InvalidArgument, NotFound
from tests._auth import AUTH
from tests._servers import wait_until
from tests.e2e.conftest import Platform, start_inference

pytestmark = pytest.mark.e2e

NUMERIC, CATEGORICAL = 70, 30
NAMES = [f"num_{i:02d}" for i in range(NUMERIC)] + [f"cat_{i:02d}" for i in range(CATEGORICAL)]
#: 14 numeric and 6 categorical features, spread over the table.
SHIFTED = [f"num_{i:02d}" for i in range(0, NUMERIC, 5)] + [f"cat_{i:02d}" for i in range(0, CATEGORICAL, 5)]
ROWS = 3000
CHUNK = 250
MODEL, SAME, MOVED = "drift-table", "drift-same", "drift-moved"


def _table(n: int, seed: int, *, shifted: bool = False) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    x = np.empty((n, len(NAMES)), dtype=np.float32)
    x[:, :NUMERIC] = rng.normal(size=(n, NUMERIC)) * np.arange(1, NUMERIC + 1) / 10
    x[:, NUMERIC:] = rng.integers(0, 5, size=(n, CATEGORICAL))
    if shifted:
        for name in SHIFTED:
            j = NAMES.index(name)
            if j < NUMERIC:
                x[:, j] += 1.0 * (j + 1) / 10  # one standard deviation
            else:
                x[:, j] = np.where(rng.random(n) < 0.7, 4, x[:, j])  # most rows in one category
    return x


def _csv(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> bytes:
    lines = [",".join([*NAMES, "y"])]
    for row, label in zip(x, y, strict=True):
        values = [f"{v:.6g}" if j < NUMERIC else str(int(v)) for j, v in enumerate(row)]
        lines.append(",".join([*values, str(int(label))]))
    return ("\n".join(lines) + "\n").encode()


def _send(platform: Platform, name: str, x: np.ndarray[Any, Any], tensor_name: str = "X") -> None:
    with httpx.Client(base_url=platform.inference_url, timeout=30, headers=AUTH) as http:
        for start in range(0, len(x), CHUNK):
            rows = x[start : start + CHUNK]
            tensor = {
                "name": tensor_name,
                "datatype": "FP32",
                "shape": list(rows.shape),
                "data": rows.ravel().tolist(),
            }
            r = http.post(f"/v2/models/{name}/infer", json={"inputs": [tensor]})
            assert r.status_code == 200, r.text


def _cli(platform: Platform, *args: str) -> str:
    result = CliRunner().invoke(app, ["--url", platform.api_url, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _inputs_drifted(report: Any) -> list[str]:
    return sorted(f.name for f in report.features if f.drifted and f.role == "input")


def test_exactly_the_shifted_features_are_flagged_and_counts_survive_a_restart(platform: Platform) -> None:
    c = platform.client
    # Counted and written every 0.2 s, so the test waits on counts, not on the clock.
    platform.inference.stop()
    platform.env["AIAAS_DRIFT_FLUSH_INTERVAL_S"] = "0.2"
    port = int(platform.inference_url.rsplit(":", 1)[1])
    platform.inference = start_inference(platform.env, platform.home, port)

    reference = _table(ROWS, 0)
    y = (reference[:, 0] + reference[:, NUMERIC] > 2).astype(np.int64)
    c.create_dataset("drift-reference", _csv(reference, y), target="y", filename="reference.csv")
    clf = LogisticRegression(max_iter=300).fit(reference, y)
    with pytest.raises(InvalidArgument, match="reference_dataset"):
        c.register_model(MODEL, clf, example=reference[:4], reference_dataset="no-such-dataset")
    version = c.register_model(MODEL, clf, example=reference[:4], reference_dataset="drift-reference")
    assert version.version == 1  # the refused registration stored nothing
    for name in (SAME, MOVED):
        c.deploy(name, model=MODEL, version=1)
        c.wait_until_served(name, 1)

    before = c.drift(SAME, window="1h")
    (v1,) = before.versions
    assert v1.reference is not None
    assert (v1.reference.source["kind"], v1.reference.source["dataset"]) == ("dataset", "drift-reference:1")
    assert v1.reference.source["feature_names"] == NAMES  # kept with its sample, for explanations
    assert v1.reference.rows == ROWS and v1.report is not None and v1.report.rows == 0
    kinds = {f.name: f.kind for f in v1.report.features}
    assert [kinds[n] for n in NAMES] == ["numeric"] * NUMERIC + ["categorical"] * CATEGORICAL
    assert kinds["label"] == "categorical"  # the predicted class, profiled as an output

    _send(platform, SAME, _table(ROWS, 1))
    _send(platform, MOVED, _table(ROWS, 2, shifted=True))
    for name in (SAME, MOVED):
        wait_until(
            lambda n=name: c.drift(n).versions[0].report.rows == ROWS, timeout=30, what=f"{name} counts"
        )

    same = c.drift(SAME, window="1h").versions[0].report
    moved = c.drift(MOVED, window="1h").versions[0].report
    assert same is not None and moved is not None
    assert _inputs_drifted(same) == [] and same.drifted == []
    assert _inputs_drifted(moved) == sorted(SHIFTED)
    by_name = {f.name: f for f in moved.features}
    assert by_name["num_05"].ks is not None and by_name["cat_05"].chi2_p_value is not None

    # A stricter threshold in the query flags more; a bad one is refused, naming it.
    strict = c.drift(SAME, window="1h", psi_threshold=1e-6).versions[0].report
    assert strict is not None and len(_inputs_drifted(strict)) > 0
    with pytest.raises(InvalidArgument, match="psi_threshold"):
        c.drift(SAME, psi_threshold=-1)
    with pytest.raises(InvalidArgument, match="window"):
        c.drift(SAME, window="an hour")

    # The counts are in the database: a restarted server has lost nothing, and adds to them.
    platform.inference.stop()
    platform.inference = start_inference(platform.env, platform.home, port)
    assert c.drift(MOVED, window="1h").versions[0].report.rows == ROWS  # type: ignore[union-attr]
    c.wait_until_served(MOVED, 1)
    _send(platform, MOVED, _table(CHUNK, 3, shifted=True))
    wait_until(lambda: c.drift(MOVED).versions[0].report.rows == ROWS + CHUNK, timeout=30, what="more counts")
    assert _inputs_drifted(c.drift(MOVED).versions[0].report) == sorted(SHIFTED)

    # Gauges on the control plane's /metrics.
    text = httpx.get(f"{platform.api_url}/metrics", headers=AUTH).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    flagged = {s.labels["deployment"]: s.value for s in families["aiaas_drift_drifted_features"].samples}
    assert flagged[SAME] == 0 and flagged[MOVED] == len(moved.drifted) >= 20
    flags = {
        s.labels["feature"]
        for s in families["aiaas_drift_drifted"].samples
        if s.labels["deployment"] == MOVED and s.value == 1 and s.labels["role"] == "input"
    }
    assert flags == set(SHIFTED)

    out = _cli(platform, "monitor", "drift", MOVED, "--window", "1h")
    assert "num_05" in out and "cat_25" in out and "num_01" not in out
    shown = json.loads(_cli(platform, "monitor", "drift", SAME, "--json"))
    assert shown["versions"][0]["report"]["drifted"] == []


def test_a_version_without_a_reference_says_how_it_gets_one(platform: Platform) -> None:
    c = platform.client
    x = _table(200, 4)[:, :3]
    c.register_model("drift-bare", LogisticRegression().fit(x, x[:, 0] > 0), example=x[:4])
    c.deploy("drift-bare", model="drift-bare", version=1)
    (v1,) = c.drift("drift-bare").versions
    assert v1.reference is None and v1.report is None
    assert v1.note is not None and "AIAAS_DRIFT_REFERENCE_ROWS" in v1.note
    out = _cli(platform, "monitor", "drift", "drift-bare")
    assert "no reference yet" in out

    # A dataset named at deployment gives the version its reference; one that does not fit the
    # model refuses the deployment, which is then not there.
    y = (x[:, 0] > 0).astype(np.int64)
    fits = "a,b,c,y\n" + "".join(f"{r[0]:.5f},{r[1]:.5f},{r[2]:.5f},{t}\n" for r, t in zip(x, y, strict=True))
    c.create_dataset("drift-bare-data", fits.encode(), target="y", filename="fits.csv")
    narrow = "a,b,y\n" + "".join(f"{r[0]:.5f},{r[1]:.5f},{t}\n" for r, t in zip(x, y, strict=True))
    c.create_dataset("drift-narrow-data", narrow.encode(), target="y", filename="narrow.csv")
    with pytest.raises(InvalidArgument, match="reference_dataset"):
        c.deploy("drift-bare-2", model="drift-bare", version=1, reference_dataset="drift-narrow-data")
    with pytest.raises(NotFound):
        c.get_deployment("drift-bare-2")
    c.deploy("drift-bare-2", model="drift-bare", version=1, reference_dataset="drift-bare-data:1")
    (v1,) = c.drift("drift-bare").versions
    assert v1.reference is not None
    assert (v1.reference.source["kind"], v1.reference.source["dataset"]) == ("dataset", "drift-bare-data:1")
    assert v1.reference.rows == len(x) and v1.report is not None
    assert [f.name for f in v1.report.features] == ["a", "b", "c", "label"]


def test_a_trained_version_gets_its_reference_from_its_training_dataset(platform: Platform) -> None:
    c = platform.client
    x = _table(1000, 5)
    y = (x[:, 1] + x[:, NUMERIC + 1] > 2).astype(np.int64)
    c.create_dataset("drift-train", _csv(x, y), target="y", filename="train.csv")
    spec = "dataset: drift-train\nmodel: {family: logistic}\nregister_as: drift-trained\nseed: 1\n"
    job = c.wait_for_job(c.submit_job(spec).id, timeout=300)
    assert job.status == "succeeded", job.error
    version = c.get_version("drift-trained", job.result_version or 0)
    c.deploy("drift-trained", model="drift-trained", version=version.version)
    c.wait_until_served("drift-trained", version.version)

    (v1,) = c.drift("drift-trained").versions
    assert v1.reference is not None and v1.reference.source["kind"] == "training"
    assert v1.reference.source["dataset"] == "drift-train:1"
    assert v1.report is not None and [f.name for f in v1.report.features if f.role == "input"] == NAMES
    _send(platform, "drift-trained", _table(1500, 6, shifted=True), version.signature["inputs"][0]["name"])
    wait_until(lambda: c.drift("drift-trained").versions[0].report.rows == 1500, timeout=30, what="counts")
    assert _inputs_drifted(c.drift("drift-trained").versions[0].report) == sorted(SHIFTED)
