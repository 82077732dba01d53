"""The binary tensor data extension over real HTTP: tritonclient with binary_data=True, and bad bodies."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton

from aiaas.formats import package_model
from tests._auth import AUTH
from tests.serving.conftest import MAX_REQUEST_BYTES, IrisModel, Stack

RTOL = 1e-5
ATOL = 1e-7  # float32 noise on probabilities that are themselves ~1e-8
IRIS = "bin-iris"
TYPES = "bin-types"
TYPE_INPUTS = {"text": "BYTES", "ids": "INT64", "mask": "BOOL", "half": "FP16"}


@dataclass
class Binary:
    stack: Stack
    iris: IrisModel
    x: np.ndarray[Any, Any]
    client: triton.InferenceServerClient

    @property
    def http(self) -> httpx.Client:
        return self.stack.http


def identity_model() -> Any:
    """An ONNX graph that returns each of its inputs (one per datatype) unchanged."""
    from onnx import TensorProto, helper

    types = {"text": TensorProto.STRING, "ids": TensorProto.INT64, "mask": TensorProto.BOOL}
    types["half"] = TensorProto.FLOAT16
    shapes: dict[str, list[Any]] = {"text": ["n"], "ids": ["n", 2], "mask": ["n"], "half": ["n", 3]}
    graph = helper.make_graph(
        [helper.make_node("Identity", [name], [f"{name}_out"]) for name in types],
        "identity",
        [helper.make_tensor_value_info(name, t, shapes[name]) for name, t in types.items()],
        [helper.make_tensor_value_info(f"{name}_out", t, shapes[name]) for name, t in types.items()],
    )
    # An IR version every supported ONNX Runtime loads (onnx writes its newest by default).
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.fixture(scope="session")
def binary(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> Iterator[Binary]:
    """Deployments ``bin-iris`` (the iris pipeline) and ``bin-types`` (identity per datatype)."""
    iris = iris_model(1.0)
    stack.registry.register_version(IRIS, iris.package)
    stack.deployments.create(IRIS, model=IRIS, version=1)
    stack.registry.register_version(TYPES, package_model(identity_model(), TYPE_VALUES))
    stack.deployments.create(TYPES, model=TYPES, version=1)
    stack.wait_served(IRIS, 1)
    stack.wait_served(TYPES, 1)
    client = triton.InferenceServerClient(stack.url.removeprefix("http://"))
    try:
        yield Binary(stack, iris, iris_x, client)
    finally:
        client.close()


def iris_input(x: np.ndarray[Any, Any], *, binary_data: bool) -> triton.InferInput:
    given = triton.InferInput("X", list(x.shape), "FP32")
    given.set_data_from_numpy(x, binary_data=binary_data)
    return given


def wanted(name: str, *, binary_data: bool) -> triton.InferRequestedOutput:
    return triton.InferRequestedOutput(name, binary_data=binary_data)


def output_meta(result: triton.InferResult, name: str) -> dict[str, Any]:
    meta = result.get_output(name)
    assert meta is not None, result.get_response()
    return dict(meta)


# -- tritonclient, binary both ways -----------------------------------------------------


def test_server_metadata_announces_the_extension(binary: Binary) -> None:
    assert "binary_tensor_data" in binary.client.get_server_metadata(headers=dict(AUTH))["extensions"]


def test_binary_input_and_output_match_in_process_prediction(binary: Binary) -> None:
    x = binary.x
    result = binary.client.infer(
        IRIS,
        [iris_input(x, binary_data=True)],
        outputs=[wanted("probabilities", binary_data=True), wanted("label", binary_data=True)],
        request_id="bin-1",
        headers=dict(AUTH),
    )
    np.testing.assert_allclose(result.as_numpy("probabilities"), binary.iris.proba(x), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(result.as_numpy("label"), binary.iris.labels(x))
    probabilities = output_meta(result, "probabilities")
    assert probabilities["parameters"] == {"classes": [0, 1, 2], "binary_data_size": x.shape[0] * 3 * 4}
    assert "data" not in probabilities
    assert result.get_response()["id"] == "bin-1"


def test_binary_input_with_json_output(binary: Binary) -> None:
    x = binary.x[:7]
    result = binary.client.infer(
        IRIS,
        [iris_input(x, binary_data=True)],
        outputs=[wanted("probabilities", binary_data=False)],
        headers=dict(AUTH),
    )
    np.testing.assert_allclose(result.as_numpy("probabilities"), binary.iris.proba(x), rtol=RTOL, atol=ATOL)
    assert "data" in output_meta(result, "probabilities")
    assert result.as_numpy("label") is None


def test_json_input_with_binary_output(binary: Binary) -> None:
    x = binary.x[:5]
    result = binary.client.infer(
        IRIS,
        [iris_input(x, binary_data=False)],
        outputs=[wanted("probabilities", binary_data=True), wanted("label", binary_data=False)],
        headers=dict(AUTH),
    )
    np.testing.assert_allclose(result.as_numpy("probabilities"), binary.iris.proba(x), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(result.as_numpy("label"), binary.iris.labels(x))
    assert "binary_data_size" in output_meta(result, "probabilities")["parameters"]
    assert "data" in output_meta(result, "label")


def test_no_outputs_named_returns_all_of_them_binary(binary: Binary) -> None:
    """tritonclient then sets the request's binary_data_output parameter."""
    x = binary.x[:4]
    result = binary.client.infer(IRIS, [iris_input(x, binary_data=True)], headers=dict(AUTH))
    np.testing.assert_allclose(result.as_numpy("probabilities"), binary.iris.proba(x), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(result.as_numpy("label"), binary.iris.labels(x))
    for name in ("probabilities", "label"):
        assert "binary_data_size" in output_meta(result, name)["parameters"]


def test_versioned_binary_infer(binary: Binary) -> None:
    x = binary.x[:3]
    result = binary.client.infer(
        IRIS,
        [iris_input(x, binary_data=True)],
        model_version="1",
        outputs=[wanted("probabilities", binary_data=True)],
        headers=dict(AUTH),
    )
    np.testing.assert_allclose(result.as_numpy("probabilities"), binary.iris.proba(x), rtol=RTOL, atol=ATOL)
    assert result.get_response()["model_version"] == "1"


TYPE_VALUES: dict[str, np.ndarray[Any, Any]] = {
    "text": np.array(["hello", "", "ünïcode ✓"], dtype=object),
    "ids": np.array([[1, -2], [2**40, 0], [-(2**62), 7]], dtype=np.int64),
    "mask": np.array([True, False, True]),
    "half": np.array([[0.5, -1.25, 3.0], [1e-3, 2.0, -0.0], [100.0, 0.25, 7.5]], dtype=np.float16),
}


def typed_inputs(*, binary_data: bool) -> list[triton.InferInput]:
    inputs = []
    for name, datatype in TYPE_INPUTS.items():
        value = TYPE_VALUES[name]
        given = triton.InferInput(name, list(value.shape), datatype)
        inputs.append(given.set_data_from_numpy(value, binary_data=binary_data))
    return inputs


def assert_types_returned(result: triton.InferResult) -> None:
    for name, expected in TYPE_VALUES.items():
        got = result.as_numpy(f"{name}_out")
        if expected.dtype == object:
            assert [v.decode() if isinstance(v, bytes) else v for v in got.reshape(-1)] == expected.tolist()
        else:
            assert got.dtype == expected.dtype, name
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(("binary_in", "binary_out"), [(True, True), (True, False), (False, True)])
def test_every_datatype_round_trips(binary: Binary, binary_in: bool, binary_out: bool) -> None:
    if not binary_in:
        # FP16 has no JSON form in tritonclient's encoder; it goes as binary in every case.
        inputs = typed_inputs(binary_data=False)[:3] + typed_inputs(binary_data=True)[3:]
    else:
        inputs = typed_inputs(binary_data=True)
    outputs = [wanted(f"{name}_out", binary_data=binary_out) for name in TYPE_INPUTS]
    result = binary.client.infer(TYPES, inputs, outputs=outputs, headers=dict(AUTH))
    assert_types_returned(result)
    for name, datatype in TYPE_INPUTS.items():
        meta = output_meta(result, f"{name}_out")
        assert meta["datatype"] == datatype
        assert ("binary_data_size" in meta.get("parameters", {})) is binary_out


# -- the HTTP exchange itself ------------------------------------------------------------


def binary_body(x: np.ndarray[Any, Any], **extra: Any) -> tuple[bytes, int]:
    size = {"binary_data_size": x.nbytes}
    head = orjson.dumps(
        {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "parameters": size}], **extra}
    )
    return head + x.tobytes(), len(head)


