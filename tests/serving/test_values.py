"""Values at the edges of what JSON and a datatype can hold, over real HTTP: inputs out of
the datatype's range, ragged rows, and outputs that are NaN or infinite; and what the model
metadata says is served."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as triton

from aiaas.formats import package_model
from tests._auth import AUTH
from tests._servers import wait_until
from tests.serving.conftest import IrisModel, Stack

LOG = "values-log"  # y = log(x): NaN for x < 0, -inf for 0, inf for inf
IRIS = "values-iris"  # versions 1, 2 (canary) and 3 (shadow)


def log_model() -> Any:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Log", ["x"], ["y"])],
        "log",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.fixture(scope="session")
def values(stack: Stack, iris_model: Callable[[float], IrisModel]) -> Stack:
    stack.registry.register_version(LOG, package_model(log_model(), np.ones((1, 3), np.float32)))
    stack.deployments.create(LOG, model=LOG, version=1)
    for c in (1.0, 0.5, 0.25):
        stack.registry.register_version(IRIS, iris_model(c).package)
    stack.deployments.create(
        IRIS, model=IRIS, version=1, traffic=[{"version": 2, "weight": 10}], shadow={"version": 3}
    )
    stack.wait_served(LOG, 1)
    return stack


def _v2(x: list[Any], datatype: str = "FP32", shape: list[int] | None = None) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "datatype": datatype, "shape": shape or [1, 3], "data": x}]}


def _error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    return str(body["error"])


# -- inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1e300, -1e39, 3.5e38])
def test_a_value_past_the_fp32_range_is_a_400_not_infinity(values: Stack, value: float) -> None:
    message = _error(values.http.post(f"/v2/models/{LOG}/infer", json=_v2([1.0, value, 2.0])), 400)
    assert "input 'x'" in message and "range of FP32" in message and "3.4028235e+38" in message
    message = _error(
        values.http.post(f"/v1/models/{LOG}:predict", json={"instances": [[1.0, value, 2.0]]}), 400
    )
    assert "range of FP32" in message


def test_the_largest_fp32_value_is_still_accepted(values: Stack) -> None:
    edge = float(np.finfo(np.float32).max)
    response = values.http.post(f"/v2/models/{LOG}/infer", json=_v2([edge, 1.0, 1.0]))
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"][0] == pytest.approx(np.log(edge), rel=1e-6)


@pytest.mark.parametrize("data", [[[1, 2, 3], [1, 2]], [[1.0], [2.0, 3.0]]])
def test_ragged_rows_are_a_400_in_words(values: Stack, data: list[Any]) -> None:
    for response in (
        values.http.post(f"/v2/models/{LOG}/infer", json=_v2(data, shape=[2, 3])),
        values.http.post(f"/v1/models/{LOG}:predict", json={"instances": data}),
    ):
        message = _error(response, 400)
        assert "rows must all have the same length" in message
        assert "inhomogeneous" not in message and "sequence" not in message


# -- outputs ---------------------------------------------------------------------------------


def test_nan_and_infinite_outputs_come_back_as_strings_clients_parse(values: Stack) -> None:
    response = values.http.post(f"/v2/models/{LOG}/infer", json=_v2([-1.0, 0.0, 1.0]))
    assert response.status_code == 200, response.text
    body = orjson.loads(response.content)  # strict JSON: a bare NaN would not parse
    assert body["outputs"][0]["data"] == ["NaN", "-Infinity", 0.0]
    got = np.asarray(body["outputs"][0]["data"], dtype=np.float32)
    assert np.isnan(got[0]) and got[1] == -np.inf and got[2] == 0.0

    v1 = values.http.post(
        f"/v1/models/{LOG}:predict", json={"instances": [[-1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]}
    )
    assert orjson.loads(v1.content) == {"predictions": [["NaN", "-Infinity", 0.0], [0.0, 0.0, 0.0]]}


def test_tritonclient_reads_non_finite_outputs_from_json_and_from_binary(values: Stack) -> None:
    client = triton.InferenceServerClient(values.url.removeprefix("http://"))
    try:
        x = np.array([[-1.0, 0.0, np.e]], dtype=np.float32)
        given = triton.InferInput("x", [1, 3], "FP32")
        given.set_data_from_numpy(x, binary_data=True)
        for binary_out in (False, True):
            result = client.infer(
                LOG,
                [given],
                outputs=[triton.InferRequestedOutput("y", binary_data=binary_out)],
                headers=dict(AUTH),
            )
            y = result.as_numpy("y")
            assert y is not None and y.dtype == np.float32
            assert np.isnan(y[0, 0]) and y[0, 1] == -np.inf and y[0, 2] == pytest.approx(1.0)
    finally:
        client.close()


def test_finite_outputs_keep_their_numeric_form(values: Stack) -> None:
    response = values.http.post(f"/v2/models/{LOG}/infer", json=_v2([1.0, np.e, 10.0]))
    assert all(isinstance(v, float) for v in response.json()["outputs"][0]["data"])


# -- metadata --------------------------------------------------------------------------------


def test_metadata_lists_every_version_served_primary_first(values: Stack) -> None:
    def listed() -> list[str] | None:
        r = values.http.get(f"/v2/models/{IRIS}")
        return r.json()["versions"] if r.status_code == 200 else None

    wait_until(lambda: listed() == ["1", "2", "3"], timeout=30, what="the canary and shadow to be served")
    for v in ("1", "2", "3"):  # each of them may be asked for by number
        r = values.http.get(f"/v2/models/{IRIS}/versions/{v}")
        assert r.status_code == 200 and r.json()["versions"] == [v]
