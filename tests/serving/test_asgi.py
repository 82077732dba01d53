"""The inference app's ASGI plumbing: ``POST /v2/models/{name}/infer`` is answered before
Starlette's middleware stack and routing; every other route goes through them.

The app itself adds no middleware, so today nothing differs for a client. These tests pin
the rule for whoever adds one: it will not see the hot path (the version-addressed
``/infer`` and every other route do go through it), and that path must answer correctly
on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiaas.config import Settings
from aiaas.deployments import DeploymentService
from aiaas.registry import Registry
from aiaas.serving import ModelPool, create_app
from aiaas.store import Database, open_artifact_store
from tests._auth import AUTH, write_admin_key
from tests.serving.conftest import IrisModel

STACK_HEADER = "x-through-middleware"


class _MarkResponses:
    """A plain ASGI middleware that marks every response passing through it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (STACK_HEADER.encode(), b"1")]
            await send(message)

        await self.app(scope, receive, marked)


@pytest.fixture
def served(tmp_path: Path, iris_model: Callable[[float], IrisModel]) -> Iterator[tuple[Starlette, IrisModel]]:
    settings = Settings(home=tmp_path)
    db = Database(settings.resolved_database_url())
    db.upgrade()
    registry = Registry(db, open_artifact_store(settings.resolved_artifact_root()))
    iris = iris_model(1.0)
    registry.register_version("iris", iris.package)
    deployments = DeploymentService(registry)
    deployments.create("iris", model="iris", version=1)
    pool = ModelPool(deployments)  # models run in this process: no replicas needed here
    pool.reconcile_once()
    app: Starlette = create_app(settings, pool)
    app.add_middleware(_MarkResponses)
    # The app's lifespan does this; httpx's ASGI transport runs no lifespan.
    write_admin_key(tmp_path)
    app.state.auth.start()
    try:
        yield app, iris
    finally:
        app.state.auth.close()
        db.dispose()


def _request(
    app: Starlette,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str | bytes] | None = None,
) -> httpx.Response:
    """One request to the app in process, through httpx's ASGI transport (with the admin key
    unless ``headers`` says otherwise)."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.request(method, path, json=body, headers=AUTH if headers is None else headers)

    return asyncio.run(send())


def _body(x: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]}


def test_infer_is_answered_before_the_middleware_stack(
    served: tuple[Starlette, IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    app, iris = served
    x = iris_x[:3]
    r = _request(app, "POST", "/v2/models/iris/infer", _body(x))
    assert r.status_code == 200, r.text
    assert STACK_HEADER not in r.headers
    probabilities = next(o for o in r.json()["outputs"] if o["name"] == "probabilities")
    np.testing.assert_allclose(
        np.reshape(probabilities["data"], (3, -1)), iris.proba(x), rtol=1e-5, atol=1e-6
    )


def test_an_unknown_model_on_the_fast_path_gets_the_protocol_error_without_the_stack(
    served: tuple[Starlette, IrisModel], iris_x: np.ndarray[Any, Any]
) -> None:
    app, _ = served
    r = _request(app, "POST", "/v2/models/nope/infer", _body(iris_x[:1]))
    assert r.status_code == 404
    assert "nope" in r.json()["error"]
    assert STACK_HEADER not in r.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/models/iris/versions/1/infer"),
        ("GET", "/v2/models/iris"),
        ("GET", "/v2/health/ready"),
        ("POST", "/v1/models/iris:predict"),
    ],
)
def test_every_other_route_goes_through_the_middleware_stack(
    served: tuple[Starlette, IrisModel], iris_x: np.ndarray[Any, Any], method: str, path: str
) -> None:
    app, _ = served
    body = {"instances": iris_x[:1].tolist()} if path.startswith("/v1") else _body(iris_x[:1])
    r = _request(app, method, path, body if method == "POST" else None)
    assert r.status_code == 200, r.text
    assert r.headers[STACK_HEADER] == "1"


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer"}, {"authorization": b"Bearer \xff"}, {"authorization": "Basic eDp5"}],
    ids=["none", "empty", "not-ascii", "basic"],
)
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v2/models/iris/infer"), ("GET", "/v2/models/iris"), ("GET", "/nowhere")]
)
def test_the_key_is_checked_on_the_fast_path_too(
    served: tuple[Starlette, IrisModel],
    iris_x: np.ndarray[Any, Any],
    headers: dict[str, str | bytes],
    method: str,
    path: str,
) -> None:
    app, _ = served
    r = _request(app, method, path, _body(iris_x[:1]) if method == "POST" else None, headers=headers)
    assert r.status_code == 401, r.text
    assert "authorization" in r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
    assert STACK_HEADER not in r.headers, "refused before the middleware stack and routing"
