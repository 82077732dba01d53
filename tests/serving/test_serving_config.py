"""Deployments' serving config in the inference server: traffic split, shadow, batching,
back-pressure, timeouts, and the statistics that show it."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from aiaas.formats import package_model
from tests._auth import AUTH
from tests._servers import wait_until
from tests.serving.conftest import IrisModel, Stack


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _v2(x: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]}


def _probabilities(response: httpx.Response) -> np.ndarray[Any, Any]:
    out = next(o for o in response.json()["outputs"] if o["name"] == "probabilities")
    return np.reshape(out["data"], out["shape"])


def _wait_parameters(stack: Stack, deployment: str, check: Callable[[dict[str, Any]], bool]) -> None:
    def applied() -> bool:
        r = stack.http.get(f"/v2/models/{deployment}")
        return r.status_code == 200 and check(r.json().get("parameters", {}))

    wait_until(applied, timeout=30, what=f"the serving config of {deployment!r} to apply")


def _two_versions(stack: Stack, iris_model: Callable[[float], IrisModel]) -> tuple[str, IrisModel, IrisModel]:
    model = _name("split")
    one, two = iris_model(1.0), iris_model(0.05)
    stack.registry.register_version(model, one.package)
    stack.registry.register_version(model, two.package)
    return model, one, two


def test_canary_gets_its_share_and_each_answer_comes_from_the_version_it_names(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    model, one, two = _two_versions(stack, iris_model)
    stack.deployments.create(model, model=model, version=1, traffic=[{"version": 2, "weight": 10}])
    _wait_parameters(
        stack,
        model,
        lambda p: p.get("routes") == [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}],
    )

    x = iris_x[:2]
    expected = {"1": one.proba(x), "2": two.proba(x)}
    served: Counter[str] = Counter()
    for _ in range(2000):
        r = stack.http.post(f"/v2/models/{model}/infer", json=_v2(x))
        assert r.status_code == 200, r.text
        version = r.json()["model_version"]
        assert r.headers["x-aiaas-model-version"] == version
        np.testing.assert_allclose(_probabilities(r), expected[version], rtol=1e-5, atol=1e-7)
        served[version] += 1
    assert abs(served["2"] / 2000 - 0.10) <= 0.03, served

    # the split ends when the canary route is removed; v1 alone again
    stack.deployments.update(model, traffic=[])
    _wait_parameters(stack, model, lambda p: p.get("routes") == [{"version": 1, "weight": 100}])
    assert {
        stack.http.post(f"/v2/models/{model}/infer", json=_v2(x)).json()["model_version"] for _ in range(50)
    } == {"1"}


def test_shadow_gets_a_copy_of_every_request_without_touching_answers(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    model, one, _ = _two_versions(stack, iris_model)
    stack.deployments.create(model, model=model, version=1, shadow={"version": 2})
    _wait_parameters(stack, model, lambda p: p.get("shadow_version") == 2)
    for _ in range(40):
        r = stack.http.post(f"/v2/models/{model}/infer", json=_v2(iris_x[:3]))
        assert r.json()["model_version"] == "1"
        np.testing.assert_allclose(_probabilities(r), one.proba(iris_x[:3]), rtol=1e-5, atol=1e-7)
    v1 = stack.http.post(f"/v1/models/{model}:predict", json={"instances": iris_x[:1].tolist()})
    assert v1.headers["x-aiaas-model-version"] == "1"

    def shadow_count() -> int:
        stats = stack.http.get(f"/v2/models/{model}/versions/2/stats").json()["model_stats"]
        return int(stats[0]["inference_stats"]["success"]["count"]) if stats else 0

    wait_until(lambda: shadow_count() == 41, timeout=30, what="the shadow to have seen all 41 requests")
    primary = stack.http.get(f"/v2/models/{model}/versions/1/stats").json()["model_stats"][0]
    assert primary["inference_stats"]["success"]["count"] == 41
    assert primary["inference_count"] == 40 * 3 + 1


def test_batching_gives_each_request_its_own_answer_and_batches_form(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    model = _name("batched")
    clf = iris_model(1.0)
    stack.registry.register_version(model, clf.package)
    stack.deployments.create(
        model,
        model=model,
        version=1,
        batching={"enabled": True, "max_batch_size": 8, "max_queue_delay_ms": 50},
    )
    _wait_parameters(stack, model, lambda p: p.get("batching", {}).get("enabled") is True)

    sizes = [1, 3, 7, 20, 2, 1, 5, 8] * 4
    rng = np.random.default_rng(0)
    batches = [iris_x[rng.integers(0, len(iris_x), n)] for n in sizes]

    def call(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        with httpx.Client(base_url=stack.url, timeout=30, headers=dict(AUTH)) as http:
            r = http.post(f"/v2/models/{model}/infer", json=_v2(x))
            assert r.status_code == 200, r.text
            return _probabilities(r)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, batches))
    for x, got in zip(batches, results, strict=True):
        np.testing.assert_allclose(got, clf.proba(x), rtol=1e-5, atol=1e-7)

    (stats,) = stack.http.get(f"/v2/models/{model}/stats").json()["model_stats"]
    assert stats["inference_count"] == sum(sizes)
    assert stats["inference_stats"]["success"]["count"] == len(sizes)
    calls = {b["batch_size"]: b["compute_infer"]["count"] for b in stats["batch_stats"]}
    assert {size for size in calls if size > 8} == {20}, "only the 20-row requests exceed max_batch_size"
    assert calls[20] == 4, "each ran whole, in a call of its own, never cut into chunks"
    assert calls[8] >= 4, "so did each 8-row request"
    assert stats["execution_count"] < len(sizes), "the small requests shared model runs"


def _slow_model() -> bytes:
    """200 products with one 512x512 matrix: tens of milliseconds even for a few rows."""
    rng = np.random.default_rng(0)
    w = (rng.normal(size=(512, 512)) / np.sqrt(512)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "W")]
    nodes, prev = [], "X"
    for i in range(200):
        nodes.append(helper.make_node("MatMul", [prev, "W"], [f"H{i}"]))
        prev = f"H{i}"
    nodes.append(helper.make_node("Identity", [prev], ["Y"]))
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 512])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 512])],
        inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


@pytest.fixture(scope="module")
def slow_package() -> Any:
    return package_model(_slow_model())


def _slow_request(rows: int) -> dict[str, Any]:
    x = np.ones((rows, 512), dtype=np.float32)
    return {"inputs": [{"name": "X", "datatype": "FP32", "shape": [rows, 512], "data": x.ravel().tolist()}]}


def test_a_full_queue_answers_429_with_retry_after_and_the_rest_succeed(
    stack: Stack, slow_package: Any
) -> None:
    model = _name("bounded")
    stack.registry.register_version(model, slow_package)
    stack.deployments.create(model, model=model, version=1, max_queue_size=1)
    _wait_parameters(stack, model, lambda p: p.get("max_queue_size") == 1)
    body = _slow_request(4)

    def call(_: int) -> httpx.Response:
        with httpx.Client(base_url=stack.url, timeout=60, headers=dict(AUTH)) as http:
            return http.post(f"/v2/models/{model}/infer", json=body)

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(call, range(24)))
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {200, 429}, codes
    assert codes[429] > 0 and codes[200] > 0, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["retry-after"] == "1" and "max_queue_size" in refused.json()["error"]
    assert stack.http.post(f"/v2/models/{model}/infer", json=body).status_code == 200


def test_a_request_over_its_timeout_answers_504_and_the_server_keeps_serving(
    stack: Stack, slow_package: Any
) -> None:
    model = _name("deadline")
    stack.registry.register_version(model, slow_package)
    stack.deployments.create(model, model=model, version=1, timeout_s=0.001)
    _wait_parameters(stack, model, lambda p: p.get("timeout_s") == 0.001)
    r = stack.http.post(f"/v2/models/{model}/infer", json=_slow_request(8))
    assert r.status_code == 504 and "timeout_s" in r.json()["error"]
    stack.deployments.update(model, timeout_s=60)
    _wait_parameters(stack, model, lambda p: p.get("timeout_s") == 60)
    assert stack.http.post(f"/v2/models/{model}/infer", json=_slow_request(1)).status_code == 200


def test_statistics_and_prometheus_metrics_count_requests(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    import tritonclient.http as triton

    model = _name("counted")
    stack.registry.register_version(model, iris_model(1.0).package)
    stack.deployments.create(model, model=model, version=1)
    stack.wait_served(model, 1)
    for rows in (1, 2, 3):
        assert stack.http.post(f"/v2/models/{model}/infer", json=_v2(iris_x[:rows])).status_code == 200
    assert stack.http.post(f"/v2/models/{model}/infer", json={"inputs": "nope"}).status_code == 400

    (stats,) = stack.http.get(f"/v2/models/{model}/stats").json()["model_stats"]
    assert stats["inference_count"] == 6 and stats["inference_stats"]["success"]["count"] == 3
    assert stack.http.get("/v2/models/no-such-model/stats").status_code == 404
    everything = stack.http.get("/v2/models/stats").json()["model_stats"]
    assert any(e["name"] == model for e in everything)

    client = triton.InferenceServerClient(stack.url.removeprefix("http://"))
    try:
        via_client = client.get_inference_statistics(model, headers=dict(AUTH))
    finally:
        client.close()
    assert via_client["model_stats"][0]["inference_count"] == 6

    text = stack.http.get("/metrics").text
    assert f'aiaas_inference_rows_total{{deployment="{model}",model="{model}",version="1"}} 6.0' in text


def test_changing_batching_and_version_under_load_fails_no_request(
    stack: Stack, iris_model: Callable[[float], IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    model, one, two = _two_versions(stack, iris_model)
    stack.deployments.create(
        model,
        model=model,
        version=1,
        batching={"enabled": True, "max_batch_size": 8, "max_queue_delay_ms": 20},
    )
    _wait_parameters(stack, model, lambda p: p.get("batching", {}).get("max_batch_size") == 8)
    expected = {"1": one.proba(iris_x[:2]), "2": two.proba(iris_x[:2])}
    stop = threading.Event()
    failures: list[str] = []
    seen: Counter[str] = Counter()

    def client() -> None:
        with httpx.Client(base_url=stack.url, timeout=30, headers=dict(AUTH)) as http:
            while not stop.is_set():
                r = http.post(f"/v2/models/{model}/infer", json=_v2(iris_x[:2]))
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                    continue
                version = r.json()["model_version"]
                seen[version] += 1
                if not np.allclose(_probabilities(r), expected[version], rtol=1e-5, atol=1e-7):
                    failures.append(f"wrong answer from version {version}")

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: seen["1"] >= 50, timeout=30, what="traffic on version 1")
        stack.deployments.update(
            model, batching={"enabled": True, "max_batch_size": 16, "max_queue_delay_ms": 5}
        )
        _wait_parameters(stack, model, lambda p: p.get("batching", {}).get("max_batch_size") == 16)
        stack.deployments.update(model, version=2)
        wait_until(lambda: seen["2"] >= 50, timeout=30, what="traffic on version 2")
        stack.deployments.update(model, batching={"enabled": False})
        _wait_parameters(stack, model, lambda p: p.get("batching", {}).get("enabled") is False)
        seen.clear()
        wait_until(lambda: seen["2"] >= 50, timeout=30, what="traffic after batching was switched off")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
