"""The inference server's HTTP API over real HTTP: KServe V2 (OIP) and V1, errors, limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

import aiaas
from tests._auth import AUTH
from tests.serving.conftest import MAX_REQUEST_BYTES, IrisModel, Stack, TorchModel

RTOL = 1e-5
ATOL = 1e-7  # float32 noise on probabilities that are themselves ~1e-8


@dataclass
class Served:
    stack: Stack
    iris: IrisModel
    mlp: TorchModel
    x: np.ndarray[Any, Any]

    @property
    def http(self) -> httpx.Client:
        return self.stack.http


@pytest.fixture(scope="session")
def served(
    stack: Stack,
    iris_model: Callable[[float], IrisModel],
    torch_model: TorchModel,
    iris_x: np.ndarray[Any, Any],
) -> Served:
    """Deployment ``iris`` (alias ``production`` → v1) and ``mlp`` (pinned v1)."""
    iris = iris_model(1.0)
    v = stack.registry.register_version("iris", iris.package)
    stack.registry.set_alias("iris", "production", v.version)
    stack.deployments.create("iris", model="iris", alias="production")
    stack.registry.register_version("mlp", torch_model.package)
    stack.deployments.create("mlp", model="mlp", version=1)
    stack.wait_served("iris", 1)
    stack.wait_served("mlp", 1)
    return Served(stack, iris, torch_model, iris_x)


def v2_body(x: np.ndarray[Any, Any], name: str = "X", **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": name, "datatype": "FP32", "shape": list(x.shape), "data": x.reshape(-1).tolist()}
        ],
        **extra,
    }


def outputs_of(response: httpx.Response) -> dict[str, np.ndarray[Any, Any]]:
    assert response.status_code == 200, response.text
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in response.json()["outputs"]}


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)
    return body["error"]


# -- server endpoints -----------------------------------------------------------------


def test_server_metadata_live_and_ready(served: Served) -> None:
    http = served.http
    assert http.get("/v2").json() == {
        "name": "aiaas",
        "version": aiaas.__version__,
        "extensions": ["binary_tensor_data"],
    }
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200


def test_unknown_path_is_json_404(served: Served) -> None:
    assert "/v3/nothing" in error_of(served.http.get("/v3/nothing"), 404)
    assert "not allowed" in error_of(served.http.get("/v2/models/iris/infer"), 405)


# -- V2 -------------------------------------------------------------------------------


def test_v2_infer_matches_in_process_prediction(served: Served) -> None:
    x = served.x
    out = outputs_of(served.http.post("/v2/models/iris/infer", json=v2_body(x)))
    np.testing.assert_allclose(out["probabilities"], served.iris.proba(x), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(out["label"], served.iris.labels(x))


def test_v2_infer_response_names_model_version_and_echoes_id(served: Served) -> None:
    r = served.http.post("/v2/models/iris/infer", json=v2_body(served.x[:2], id="req-42"))
    body = r.json()
    assert body["model_name"] == "iris"
    assert body["model_version"] == "1"
    assert body["id"] == "req-42"
    assert [o["name"] for o in body["outputs"]] == ["label", "probabilities"]
    assert body["outputs"][1] | {"data": None} == {
        "name": "probabilities",
        "datatype": "FP32",
        "shape": [2, 3],
        "parameters": {"classes": [0, 1, 2]},
        "data": None,
    }
    assert r.headers["x-aiaas-model-version"] == "1"


def test_v2_infer_returns_only_requested_outputs(served: Served) -> None:
    x = served.x[:5]
    body = v2_body(x, outputs=[{"name": "probabilities"}])
    out = outputs_of(served.http.post("/v2/models/iris/infer", json=body))
    assert list(out) == ["probabilities"]
    np.testing.assert_allclose(out["probabilities"], served.iris.proba(x), rtol=RTOL, atol=ATOL)


def test_v2_infer_torch_model(served: Served) -> None:
    x = served.x[:7]
    out = outputs_of(served.http.post("/v2/models/mlp/infer", json=v2_body(x, name="input")))
    np.testing.assert_allclose(out["output"], served.mlp.forward(x), rtol=RTOL, atol=1e-6)


def test_v2_versioned_infer(served: Served) -> None:
    x = served.x[:3]
    r = served.http.post("/v2/models/iris/versions/1/infer", json=v2_body(x))
    assert r.json()["model_version"] == "1"
    np.testing.assert_allclose(outputs_of(r)["probabilities"], served.iris.proba(x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("path", ["/v2/models/iris", "/v2/models/iris/versions/1"])
def test_v2_model_metadata(served: Served, path: str) -> None:
    body = served.http.get(path).json()
    parameters = body.pop("parameters", None)
    if path.endswith("/versions/1"):
        assert parameters is None, "a pinned version has no deployment-level serving parameters"
    else:
        assert parameters["routes"] == [{"version": 1, "weight": 100}]
        assert parameters["batching"]["enabled"] is False and parameters["shadow_version"] is None
    assert body == {
        "name": "iris",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3], "classes": [0, 1, 2]},
        ],
    }


@pytest.mark.parametrize("path", ["/v2/models/iris/ready", "/v2/models/iris/versions/1/ready"])
def test_v2_model_ready(served: Served, path: str) -> None:
    r = served.http.get(path)
    assert r.status_code == 200
    assert r.json() == {"name": "iris", "ready": True}


def test_v2_unknown_model_ready_is_404(served: Served) -> None:
    assert "'ghost'" in error_of(served.http.get("/v2/models/ghost/ready"), 404)


# -- V1 -------------------------------------------------------------------------------


def test_v1_model_status_and_list(served: Served) -> None:
    assert served.http.get("/v1/models/iris").json() == {"name": "iris", "ready": True}
    assert {"iris", "mlp"} <= set(served.http.get("/v1/models").json()["models"])


def test_v1_predict_instances(served: Served) -> None:
    x = served.x[:10]
    r = served.http.post("/v1/models/iris:predict", json={"instances": x.tolist()})
    assert r.status_code == 200, r.text
    assert r.headers["x-aiaas-model-version"] == "1"
    predictions = r.json()["predictions"]
    assert [p["label"] for p in predictions] == served.iris.labels(x).tolist()
    # Probabilities come keyed by class label (the JSON spelling of 0, 1, 2).
    assert all(list(p["probabilities"]) == ["0", "1", "2"] for p in predictions)
    proba = np.array([list(p["probabilities"].values()) for p in predictions])
    np.testing.assert_allclose(proba, served.iris.proba(x), rtol=RTOL, atol=ATOL)


def test_v1_predict_inputs(served: Served) -> None:
    x = served.x[:4]
    r = served.http.post("/v1/models/mlp:predict", json={"inputs": x.tolist()})
    assert r.status_code == 200, r.text
    assert r.headers["x-aiaas-model-version"] == "1"
    np.testing.assert_allclose(np.array(r.json()["outputs"]), served.mlp.forward(x), rtol=RTOL, atol=1e-6)


def test_v1_predict_inputs_by_name(served: Served) -> None:
    x = served.x[:4]
    r = served.http.post("/v1/models/iris:predict", json={"inputs": {"X": x.tolist()}})
    outputs = r.json()["outputs"]
    assert outputs["label"] == served.iris.labels(x).tolist()
    np.testing.assert_allclose(outputs["probabilities"], served.iris.proba(x), rtol=RTOL, atol=ATOL)


def test_v1_unknown_verb_is_404(served: Served) -> None:
    assert ":predict" in error_of(served.http.post("/v1/models/iris:explode", json={}), 404)


# -- bad input: a clear 4xx, and the server keeps serving ------------------------------

ONE_ROW = [5.1, 3.5, 1.4, 0.2]


def tensor(**overrides: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": ONE_ROW} | overrides]}


BAD_REQUESTS: dict[str, tuple[str, str, bytes | dict[str, Any], int, list[str]]] = {
    # id: (method path, body, status, words the error must contain)
    "wrong-input-name": ("/v2/models/iris/infer", tensor(name="Z"), 400, ["'Z'", "'X'"]),
    "wrong-shape": (
        "/v2/models/iris/infer",
        tensor(shape=[1, 3], data=ONE_ROW[:3]),
        400,
        ["shape", "[1, 3]"],
    ),
    "shape-data-mismatch": ("/v2/models/iris/infer", tensor(shape=[2, 4]), 400, ["shape", "8 values"]),
    "wrong-datatype": ("/v2/models/iris/infer", tensor(datatype="FP64"), 400, ["FP64", "FP32"]),
    "unknown-datatype": ("/v2/models/iris/infer", tensor(datatype="FLOAT"), 400, ["'FLOAT'", "datatype"]),
    "non-numeric-data": ("/v2/models/iris/infer", tensor(data=["a", "b", "c", "d"]), 400, ["numbers"]),
    "missing-inputs": ("/v2/models/iris/infer", {"id": "x"}, 400, ["inputs"]),
    "unknown-output": (
        "/v2/models/iris/infer",
        tensor() | {"outputs": [{"name": "nope"}]},
        400,
        ["'nope'", "probabilities"],
    ),
    "malformed-json": ("/v2/models/iris/infer", b'{"inputs": [', 400, ["not valid JSON"]),
    "json-not-object": ("/v2/models/iris/infer", b"[1, 2]", 400, ["JSON object"]),
    "unknown-model": ("/v2/models/ghost/infer", tensor(), 404, ["'ghost'"]),
    "unknown-version": ("/v2/models/iris/versions/99/infer", tensor(), 404, ["version 99"]),
    "bad-version": ("/v2/models/iris/versions/abc/infer", tensor(), 400, ["version", "'abc'"]),
    "v1-wrong-row-length": ("/v1/models/iris:predict", {"instances": [[1.0, 2.0]]}, 400, ["shape", "[1, 2]"]),
    "v1-strings": ("/v1/models/iris:predict", {"instances": [["a", "b", "c", "d"]]}, 400, ["numbers"]),
    "v1-both-forms": (
        "/v1/models/iris:predict",
        {"instances": [ONE_ROW], "inputs": [ONE_ROW]},
        400,
        ["exactly one"],
    ),
    "v1-unknown-model": ("/v1/models/ghost:predict", {"instances": [ONE_ROW]}, 404, ["'ghost'"]),
}


@pytest.fixture
def still_serves(served: Served) -> Iterator[None]:
    """After the test, a correct request still gets a correct answer."""
    yield
    x = served.x[:2]
    out = outputs_of(served.http.post("/v2/models/iris/infer", json=v2_body(x)))
    np.testing.assert_allclose(out["probabilities"], served.iris.proba(x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_4xx_naming_the_problem(served: Served, still_serves: None, case: str) -> None:
    path, body, status, words = BAD_REQUESTS[case]
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    message = error_of(served.http.post(path, content=content), status)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_body_over_limit_is_413(served: Served, still_serves: None) -> None:
    rows = np.tile(served.x, (4, 1))
    content = orjson.dumps(v2_body(rows))
    assert len(content) > MAX_REQUEST_BYTES
    message = error_of(served.http.post("/v2/models/iris/infer", content=content), 413)
    assert str(MAX_REQUEST_BYTES) in message


def test_chunked_body_over_limit_is_413(served: Served, still_serves: None) -> None:
    """Without a Content-Length the server counts while it reads."""
    content = orjson.dumps(v2_body(np.tile(served.x, (4, 1))))
    chunks = [content[i : i + 4096] for i in range(0, len(content), 4096)]
    r = served.http.post("/v1/models/iris:predict", content=iter(chunks))
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert str(MAX_REQUEST_BYTES) in error_of(r, 413)


def test_binary_tensor_extension_is_accepted(served: Served, still_serves: None) -> None:
    """The binary form is served (tests/serving/test_binary.py covers it); a bad header is a 400."""
    x = served.x[:2]
    head = orjson.dumps(
        {
            "inputs": [
                {"name": "X", "datatype": "FP32", "shape": [2, 4], "parameters": {"binary_data_size": 32}}
            ]
        }
    )
    r = served.http.post(
        "/v2/models/iris/infer",
        content=head + x.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    np.testing.assert_allclose(outputs_of(r)["probabilities"], served.iris.proba(x), rtol=RTOL, atol=ATOL)
    r = served.http.post(
        "/v2/models/iris/infer",
        content=orjson.dumps(tensor()),
        headers={"Inference-Header-Content-Length": "10000"},
    )
    assert "Inference-Header-Content-Length" in error_of(r, 400)


# -- a standard Open Inference Protocol client ------------------------------------------


def test_tritonclient_speaks_to_the_server(served: Served) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(served.stack.url.removeprefix("http://"))
    try:
        assert client.is_server_live(headers=dict(AUTH))
        assert client.is_server_ready(headers=dict(AUTH))
        assert client.is_model_ready("iris", headers=dict(AUTH))
        assert not client.is_model_ready("ghost", headers=dict(AUTH))
        metadata = client.get_model_metadata("iris", headers=dict(AUTH))
        assert metadata["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
        x = served.x[:6]
        given = triton.InferInput("X", list(x.shape), "FP32")
        given.set_data_from_numpy(x, binary_data=False)
        result = client.infer(
            "iris",
            [given],
            outputs=[triton.InferRequestedOutput("probabilities", binary_data=False)],
            request_id="triton-1",
            headers=dict(AUTH),
        )
        np.testing.assert_allclose(
            result.as_numpy("probabilities"), served.iris.proba(x), rtol=RTOL, atol=ATOL
        )
        assert result.as_numpy("label") is None
        assert result.get_response()["id"] == "triton-1"
    finally:
        client.close()
