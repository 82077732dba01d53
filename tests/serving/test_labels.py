"""A classifier trained on text labels answers them over every protocol, with its probability
columns named by class: V2 JSON and binary (``parameters.classes``), V1 rows (objects keyed by
label), the model metadata, and through the dynamic batcher."""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton

from aiaas.formats import package_model
from tests._auth import AUTH
from tests.serving.conftest import Stack

RTOL = 1e-5
ATOL = 1e-6
CLASSES = ["east", "west"]


@dataclass(frozen=True)
class Compass:
    """A classifier of points into ``east``/``west``, served as ``compass`` and ``compass-batched``."""

    stack: Stack
    clf: Any
    x: np.ndarray[Any, Any]

    @property
    def http(self) -> httpx.Client:
        return self.stack.http


@pytest.fixture(scope="session")
def compass(stack: Stack) -> Compass:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(3).normal(size=(200, 2)).astype(np.float32)
    y = np.where(x[:, 0] - 0.5 * x[:, 1] > 0, "east", "west")
    clf = LogisticRegression().fit(x, y)
    stack.registry.register_version("compass", package_model(clf, x[:4]))
    stack.deployments.create("compass", model="compass", version=1)
    stack.deployments.create(
        "compass-batched",
        model="compass",
        version=1,
        batching={"enabled": True, "max_batch_size": 16, "max_queue_delay_ms": 5.0},
    )
    stack.wait_served("compass", 1)
    stack.wait_served("compass-batched", 1)
    return Compass(stack, clf, x)


def _v2_body(x: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]}


def test_v2_answers_the_labels_and_names_the_probability_columns(compass: Compass) -> None:
    x = compass.x
    r = compass.http.post("/v2/models/compass/infer", json=_v2_body(x))
    assert r.status_code == 200, r.text
    label, probabilities = r.json()["outputs"]
    assert (label["datatype"], label["shape"]) == ("BYTES", [len(x)])
    assert label["data"] == compass.clf.predict(x).tolist()
    assert set(label["data"]) == set(CLASSES)
    assert probabilities["parameters"] == {"classes": CLASSES}
    np.testing.assert_allclose(
        np.reshape(probabilities["data"], probabilities["shape"]),
        compass.clf.predict_proba(x),
        rtol=RTOL,
        atol=ATOL,
    )


def test_metadata_names_the_classes_of_the_probability_columns(compass: Compass) -> None:
    outputs = compass.http.get("/v2/models/compass").json()["outputs"]
    assert outputs == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2], "classes": CLASSES},
    ]


def test_v1_rows_carry_the_label_and_probabilities_by_class(compass: Compass) -> None:
    x = compass.x[:7]
    r = compass.http.post("/v1/models/compass:predict", json={"instances": x.tolist()})
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    expected = compass.clf.predict_proba(x)
    assert [p["label"] for p in predictions] == compass.clf.predict(x).tolist()
    for prediction, row in zip(predictions, expected, strict=True):
        assert list(prediction["probabilities"]) == CLASSES
        np.testing.assert_allclose(list(prediction["probabilities"].values()), row, rtol=RTOL, atol=ATOL)
        assert prediction["label"] == max(prediction["probabilities"], key=prediction["probabilities"].get)

    one = compass.http.post("/v1/models/compass:predict", json={"instances": x[:1].tolist()})
    assert one.json()["predictions"][0]["label"] == compass.clf.predict(x[:1])[0]

    columns = compass.http.post("/v1/models/compass:predict", json={"inputs": x.tolist()}).json()["outputs"]
    assert columns["label"] == compass.clf.predict(x).tolist()
    np.testing.assert_allclose(columns["probabilities"], expected, rtol=RTOL, atol=ATOL)


def test_binary_outputs_carry_the_labels_and_the_classes(compass: Compass) -> None:
    x = compass.x[:9]
    client = triton.InferenceServerClient(compass.stack.url.removeprefix("http://"))
    try:
        given = triton.InferInput("X", list(x.shape), "FP32")
        given.set_data_from_numpy(x, binary_data=True)
        result = client.infer(
            "compass",
            [given],
            outputs=[
                triton.InferRequestedOutput("label", binary_data=True),
                triton.InferRequestedOutput("probabilities", binary_data=True),
            ],
            headers=dict(AUTH),
        )
    finally:
        client.close()
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").reshape(-1)]
    assert labels == compass.clf.predict(x).tolist()
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), compass.clf.predict_proba(x), rtol=RTOL, atol=ATOL
    )
    parameters = dict(result.get_output("probabilities"))["parameters"]
    assert parameters == {"classes": CLASSES, "binary_data_size": x.shape[0] * 2 * 4}


def test_labels_come_back_per_request_through_the_batcher(compass: Compass) -> None:
    """Requests batched together get their own rows' labels back, 1 row or many."""
    sizes = [1, 3, 1, 8, 2, 1, 5, 1] * 3
    offsets = np.cumsum([0, *sizes])

    def call(i: int) -> tuple[int, list[str]]:
        x = compass.x[offsets[i] : offsets[i + 1]]
        r = httpx.post(
            f"{compass.stack.url}/v2/models/compass-batched/infer",
            json=_v2_body(x),
            timeout=30,
            headers=dict(AUTH),
        )
        assert r.status_code == 200, r.text
        return i, r.json()["outputs"][0]["data"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = dict(pool.map(call, range(len(sizes))))
    for i, labels in answers.items():
        assert labels == compass.clf.predict(compass.x[offsets[i] : offsets[i + 1]]).tolist()


def test_v1_keeps_plain_rows_when_the_columns_do_not_match_the_classes() -> None:
    """A score output of dynamic width that answers another number of columns than the
    recorded classes is not forced into objects (no request fails over it)."""
    from aiaas.serving.protocols import encode_v1

    scores = np.asarray([[0.2, 0.3, 0.5]], np.float32)
    labels = np.asarray(["c"], dtype=object)
    body = orjson.loads(
        encode_v1({"label": labels, "scores": scores}, row_format=True, classes={"scores": ("a", "b")})
    )
    assert body["predictions"][0]["label"] == "c"
    np.testing.assert_allclose(body["predictions"][0]["scores"], scores[0])
    named = orjson.loads(
        encode_v1({"label": labels, "scores": scores}, row_format=True, classes={"scores": ("a", "b", "c")})
    )
    assert list(named["predictions"][0]["scores"]) == ["a", "b", "c"]