def post_binary(http: httpx.Client, body: bytes, length: int | str, path: str = IRIS) -> httpx.Response:
    return http.post(
        f"/v2/models/{path}/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(length), "Content-Type": "application/octet-stream"},
    )


def test_binary_response_headers(binary: Binary) -> None:
    x = binary.x[:2]
    body, length = binary_body(x, outputs=[{"name": "probabilities", "parameters": {"binary_data": True}}])
    r = post_binary(binary.http, body, length)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-aiaas-model-version"] == "1"
    json_length = int(r.headers["inference-header-content-length"])
    head = orjson.loads(r.content[:json_length])
    assert head["outputs"] == [
        {
            "name": "probabilities",
            "datatype": "FP32",
            "shape": [2, 3],
            "parameters": {"classes": [0, 1, 2], "binary_data_size": 24},
        }
    ]
    probabilities = np.frombuffer(r.content[json_length:], dtype="<f4").reshape(2, 3)
    np.testing.assert_allclose(probabilities, binary.iris.proba(x), rtol=RTOL, atol=ATOL)


def test_binary_request_with_json_outputs_gets_plain_json(binary: Binary) -> None:
    body, length = binary_body(binary.x[:2])
    r = post_binary(binary.http, body, length)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in r.headers
    assert {o["name"] for o in r.json()["outputs"]} == {"probabilities", "label"}


