"""Request ids: every inference answer carries one, on V1 and V2, echoed when the client sent
a sane one; the V2 body's ``id`` is the client's own, else the request id."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from aiaas.serving.request_ids import request_id_of
from tests.serving.conftest import IrisModel, Stack

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="session")
def ids(stack: Stack, iris_model: Callable[[float], IrisModel]) -> Stack:
    stack.registry.register_version("ids-iris", iris_model(1.0).package)
    stack.deployments.create("ids", model="ids-iris", version=1)
    stack.wait_served("ids", 1)
    return stack


def _v2(x: np.ndarray[Any, Any], **extra: Any) -> dict[str, Any]:
    tensor = {"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.reshape(-1).tolist()}
    return {"inputs": [tensor], **extra}


def test_v2_answer_carries_a_fresh_id_in_header_and_body(ids: Stack, iris_x: np.ndarray[Any, Any]) -> None:
    first = ids.http.post("/v2/models/ids/infer", json=_v2(iris_x[:2]))
    second = ids.http.post("/v2/models/ids/versions/1/infer", json=_v2(iris_x[:2]))
    for r in (first, second):
        assert r.status_code == 200, r.text
        assert GENERATED.fullmatch(r.headers["x-request-id"])
        assert r.json()["id"] == r.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_v2_echoes_the_clients_header_and_body_id(ids: Stack, iris_x: np.ndarray[Any, Any]) -> None:
    r = ids.http.post("/v2/models/ids/infer", json=_v2(iris_x[:1]), headers={"x-request-id": "order-7:a/b"})
    assert r.headers["x-request-id"] == "order-7:a/b" and r.json()["id"] == "order-7:a/b"
    body = _v2(iris_x[:1], id="body-id")
    r = ids.http.post("/v2/models/ids/infer", json=body, headers={"x-request-id": "hdr"})
    assert r.headers["x-request-id"] == "hdr" and r.json()["id"] == "body-id"


@pytest.mark.parametrize("path", ["/v1/models/ids:predict", "/v1/models/ids/versions/1:predict"])
def test_v1_answer_carries_an_id(ids: Stack, iris_x: np.ndarray[Any, Any], path: str) -> None:
    body = {"instances": iris_x[:2].tolist()}
    r = ids.http.post(path, json=body)
    assert r.status_code == 200, r.text
    assert GENERATED.fullmatch(r.headers["x-request-id"])
    echoed = ids.http.post(path, json=body, headers={"x-request-id": "v1-id"})
    assert echoed.headers["x-request-id"] == "v1-id"


def test_an_error_answer_carries_the_id_too(ids: Stack) -> None:
    r = ids.http.post("/v2/models/ids/infer", json={"inputs": "nope"}, headers={"x-request-id": "bad-1"})
    assert r.status_code == 400 and r.headers["x-request-id"] == "bad-1"
    r = ids.http.post("/v1/models/nothing-here:predict", json={"instances": [[1]]})
    assert r.status_code == 404 and GENERATED.fullmatch(r.headers["x-request-id"])


@pytest.mark.parametrize(
    "value",
    [b"", b"has space", b"x" * 129, "caf\u00e9".encode(), b"tab\there", b"\x7f"],
)
def test_an_insane_client_id_is_replaced(value: bytes) -> None:
    assert GENERATED.fullmatch(request_id_of({"headers": [(b"x-request-id", value)]}))


def test_a_sane_client_id_is_kept_up_to_128_characters() -> None:
    longest = b"!" + b"a" * 126 + b"~"
    assert request_id_of({"headers": [(b"accept", b"*/*"), (b"x-request-id", longest)]}) == longest.decode()
    assert GENERATED.fullmatch(request_id_of({"headers": []}))