def test_binary_body_over_limit_is_413(binary: Binary, still_serves: None) -> None:
    x = np.tile(binary.x, (16, 1))
    body, length = binary_body(x)
    assert len(body) > MAX_REQUEST_BYTES
    r = post_binary(binary.http, body, length)
    assert r.status_code == 413, r.text
    assert str(MAX_REQUEST_BYTES) in r.json()["error"]


# -- malformed bodies: a 400 naming the problem, and the server keeps serving ---------------


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    return str(body["error"])


@pytest.fixture
def still_serves(binary: Binary) -> Iterator[None]:
    """After the test, a correct binary request still gets a correct answer."""
    yield
    x = binary.x[:2]
    result = binary.client.infer(
        IRIS,
        [iris_input(x, binary_data=True)],
        outputs=[wanted("probabilities", binary_data=True)],
        headers=dict(AUTH),
    )
    np.testing.assert_allclose(result.as_numpy("probabilities"), binary.iris.proba(x), rtol=RTOL, atol=ATOL)


ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]], dtype=np.float32)


def good() -> tuple[bytes, int]:
    return binary_body(ROWS)


def with_input(**changes: Any) -> tuple[bytes, int]:
    """The good body with the input's JSON fields changed and the same tensor bytes."""
    tensor = {"name": "X", "datatype": "FP32", "shape": [2, 4], "parameters": {"binary_data_size": 32}}
    head = orjson.dumps({"inputs": [tensor | changes]})
    return head + ROWS.tobytes(), len(head)


def bytes_input(data: bytes) -> tuple[bytes, int]:
    tensor = {
        "name": "text",
        "datatype": "BYTES",
        "shape": [1],
        "parameters": {"binary_data_size": len(data)},
    }
    head = orjson.dumps({"inputs": [tensor]})
    return head + data, len(head)


BAD_BODIES: dict[str, tuple[Callable[[], tuple[bytes, int | str]], str, list[str]]] = {
    # id: (body and header value, deployment, words the error must contain)
    "header-longer-than-body": (
        lambda: (good()[0], len(good()[0]) + 10),
        IRIS,
        ["Inference-Header-Content-Length", "only"],
    ),
    "negative-header": (lambda: (good()[0], "-5"), IRIS, ["non-negative integer", "'-5'"]),
    "text-header": (lambda: (good()[0], "abc"), IRIS, ["Inference-Header-Content-Length", "'abc'"]),
    "header-cuts-json": (lambda: (good()[0], good()[1] - 2), IRIS, ["not valid JSON"]),
    "size-not-shape": (
        lambda: with_input(shape=[3, 4]),
        IRIS,
        ["'X'", "[3, 4]", "48 bytes", "binary_data_size is 32"],
    ),
    "size-past-body": (
        lambda: with_input(parameters={"binary_data_size": 40}),
        IRIS,
        ["binary_data_size 40", "only 32 bytes"],
    ),
    "trailing-bytes": (lambda: (good()[0] + b"\0\0", good()[1]), IRIS, ["2 bytes follow the tensor data"]),
    "missing-tensor": (
        lambda: with_input(name="ghost"),
        IRIS,
        ["unknown input 'ghost'", "'X'"],
    ),
    "no-data-after-json": (lambda: (good()[0][: good()[1]], good()[1]), IRIS, ["only 0 bytes"]),
    "negative-size": (
        lambda: with_input(parameters={"binary_data_size": -32}),
        IRIS,
        ["binary_data_size", "non-negative", "-32"],
    ),
    "data-and-size": (lambda: with_input(data=[0.0] * 8), IRIS, ["both data and", "binary_data_size"]),
    "wrong-datatype": (lambda: with_input(datatype="FP64", shape=[2, 2]), IRIS, ["FP64", "FP32"]),
    "bytes-bad-length": (
        lambda: bytes_input(struct.pack("<I", 50) + b"abc"),
        TYPES,
        ["'text'", "declares 50 bytes"],
    ),
    "bytes-not-utf8": (lambda: bytes_input(struct.pack("<I", 1) + b"\xff"), TYPES, ["UTF-8"]),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_malformed_binary_body_is_400(binary: Binary, still_serves: None, case: str) -> None:
    make, deployment, words = BAD_BODIES[case]
    body, length = make()
    message = error_of(post_binary(binary.http, body, length, deployment), 400)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
